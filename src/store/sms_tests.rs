use super::*;
use crate::store::backends_test::{fresh, fresh_url, on_both};
use crate::store::Store;
use std::path::Path;

async fn store() -> Store {
    fresh().await
}

fn msg(id: &str, parts: usize) -> NewMessage {
    NewMessage {
        id: id.into(),
        source: "rivr".into(),
        destination: "15550001".into(),
        body: "hello".into(),
        parts: (0..parts)
            .map(|i| NewPart {
                esm_class: 0x40,
                data_coding: 0,
                payload: false,
                short_message: vec![i as u8],
            })
            .collect(),
        sending: Default::default(),
    }
}

fn receipt(id: &str, stat: ReceiptStat) -> Receipt {
    Receipt {
        smsc_id: id.into(),
        stat,
        stat_text: "X".into(),
        err: "000".into(),
        submit_date: String::new(),
        done_date: String::new(),
    }
}

async fn a_message_moves_from_queued_to_delivered_part_by_part() {
    let s = store().await;
    s.insert_message(&msg("a", 3)).await.unwrap();
    assert_eq!(
        s.message_state("a").await.unwrap(),
        Some(MessageState::Queued)
    );
    let unsent = s.unsent_parts().await.unwrap();
    assert_eq!(
        unsent
            .iter()
            .map(|p| p.idempotency_key.as_str())
            .collect::<Vec<_>>(),
        ["a.1", "a.2", "a.3"]
    );
    s.mark_accepted("a", 1, "100").await.unwrap();
    assert_eq!(
        s.message_state("a").await.unwrap(),
        Some(MessageState::Queued)
    );
    s.mark_accepted("a", 2, "101").await.unwrap();
    s.mark_accepted("a", 3, "102").await.unwrap();
    assert_eq!(
        s.message_state("a").await.unwrap(),
        Some(MessageState::Submitted)
    );
    assert!(s.unsent_parts().await.unwrap().is_empty());
    for id in ["100", "101"] {
        assert_eq!(
            s.apply_receipt(&receipt(id, ReceiptStat::Delivered))
                .await
                .unwrap()
                .as_deref(),
            Some("a")
        );
    }
    assert_eq!(
        s.message_state("a").await.unwrap(),
        Some(MessageState::Submitted)
    );
    s.apply_receipt(&receipt("102", ReceiptStat::Delivered))
        .await
        .unwrap();
    assert_eq!(
        s.message_state("a").await.unwrap(),
        Some(MessageState::Delivered)
    );
    assert_eq!(s.message_state("zzz").await.unwrap(), None);
}

async fn receipts_before_the_response_and_hex_decimal_ids_match() {
    let s = store().await;
    s.insert_message(&msg("b", 2)).await.unwrap();
    // Receipt (decimal) before the submit_sm_resp (hex) of part 1.
    assert_eq!(
        s.apply_receipt(&receipt("1715004", ReceiptStat::Delivered))
            .await
            .unwrap(),
        None
    );
    s.mark_accepted("b", 1, "1A2B3C").await.unwrap();
    s.mark_accepted("b", 2, "1A2B3D").await.unwrap();
    assert_eq!(
        s.part_states("b").await.unwrap(),
        [MessageState::Delivered, MessageState::Submitted]
    );
    assert_eq!(
        s.apply_receipt(&receipt("1715005", ReceiptStat::Expired))
            .await
            .unwrap()
            .as_deref(),
        Some("b")
    );
    assert_eq!(
        s.message_state("b").await.unwrap(),
        Some(MessageState::Expired)
    );
}

async fn failures_and_receipt_timeouts_are_final() {
    let s = store().await;
    s.insert_message(&msg("c", 2)).await.unwrap();
    s.mark_accepted("c", 1, "7").await.unwrap();
    s.mark_rejected("c", 2, "ESME_RINVDSTADR").await.unwrap();
    assert_eq!(
        s.message_state("c").await.unwrap(),
        Some(MessageState::Failed)
    );

    s.insert_message(&msg("d", 1)).await.unwrap();
    s.mark_accepted("d", 1, "8").await.unwrap();
    assert!(s.expire_receipts(0).await.unwrap().is_empty());
    // c's first part was accepted and never got a receipt either.
    let mut changed = s.expire_receipts(i64::MAX).await.unwrap();
    changed.sort();
    assert_eq!(changed, ["c", "d"]);
    assert_eq!(
        s.message_state("d").await.unwrap(),
        Some(MessageState::Unknown)
    );
    // A receipt that never found its part is dropped by the sweep.
    s.apply_receipt(&receipt("404", ReceiptStat::Delivered))
        .await
        .unwrap();
    s.expire_receipts(i64::MAX).await.unwrap();
    s.insert_message(&msg("f", 1)).await.unwrap();
    s.mark_accepted("f", 1, "404").await.unwrap();
    assert_eq!(
        s.message_state("f").await.unwrap(),
        Some(MessageState::Submitted)
    );
    // An ENROUTE receipt changes nothing.
    assert_eq!(
        s.apply_receipt(&receipt("8", ReceiptStat::Pending))
            .await
            .unwrap(),
        None
    );
}

async fn a_file_store_survives_reopening() {
    let db = fresh_url();
    let url = db.url.clone();
    {
        let s = Store::open(&url, Path::new("/")).await.unwrap();
        s.insert_message(&msg("e", 1)).await.unwrap();
        s.insert_inbound("155", "rivr", "hi there").await.unwrap();
    }
    let s = Store::open(&url, Path::new("/")).await.unwrap();
    assert_eq!(s.unsent_parts().await.unwrap().len(), 1);
    let inbound = s.inbound_since(0).await.unwrap();
    assert_eq!(inbound.len(), 1);
    assert_eq!(inbound[0].body, "hi there");
}

async fn concatenated_inbound_sms_is_joined_once_complete() {
    let s = store().await;
    assert_eq!(
        s.insert_inbound_part("155", "rivr", 7, 3, 3, "c")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.insert_inbound_part("155", "rivr", 7, 3, 1, "a")
            .await
            .unwrap(),
        None
    );
    // A repeated part (the SMSC re-delivered it) changes nothing.
    assert_eq!(
        s.insert_inbound_part("155", "rivr", 7, 3, 1, "a")
            .await
            .unwrap(),
        None
    );
    // Another sender's text with the same reference stays apart.
    assert_eq!(
        s.insert_inbound_part("166", "rivr", 7, 3, 2, "x")
            .await
            .unwrap(),
        None
    );
    let id = s
        .insert_inbound_part("155", "rivr", 7, 3, 2, "b")
        .await
        .unwrap()
        .unwrap();
    let all = s.inbound_since(0).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].id.as_str(), all[0].body.as_str()),
        (id.as_str(), "abc")
    );
}

#[test]
fn message_state_follows_its_parts() {
    use MessageState::*;
    assert_eq!(MessageState::of_parts(&[Delivered, Failed]), Failed);
    assert_eq!(
        MessageState::of_parts(&[Delivered, Expired, Unknown]),
        Expired
    );
    assert_eq!(MessageState::of_parts(&[Delivered, Submitted]), Submitted);
    assert_eq!(MessageState::of_parts(&[Queued, Submitted]), Queued);
    assert_eq!(MessageState::of_parts(&[Delivered, Delivered]), Delivered);
    for s in [Queued, Submitted, Delivered, Failed, Expired, Unknown] {
        assert_eq!(MessageState::parse(s.as_str()), Some(s));
    }
}

async fn parts_being_sent_at_a_stop_end_unknown_and_are_not_sent_again() {
    let s = store().await;
    s.insert_message(&msg("a", 2)).await.unwrap();
    s.insert_message(&msg("b", 1)).await.unwrap();
    s.insert_message(&msg("c", 1)).await.unwrap();
    // a.1 was answered; a.2 and b.1 left, unanswered, as the process died;
    // c.1 was never written.
    s.mark_sending(&[("a", 1), ("a", 2), ("b", 1)])
        .await
        .unwrap();
    s.mark_accepted("a", 1, "100").await.unwrap();
    // A second mark (the part sent again after a reconnect) changes nothing.
    s.mark_sending(&[("b", 1)]).await.unwrap();
    // c.1's request never left (no connection): its mark is taken back.
    s.mark_sending(&[("c", 1)]).await.unwrap();
    s.clear_sending("c", 1).await.unwrap();

    let mut ended = s.end_interrupted_sends().await.unwrap();
    ended.sort();
    assert_eq!(ended, ["a", "b"]);
    assert_eq!(
        s.part_states("a").await.unwrap(),
        [MessageState::Submitted, MessageState::Unknown]
    );
    assert_eq!(
        s.message_state("a").await.unwrap(),
        Some(MessageState::Unknown)
    );
    assert_eq!(
        s.message_state("b").await.unwrap(),
        Some(MessageState::Unknown)
    );
    let unsent = s.unsent_parts().await.unwrap();
    assert_eq!(
        unsent
            .iter()
            .map(|p| p.idempotency_key.as_str())
            .collect::<Vec<_>>(),
        ["c.1"]
    );
    // A second start finds nothing more to end.
    assert!(s.end_interrupted_sends().await.unwrap().is_empty());
}

/// What another node stored is read by the sender until a route takes
/// it; a part taken, or being written, is not read again.
async fn unclaimed_parts_are_those_no_route_took() {
    let s = store().await;
    s.insert_message(&msg("a", 2)).await.unwrap();
    s.insert_message(&msg("b", 1)).await.unwrap();
    let keys = |ps: Vec<StoredPart>| -> Vec<String> {
        ps.into_iter().map(|p| p.idempotency_key).collect()
    };
    assert_eq!(
        keys(s.unclaimed_parts().await.unwrap()),
        ["a.1", "a.2", "b.1"]
    );
    let claimed = s
        .claim_parts(&[("a", 1, None), ("a", 2, None)], "smpp")
        .await
        .unwrap();
    assert_eq!(claimed, [true, true]);
    // Found twice (its own hand-over and a read): taken once.
    assert_eq!(
        s.claim_parts(&[("a", 1, None)], "smpp").await.unwrap(),
        [false]
    );
    assert_eq!(keys(s.unclaimed_parts().await.unwrap()), ["b.1"]);
    s.mark_sending(&[("b", 1)]).await.unwrap();
    assert!(s.unclaimed_parts().await.unwrap().is_empty());
    // A restart's view still has all three.
    assert_eq!(s.unsent_parts().await.unwrap().len(), 3);
}

/// One process of those sharing a PostgreSQL store sends SMS; the next
/// one may once the first is gone. SQLite: always this process.
async fn one_process_sends_sms() {
    let db = fresh_url();
    let (a, b) = (db.open().await, db.open().await);
    let held = a.try_sms_owner().await.unwrap();
    assert!(held.is_some());
    let second = b.try_sms_owner().await.unwrap();
    if crate::store::backends_test::backend() == crate::store::Backend::Sqlite {
        assert!(second.is_some());
        return;
    }
    assert!(second.is_none(), "two processes send SMS");
    drop(held);
    let t = std::time::Instant::now();
    while b.try_sms_owner().await.unwrap().is_none() {
        assert!(t.elapsed().as_secs() < 5, "the lock outlived its holder");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

on_both!(
    unclaimed_parts_are_those_no_route_took,
    one_process_sends_sms,
    a_message_moves_from_queued_to_delivered_part_by_part,
    receipts_before_the_response_and_hex_decimal_ids_match,
    failures_and_receipt_timeouts_are_final,
    a_file_store_survives_reopening,
    concatenated_inbound_sms_is_joined_once_complete,
    parts_being_sent_at_a_stop_end_unknown_and_are_not_sent_again,
);
