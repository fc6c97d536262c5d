use std::collections::HashSet;

use crate::call::outcome::Outcome;
use crate::call::registry::CdrRecord;
use crate::campaign::contacts::Contact;
use crate::store::backends_test::{fresh, on_both};
use crate::store::*;

async fn store() -> Store {
    fresh().await
}

/// Second `s` of 2024-05-01 UTC in RFC 3339, and in Unix ms.
fn at(s: u32) -> (String, i64) {
    let t = 1_714_521_600 + i64::from(s);
    (
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        t * 1000,
    )
}

fn record(call: u32, from: &str, to: &str, outcome: Outcome, s: u32) -> CdrRecord {
    let answered = outcome == Outcome::Answered;
    let mut results = serde_json::Map::new();
    if answered {
        results.insert("q".into(), serde_json::Value::String(format!("{call}")));
    }
    CdrRecord {
        call_id: format!("c{call}"),
        leg: 0,
        direction: "inbound",
        transport: "sip",
        trunk: None,
        transport_id: format!("sip-{call}"),
        from: from.into(),
        to: to.into(),
        started_at: at(s).0,
        answered,
        ring_ms: 120,
        talk_ms: if answered { 3000 } else { 0 },
        duration_ms: if answered { 3000 } else { 0 },
        end: if answered { "remote-bye" } else { "rejected" },
        outcome: outcome.as_str(),
        sip_status: (!answered).then_some(486),
        reason: (!answered).then(|| "Busy Here".to_string()),
        q850: Some(if answered { 16 } else { 17 }),
        script: "completed".into(),
        results,
        attempt: None,
        refined_outcome: if answered {
            outcome.as_str().to_string()
        } else {
            "busy:tone".to_string()
        },
        early_media: (!answered).then(|| "busy".to_string()),
    }
}

fn ids(p: &CdrPage) -> Vec<String> {
    p.rows.iter().map(|r| r.call_id.clone()).collect()
}

async fn a_record_comes_back_field_for_field() {
    let s = store().await;
    let mut r = record(1, "1001", "2000", Outcome::Answered, 5);
    r.trunk = Some("carrier".into());
    let mut leg1 = record(1, "2000", "sip:agent@example.org", Outcome::Busy, 6);
    leg1.leg = 1;
    leg1.direction = "outbound";
    s.insert_cdrs(&[r.clone(), leg1.clone()]).await.unwrap();
    let page = s.query_cdrs(&CdrQuery::default()).await.unwrap();
    assert_eq!(page.next, None);
    assert_eq!(page.rows.len(), 2);
    let got = &page.rows[0];
    let want = serde_json::to_value(&r).unwrap();
    let have = serde_json::to_value(got).unwrap();
    // Every field of the file's line is in the row, with the same value.
    for (k, v) in want.as_object().unwrap() {
        if k == "duration_ms" {
            continue; // kept in the file for old readers only
        }
        assert_eq!(&have[k], v, "field {k}");
    }
    assert_eq!(got.campaign, None);
    assert_eq!(
        (page.rows[1].leg, page.rows[1].outcome.as_str()),
        (1, "busy")
    );
    assert_eq!(page.rows[1].sip_status, Some(486));
    assert_eq!(page.rows[1].q850, Some(17));
    assert_eq!(
        (
            page.rows[1].refined_outcome.as_deref(),
            page.rows[1].early_media.as_deref()
        ),
        (Some("busy:tone"), Some("busy"))
    );
    assert!(page.rows[0].id < page.rows[1].id);
}

async fn a_bad_start_time_stores_no_leg_of_the_call() {
    let s = store().await;
    let good = record(1, "1", "2", Outcome::Answered, 1);
    let mut bad = record(1, "1", "2", Outcome::Answered, 1);
    bad.leg = 1;
    bad.started_at = "yesterday".into();
    let e = s.insert_cdrs(&[good, bad]).await.unwrap_err().to_string();
    assert!(e.contains("started_at") && e.contains("c1"), "{e}");
    assert!(s
        .query_cdrs(&CdrQuery::default())
        .await
        .unwrap()
        .rows
        .is_empty());
}

async fn paging_walks_every_row_once_even_while_rows_are_written() {
    let s = store().await;
    for i in 0..23 {
        s.insert_cdrs(&[record(i, "1", "2", Outcome::Answered, i)])
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut q = CdrQuery {
        limit: Some(5),
        ..CdrQuery::default()
    };
    let mut pages = 0;
    loop {
        let p = s.query_cdrs(&q).await.unwrap();
        pages += 1;
        seen.extend(ids(&p));
        // A call written mid-walk lands after every row already paged.
        if pages == 2 {
            s.insert_cdrs(&[record(99, "1", "2", Outcome::Answered, 0)])
                .await
                .unwrap();
        }
        match p.next {
            Some(c) => q.after = Some(c.to_string().parse().unwrap()),
            None => break,
        }
    }
    let mut want: Vec<String> = (0..23).map(|i| format!("c{i}")).collect();
    want.push("c99".into());
    assert_eq!(seen, want);
    assert_eq!(pages, 5);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());
}

async fn a_full_last_page_gives_no_next_cursor() {
    let s = store().await;
    for i in 0..4 {
        s.insert_cdrs(&[record(i, "1", "2", Outcome::Answered, i)])
            .await
            .unwrap();
    }
    let q = CdrQuery {
        limit: Some(2),
        ..CdrQuery::default()
    };
    let p1 = s.query_cdrs(&q).await.unwrap();
    let p2 = s
        .query_cdrs(&CdrQuery {
            after: p1.next,
            ..q.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        (ids(&p1), ids(&p2)),
        (
            vec!["c0".into(), "c1".into()],
            vec!["c2".into(), "c3".into()]
        )
    );
    assert!(p1.next.is_some());
    assert_eq!(p2.next, None);
}

async fn each_filter_narrows_and_they_combine() {
    let s = store().await;
    let rows = [
        record(0, "+254700000001", "2000", Outcome::Answered, 10),
        record(1, "+254700000002", "2000", Outcome::Busy, 20),
        record(2, "2000", "+254700000001", Outcome::NoAnswer, 30),
        record(
            3,
            "sip:+254700000003@10.0.0.1:5060",
            "1000",
            Outcome::Answered,
            40,
        ),
    ];
    for r in &rows {
        s.insert_cdrs(std::slice::from_ref(r)).await.unwrap();
    }
    let q = |f: fn(&mut CdrQuery)| {
        let mut q = CdrQuery::default();
        f(&mut q);
        q
    };
    let got = |q: CdrQuery| {
        let s = s.clone();
        async move { ids(&s.query_cdrs(&q).await.unwrap()) }
    };
    assert_eq!(
        got(q(|q| q.since = Some(at(20).1))).await,
        ["c1", "c2", "c3"]
    );
    assert_eq!(got(q(|q| q.until = Some(at(30).1))).await, ["c0", "c1"]);
    assert_eq!(
        got(q(|q| {
            q.since = Some(at(20).1);
            q.until = Some(at(40).1);
        }))
        .await,
        ["c1", "c2"]
    );
    // A number matches as the caller or as the called party.
    assert_eq!(
        got(q(|q| q.number = Some("+254700000001".into()))).await,
        ["c0", "c2"]
    );
    assert_eq!(
        got(q(|q| q.number = Some("+2547".into()))).await,
        Vec::<String>::new()
    );
    // A URI's user part is its number, in the rows and in the query.
    assert_eq!(
        got(q(
            |q| q.number = Some("sip:+254700000003@example.org".into())
        ))
        .await,
        ["c3"]
    );
    assert_eq!(
        got(q(|q| q.outcome = Some(Outcome::Answered))).await,
        ["c0", "c3"]
    );
    assert_eq!(
        got(q(|q| {
            q.outcome = Some(Outcome::Answered);
            q.number = Some("2000".into());
        }))
        .await,
        ["c0"]
    );
    assert_eq!(
        got(q(|q| q.campaign = Some("nope".into()))).await,
        Vec::<String>::new()
    );
}

async fn a_campaign_call_is_linked_to_its_attempt_and_campaign() {
    let s = store().await;
    let settings = NewCampaign {
        name: "spring".into(),
        script: "scripts/survey.rhai".into(),
        trunks: vec!["carrier".into()],
        cps: 1.0,
        max_channels: 2,
        attempts: 1,
        retry: "none".into(),
        hours: "00:00-24:00".into(),
        days: "mon-sun".into(),
        tz: "UTC".into(),
        country: "KE".into(),
        sms: None,
        sms_on: vec![],
        ends_at: None,
        priority: 0,
        columns: vec![],
    };
    let contacts: Vec<Contact> = (0..2)
        .map(|i| Contact {
            line: i + 2,
            phone: format!("+25471200000{i}"),
            tz: None,
            fields: vec![],
        })
        .collect();
    let camp = s.create_campaign(&settings, &contacts).await.unwrap();
    s.set_campaign_state(&camp, &[], CampaignState::Running)
        .await
        .unwrap();
    let claimed = s.claim_next_due(&camp, i64::MAX, 1).await.unwrap();
    let attempt = claimed[0].attempt_id.clone();
    let mut placed = record(1, "15550100", "+254712000000", Outcome::Busy, 1);
    placed.direction = "outbound";
    placed.attempt = Some(attempt.clone());
    // An attempt id no campaign knows keeps the id and links no campaign.
    let mut stray = record(2, "15550100", "+254712000001", Outcome::Busy, 2);
    stray.attempt = Some("gone".into());
    s.insert_cdrs(&[placed]).await.unwrap();
    s.insert_cdrs(&[stray]).await.unwrap();
    s.insert_cdrs(&[record(3, "1", "2", Outcome::Busy, 3)])
        .await
        .unwrap();
    let p = s
        .query_cdrs(&CdrQuery {
            campaign: Some(camp.clone()),
            ..CdrQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&p), ["c1"]);
    assert_eq!(p.rows[0].campaign.as_deref(), Some(camp.as_str()));
    assert_eq!(p.rows[0].attempt.as_deref(), Some(attempt.as_str()));
    let all = s.query_cdrs(&CdrQuery::default()).await.unwrap();
    assert_eq!(all.rows[1].attempt.as_deref(), Some("gone"));
    assert_eq!(all.rows[1].campaign, None);
}

async fn limits_and_cursors_out_of_range_are_refused() {
    let s = store().await;
    for limit in [0, MAX_LIMIT_PLUS_ONE] {
        let e = s
            .query_cdrs(&CdrQuery {
                limit: Some(limit),
                ..CdrQuery::default()
            })
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("limit"), "{e}");
    }
    assert!("x1".parse::<CdrCursor>().is_err());
    assert!("-1".parse::<CdrCursor>().is_err());
    assert_eq!("7".parse::<CdrCursor>().unwrap().to_string(), "7");
}

const MAX_LIMIT_PLUS_ONE: u32 = super::MAX_LIMIT + 1;

#[test]
fn the_number_of_a_party_is_its_uri_user_part() {
    use super::user_part;
    for (party, want) in [
        ("+254700000001", "+254700000001"),
        ("sip:caller@127.0.0.1:5070", "caller"),
        ("SIPS:1001;isup-oli=0@host", "1001"),
        ("tel:+15550100", "+15550100"),
        ("sip:host.example.org", "sip:host.example.org"),
        ("urn:service:sos", "urn:service:sos"),
        ("", ""),
    ] {
        assert_eq!(user_part(party), want, "{party}");
    }
}

on_both!(
    a_record_comes_back_field_for_field,
    a_bad_start_time_stores_no_leg_of_the_call,
    paging_walks_every_row_once_even_while_rows_are_written,
    a_full_last_page_gives_no_next_cursor,
    each_filter_narrows_and_they_combine,
    a_campaign_call_is_linked_to_its_attempt_and_campaign,
    limits_and_cursors_out_of_range_are_refused,
);
