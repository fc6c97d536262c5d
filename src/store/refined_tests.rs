//! The refined outcome on an attempt and a campaign's AMD setting
//! (migration 0010), on both backends.

use crate::call::outcome::Outcome as C;
use crate::campaign::contacts::Contact;
use crate::campaign::AttemptOutcome as A;
use crate::store::backends_test::{fresh, on_both};
use crate::store::*;

fn settings() -> NewCampaign {
    NewCampaign {
        name: "sit".into(),
        script: "scripts/survey.rhai".into(),
        trunks: vec!["carrier".into()],
        cps: 1.0,
        max_channels: 1,
        attempts: 3,
        retry: "no_answer=30m".into(),
        hours: "00:00-24:00".into(),
        days: "mon-sun".into(),
        tz: "UTC".into(),
        country: "KE".into(),
        sms: None,
        sms_on: Vec::new(),
        ends_at: None,
        priority: 0,
        columns: Vec::new(),
    }
}

async fn running(s: &Store) -> String {
    let contacts = vec![Contact {
        line: 2,
        phone: "+254712000001".into(),
        tz: None,
        fields: Vec::new(),
    }];
    let id = s.create_campaign(&settings(), &contacts).await.unwrap();
    assert!(s
        .set_campaign_state(&id, &[CampaignState::Created], CampaignState::Running)
        .await
        .unwrap());
    id
}

async fn the_refined_outcome_is_noted_before_the_finish_and_reported() {
    let s = fresh().await;
    let id = running(&s).await;
    let c = s.claim_next_due(&id, i64::MAX, 1).await.unwrap().remove(0);
    assert!(s
        .mark_dialing(&c.attempt_id, "carrier", &Dialog::default(), 100)
        .await
        .unwrap());
    assert!(s
        .note_refined_outcome(&c.attempt_id, "unreachable:sit-vc")
        .await
        .unwrap());
    let f = Finish {
        sip_status: Some(404),
        q850: Some(1),
        ..Finish::new(A::Call(C::Unreachable), Then::Final)
    };
    assert!(s.finish_attempt(&c.attempt_id, &f, 4_000).await.unwrap());
    // An ended attempt keeps what it was given.
    assert!(!s
        .note_refined_outcome(&c.attempt_id, "no_answer:announcement")
        .await
        .unwrap());
    let r = s.campaign_report(&id, 0, 10).await.unwrap();
    assert_eq!(
        (
            r[0].outcome,
            r[0].refined_outcome.as_deref(),
            r[0].sip_status
        ),
        (
            Some(A::Call(C::Unreachable)),
            Some("unreachable:sit-vc"),
            Some(404)
        )
    );
    let st = s.campaign_status(&id, 5_000).await.unwrap();
    assert_eq!(st.outcomes.get("unreachable"), Some(&1));
    assert_eq!(st.refined.get("unreachable:sit-vc"), Some(&1));
    assert_eq!(st.refined.len(), 1);
}

async fn without_early_media_the_report_shows_the_outcome() {
    let s = fresh().await;
    let id = running(&s).await;
    let c = s.claim_next_due(&id, i64::MAX, 1).await.unwrap().remove(0);
    let f = Finish::new(A::Call(C::Busy), Then::Final);
    assert!(s.finish_attempt(&c.attempt_id, &f, 4_000).await.unwrap());
    let r = s.campaign_report(&id, 0, 10).await.unwrap();
    assert_eq!(r[0].refined_outcome.as_deref(), Some("busy"));
}

async fn a_campaign_runs_amd_only_when_set() {
    let s = fresh().await;
    let id = running(&s).await;
    assert!(!s.campaign_amd(&id).await.unwrap());
    assert!(s.set_campaign_amd(&id, true).await.unwrap());
    assert!(s.campaign_amd(&id).await.unwrap());
    assert!(s.set_campaign_amd(&id, false).await.unwrap());
    assert!(!s.campaign_amd(&id).await.unwrap());
    assert!(!s.set_campaign_amd("nope", true).await.unwrap());
    assert!(!s.campaign_amd("nope").await.unwrap());
}

on_both!(
    the_refined_outcome_is_noted_before_the_finish_and_reported,
    without_early_media_the_report_shows_the_outcome,
    a_campaign_runs_amd_only_when_set,
);
