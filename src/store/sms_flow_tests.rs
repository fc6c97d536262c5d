use super::*;
use crate::store::backends_test::{fresh, on_both};

async fn a_session_expires_on_the_clock_it_is_given() {
    let s = fresh().await;
    let id = s
        .insert_inbound("254700000001", "2001", "hi")
        .await
        .unwrap();
    assert!(s.flow_claim(&id, Some("r"), 1_000).await.unwrap());
    assert!(
        !s.flow_claim(&id, Some("r"), 1_000).await.unwrap(),
        "one claim"
    );
    s.flow_finish(&FlowEnd {
        inbound_id: id.clone(),
        state: "done".into(),
        route: Some("r".into()),
        session: Some((
            "254700000001".into(),
            "r".into(),
            "{\"step\":2}".into(),
            61_000,
        )),
        results: vec![("q1".into(), "a".into()), ("q1".into(), "b".into())],
        sender: "254700000001".into(),
        now_ms: 1_000,
        ..FlowEnd::default()
    })
    .await
    .unwrap();
    let at = |t| s.sms_session("254700000001", "r", t);
    assert_eq!(at(60_999).await.unwrap().as_deref(), Some("{\"step\":2}"));
    assert_eq!(at(61_000).await.unwrap(), None, "expired at its time");
    assert_eq!(
        s.sms_session("254700000001", "other", 2_000).await.unwrap(),
        None
    );
    let r = s.sms_results(Some("r"), 0).await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].name.as_str(), r[0].value.as_str()), ("q1", "b"));
    assert_eq!(s.sms_sessions_expire(60_000).await.unwrap(), 0);
    assert_eq!(s.sms_sessions_expire(61_000).await.unwrap(), 1);
    assert_eq!(s.flow_row(&id).await.unwrap().unwrap().state, "done");
}

async fn a_claim_left_running_ends_interrupted_and_new_messages_are_pending() {
    let s = fresh().await;
    let a = s.insert_inbound("1", "2", "a").await.unwrap();
    let b = s.insert_inbound("1", "2", "b").await.unwrap();
    assert!(s.flow_claim(&a, None, 5).await.unwrap());
    let pending: Vec<String> = s
        .flow_pending(0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(pending, vec![b]);
    assert_eq!(s.flow_end_interrupted(6).await.unwrap(), vec![a.clone()]);
    assert_eq!(s.flow_row(&a).await.unwrap().unwrap().state, "interrupted");
}

fn end(id: &str, sender: &str, route: Option<&str>, session: Option<&str>, now_ms: i64) -> FlowEnd {
    FlowEnd {
        inbound_id: id.into(),
        state: "done".into(),
        route: route.map(str::to_string),
        session: route
            .zip(session)
            .map(|(r, d)| (sender.into(), r.into(), d.into(), now_ms + 60_000)),
        sender: sender.into(),
        now_ms,
        ..FlowEnd::default()
    }
}

/// Claims the message, as the flow does, then ends it.
async fn finish(s: &Store, e: &FlowEnd) -> Result<(), StoreError> {
    assert!(
        s.flow_claim(&e.inbound_id, e.route.as_deref(), e.now_ms)
            .await?
    );
    s.flow_finish(e).await
}

async fn an_emptied_session_is_gone_and_live_routes_come_most_recent_first() {
    let s = fresh().await;
    let a = s.insert_inbound("+1", "2001", "a").await.unwrap();
    let b = s.insert_inbound("+1", "2002", "b").await.unwrap();
    let c = s.insert_inbound("+1", "2001", "c").await.unwrap();
    finish(&s, &end(&a, "+1", Some("survey"), Some("{\"q\":1}"), 1_000))
        .await
        .unwrap();
    finish(&s, &end(&b, "+1", Some("info"), Some("{\"n\":1}"), 2_000))
        .await
        .unwrap();
    assert_eq!(
        s.sms_live_routes("+1", 3_000).await.unwrap(),
        ["info", "survey"]
    );
    assert_eq!(
        s.sms_live_routes("+1", 61_500).await.unwrap(),
        ["info"],
        "survey's session expired at 61 000"
    );
    assert!(s.sms_live_routes("+2", 3_000).await.unwrap().is_empty());
    // The script emptied its session: the conversation is over.
    finish(&s, &end(&c, "+1", Some("info"), Some("{}"), 4_000))
        .await
        .unwrap();
    assert_eq!(s.sms_session("+1", "info", 4_000).await.unwrap(), None);
    assert_eq!(
        s.sms_session("+1", "survey", 4_000)
            .await
            .unwrap()
            .as_deref(),
        Some("{\"q\":1}")
    );
}

async fn results_are_read_by_route_and_time_and_need_a_route() {
    let s = fresh().await;
    let a = s.insert_inbound("+1", "2001", "yes").await.unwrap();
    let b = s.insert_inbound("+2", "2001", "no").await.unwrap();
    let c = s.insert_inbound("+3", "2002", "x").await.unwrap();
    let with = |id: &str, sender: &str, route: Option<&str>, at: i64, r: &[(&str, &str)]| {
        let mut e = end(id, sender, route, None, at);
        e.results = r
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        e
    };
    finish(
        &s,
        &with(
            &a,
            "+1",
            Some("survey"),
            1_000,
            &[("q1", "yes"), ("age", "41")],
        ),
    )
    .await
    .unwrap();
    finish(&s, &with(&b, "+2", Some("poll"), 2_000, &[("q1", "no")]))
        .await
        .unwrap();
    // No route (no flow matched): nothing is stored under no name.
    finish(&s, &with(&c, "+3", None, 3_000, &[("q1", "x")]))
        .await
        .unwrap();
    let all = s.sms_results(None, 0).await.unwrap();
    let got: Vec<_> = all
        .iter()
        .map(|r| {
            (
                r.sender.as_str(),
                r.route.as_str(),
                r.name.as_str(),
                r.value.as_str(),
                r.at_ms,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("+1", "survey", "age", "41", 1_000),
            ("+1", "survey", "q1", "yes", 1_000),
            ("+2", "poll", "q1", "no", 2_000),
        ]
    );
    assert_eq!(all[0].inbound_id, a);
    let poll = s.sms_results(Some("poll"), 0).await.unwrap();
    assert_eq!((poll.len(), poll[0].inbound_id.as_str()), (1, b.as_str()));
    assert_eq!(s.sms_results(None, 1_001).await.unwrap().len(), 1);
    assert!(s
        .sms_results(Some("survey"), 1_001)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.flow_row(&c).await.unwrap().unwrap().route, None);
}

async fn pending_starts_at_its_time_and_stops_at_its_limit() {
    let s = fresh().await;
    let ids: Vec<String> = inbound_in_order(&s, 5).await;
    let all = s.flow_pending(0, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|m| &m.id).collect::<Vec<_>>(),
        ids.iter().collect::<Vec<_>>()
    );
    assert_eq!(s.flow_pending(0, 2).await.unwrap().len(), 2);
    let last = all[4].received_ms;
    assert!(s.flow_pending(last + 1, 10).await.unwrap().is_empty());
    assert_eq!(s.flow_row("in-none").await.unwrap(), None);
    // The texts sent to a number, oldest first (what a flow answered).
    assert!(s.bodies_sent_to("+1").await.unwrap().is_empty());
}

async fn inbound_in_order(s: &Store, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            s.insert_inbound("+1", "2001", &format!("m{i}"))
                .await
                .unwrap(),
        );
    }
    ids
}

on_both!(
    a_session_expires_on_the_clock_it_is_given,
    a_claim_left_running_ends_interrupted_and_new_messages_are_pending,
    an_emptied_session_is_gone_and_live_routes_come_most_recent_first,
    results_are_read_by_route_and_time_and_need_a_route,
    pending_starts_at_its_time_and_stops_at_its_limit,
);
