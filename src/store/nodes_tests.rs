use std::collections::BTreeMap;

use crate::call::outcome::Outcome as C;
use crate::campaign::contacts::Contact;
use crate::campaign::AttemptOutcome as A;
use crate::store::backends_test::{backend, fresh, fresh_url, on_both};
use crate::store::*;

const LEASE: i64 = 10_000;

fn campaign() -> NewCampaign {
    NewCampaign {
        name: "nodes".into(),
        script: "s.rhai".into(),
        trunks: vec!["carrier".into()],
        cps: 10.0,
        max_channels: 10,
        attempts: 3,
        retry: "busy=1m".into(),
        hours: "00:00-24:00".into(),
        days: "all".into(),
        tz: "UTC".into(),
        country: "KE".into(),
        sms: None,
        sms_on: vec![],
        ends_at: None,
        priority: 0,
        columns: vec![],
    }
}

async fn running(s: &Store, n: u64) -> String {
    let contacts: Vec<Contact> = (0..n)
        .map(|i| Contact {
            line: i + 2,
            phone: format!("+25471300{i:04}"),
            tz: None,
            fields: vec![],
        })
        .collect();
    let id = s.create_campaign(&campaign(), &contacts).await.unwrap();
    assert!(s
        .set_campaign_state(&id, &[CampaignState::Created], CampaignState::Running)
        .await
        .unwrap());
    id
}

async fn node_of(s: &Store, attempt: &str) -> Option<String> {
    sqlx::query_scalar("SELECT node FROM attempts WHERE id = $1")
        .bind(attempt)
        .fetch_one(&s.pool)
        .await
        .unwrap()
}

fn unknown(then: Then) -> impl FnMut(&AttemptInfo) -> Recovery {
    move |a: &AttemptInfo| Recovery {
        outcome: if a.answered_at.is_some() {
            A::Call(C::Answered)
        } else {
            A::Unknown
        },
        then,
        ghost_until: None,
    }
}

/// A node id is one live process's: on PostgreSQL a second process is
/// refused until the first one's connection is gone (as when it dies);
/// SQLite holds nothing (its file has one node).
async fn one_process_per_node_id() {
    let db = fresh_url();
    let (a, b) = (db.open().await, db.open().await);
    let held = a.lock_node("n1").await.unwrap();
    assert!(b.lock_node("n2").await.is_ok());
    if backend() == Backend::Sqlite {
        assert!(b.lock_node("n1").await.is_ok());
        return;
    }
    let e = b.lock_node("n1").await.unwrap_err();
    assert!(matches!(e, StoreError::NodeInUse(_)), "{e}");
    assert!(e.to_string().contains("node id \"n1\" is held"), "{e}");
    drop(held);
    let t = std::time::Instant::now();
    while b.lock_node("n1").await.is_err() {
        assert!(t.elapsed().as_secs() < 5, "the lock outlived its holder");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn a_node_renews_its_lease_reports_its_calls_and_leaves() {
    let s = fresh().await;
    s.join_node("n1", "i1", 1_000, LEASE).await.unwrap();
    let used = BTreeMap::from([("carrier".to_string(), 3)]);
    assert!(s.renew_node("n1", "i1", 2_000, LEASE, &used).await.unwrap());
    // Another process's renewal of the same id is not this one's.
    assert!(!s.renew_node("n1", "i0", 2_000, LEASE, &used).await.unwrap());
    let rows = s.nodes().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].heartbeat_at,
            rows[0].lease_until,
            rows[0].reserved_until
        ),
        (2_000, 12_000, None)
    );
    assert_eq!(rows[0].channels, used);
    // A restarted process of the same node replaces the row.
    s.join_node("n1", "i2", 3_000, LEASE).await.unwrap();
    assert!(!s.renew_node("n1", "i1", 3_500, LEASE, &used).await.unwrap());
    let rows = s.nodes().await.unwrap();
    assert_eq!(
        (rows[0].incarnation.as_str(), rows[0].started_at),
        ("i2", 3_000)
    );
    assert!(rows[0].channels.is_empty());
    // Leaving with an attempt in flight keeps the row for a takeover.
    let id = running(&s, 1).await;
    let c = s.claim_due_as(Some("n1"), &id, 4_000, 1).await.unwrap();
    assert!(!s.leave_node("n1", "i2").await.unwrap());
    let f = Finish::new(A::Call(C::Busy), Then::Final);
    assert!(s.finish_attempt(&c[0].attempt_id, &f, 5_000).await.unwrap());
    assert!(!s.leave_node("n1", "i1").await.unwrap());
    assert!(s.leave_node("n1", "i2").await.unwrap());
    assert!(s.nodes().await.unwrap().is_empty());
}

async fn claims_are_stamped_with_the_node_and_need_its_lease() {
    let s = fresh().await;
    let id = running(&s, 4).await;
    s.join_node("n1", "i1", 1_000, LEASE).await.unwrap();
    let c = s.claim_due_as(Some("n1"), &id, 2_000, 1).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(node_of(&s, &c[0].attempt_id).await.as_deref(), Some("n1"));
    // Past its lease, or unknown: nothing.
    assert!(s
        .claim_due_as(Some("n1"), &id, 11_000, 1)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .claim_due_as(Some("n9"), &id, 2_000, 1)
        .await
        .unwrap()
        .is_empty());
    // Without a node (a store of one process): no lease asked.
    let c = s.claim_next_due(&id, 11_000, 1).await.unwrap();
    assert_eq!(node_of(&s, &c[0].attempt_id).await, None);
}

/// A node whose lease ran out is taken over once: its attempts in flight
/// end by the crash rule (answered if the answer was stored), its share
/// is reserved as the caller says, its renewals fail from then on; other
/// nodes' attempts are untouched, and a restarting node recovers only
/// its own.
async fn a_dead_node_is_taken_over_once_and_only_its_attempts_end() {
    let s = fresh().await;
    let id = running(&s, 5).await;
    s.join_node("dead", "d", 1_000, LEASE).await.unwrap();
    s.join_node("live", "l", 1_000, LEASE).await.unwrap();
    let mine = s.claim_due_as(Some("dead"), &id, 2_000, 2).await.unwrap();
    let theirs = s.claim_due_as(Some("live"), &id, 2_000, 1).await.unwrap();
    assert_eq!((mine.len(), theirs.len()), (2, 1));
    let d = Dialog::default();
    for c in mine.iter().chain(&theirs) {
        assert!(s
            .mark_dialing(&c.attempt_id, "carrier", &d, 2_100)
            .await
            .unwrap());
    }
    assert!(s.mark_answered(&mine[1].attempt_id, 2_500).await.unwrap());
    let none = BTreeMap::new();
    assert!(s
        .renew_node("live", "l", 9_000, LEASE, &none)
        .await
        .unwrap());

    // Not before its lease ran out.
    let early = s
        .take_over_node("dead", 10_500, unknown(Then::Final), |b, _| b)
        .await
        .unwrap();
    assert_eq!(early, None);
    let then = Then::Retry { next_at: 20_000 };
    let mut seen = Vec::new();
    let t = s
        .take_over_node("dead", 11_500, unknown(then), |beat, a| {
            seen = a.iter().map(|(a, _)| a.id.clone()).collect();
            beat + 40_000
        })
        .await
        .unwrap()
        .expect("taken over");
    assert_eq!(t.heartbeat_at, 1_000);
    assert_eq!(t.reserved_until, 41_000);
    let mut ended: Vec<(String, A)> = t
        .attempts
        .iter()
        .map(|(a, r)| (a.id.clone(), r.outcome))
        .collect();
    ended.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want = vec![
        (mine[0].attempt_id.clone(), A::Unknown),
        (mine[1].attempt_id.clone(), A::Call(C::Answered)),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(ended, want);
    assert_eq!(seen.len(), 2);
    for c in &mine {
        let a = s.attempt(&c.attempt_id).await.unwrap().unwrap();
        assert_eq!(a.state, AttemptState::Done);
        // Never dialed again: the attempt cannot go back to dialing.
        assert!(!s
            .mark_dialing(&c.attempt_id, "carrier", &d, 12_000)
            .await
            .unwrap());
    }
    // Once only.
    let again = s
        .take_over_node("dead", 12_000, unknown(then), |b, _| b)
        .await
        .unwrap();
    assert_eq!(again, None);
    // The dead node's process, if it is still about, lost its lease.
    assert!(!s
        .renew_node("dead", "d", 12_000, LEASE, &none)
        .await
        .unwrap());
    assert!(s
        .claim_due_as(Some("dead"), &id, 12_000, 1)
        .await
        .unwrap()
        .is_empty());
    let rows = s.nodes().await.unwrap();
    assert_eq!(rows[0].reserved_until, Some(41_000));
    // The live node's attempt is its own.
    let a = s.attempt(&theirs[0].attempt_id).await.unwrap().unwrap();
    assert_eq!(a.state, AttemptState::Dialing);
    // Its contacts wait for their retry as new attempts.
    assert!(s
        .renew_node("live", "l", 19_500, LEASE, &none)
        .await
        .unwrap());
    let retry = s.claim_due_as(Some("live"), &id, 20_000, 5).await.unwrap();
    assert_eq!(retry.len(), 4, "{retry:?}");
    assert!(retry
        .iter()
        .all(|c| mine.iter().all(|m| m.attempt_id != c.attempt_id)));
    // A restart of the live node recovers its own attempts only.
    let own = s
        .recover_own("live", 21_000, unknown(Then::Final))
        .await
        .unwrap();
    assert_eq!(own.len(), 5);
    assert!(own
        .iter()
        .all(|(a, _)| mine.iter().all(|m| m.attempt_id != a.id)));
    // The dead row goes once its reservation is over.
    assert_eq!(s.forget_nodes(40_000).await.unwrap(), 0);
    assert_eq!(s.forget_nodes(41_000).await.unwrap(), 1);
    assert_eq!(s.nodes().await.unwrap().len(), 1);
}

/// Several nodes taking over the same dead node at once: exactly one does
/// (on PostgreSQL the others wait on its row and then find it taken).
async fn concurrent_takeovers_resolve_each_attempt_once() {
    let db = fresh_url();
    let s = db.open().await;
    let id = running(&s, 20).await;
    s.join_node("dead", "d", 1_000, LEASE).await.unwrap();
    let claimed = s.claim_due_as(Some("dead"), &id, 2_000, 20).await.unwrap();
    assert_eq!(claimed.len(), 20);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let s = db.open().await;
        tasks.push(tokio::spawn(async move {
            s.take_over_node("dead", 20_000, unknown(Then::Final), |b, _| b + 1)
                .await
                .unwrap()
                .map(|t| t.attempts.len())
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        won.extend(t.await.unwrap());
    }
    assert_eq!(won, [20]);
    let done: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM attempts WHERE state = 'done' AND outcome = 'unknown'",
    )
    .fetch_one(&s.pool)
    .await
    .unwrap();
    assert_eq!(done, 20);
}

on_both!(
    one_process_per_node_id,
    a_node_renews_its_lease_reports_its_calls_and_leaves,
    claims_are_stamped_with_the_node_and_need_its_lease,
    a_dead_node_is_taken_over_once_and_only_its_attempts_end,
    concurrent_takeovers_resolve_each_attempt_once,
);
