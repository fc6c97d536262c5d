use std::path::Path;

use sqlx::Row;

use crate::call::outcome::Outcome as C;
use crate::campaign::contacts::Contact;
use crate::campaign::AttemptOutcome as A;
use crate::store::backends_test::{fresh, fresh_url, on_both};
use crate::store::*;

async fn store() -> Store {
    fresh().await
}

fn settings() -> NewCampaign {
    NewCampaign {
        name: "spring".into(),
        script: "scripts/survey.rhai".into(),
        trunks: vec!["carrier".into(), "e1".into()],
        cps: 2.5,
        max_channels: 30,
        attempts: 3,
        retry: "busy:5m,no_answer:1h".into(),
        hours: "09:00-20:00".into(),
        days: "mon-fri".into(),
        tz: "Africa/Nairobi".into(),
        country: "KE".into(),
        sms: Some("Hello {name}".into()),
        sms_on: vec![A::Call(C::NoAnswer), A::Call(C::Busy)],
        ends_at: Some(1_900_000_000_000),
        priority: 5,
        columns: vec!["name".into(), "amount".into()],
    }
}

fn contacts(n: u64) -> Vec<Contact> {
    (0..n)
        .map(|i| Contact {
            line: i + 2,
            phone: format!("+25471200{i:04}"),
            tz: (i % 2 == 0).then(|| "Europe/London".to_string()),
            fields: vec![
                ("name".into(), format!("n{i}")),
                ("amount".into(), format!("{i}")),
            ],
        })
        .collect()
}

/// A running campaign of `n` contacts.
async fn running(s: &Store, n: u64) -> String {
    let id = s.create_campaign(&settings(), &contacts(n)).await.unwrap();
    assert!(s
        .set_campaign_state(&id, &[CampaignState::Created], CampaignState::Running)
        .await
        .unwrap());
    id
}

fn dialog(call_id: &str) -> Dialog {
    Dialog {
        call_id: Some(call_id.into()),
        local_tag: Some("lt".into()),
        cseq: Some(1),
        remote_target: Some("sip:+254712000000@trunk.example.org".into()),
        ..Dialog::default()
    }
}

async fn a_campaign_keeps_its_settings_and_changes_bump_the_version() {
    let s = store().await;
    let (v0, all) = s.changed_since(0).await.unwrap();
    assert_eq!((v0, all.len()), (0, 0));
    let id = s.create_campaign(&settings(), &contacts(3)).await.unwrap();
    let c = s.campaign(&id).await.unwrap().unwrap();
    assert_eq!(c.settings, settings());
    assert_eq!(c.state, CampaignState::Created);
    assert_eq!(s.campaign("nope").await.unwrap(), None);

    let (v1, changed) = s.changed_since(v0).await.unwrap();
    assert_eq!(changed.len(), 1);
    assert!(v1 > v0);
    assert!(s.changed_since(v1).await.unwrap().1.is_empty());

    // Guarded moves.
    assert!(!s
        .set_campaign_state(&id, &[CampaignState::Running], CampaignState::Paused)
        .await
        .unwrap());
    assert!(s
        .set_campaign_state(&id, &[CampaignState::Created], CampaignState::Running)
        .await
        .unwrap());
    assert!(s
        .set_campaign_state(&id, &[], CampaignState::Paused)
        .await
        .unwrap());
    assert!(!s
        .set_campaign_state("nope", &[], CampaignState::Paused)
        .await
        .unwrap());
    let (v2, changed) = s.changed_since(v1).await.unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].state, CampaignState::Paused);
    assert_eq!(v2, v1 + 2);

    let mut low = settings();
    low.priority = 1;
    let id2 = s.create_campaign(&low, &[]).await.unwrap();
    let order: Vec<String> = s
        .campaigns()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(order, [id, id2]);
}

async fn settings_that_cannot_be_stored_are_refused() {
    let s = store().await;
    let mut bad = settings();
    bad.trunks = vec!["a,b".into()];
    assert!(matches!(
        s.create_campaign(&bad, &[]).await,
        Err(StoreError::Value { what: "trunks", .. })
    ));
    let mut bad = settings();
    bad.cps = f64::NAN;
    assert!(s.create_campaign(&bad, &[]).await.is_err());
    assert!(s.campaigns().await.unwrap().is_empty());
}

async fn claims_only_while_running_in_due_order_and_never_twice() {
    let s = store().await;
    let id = s.create_campaign(&settings(), &contacts(5)).await.unwrap();
    assert!(s
        .claim_next_due(&id, i64::MAX, 10)
        .await
        .unwrap()
        .is_empty());
    s.set_campaign_state(&id, &[], CampaignState::Running)
        .await
        .unwrap();
    let now = 1_000;
    // Contact 3 (line 4) deferred: the rest come in list order.
    let third = contacts_of(&s, &id).await[2];
    assert!(s.reschedule(third, now + 60_000).await.unwrap());
    let a = s.claim_next_due(&id, now, 2).await.unwrap();
    let b = s.claim_next_due(&id, now, 10).await.unwrap();
    let phones = |v: &[Claimed]| v.iter().map(|c| c.phone.clone()).collect::<Vec<_>>();
    assert_eq!(phones(&a), ["+254712000000", "+254712000001"]);
    assert_eq!(phones(&b), ["+254712000003", "+254712000004"]);
    assert!(s.claim_next_due(&id, now, 10).await.unwrap().is_empty());
    assert_eq!(a[0].n, 1);
    assert_eq!(
        a[1].fields,
        [
            ("name".to_string(), "n1".to_string()),
            ("amount".to_string(), "1".to_string())
        ]
    );
    assert_eq!(a[0].tz.as_deref(), Some("Europe/London"));
    assert_eq!(a[1].tz, None);
    // A dialing contact cannot be rescheduled.
    assert!(!s.reschedule(a[0].contact_id, 0).await.unwrap());
    let c = s.claim_next_due(&id, now + 60_000, 10).await.unwrap();
    assert_eq!(phones(&c), ["+254712000002"]);
    assert_eq!(s.next_due_at(&id).await.unwrap(), None);
}

async fn contacts_of(s: &Store, campaign: &str) -> Vec<i64> {
    sqlx::query("SELECT id FROM contacts WHERE campaign_id = $1 ORDER BY line")
        .bind(campaign)
        .fetch_all(&s.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn concurrent_claims_share_out_the_contacts() {
    let db = fresh_url();
    let s = db.open().await;
    let id = running(&s, 60).await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (s, id) = (s.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let c = s.claim_next_due(&id, i64::MAX, 3).await.unwrap();
                if c.is_empty() {
                    return got;
                }
                got.extend(c.into_iter().map(|c| c.contact_id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!((n, all.len()), (60, 60));
}

async fn an_attempt_goes_claimed_dialing_done_once() {
    let s = store().await;
    let id = running(&s, 1).await;
    let c = s.claim_next_due(&id, i64::MAX, 1).await.unwrap().remove(0);
    let a = s.attempt(&c.attempt_id).await.unwrap().unwrap();
    assert_eq!(
        (a.state, a.n, a.trunk.as_deref()),
        (AttemptState::Claimed, 1, None)
    );

    assert!(s
        .mark_dialing(&c.attempt_id, "carrier", &dialog("cid-1"), 100)
        .await
        .unwrap());
    assert!(!s
        .mark_dialing(&c.attempt_id, "carrier", &dialog("cid-1"), 100)
        .await
        .unwrap());
    let more = Dialog {
        remote_tag: Some("rt".into()),
        route_set: Some("<sip:p1;lr>, <sip:p2;lr>".into()),
        cseq: Some(2),
        ..Dialog::default()
    };
    assert!(s.update_dialog(&c.attempt_id, &more).await.unwrap());
    assert!(s.mark_answered(&c.attempt_id, 2_000).await.unwrap());
    assert!(s.mark_answered(&c.attempt_id, 9_000).await.unwrap());
    let a = s.attempt_by_call_id("cid-1").await.unwrap().unwrap();
    assert_eq!(a.id, c.attempt_id);
    assert_eq!(a.state, AttemptState::Dialing);
    assert_eq!(a.trunk.as_deref(), Some("carrier"));
    assert_eq!((a.dialed_at, a.answered_at), (Some(100), Some(2_000)));
    assert_eq!(
        a.dialog,
        Dialog {
            call_id: Some("cid-1".into()),
            local_tag: Some("lt".into()),
            remote_tag: Some("rt".into()),
            remote_target: Some("sip:+254712000000@trunk.example.org".into()),
            route_set: Some("<sip:p1;lr>, <sip:p2;lr>".into()),
            cseq: Some(2),
            sip: None,
        }
    );

    let mut results = serde_json::Map::new();
    results.insert("q1".into(), "yes".into());
    results.insert("score".into(), 7.into());
    let f = Finish {
        sip_status: Some(200),
        q850: Some(16),
        ring_ms: Some(1_900),
        talk_ms: Some(31_000),
        results: Some(results.clone()),
        ..Finish::new(A::Call(C::Answered), Then::Final)
    };
    assert!(s.finish_attempt(&c.attempt_id, &f, 40_000).await.unwrap());
    // Exactly one outcome: a second end changes nothing.
    let again = Finish::new(A::Call(C::Failed), Then::Retry { next_at: 0 });
    assert!(!s
        .finish_attempt(&c.attempt_id, &again, 50_000)
        .await
        .unwrap());
    assert!(!s
        .mark_dialing(&c.attempt_id, "carrier", &Dialog::default(), 1)
        .await
        .unwrap());
    let a = s.attempt(&c.attempt_id).await.unwrap().unwrap();
    assert_eq!(
        (a.state, a.outcome, a.ended_at),
        (AttemptState::Done, Some(A::Call(C::Answered)), Some(40_000))
    );
    assert!(s.claim_next_due(&id, i64::MAX, 1).await.unwrap().is_empty());

    let r = s.campaign_report(&id, 0, 10).await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].state, ContactState::Done);
    assert_eq!(r[0].outcome, Some(A::Call(C::Answered)));
    assert_eq!(
        (r[0].sip_status, r[0].q850, r[0].talk_ms),
        (Some(200), Some(16), 31_000)
    );
    assert_eq!(r[0].results, Some(results));
}

async fn a_retry_is_a_new_attempt_from_its_time() {
    let s = store().await;
    let id = running(&s, 1).await;
    // New contacts are due at once (next_at 0).
    let c = s.claim_next_due(&id, 0, 1).await.unwrap().remove(0);
    let retry_at = 5_000_000_000_000;
    let mut f = Finish::new(A::Call(C::Busy), Then::Retry { next_at: retry_at });
    f.sip_status = Some(486);
    f.q850 = Some(17);
    assert!(s
        .mark_dialing(&c.attempt_id, "carrier", &dialog("x"), 1)
        .await
        .unwrap());
    assert!(s.finish_attempt(&c.attempt_id, &f, 2).await.unwrap());
    assert_eq!(s.next_due_at(&id).await.unwrap(), Some(retry_at));
    assert!(s
        .claim_next_due(&id, retry_at - 1, 1)
        .await
        .unwrap()
        .is_empty());
    let st = s.campaign_status(&id, retry_at - 1).await.unwrap();
    assert_eq!(
        (st.waiting, st.due, st.remaining, st.busy, st.dialed),
        (1, 0, 1, 1, 1)
    );
    let c2 = s.claim_next_due(&id, retry_at, 1).await.unwrap().remove(0);
    assert_eq!((c2.contact_id, c2.n), (c.contact_id, 2));
    assert_ne!(c2.attempt_id, c.attempt_id);
    let r = s.campaign_report(&id, 0, 10).await.unwrap().remove(0);
    // The report's status is that of the last attempt, in flight now.
    assert_eq!(
        (r.state, r.attempts, r.outcome, r.sip_status),
        (ContactState::Dialing, 2, Some(A::Call(C::Busy)), None)
    );
}

async fn an_unclaimed_contact_is_not_counted() {
    let s = store().await;
    let id = running(&s, 1).await;
    let c = s.claim_next_due(&id, i64::MAX, 1).await.unwrap().remove(0);
    assert!(s.unclaim(&c.attempt_id, 77).await.unwrap());
    assert!(!s.unclaim(&c.attempt_id, 77).await.unwrap());
    assert_eq!(s.attempt(&c.attempt_id).await.unwrap(), None);
    assert_eq!(s.next_due_at(&id).await.unwrap(), Some(77));
    let c2 = s.claim_next_due(&id, 77, 1).await.unwrap().remove(0);
    assert_eq!(c2.n, 1);
    // Dialing: too late to give back.
    assert!(s
        .mark_dialing(&c2.attempt_id, "t", &Dialog::default(), 80)
        .await
        .unwrap());
    assert!(!s.unclaim(&c2.attempt_id, 0).await.unwrap());
}

async fn after_a_crash_in_flight_attempts_end_unknown_or_answered_and_ghosts_hold_channels() {
    let db = fresh_url();
    let (id, claimed) = {
        let s = db.open().await;
        let id = running(&s, 4).await;
        let c = s.claim_next_due(&id, i64::MAX, 3).await.unwrap();
        // c[0] claimed only; c[1] dialing; c[2] answered.
        assert!(s
            .mark_dialing(&c[1].attempt_id, "carrier", &dialog("cid-b"), 1_000)
            .await
            .unwrap());
        assert!(s
            .mark_dialing(&c[2].attempt_id, "e1", &dialog("cid-c"), 1_100)
            .await
            .unwrap());
        assert!(s.mark_answered(&c[2].attempt_id, 3_000).await.unwrap());
        // The process dies here: nothing more is written.
        (id, c)
    };
    let s = db.open().await;
    assert_eq!(
        s.claim_next_due(&id, 10_000, 10).await.unwrap().len(),
        1,
        "only the untouched contact"
    );
    let now = 10_000;
    let rec = s
        .recover_in_flight(now, |a| Recovery {
            outcome: if a.answered_at.is_some() {
                A::Call(crate::call::outcome::Outcome::Answered)
            } else {
                A::Unknown
            },
            then: Then::Retry {
                next_at: now + 60_000,
            },
            ghost_until: a.dialed_at.map(|_| now + 30_000),
        })
        .await
        .unwrap();
    // The fourth contact, claimed just now in this test, is in flight too:
    // recovery is for start-up, before any claim.
    assert_eq!(rec.len(), 4);
    let by_id = |aid: &str| rec.iter().find(|(a, _)| a.id == aid).unwrap().0.clone();
    let a0 = by_id(&claimed[0].attempt_id);
    let a1 = by_id(&claimed[1].attempt_id);
    let a2 = by_id(&claimed[2].attempt_id);
    assert_eq!(
        (a0.state, a0.trunk.as_deref(), a0.ghost_until),
        (AttemptState::Claimed, None, None)
    );
    assert_eq!(
        (a1.state, a1.trunk.as_deref()),
        (AttemptState::Dialing, Some("carrier"))
    );
    assert_eq!(a1.dialog.call_id.as_deref(), Some("cid-b"));
    assert_eq!(a2.answered_at, Some(3_000));
    assert_eq!(a2.phone, claimed[2].phone);
    // Each ended once, unknown unless its answer was stored.
    for (a, r) in &rec {
        let now_a = s.attempt(&a.id).await.unwrap().unwrap();
        assert_eq!(
            (now_a.state, now_a.outcome),
            (AttemptState::Done, Some(r.outcome))
        );
    }
    assert_eq!(
        s.attempt(&claimed[2].attempt_id)
            .await
            .unwrap()
            .unwrap()
            .outcome,
        Some(A::Call(crate::call::outcome::Outcome::Answered))
    );
    assert!(s
        .recover_in_flight(now, |_| unreachable!())
        .await
        .unwrap()
        .is_empty());

    let ghosts = s.ghost_channels(now).await.unwrap();
    let mut trunks: Vec<_> = ghosts.iter().filter_map(|g| g.trunk.clone()).collect();
    trunks.sort();
    assert_eq!(trunks, ["carrier", "e1"]);
    assert!(s.release_ghost(&claimed[1].attempt_id).await.unwrap());
    assert!(!s.release_ghost(&claimed[1].attempt_id).await.unwrap());
    assert_eq!(s.ghost_channels(now).await.unwrap().len(), 1);
    assert!(s.ghost_channels(now + 30_000).await.unwrap().is_empty());

    let st = s.campaign_status(&id, now).await.unwrap();
    assert_eq!(
        (st.unknown, st.dialed, st.waiting, st.in_progress),
        (3, 2, 4, 0)
    );
    assert_eq!(st.outcomes.get("unknown"), Some(&3));
    // Retried as new, counted attempts.
    let again = s.claim_next_due(&id, now + 60_000, 10).await.unwrap();
    assert_eq!(again.len(), 4);
    assert!(again.iter().all(|c| c.n == 2));
    assert!(again
        .iter()
        .all(|c| claimed.iter().all(|o| o.attempt_id != c.attempt_id)));
}

async fn a_contact_is_texted_at_most_once() {
    let s = store().await;
    let id = running(&s, 2).await;
    let c = contacts_of(&s, &id).await;
    let msg = |mid: &str| NewMessage {
        id: mid.into(),
        source: "rivr".into(),
        destination: "+254712000000".into(),
        body: "Hello n0".into(),
        parts: vec![NewPart {
            esm_class: 0,
            data_coding: 0,
            payload: false,
            short_message: b"Hello n0".to_vec(),
        }],
        sending: Default::default(),
    };
    assert!(s.claim_sms(c[0], &msg("sms-1")).await.unwrap());
    assert!(!s.claim_sms(c[0], &msg("sms-2")).await.unwrap());
    assert!(!s.claim_sms(987_654, &msg("sms-3")).await.unwrap());
    assert_eq!(
        s.message_state("sms-1").await.unwrap(),
        Some(MessageState::Queued)
    );
    assert_eq!(s.message_state("sms-2").await.unwrap(), None);
    assert_eq!(s.unsent_parts().await.unwrap().len(), 1);
    s.mark_accepted("sms-1", 1, "77").await.unwrap();
    let r = s.campaign_report(&id, 0, 10).await.unwrap();
    assert_eq!(r[0].sms_id.as_deref(), Some("sms-1"));
    assert_eq!(r[0].sms_state, Some(MessageState::Submitted));
    assert_eq!((r[1].sms_id.as_deref(), r[1].sms_state), (None, None));
    assert_eq!(s.campaign_status(&id, 0).await.unwrap().texted, 1);
}

async fn status_counts_attempts_and_contacts() {
    let s = store().await;
    let id = running(&s, 6).await;
    s.dnc_add(&["+254712000005".into()], "cli").await.unwrap();
    let c = s.claim_next_due(&id, i64::MAX, 6).await.unwrap();
    assert_eq!(
        c.iter()
            .filter(|c| c.dnc)
            .map(|c| c.phone.as_str())
            .collect::<Vec<_>>(),
        ["+254712000005"]
    );
    let outcomes = [
        (A::Call(C::Answered), Then::Final),
        (A::Call(C::Busy), Then::Retry { next_at: 500 }),
        (A::Call(C::NoAnswer), Then::Retry { next_at: 2_000 }),
        (A::Call(C::Congestion), Then::Final),
    ];
    for (cl, (o, then)) in c.iter().zip(outcomes) {
        s.mark_dialing(&cl.attempt_id, "carrier", &Dialog::default(), 10)
            .await
            .unwrap();
        s.finish_attempt(&cl.attempt_id, &Finish::new(o, then), 20)
            .await
            .unwrap();
    }
    // c[4] still dialing; c[5] on the list: never dialed.
    s.mark_dialing(&c[4].attempt_id, "carrier", &Dialog::default(), 10)
        .await
        .unwrap();
    s.finish_attempt(&c[5].attempt_id, &Finish::new(A::Dnc, Then::Final), 20)
        .await
        .unwrap();
    let st = s.campaign_status(&id, 1_000).await.unwrap();
    let want = Status {
        contacts: 6,
        dialed: 5,
        answered: 1,
        busy: 1,
        no_answer: 1,
        failed: 1,
        unknown: 0,
        dnc: 1,
        texted: 0,
        done: 3,
        remaining: 3,
        in_progress: 1,
        due: 1,
        waiting: 1,
        outcomes: [
            ("answered", 1),
            ("busy", 1),
            ("no_answer", 1),
            ("congestion", 1),
            ("dnc", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        refined: Default::default(),
    };
    assert_eq!(st, want);
    assert_eq!(
        s.campaign_status("nope", 0).await.unwrap(),
        Status::default()
    );
}

async fn the_report_pages_in_list_order() {
    let s = store().await;
    let id = running(&s, 5).await;
    let p1 = s.campaign_report(&id, 0, 2).await.unwrap();
    let p2 = s.campaign_report(&id, p1[1].line, 10).await.unwrap();
    let lines: Vec<u64> = p1.iter().chain(&p2).map(|r| r.line).collect();
    assert_eq!(lines, [2, 3, 4, 5, 6]);
    let r = &p1[0];
    assert_eq!(
        (r.state, r.attempts, r.outcome, r.talk_ms),
        (ContactState::Waiting, 0, None, 0)
    );
    assert_eq!(r.fields[0], ("name".to_string(), "n0".to_string()));
    assert!(s.campaign_report("nope", 0, 10).await.unwrap().is_empty());
}

async fn a_bad_row_is_an_error_not_a_panic() {
    let s = store().await;
    let id = running(&s, 2).await;
    sqlx::query("UPDATE contacts SET state = 'bogus' WHERE line = 2")
        .execute(&s.pool)
        .await
        .unwrap();
    assert!(matches!(
        s.campaign_report(&id, 0, 10).await,
        Err(StoreError::BadRow { .. })
    ));
    sqlx::query("UPDATE contacts SET state = 'waiting', fields = '[1]' WHERE line = 2")
        .execute(&s.pool)
        .await
        .unwrap();
    assert!(matches!(
        s.claim_next_due(&id, i64::MAX, 5).await,
        Err(StoreError::BadRow { .. })
    ));
    // The failed claim was rolled back.
    assert_eq!(s.campaign_status(&id, i64::MAX).await.unwrap().due, 2);
    sqlx::query("UPDATE campaigns SET sms_on = 'busy,nonsense'")
        .execute(&s.pool)
        .await
        .unwrap();
    assert!(matches!(
        s.campaign(&id).await,
        Err(StoreError::BadRow { .. })
    ));
}

async fn the_do_not_call_list() {
    let s = store().await;
    let n = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        s.dnc_add(&n(&["+15550001", "+15550002"]), "cli")
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.dnc_add(&n(&["+15550002", "+15550003"]), "import:x.csv")
            .await
            .unwrap(),
        1
    );
    assert!(s.dnc_contains("+15550002").await.unwrap());
    assert!(!s.dnc_contains("+15550009").await.unwrap());
    let page = s.dnc_list("", 2).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.phone.as_str()).collect::<Vec<_>>(),
        ["+15550001", "+15550002"]
    );
    assert_eq!(page[1].source, "cli");
    let rest = s.dnc_list(&page[1].phone, 10).await.unwrap();
    assert_eq!((rest.len(), rest[0].source.as_str()), (1, "import:x.csv"));
    assert_eq!(
        s.dnc_remove(&n(&["+15550001", "+15550009"])).await.unwrap(),
        1
    );
    assert!(!s.dnc_contains("+15550001").await.unwrap());
}

async fn a_big_list_is_created_in_one_go() {
    let s = store().await;
    let t = std::time::Instant::now();
    let id = s
        .create_campaign(&settings(), &contacts(10_000))
        .await
        .unwrap();
    eprintln!("10000 contacts stored in {:?}", t.elapsed());
    assert_eq!(s.campaign_status(&id, 0).await.unwrap().contacts, 10_000);
    // Ids go on across campaigns.
    let id2 = s.create_campaign(&settings(), &contacts(2)).await.unwrap();
    assert_eq!(s.campaign_status(&id2, 0).await.unwrap().contacts, 2);
}

#[tokio::test]
async fn the_file_store_is_in_wal_mode() {
    crate::store::backends_test::run(Backend::Sqlite, the_file_store_is_in_wal_mode_on()).await
}

async fn the_file_store_is_in_wal_mode_on() {
    let db = fresh_url();
    let s = db.open().await;
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&s.pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(mode, "wal");
}

/// The child half of `kill_9_loses_nothing`: works on the store named by
/// RIVR_CRASH_DB and dies with SIGABRT (no destructors, no flush, like
/// kill -9) after RIVR_CRASH_OPS store writes.
#[tokio::test]
#[ignore = "run by kill_9_loses_nothing in a child process"]
async fn crash_child() {
    let (Ok(url), Ok(ops)) = (
        std::env::var("RIVR_CRASH_DB"),
        std::env::var("RIVR_CRASH_OPS"),
    ) else {
        return;
    };
    let mut left: u32 = ops.parse().unwrap();
    let s = Store::open(&url, Path::new("/")).await.unwrap();
    let id = s.campaigns().await.unwrap().remove(0).id;
    let mut tick = |s: &str| {
        if left == 0 {
            eprintln!("crash_child: dying before {s}");
            std::process::abort();
        }
        left -= 1;
    };
    let mut t = 0;
    loop {
        tick("claim");
        let claimed = s.claim_next_due(&id, i64::MAX, 3).await.unwrap();
        assert!(!claimed.is_empty(), "ran out of work before the crash");
        for c in &claimed {
            t += 1;
            tick("mark_dialing");
            s.mark_dialing(&c.attempt_id, "carrier", &dialog(&c.attempt_id), t)
                .await
                .unwrap();
            tick("finish_attempt");
            let o = if c.contact_id % 3 == 0 {
                C::Answered
            } else {
                C::Busy
            };
            let then = if o == C::Answered || c.n >= 3 {
                Then::Final
            } else {
                Then::Retry { next_at: t }
            };
            s.finish_attempt(&c.attempt_id, &Finish::new(A::Call(o), then), t)
                .await
                .unwrap();
        }
    }
}

async fn kill_9_loses_nothing() {
    use std::os::unix::process::ExitStatusExt;
    for ops in [0, 1, 2, 5, 13, 30] {
        let db = fresh_url();
        let id = running(&db.open().await, 40).await;
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::campaign::tests::crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("RIVR_CRASH_DB", db.url.clone())
            .env("RIVR_CRASH_OPS", ops.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(
            status.signal(),
            Some(6),
            "ops {ops}: the child died of SIGABRT, not a failure"
        );

        let s = db.open().await;
        let before: i64 = sqlx::query("SELECT COUNT(*) FROM attempts WHERE state != 'done'")
            .fetch_one(&s.pool)
            .await
            .unwrap()
            .get(0);
        let rec = s
            .recover_in_flight(1_000_000, |_| Recovery {
                outcome: A::Unknown,
                then: Then::Retry { next_at: 0 },
                ghost_until: None,
            })
            .await
            .unwrap();
        assert_eq!(rec.len() as i64, before, "ops {ops}");
        // Finish the campaign.
        loop {
            let c = s.claim_next_due(&id, i64::MAX, 10).await.unwrap();
            if c.is_empty() {
                break;
            }
            for c in c {
                assert!(s
                    .finish_attempt(
                        &c.attempt_id,
                        &Finish::new(A::Call(C::NoAnswer), Then::Final),
                        2_000_000
                    )
                    .await
                    .unwrap());
            }
        }
        // No contact lost: every one is done.
        let st = s.campaign_status(&id, 0).await.unwrap();
        assert_eq!(
            (st.contacts, st.done, st.remaining),
            (40, 40, 0),
            "ops {ops}"
        );
        // No attempt twice: each contact's attempts are 1..=n, each ended
        // once with an outcome.
        let bad: i64 = sqlx::query(
            "SELECT COUNT(*) FROM contacts c WHERE c.attempts != \
               (SELECT COUNT(*) FROM attempts a WHERE a.contact_id = c.id AND a.n BETWEEN 1 AND c.attempts \
                  AND a.state = 'done' AND a.outcome IS NOT NULL AND a.ended_at IS NOT NULL)",
        )
        .fetch_one(&s.pool)
        .await
        .unwrap()
        .get(0);
        assert_eq!(bad, 0, "ops {ops}");
        let all: i64 = sqlx::query("SELECT COUNT(*) FROM attempts")
            .fetch_one(&s.pool)
            .await
            .unwrap()
            .get(0);
        let counted: i64 = sqlx::query("SELECT SUM(attempts) FROM contacts")
            .fetch_one(&s.pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(all, counted, "ops {ops}");
        assert_eq!(st.unknown as i64, before, "ops {ops}");
    }
}

async fn contacts_ended_without_their_sms_are_owed_it_until_claimed() {
    let s = store().await;
    let id = running(&s, 3).await;
    let c = s.claim_next_due(&id, i64::MAX, 3).await.unwrap();
    let ends = [
        A::Call(crate::call::outcome::Outcome::Busy),
        A::Unknown,
        A::Call(crate::call::outcome::Outcome::Answered),
    ];
    for (cl, o) in c.iter().zip(ends) {
        s.finish_attempt(&cl.attempt_id, &Finish::new(o, Then::Final), 10)
            .await
            .unwrap();
    }
    let texting = [A::Call(crate::call::outcome::Outcome::Busy), A::Unknown];
    let owed = s.owed_sms(&id, &texting).await.unwrap();
    let phones: Vec<&str> = owed.iter().map(|o| o.phone.as_str()).collect();
    assert_eq!(phones, [c[0].phone.as_str(), c[1].phone.as_str()]);
    assert_eq!(owed[0].fields, c[0].fields);
    assert_eq!(owed[1].outcome, A::Unknown);
    let m = NewMessage {
        id: "sms-owed".into(),
        source: "rivr".into(),
        destination: c[0].phone.clone(),
        body: "x".into(),
        parts: vec![NewPart {
            esm_class: 0,
            data_coding: 0,
            payload: false,
            short_message: b"x".to_vec(),
        }],
        sending: Default::default(),
    };
    assert!(s.claim_sms(owed[0].contact_id, &m).await.unwrap());
    assert_eq!(s.owed_sms(&id, &texting).await.unwrap().len(), 1);
    assert!(s.owed_sms("c-none", &texting).await.unwrap().is_empty());
}

on_both!(
    a_campaign_keeps_its_settings_and_changes_bump_the_version,
    settings_that_cannot_be_stored_are_refused,
    claims_only_while_running_in_due_order_and_never_twice,
    concurrent_claims_share_out_the_contacts,
    an_attempt_goes_claimed_dialing_done_once,
    a_retry_is_a_new_attempt_from_its_time,
    an_unclaimed_contact_is_not_counted,
    after_a_crash_in_flight_attempts_end_unknown_or_answered_and_ghosts_hold_channels,
    a_contact_is_texted_at_most_once,
    status_counts_attempts_and_contacts,
    the_report_pages_in_list_order,
    a_bad_row_is_an_error_not_a_panic,
    the_do_not_call_list,
    a_big_list_is_created_in_one_go,
    kill_9_loses_nothing,
    contacts_ended_without_their_sms_are_owed_it_until_claimed,
);
