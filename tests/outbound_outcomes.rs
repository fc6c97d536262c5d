//! Outbound calls that are not answered (issue 10 §3): SIPp as the carrier
//! refuses rivr's call with a final status (with or without an RFC 3326
//! `Reason`), or rings until rivr gives up and CANCELs; `rivr call`'s one
//! JSON line must carry the outcome of docs/outcomes.md, the status, the
//! Q.850 cause and the ring time, and the carrier's scenario must pass
//! (rivr ACKed the final response, answered the CANCEL flow correctly).

mod common;

use std::time::Duration;

use common::caller::SIGNALLING;
use common::carrier::Carrier;
use common::dialer::{CallSetup, Dialer, Placed};
use common::scratch::Scratch;

/// The carrier answers rivr's INVITE with `status phrase` (and a `Reason:
/// Q.850;cause=N` when `cause` is given); returns what `rivr call` printed.
fn refused(label: &str, status: u16, phrase: &str, cause: Option<u8>) -> Placed {
    let dir = Scratch::new(label);
    let mut keys = vec![("status_line", format!("SIP/2.0 {status} {phrase}"))];
    let scenario = match cause {
        Some(c) => {
            keys.push(("cause", c.to_string()));
            "uas_reject_reason.xml"
        }
        None => "uas_reject.xml",
    };
    let mut carrier = Carrier::start(dir.path(), label, scenario, 0, &keys);
    let mut call = Dialer::start(
        dir.path(),
        label,
        &CallSetup {
            trunk_port: carrier.port,
            trunk_params: "",
            trunk_extra: "",
            script: None,
            args: &[],
            number: "15550199",
        },
    );
    carrier.expect_pass(SIGNALLING);
    let placed = call.finish(SIGNALLING);
    assert_eq!(
        carrier.received("INVITE").len(),
        1,
        "one INVITE, no retry after a final {status}"
    );
    assert_eq!(
        carrier.received("ACK").len(),
        1,
        "the {status} was ACKed once"
    );
    assert_eq!(placed.json["sip_status"], status, "{}", placed.json);
    assert_eq!(placed.json["reason"], phrase, "{}", placed.json);
    assert_eq!(placed.json["talk_ms"], 0, "{}", placed.json);
    placed
}

fn expect(placed: &Placed, outcome: &str, q850: u8) {
    assert_eq!(placed.outcome(), outcome, "{}", placed.json);
    assert_eq!(placed.json["q850"], q850, "{}", placed.json);
}

#[test]
fn busy_486_and_600() {
    require_sipp!();
    expect(&refused("busy-486", 486, "Busy Here", None), "busy", 17);
    expect(
        &refused("busy-600", 600, "Busy Everywhere", None),
        "busy",
        17,
    );
}

#[test]
fn congestion_503_unreachable_404_rejected_403() {
    require_sipp!();
    expect(
        &refused("cong-503", 503, "Service Unavailable", None),
        "congestion",
        41,
    );
    expect(
        &refused("unreach-404", 404, "Not Found", None),
        "unreachable",
        1,
    );
    // No credentials configured: a 403 is the far end's refusal.
    expect(&refused("rej-403", 403, "Forbidden", None), "rejected", 21);
}

/// The `Reason` header (RFC 3326) gives the cause; a status named in
/// docs/outcomes.md still decides the outcome, and an unnamed one leaves
/// it to the cause.
#[test]
fn reason_header_q850_cause() {
    require_sipp!();
    expect(
        &refused("reason-486", 486, "Busy Here", Some(17)),
        "busy",
        17,
    );
    // 480 maps to cause 18 (RFC 3398); the header says 17 and wins the
    // cause, the status (named: no answer) keeps the outcome.
    expect(
        &refused("reason-480", 480, "Temporarily Unavailable", Some(17)),
        "no_answer",
        17,
    );
    // 488 is not named in the table: the cause decides.
    expect(
        &refused("reason-488", 488, "Not Acceptable Here", Some(17)),
        "busy",
        17,
    );
}

/// The carrier rings and never answers; `--ring-timeout 2`: rivr CANCELs
/// after 2 s, the carrier answers the CANCEL 200 and the INVITE 487, rivr
/// ACKs the 487, and the outcome is `no_answer` with ring_ms ≈ 2000.
#[test]
fn ring_no_answer_is_cancelled_at_the_ring_timeout() {
    require_sipp!();
    let dir = Scratch::new("out-ring");
    let mut carrier = Carrier::start(dir.path(), "ring", "uas_ring_no_answer.xml", 0, &[]);
    let mut call = Dialer::start(
        dir.path(),
        "ring",
        &CallSetup {
            trunk_port: carrier.port,
            trunk_params: "",
            trunk_extra: "",
            script: None,
            args: &["--ring-timeout", "2"],
            number: "15550198",
        },
    );
    carrier.wait_offer(SIGNALLING);
    let invited = std::time::Instant::now();
    let cancelled = carrier
        .wait_log("cancel_received", SIGNALLING)
        .unwrap_or_else(|| panic!("no CANCEL:\n{}", carrier.diagnostics()));
    carrier.expect_pass(SIGNALLING);
    let placed = call.finish(SIGNALLING);
    let seen_ms = cancelled.saturating_duration_since(invited).as_millis();
    println!(
        "[ring] CANCEL reached the carrier {seen_ms} ms after the INVITE (test's clock); ring_ms {}",
        placed.ms("ring_ms")
    );
    assert_eq!(placed.outcome(), "no_answer", "{}", placed.json);
    assert_eq!(
        placed.json["q850"], 19,
        "no answer from user: {}",
        placed.json
    );
    let ring = placed.ms("ring_ms");
    assert!(
        (1950..2500).contains(&ring),
        "--ring-timeout 2: ring_ms {ring}"
    );
    assert!(
        (1700..3000).contains(&seen_ms),
        "the CANCEL came {seen_ms} ms after the INVITE, not at the 2 s ring timeout"
    );
    let invite = &carrier.received("INVITE")[0];
    let cancel = &carrier.received("CANCEL")[0];
    let header = |msg: &str, name: &str| {
        msg.lines()
            .find(|l| {
                l.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            })
            .map(|l| l.to_owned())
            .unwrap_or_default()
    };
    // RFC 3261 §9.1: the CANCEL matches the INVITE.
    for h in ["Via", "Call-ID", "From", "To"] {
        assert_eq!(header(invite, h), header(cancel, h), "{h} of the CANCEL");
    }
    assert_eq!(
        header(invite, "CSeq").replace("INVITE", "CANCEL"),
        header(cancel, "CSeq")
    );
    assert_eq!(carrier.received("ACK").len(), 1, "the 487 was ACKed");
    assert!(
        placed.elapsed < Duration::from_secs(30),
        "rivr call took {:?}",
        placed.elapsed
    );
}

/// `rivr call --count 4` on a trunk with `cps = 2`: four calls, each
/// answered by the carrier (which hangs up after 1 s), four JSON lines
/// with distinct ids, and the INVITEs reach the carrier no faster than the
/// trunk's pace (≥ 500 ms apart, no burst at the start).
#[test]
fn count_places_every_call_at_the_trunk_pace() {
    require_sipp!();
    let dir = Scratch::new("out-count");
    let mut carrier = Carrier::start_calls(
        dir.path(),
        "count",
        "uas_answer_bye.xml",
        1_000,
        &[("rtp_port", "9".into()), ("codec", "0".into())],
        4,
    );
    let mut call = Dialer::start(
        dir.path(),
        "count",
        &CallSetup {
            trunk_port: carrier.port,
            trunk_params: "",
            trunk_extra: "cps = 2\nmax_channels = 4\n",
            script: Some("play(\"main_menu\");\n"),
            args: &["--count", "4"],
            number: "15550100",
        },
    );
    let lines = call.finish_all(SIGNALLING);
    carrier.expect_pass(SIGNALLING);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let ids: std::collections::HashSet<&str> =
        lines.iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(ids.len(), 4, "four calls, four ids: {lines:#?}");
    assert!(
        lines.iter().all(|l| l["outcome"] == "answered"),
        "{lines:#?}"
    );
    // SIPp's message trace: a "----- date time" line before each message.
    let messages = carrier.messages();
    let mut stamps = Vec::new();
    let mut last_stamp = None;
    for line in messages.lines() {
        if let Some(rest) = line.strip_prefix("-----") {
            last_stamp = rest.split_whitespace().last().and_then(|t| {
                let mut p = t.split(':');
                let (h, m, s) = (p.next()?, p.next()?, p.next()?);
                Some(
                    h.parse::<f64>().ok()? * 3600.0
                        + m.parse::<f64>().ok()? * 60.0
                        + s.parse::<f64>().ok()?,
                )
            });
        } else if line.starts_with("INVITE sip:") {
            stamps.extend(last_stamp.take());
        }
    }
    let gaps: Vec<f64> = stamps.windows(2).map(|w| w[1] - w[0]).collect();
    println!("INVITEs at the carrier, gaps in s: {gaps:?}");
    assert_eq!(stamps.len(), 4, "four INVITEs, none retransmitted");
    let span: f64 = gaps.iter().sum();
    assert!(
        span < 1.6,
        "four calls at 2/s take 1.5 s from first to last: {span:.3} s"
    );
    assert!(
        gaps.iter().all(|&g| g >= 0.44),
        "cps = 2: no two INVITEs closer than 90 % of 500 ms (and the clock of the trace): gaps {gaps:?}"
    );
}
