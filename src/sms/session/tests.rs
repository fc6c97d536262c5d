//! Session tests against the simulator core on a virtual clock.

use super::*;
use crate::sms::pdu::{tag, Tlv};
use crate::sms::sim::{ConnId, SimConfig, SimOutput, Smsc};

struct Net {
    now: Instant,
    start: Instant,
    s: Session,
    smsc: Smsc,
    conn: Option<ConnId>,
    next_conn: ConnId,
    events: Vec<Event>,
    /// Every key `take_sent_parts` named, in order.
    sent_log: Vec<PartKey>,
    sent: Vec<PartKey>,
    connects_at: Vec<Duration>,
    buf: Vec<u8>,
}

impl Net {
    fn new(cfg: SessionConfig, sim: SimConfig) -> Net {
        let now = Instant::now();
        Net {
            now,
            start: now,
            s: Session::new(cfg, now),
            smsc: Smsc::new(sim),
            conn: None,
            next_conn: 1,
            events: Vec::new(),
            sent_log: Vec::new(),
            sent: Vec::new(),
            connects_at: Vec::new(),
            buf: Vec::new(),
        }
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Delivers everything in flight at the current instant.
    fn settle(&mut self) {
        loop {
            let mut busy = false;
            self.s.take_transmit(&mut self.buf);
            self.s.take_sent_parts(&mut self.sent);
            // The parts named are exactly the submit_sm in these bytes.
            assert_eq!(submit_keys(&self.buf), self.sent, "take_sent_parts");
            self.sent_log.append(&mut self.sent);
            if !self.buf.is_empty() {
                busy = true;
                if let Some(c) = self.conn {
                    self.smsc.handle_bytes(c, &self.buf, self.now);
                }
            }
            while let Some(a) = self.s.poll_action() {
                busy = true;
                match a {
                    Action::Connect => {
                        let c = self.next_conn;
                        self.next_conn += 1;
                        self.conn = Some(c);
                        self.connects_at.push(self.elapsed());
                        self.smsc.handle_connect(c);
                        self.s.handle_connected(self.now);
                    }
                    Action::Close => {
                        if let Some(c) = self.conn.take() {
                            self.smsc.handle_close(c);
                        }
                    }
                }
            }
            while let Some(o) = self.smsc.poll_output() {
                busy = true;
                match o {
                    SimOutput::Send { conn, bytes } if Some(conn) == self.conn => {
                        self.s.handle_bytes(&bytes, self.now)
                    }
                    SimOutput::Close { conn } if Some(conn) == self.conn => {
                        self.conn = None;
                        self.s.handle_disconnected(self.now);
                    }
                    _ => {}
                }
            }
            while let Some(e) = self.s.poll_event() {
                busy = true;
                if let Event::Deliver { sequence, .. } = &e {
                    self.s.ack_deliver(*sequence, CommandStatus::OK);
                }
                self.events.push(e);
            }
            if !busy {
                return;
            }
        }
    }

    /// Steps the clock to each wake-up until `done` or `limit` of virtual time.
    fn run(&mut self, limit: Duration, mut done: impl FnMut(&Net) -> bool) {
        for _ in 0..5_000_000 {
            self.settle();
            if done(self) {
                return;
            }
            let next = [self.s.poll_timeout(), self.smsc.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else { return };
            if next - self.start > limit {
                return;
            }
            self.now = self.now.max(next);
            self.s.handle_timeout(self.now);
            self.smsc.handle_timeout(self.now);
        }
        panic!("simulation does not make progress");
    }

    fn accepted_keys(&self) -> Vec<String> {
        self.smsc
            .accepted()
            .iter()
            .filter_map(|m| m.key.clone())
            .collect()
    }
}

/// The parts (by their idempotency key TLV) of the submit_sm in `bytes`.
fn submit_keys(mut bytes: &[u8]) -> Vec<PartKey> {
    let mut keys = Vec::new();
    while let Ok(Some(n)) = crate::sms::pdu::frame_len(bytes) {
        let (frame, rest) = bytes.split_at(n);
        if let Ok(Pdu {
            body: Body::SubmitSm(sm),
            ..
        }) = Pdu::decode(frame)
        {
            let key = sm.tlv(tag::RIVR_IDEMPOTENCY_KEY).unwrap_or_default();
            keys.push(PartKey {
                message_id: String::from_utf8_lossy(key).into_owned(),
                part: 1,
            });
        }
        bytes = rest;
    }
    keys
}

fn sub(i: usize) -> Submission {
    let key = format!("m{i:04}");
    Submission {
        key: PartKey {
            message_id: key.clone(),
            part: 1,
        },
        sm: ShortMessage {
            destination_addr: "15550001".into(),
            registered_delivery: 1,
            short_message: format!("message {i}").into_bytes(),
            tlvs: vec![Tlv {
                tag: tag::RIVR_IDEMPOTENCY_KEY,
                value: key.into_bytes(),
            }],
            ..ShortMessage::default()
        },
    }
}

fn cfg(window: usize) -> SessionConfig {
    let mut c = SessionConfig {
        window,
        ..SessionConfig::default()
    };
    c.bind.system_id = "rivrsim".into();
    c
}

fn submit_all(n: &mut Net, count: usize) {
    n.run(Duration::from_secs(5), |n| n.s.is_bound());
    assert!(n.s.is_bound());
    for i in 0..count {
        n.s.submit(sub(i), n.now);
    }
}

fn accepted_events(n: &Net) -> usize {
    n.events
        .iter()
        .filter(|e| matches!(e, Event::Accepted { .. }))
        .count()
}

#[test]
fn binds_and_submits_in_order() {
    let mut n = Net::new(cfg(10), SimConfig::default());
    submit_all(&mut n, 25);
    n.run(Duration::from_secs(10), |n| n.s.pending() == 0);
    let want: Vec<String> = (0..25).map(|i| format!("m{i:04}")).collect();
    assert_eq!(n.accepted_keys(), want);
    assert!(matches!(n.events[0], Event::Bound { ref system_id } if system_id == "rivrsim"));
    assert_eq!(accepted_events(&n), 25);
}

#[test]
fn a_part_handed_over_twice_is_sent_once() {
    let sim = SimConfig {
        ack_latency: Duration::from_millis(100),
        ..SimConfig::default()
    };
    let mut n = Net::new(cfg(10), sim);
    submit_all(&mut n, 3);
    assert!(!n.s.submit(sub(1), n.now), "already outstanding");
    n.run(Duration::from_secs(5), |n| n.s.pending() == 0);
    assert_eq!(n.accepted_keys(), ["m0000", "m0001", "m0002"]);
}

#[test]
fn window_10_with_500ms_latency_gives_20_per_second() {
    let sim = SimConfig {
        ack_latency: Duration::from_millis(500),
        ..SimConfig::default()
    };
    let mut n = Net::new(cfg(10), sim);
    submit_all(&mut n, 200);
    let t0 = n.elapsed();
    n.run(Duration::from_secs(60), |n| n.s.pending() == 0);
    let secs = (n.elapsed() - t0).as_secs_f64();
    let rate = 200.0 / secs;
    println!(
        "window 10, 500 ms latency: {rate:.1} msg/s, max outstanding {}",
        n.smsc.stats().max_outstanding
    );
    assert_eq!(n.smsc.stats().max_outstanding, 10);
    assert_eq!(n.s.stats().max_outstanding, 10);
    assert!((19.0..=20.5).contains(&rate), "{rate}");
}

#[test]
fn tps_throttle_spaces_submits() {
    let mut c = cfg(50);
    c.tps = 20.0;
    let mut n = Net::new(c, SimConfig::default());
    submit_all(&mut n, 100);
    let t0 = n.elapsed();
    n.run(Duration::from_secs(60), |n| n.s.pending() == 0);
    let secs = (n.elapsed() - t0).as_secs_f64();
    // 100 messages at 20/s: the first goes at once, the last after 99 gaps.
    assert!((4.9..=5.0).contains(&secs), "{secs}");
}

#[test]
fn throttled_messages_are_retried_in_order_and_never_twice() {
    for window in [1usize, 10] {
        let sim = SimConfig {
            throttle_pct: 10,
            queue_full_pct: 3,
            ack_latency: Duration::from_millis(20),
            ..SimConfig::default()
        };
        let mut n = Net::new(cfg(window), sim);
        submit_all(&mut n, 300);
        n.run(Duration::from_secs(600), |n| n.s.pending() == 0);
        let keys = n.accepted_keys();
        let st = n.smsc.stats();
        assert!(st.throttled > 15 && st.queue_full > 3, "{st:?}");
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 300, "every message accepted exactly once");
        assert_eq!(keys.len(), 300);
        // A pushed-back part goes before everything not yet sent, so it can
        // only be overtaken by the parts already in the window with it.
        for (pos, k) in keys.iter().enumerate() {
            let idx: usize = k[1..].parse().unwrap();
            assert!(
                idx.abs_diff(pos) < window.max(2),
                "window {window}: {k} at {pos}"
            );
        }
        if window == 1 {
            assert_eq!(
                keys,
                (0..300).map(|i| format!("m{i:04}")).collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn dropped_connections_lose_and_duplicate_nothing() {
    let sim = SimConfig {
        drop_every: Some(7),
        max_drops: 100,
        ack_latency: Duration::from_millis(50),
        ..SimConfig::default()
    };
    let mut c = cfg(10);
    c.reconnect_min = Duration::from_millis(50);
    c.reconnect_max = Duration::from_millis(400);
    let mut n = Net::new(c, sim);
    submit_all(&mut n, 1000);
    n.run(Duration::from_secs(3600), |n| n.s.pending() == 0);
    assert_eq!(n.smsc.stats().drops, 100);
    let mut keys = n.accepted_keys();
    assert_eq!(keys.len(), 1000);
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 1000, "no duplicates");
    assert_eq!(accepted_events(&n), 1000);
    // Parts unanswered at a drop went out again, and were named again.
    assert!(n.sent_log.len() > 1000, "{}", n.sent_log.len());
}

#[test]
fn bind_errors_are_named_and_reconnects_back_off_with_jitter() {
    let sim = SimConfig {
        password: "right".into(),
        ..SimConfig::default()
    };
    let mut c = cfg(1);
    c.bind.password = "wrong".into();
    c.reconnect_min = Duration::from_millis(100);
    c.reconnect_max = Duration::from_secs(5);
    let mut n = Net::new(c, sim);
    n.run(Duration::from_secs(30), |n| n.connects_at.len() >= 9);
    let fail = n.events.iter().find_map(|e| match e {
        Event::BindFailed { status } => Some(*status),
        _ => None,
    });
    assert_eq!(fail.and_then(|s| s.name()), Some("ESME_RINVPASWD"));
    let gaps: Vec<f64> = n
        .connects_at
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    for (i, g) in gaps.iter().enumerate() {
        let base = (0.1 * f64::from(1u32 << i)).min(5.0);
        assert!(*g >= base / 2.0 && *g <= base, "gap {i} = {g}, base {base}");
    }
    let distinct: std::collections::BTreeSet<u64> =
        gaps.iter().map(|g| (g * 1e6) as u64 % 1000).collect();
    assert!(distinct.len() > 3, "jittered: {gaps:?}");
}

#[test]
fn missing_enquire_link_resp_rebinds() {
    let sim = SimConfig {
        mute_enquire_link: true,
        ..SimConfig::default()
    };
    let mut c = cfg(1);
    c.enquire_link_interval = Duration::from_secs(5);
    c.response_timeout = Duration::from_secs(2);
    let mut n = Net::new(c, sim);
    n.run(Duration::from_secs(20), |n| n.smsc.stats().binds >= 2);
    assert!(n.smsc.stats().binds >= 2);
    let lost = n.events.iter().position(|e| *e == Event::LinkLost).unwrap();
    assert!(n.connects_at[1] >= Duration::from_secs(7));
    assert!(matches!(n.events[lost + 1], Event::Bound { .. }));
}

#[test]
fn unbind_waits_for_outstanding_then_closes_even_without_answer() {
    let sim = SimConfig {
        ack_latency: Duration::from_millis(300),
        ..SimConfig::default()
    };
    let mut n = Net::new(cfg(5), sim);
    submit_all(&mut n, 3);
    n.settle();
    n.s.unbind(n.now);
    n.run(Duration::from_secs(10), |n| {
        n.events.contains(&Event::Unbound)
    });
    assert_eq!(accepted_events(&n), 3, "outstanding parts answered first");
    assert!(n.events.contains(&Event::Unbound));
    assert_eq!(n.s.poll_timeout(), None);

    // A peer that never answers unbind: closed after unbind_timeout.
    let mut s = Session::new(cfg(1), n.now);
    let t = n.now;
    s.handle_timeout(t);
    assert_eq!(s.poll_action(), Some(Action::Connect));
    s.handle_connected(t);
    let mut out = Vec::new();
    s.take_transmit(&mut out);
    let mut resp = Vec::new();
    Pdu::new(1, Body::BindResp(BindMode::Transceiver, "x".into()))
        .encode(&mut resp)
        .unwrap();
    s.handle_bytes(&resp, t);
    assert!(s.is_bound());
    s.unbind(t);
    s.take_transmit(&mut out);
    assert_eq!(Pdu::decode(&out).unwrap().body, Body::Unbind);
    s.handle_timeout(t + Duration::from_secs(1));
    assert_eq!(s.poll_action(), None);
    s.handle_timeout(t + Duration::from_secs(2));
    assert_eq!(s.poll_action(), Some(Action::Close));
}

#[test]
fn peer_requests_get_answers_and_garbage_rebuilds_the_link() {
    let mut n = Net::new(cfg(1), SimConfig::default());
    n.run(Duration::from_secs(1), |n| n.s.is_bound());
    let t = n.now;
    let mut b = Vec::new();
    Pdu::new(77, Body::EnquireLink).encode(&mut b).unwrap();
    Pdu::new(78, Body::Other { command_id: 0x103 })
        .encode(&mut b)
        .unwrap();
    n.s.handle_bytes(&b, t);
    let mut out = Vec::new();
    n.s.take_transmit(&mut out);
    let first = pdu::frame_len(&out).unwrap().unwrap();
    assert_eq!(
        Pdu::decode(&out[..first]).unwrap(),
        Pdu::new(77, Body::EnquireLinkResp)
    );
    let nack = Pdu::decode(&out[first..]).unwrap();
    assert_eq!(
        (nack.sequence, nack.body, nack.status),
        (78, Body::GenericNack, CommandStatus::RINVCMDID)
    );

    n.s.handle_bytes(&[0, 0, 0, 3, 1, 2, 3], t);
    assert_eq!(n.s.poll_action(), Some(Action::Close));
    assert_eq!(n.s.stats().malformed, 1);
    assert!(!n.s.is_bound());
}

#[test]
fn receipts_may_arrive_before_the_response() {
    let sim = SimConfig {
        receipt_before_resp: true,
        ack_latency: Duration::from_millis(100),
        ..SimConfig::default()
    };
    let mut n = Net::new(cfg(1), sim);
    submit_all(&mut n, 1);
    n.run(Duration::from_secs(5), |n| n.s.pending() == 0);
    let deliver = n
        .events
        .iter()
        .position(|e| matches!(e, Event::Deliver { .. }));
    let accepted = n
        .events
        .iter()
        .position(|e| matches!(e, Event::Accepted { .. }));
    assert!(deliver.unwrap() < accepted.unwrap());
    assert_eq!(n.smsc.stats().receipts_acked, 1);
}

fn bound_session() -> (Session, Instant) {
    let t = Instant::now();
    let mut s = Session::new(cfg(10), t);
    s.handle_timeout(t);
    assert_eq!(s.poll_action(), Some(Action::Connect));
    s.handle_connected(t);
    let mut b = Vec::new();
    Pdu::new(1, Body::BindResp(BindMode::Transceiver, "x".into()))
        .encode(&mut b)
        .unwrap();
    s.handle_bytes(&b, t);
    assert!(s.is_bound());
    (s, t)
}

proptest::proptest! {
    #[test]
    fn hostile_bytes_never_panic_a_bound_session(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), cut in 0usize..400) {
        let (mut s, t) = bound_session();
        s.submit(sub(1), t);
        let cut = cut.min(bytes.len());
        s.handle_bytes(&bytes[..cut], t);
        s.handle_bytes(&bytes[cut..], t);
        s.handle_timeout(t + Duration::from_secs(60));
        while s.poll_event().is_some() {}
        while s.poll_action().is_some() {}
    }

    #[test]
    fn byte_by_byte_delivery_gives_the_same_events(split in 1usize..40) {
        let mut stream = Vec::new();
        Pdu::new(5, Body::EnquireLink).encode(&mut stream).unwrap();
        Pdu::new(6, Body::DeliverSm(ShortMessage { esm_class: 4, short_message: b"id:1 stat:DELIVRD".to_vec(), ..ShortMessage::default() })).encode(&mut stream).unwrap();
        Pdu::new(2, Body::SubmitSmResp { message_id: "abc".into() }).encode(&mut stream).unwrap();
        let run = |chunk: usize| {
            let (mut s, t) = bound_session();
            s.submit(sub(1), t);
            let mut out = Vec::new();
            s.take_transmit(&mut out);
            for c in stream.chunks(chunk) { s.handle_bytes(c, t); }
            let mut ev = Vec::new();
            while let Some(e) = s.poll_event() { ev.push(e); }
            s.take_transmit(&mut out);
            (ev, out)
        };
        proptest::prop_assert_eq!(run(split), run(stream.len()));
    }
}

#[test]
fn generic_nack_rejects_the_part_and_peer_unbind_reconnects() {
    let (mut s, t) = bound_session();
    let mut out = Vec::new();
    s.take_transmit(&mut out); // the bind
    s.submit(sub(1), t);
    s.take_transmit(&mut out);
    let sent = Pdu::decode(&out).unwrap();
    let mut nack = Pdu::new(sent.sequence, Body::GenericNack);
    nack.status = CommandStatus::RINVCMDLEN;
    let mut b = Vec::new();
    nack.encode(&mut b).unwrap();
    s.handle_bytes(&b, t);
    let ev: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(ev.iter().any(
        |e| matches!(e, Event::Rejected { status, .. } if *status == CommandStatus::RINVCMDLEN)
    ));
    assert_eq!(s.pending(), 0);

    b.clear();
    Pdu::new(900, Body::Unbind).encode(&mut b).unwrap();
    s.handle_bytes(&b, t);
    s.take_transmit(&mut out);
    assert_eq!(Pdu::decode(&out).unwrap(), Pdu::new(900, Body::UnbindResp));
    assert_eq!(s.poll_action(), Some(Action::Close));
    assert!(std::iter::from_fn(|| s.poll_event()).any(|e| e == Event::LinkLost));
    let at = s.poll_timeout().unwrap();
    s.handle_timeout(at);
    assert_eq!(
        s.poll_action(),
        Some(Action::Connect),
        "rebinds after the peer's unbind"
    );
}

#[test]
fn spurious_timeouts_change_nothing() {
    let (mut s, t) = bound_session();
    let mut out = Vec::new();
    s.take_transmit(&mut out);
    while s.poll_event().is_some() {}
    let before = s.poll_timeout();
    for ms in [0u64, 1, 999] {
        s.handle_timeout(t + Duration::from_millis(ms));
    }
    assert_eq!(s.poll_action(), None);
    assert_eq!(s.poll_event(), None);
    s.take_transmit(&mut out);
    assert!(out.is_empty());
    assert_eq!(s.poll_timeout(), before);
    assert!(s.is_bound());
}
