//! Issue 9 §1 against a real `rivr serve`: input that used to end the
//! process must not.
//!
//! - The INVITE whose `Call-ID: abc\x00def` killed rivr (its script thread
//!   was named after the Call-ID) gets a 400 naming the header, and a normal
//!   call placed afterwards is answered.
//! - A seeded mutation run: valid INVITEs to 1000 with one control byte
//!   (0x00–0x1F, 0x7F) inserted into a header value or an SDP value, paced
//!   over UDP. Every one with a control byte other than HTAB/LF in a header
//!   gets a 400 naming the header (or, for a bare CR in a header the 400
//!   must copy, is dropped); every one with such a byte in the SDP gets a
//!   400 from the offer check. HTAB is legal whitespace and a bare LF is a
//!   line end to rivr: those messages may become calls, which are
//!   acknowledged and hung up. Afterwards rivr is alive and answers OPTIONS.
//!
//! `RIVR_MUTATION_COUNT` (default 2000), `RIVR_MUTATION_RATE` (messages/s,
//! default 200) and `RIVR_MUTATION_SEED` (default 9) size the run; with
//! `RIVR_BIN` pointing at a release build it takes 20,000 at 1,000/s.
//! Figures are printed; run with `--nocapture` to see them.

mod common;

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::raw_sip::{ack_and_bye, cseq_number, first_line, header, options_ok, status, Peer};
use common::server::{Rivr, RivrConfig};
use rand::{Rng, SeedableRng};

fn no_panic_logged(rivr: &Rivr) {
    let log = rivr.stderr();
    let panics: Vec<&str> = log.lines().filter(|l| l.contains("panic")).collect();
    assert!(
        panics.is_empty(),
        "rivr logged panics:\n{}",
        panics.join("\n")
    );
}

#[test]
fn nul_call_id_is_400_and_the_next_call_is_answered() {
    let mut rivr = Rivr::start("nul-call-id", RivrConfig::default());
    let peer = Peer::new(&rivr);
    let offer = peer.offer();

    let bad = peer.invite("abc\0def", "z9hG4bK-nul", 1, &offer);
    peer.send(bad.as_bytes());
    let resp = peer
        .final_response(b"abc\0def", Duration::from_secs(20))
        .expect("a response to the NUL Call-ID INVITE");
    assert_eq!(
        first_line(&resp),
        "SIP/2.0 400 Bad Request (control character in the Call-ID header)"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(rivr.is_running(), "rivr exited after the NUL Call-ID");

    let good = peer.invite("after-nul@test", "z9hG4bK-good", 2, &offer);
    peer.send(good.as_bytes());
    let ok = peer
        .final_response(b"after-nul@test", Duration::from_secs(60))
        .expect("a final response to the normal call");
    assert_eq!(status(&ok), Some(200), "{}", first_line(&ok));
    assert!(
        ok.windows(8).any(|w| w == b"m=audio "),
        "200 without an SDP answer"
    );
    assert!(ack_and_bye(&peer, &ok, "good"), "the BYE got no 200");
    let cdr = rivr.wait_cdr("after-nul@test", Duration::from_secs(30));
    assert_eq!(cdr["end"], "remote-bye", "{cdr}");
    assert_eq!(cdr["answered"], true, "{cdr}");
    assert!(
        rivr.cdrs()
            .iter()
            .all(|c| c["transport_id"] != "abc\u{0}def"),
        "the NUL Call-ID became a call: {:?}",
        rivr.cdrs()
    );
    assert!(options_ok(&peer, "nul"), "no 200 to OPTIONS");
    assert!(rivr.is_running());
    no_panic_logged(&rivr);
    println!(
        "NUL Call-ID: {}; the next call answered and hung up",
        first_line(&resp)
    );
}

/// Where one control byte went, and what rivr must answer.
#[derive(Debug, Clone)]
enum Mutation {
    Header { name: &'static str, byte: u8 },
    Sdp { line: usize, byte: u8 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// A stateless 400 with this first line.
    Reject400(String),
    /// Dropped: a bare CR in a field the 400 would have to copy.
    Dropped,
    /// The offer check: a 400 from the INVITE transaction.
    OfferRejected,
    /// HTAB or a bare LF: a call, a 400 or a 4xx, whatever the message
    /// became; only counted.
    Whitespace,
}

const HEADERS: [&str; 10] = [
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Max-Forwards",
    "Subject",
    "Content-Type",
    "Content-Length",
];

fn expectation(m: &Mutation) -> Expect {
    match *m {
        Mutation::Header {
            byte: b'\t' | b'\n',
            ..
        }
        | Mutation::Sdp {
            byte: b'\t' | b'\n',
            ..
        } => Expect::Whitespace,
        Mutation::Header { name, byte: b'\r' } => {
            if matches!(name, "Via" | "From" | "To" | "Call-ID" | "CSeq") {
                Expect::Dropped
            } else {
                Expect::Reject400("SIP/2.0 400 Bad Request (bare CR in header section)".into())
            }
        }
        Mutation::Header { name, .. } => Expect::Reject400(format!(
            "SIP/2.0 400 Bad Request (control character in the {name} header)"
        )),
        Mutation::Sdp { .. } => Expect::OfferRejected,
    }
}

/// The INVITE `i` with one control byte inserted (seeded).
fn mutated(peer: &Peer, i: u32, rng: &mut rand::rngs::StdRng) -> (Vec<u8>, Mutation, String) {
    let call_id = format!("mut-{i}@hardening");
    let offer = peer.offer();
    let byte = match rng.gen_range(0..33u8) {
        32 => 0x7f,
        b => b,
    };
    if rng.gen_bool(0.7) {
        let name = HEADERS[rng.gen_range(0..HEADERS.len())];
        let msg = peer.invite(&call_id, &format!("z9hG4bK-mut-{i}"), i, &offer);
        let line_start = msg
            .find(&format!("\r\n{name}:"))
            .map(|p| p + 2)
            .expect("the header is in the INVITE");
        let value_start = line_start + name.len() + 1;
        let value_end = line_start + msg[line_start..].find("\r\n").unwrap_or(0);
        let at = rng.gen_range(value_start..=value_end);
        let mut bytes = msg.into_bytes();
        bytes.insert(at, byte);
        (bytes, Mutation::Header { name, byte }, call_id)
    } else {
        let lines: Vec<&str> = offer.split("\r\n").filter(|l| !l.is_empty()).collect();
        let line = rng.gen_range(0..lines.len());
        let mut mutated: Vec<Vec<u8>> = lines.iter().map(|l| l.as_bytes().to_vec()).collect();
        let at = rng.gen_range(2..=mutated[line].len());
        mutated[line].insert(at, byte);
        let mut sdp = mutated.join(&b"\r\n"[..]);
        sdp.extend_from_slice(b"\r\n");
        let sdp = String::from_utf8(sdp).expect("ASCII");
        let msg = peer.invite(&call_id, &format!("z9hG4bK-mut-{i}"), i, &sdp);
        (
            msg.into_bytes(),
            Mutation::Sdp {
                line: line + 1,
                byte,
            },
            call_id,
        )
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Sent {
    bytes: Vec<u8>,
    mutation: Mutation,
    expect: Expect,
    /// The first final response, if any.
    answer: Option<Vec<u8>>,
}

#[test]
fn control_bytes_in_header_and_sdp_values_never_end_rivr() {
    let count: u32 = env_or("RIVR_MUTATION_COUNT", 2000);
    let rate: u32 = env_or("RIVR_MUTATION_RATE", 200).max(1);
    let seed: u64 = env_or("RIVR_MUTATION_SEED", 9);
    let mut rivr = Rivr::start(
        "control-bytes",
        RivrConfig {
            rtp_ports: 400,
            // One test socket sends every INVITE: lift the per-source and
            // whole-server rates so the verdicts are the wire layer's.
            extra_tables: "[limits]\nper_source_cps = 100000\nmax_cps = 100000\n".into(),
            ..RivrConfig::default()
        },
    );
    let peer = Peer::new(&rivr);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    // Responses are read by a thread so the sender keeps its pace.
    let reader = peer.sock.try_clone().expect("clone the socket");
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_reader = stop.clone();
    let reader_thread = std::thread::spawn(move || {
        let _ = reader.set_read_timeout(Some(Duration::from_millis(100)));
        let mut buf = vec![0u8; 65_535];
        while !stop_reader.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok((n, _)) = reader.recv_from(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        }
    });

    let mut sent: Vec<Sent> = Vec::with_capacity(count as usize);
    // Responses are matched by Call-ID, or by CSeq when the Call-ID was
    // the mutated header (only one header is mutated per message).
    let mut by_call_id: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut by_cseq: HashMap<Vec<u8>, usize> = HashMap::new();
    let (mut calls_placed, mut calls_hung_up, mut unmatched, mut other_responses) =
        (0u32, 0u32, 0u32, 0u32);
    let mut pending_2xx: Vec<Vec<u8>> = Vec::new();
    let mut handle = |msg: Vec<u8>,
                      sent: &mut Vec<Sent>,
                      by_call_id: &HashMap<Vec<u8>, usize>,
                      by_cseq: &HashMap<Vec<u8>, usize>,
                      pending_2xx: &mut Vec<Vec<u8>>| {
        let Some(code) = status(&msg) else {
            other_responses += 1; // a request from rivr (a BYE after no ACK)
            return;
        };
        // Our BYEs and OPTIONS get answers too; everything else answers an
        // INVITE (whose CSeq may be the mutated header).
        let cseq = header(&msg, "CSeq").unwrap_or_default();
        let ours = [&b"BYE"[..], b"OPTIONS"].iter().any(|m| cseq.ends_with(m));
        if code < 200 || ours {
            return;
        }
        let idx = header(&msg, "Call-ID")
            .and_then(|c| by_call_id.get(&c))
            .or_else(|| header(&msg, "CSeq").and_then(|c| by_cseq.get(&c)))
            .copied();
        let Some(idx) = idx else {
            unmatched += 1;
            return;
        };
        let s = &mut sent[idx];
        if s.answer.is_none() {
            if (200..300).contains(&code) {
                pending_2xx.push(msg.clone());
            } else if header(&msg, "To").is_some_and(|t| t.windows(4).any(|w| w == b"tag=")) {
                peer.send(&peer.ack_non_2xx(&s.bytes, &msg));
            }
            s.answer = Some(msg);
        }
    };

    let started = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / f64::from(rate));
    for i in 1..=count {
        let (bytes, mutation, call_id) = mutated(&peer, i, &mut rng);
        let expect = expectation(&mutation);
        let idx = sent.len();
        let trimmed = |v: &[u8]| v.trim_ascii().to_vec();
        let original_cseq = format!("{i} INVITE");
        by_call_id.insert(trimmed(call_id.as_bytes()), idx);
        by_cseq.insert(trimmed(original_cseq.as_bytes()), idx);
        if let Mutation::Header { name, .. } = mutation {
            // the mutated value, as rivr's 400 copies it
            if let Some(v) = header(&bytes, name) {
                match name {
                    "Call-ID" => {
                        by_call_id.insert(v, idx);
                    }
                    "CSeq" => {
                        by_cseq.insert(v, idx);
                    }
                    _ => {}
                }
            }
        }
        peer.send(&bytes);
        sent.push(Sent {
            bytes,
            mutation,
            expect,
            answer: None,
        });
        while let Ok(msg) = rx.try_recv() {
            handle(msg, &mut sent, &by_call_id, &by_cseq, &mut pending_2xx);
        }
        for ok in pending_2xx.drain(..) {
            calls_placed += 1;
            let cseq = cseq_number(&ok).unwrap_or(1);
            peer.send(&peer.in_dialog("ACK", &ok, cseq, &format!("z9hG4bK-ack-{cseq}")));
            peer.send(&peer.in_dialog("BYE", &ok, cseq + 1, &format!("z9hG4bK-bye-{cseq}")));
            calls_hung_up += 1;
        }
        let due = started + gap * i;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let send_secs = started.elapsed().as_secs_f64();
    // Wait for the answers still on their way (calls answer after their
    // script starts); stop early once only the expected drops are missing.
    let settle = Instant::now() + Duration::from_secs(15);
    while Instant::now() < settle {
        let waiting = sent
            .iter()
            .filter(|s| {
                s.answer.is_none() && !matches!(s.expect, Expect::Dropped | Expect::Whitespace)
            })
            .count();
        if waiting == 0 {
            break;
        }
        if let Ok(msg) = rx.recv_timeout(Duration::from_millis(200)) {
            handle(msg, &mut sent, &by_call_id, &by_cseq, &mut pending_2xx);
        }
    }
    let quiet = Instant::now() + Duration::from_secs(2);
    while let Some(left) = quiet.checked_duration_since(Instant::now()) {
        if let Ok(msg) = rx.recv_timeout(left) {
            handle(msg, &mut sent, &by_call_id, &by_cseq, &mut pending_2xx);
        }
    }
    for ok in pending_2xx.drain(..) {
        calls_placed += 1;
        let cseq = cseq_number(&ok).unwrap_or(1);
        peer.send(&peer.in_dialog("ACK", &ok, cseq, &format!("z9hG4bK-ack-{cseq}")));
        peer.send(&peer.in_dialog("BYE", &ok, cseq + 1, &format!("z9hG4bK-bye-{cseq}")));
        calls_hung_up += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = reader_thread.join();

    // Figures.
    let mut header_400 = 0u32;
    let mut header_dropped = 0u32;
    let mut sdp_400 = 0u32;
    let mut sdp_by_line: std::collections::BTreeMap<usize, u32> = Default::default();
    let mut whitespace: HashMap<String, u32> = HashMap::new();
    let mut wrong: Vec<String> = Vec::new();
    for s in &sent {
        let got = s.answer.as_deref().map(first_line);
        match (&s.expect, &got) {
            (Expect::Reject400(line), Some(g)) if g == line => header_400 += 1,
            (Expect::Dropped, None) => header_dropped += 1,
            (Expect::OfferRejected, Some(_))
                if s.answer.as_deref().and_then(status) == Some(400) =>
            {
                sdp_400 += 1;
                if let Mutation::Sdp { line, .. } = s.mutation {
                    *sdp_by_line.entry(line).or_default() += 1;
                }
            }
            (Expect::Whitespace, _) => {
                let what = s
                    .answer
                    .as_deref()
                    .and_then(status)
                    .map_or("no answer".into(), |c| c.to_string());
                *whitespace.entry(what).or_default() += 1;
            }
            (e, g) => wrong.push(format!("{:?} expected {e:?}, got {g:?}", s.mutation)),
        }
    }
    let headers = sent
        .iter()
        .filter(|s| matches!(s.mutation, Mutation::Header { .. }))
        .count();
    println!(
        "mutation run (seed {seed}): {} INVITEs in {send_secs:.1} s ({:.0}/s), {headers} with a control byte in a header value, {} in an SDP value",
        sent.len(),
        sent.len() as f64 / send_secs,
        sent.len() - headers
    );
    println!("  header, control byte other than HTAB/LF: {header_400} answered 400 naming the header, {header_dropped} dropped (bare CR in a field the 400 copies)");
    println!("  SDP, control byte other than HTAB/LF: {sdp_400} answered 400 by the offer check (by SDP line: {sdp_by_line:?})");
    let mut ws: Vec<_> = whitespace.into_iter().collect();
    ws.sort();
    println!("  HTAB or bare LF (legal whitespace / a line end to rivr), by status: {ws:?}");
    println!("  calls placed by those and hung up: {calls_placed} ({calls_hung_up} BYEs sent); unmatched responses: {unmatched}; requests from rivr: {other_responses}");
    assert!(
        wrong.is_empty(),
        "{} unexpected verdicts, first: {:#?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );

    assert!(rivr.is_running(), "rivr exited during the mutation run");
    assert!(
        options_ok(&peer, "after"),
        "no 200 to OPTIONS after the run"
    );
    let offer = peer.offer();
    peer.send(
        peer.invite("after-run@test", "z9hG4bK-after", 1, &offer)
            .as_bytes(),
    );
    let ok = peer
        .final_response(b"after-run@test", Duration::from_secs(60))
        .expect("a final response to a normal call after the run");
    assert_eq!(status(&ok), Some(200), "{}", first_line(&ok));
    assert!(ack_and_bye(&peer, &ok, "after"), "the BYE got no 200");
    assert!(rivr.is_running());
    no_panic_logged(&rivr);
}
