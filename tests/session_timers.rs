//! Session timers (RFC 4028) end to end: `rivr serve` (and `rivr call`)
//! against SIPp on 127.0.0.1, with `min_se = 90` and sessions of 90 s so a
//! refresh is due after 45 s and an unrefreshed session ends after 60 s.
//!
//! - rivr as the refresher refreshes by UPDATE when the caller's Allow lists
//!   it, else by re-INVITE with its unchanged SDP, 40–50 s after its 200;
//! - a caller that took the refresher role and never refreshes gets rivr's
//!   BYE 55–65 s after the 200 (90 − min(32, 90/3) = 60 s);
//! - a caller asking for 30 s gets 422 with `Min-SE: 90`, and its retry
//!   with 90 s is answered 200 (with the refresher rivr picks);
//! - on a call rivr places, a carrier whose 200 makes rivr the refresher
//!   gets rivr's UPDATE 40–50 s after the 200.
//!
//! The times and headers are read from SIPp's own message trace (its
//! timestamps), not from rivr's logs. The three refresh scenarios run side
//! by side in one test, so with `make test`'s `--test-threads=2` the
//! binary takes about as long as its longest wait (the 60 s BYE), not
//! 110 s. Figures are printed; run with `--nocapture` to see them.

mod common;

use std::time::Duration;

use common::caller::Caller;
use common::carrier::Carrier;
use common::dialer::{CallSetup, Dialer};
use common::rtp::RtpPeer;
use common::scratch::Scratch;
use common::server::{Rivr, RivrConfig};
use common::sipp::{CallSpec, Sipp};

/// The number routed to [`HOLD`].
const NUMBER: &str = "5000";

/// Answers and holds the call up until it is hung up (by either side).
const HOLD: &str = "answer();\nsleep(120000);\nhangup();\n";

/// An Allow with UPDATE, and one without.
const ALLOW_UPDATE: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE";
const ALLOW_NO_UPDATE: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS";

/// Long enough for a debug rivr to start on a loaded machine, 60 s of
/// session and the hang-up.
const LONG: Duration = Duration::from_secs(120);

/// SIPp's own global timeout (its default in the helpers is 60 s).
const SIPP_TIMEOUT: &str = "110s";

fn rivr(label: &str) -> Rivr {
    Rivr::start(
        label,
        RivrConfig {
            sip_table: "session_expires = 90\nmin_se = 90\n".into(),
            ..RivrConfig::default()
        }
        .script(NUMBER, "hold.rhai", HOLD),
    )
}

/// a) A caller asking for 30 s gets 422 with `Min-SE: 90` (RFC 4028 §9);
/// its retry with 90 s and no refresher is answered 200 with
/// `Session-Expires: 90;refresher=uac` and `Require: timer` (§9's table
/// lets the UAS pick either side for a caller that supports timers; rivr
/// leaves it to the caller, who asked).
#[test]
fn inbound_422_then_retry_with_min_se() {
    require_sipp!();
    let rivr = rivr("st-422");
    let spec = CallSpec {
        scenario: "uac_session_422.xml",
        number: NUMBER,
        extra_args: &[
            "-key",
            "se_short",
            "30",
            "-key",
            "se",
            "90",
            "-key",
            "allow",
            ALLOW_UPDATE,
        ],
        ..CallSpec::default()
    };
    let mut sipp = Sipp::start(rivr.dir.path(), "st-422", rivr.sip_port, &spec);
    sipp.expect_pass(LONG);
    let trace = Trace::parse(&sipp.messages());

    let too_small = trace.first_response(422, 1);
    let retry_ok = trace.first_response(200, 2);
    println!(
        "[st-422] 422 Min-SE: {:?}; retry's 200: Session-Expires: {:?}, Require: {:?}",
        header(too_small, "Min-SE"),
        header(retry_ok, "Session-Expires"),
        header(retry_ok, "Require"),
    );
    assert_eq!(header(too_small, "Min-SE"), "90", "{too_small}");
    assert_eq!(
        trace.received_responses(422).len(),
        1,
        "one 422, ACKed (no retransmission)"
    );
    assert_eq!(
        header(retry_ok, "Session-Expires"),
        "90;refresher=uac",
        "{retry_ok}"
    );
    assert!(has_token(retry_ok, "Require", "timer"), "{retry_ok}");
    assert!(
        trace.received_responses(200).iter().all(|m| cseq(m).0 != 1),
        "the first INVITE (Session-Expires: 30) was answered 2xx"
    );
    let call_id = header(retry_ok, "Call-ID").to_string();
    let cdr = rivr.wait_cdr(&call_id, LONG);
    assert_eq!(cdr["end"], "remote-bye", "{cdr}");
    assert_eq!(rivr.cdrs().len(), 1, "{:?}", rivr.cdrs());
}

/// b) The caller takes the refresher role (`refresher=uac`) and never
/// refreshes: rivr sends BYE min(32 s, 90/3) = 30 s before the end, i.e.
/// 60 s after its 200 (§10), and the caller's 200 closes the call.
#[test]
fn inbound_peer_refresher_silent_gets_bye_at_60s() {
    require_sipp!();
    let rivr = rivr("st-expire");
    let mut caller = Caller::answered(
        &rivr,
        "st-expire",
        CallSpec {
            scenario: "uac_session_expire.xml",
            number: NUMBER,
            extra_args: &[
                "-key",
                "se",
                "90;refresher=uac",
                "-key",
                "allow",
                ALLOW_UPDATE,
                "-timeout",
                SIPP_TIMEOUT,
            ],
            ..CallSpec::default()
        },
    );
    caller.sipp.expect_pass(LONG);
    let trace = Trace::parse(&caller.sipp.messages());
    let ok = trace.first_response(200, 1);
    let bye = trace.first_request("BYE");
    let after = bye.at - ok.at;
    println!(
        "[st-expire] rivr's 200: Session-Expires: {:?}, Require: {:?}; rivr's BYE {after:.3} s after it",
        header(ok, "Session-Expires"),
        header(ok, "Require"),
    );
    assert_eq!(header(ok, "Session-Expires"), "90;refresher=uac", "{ok}");
    assert!(has_token(ok, "Require", "timer"), "{ok}");
    assert!(
        (55.0..=65.0).contains(&after),
        "rivr's BYE came {after:.3} s after its 200, not 55–65 s"
    );
    assert!(
        trace.received_requests("UPDATE").is_empty()
            && trace.received_requests("INVITE").is_empty(),
        "rivr refreshed a session the caller refreshes"
    );
    let cdr = rivr.wait_cdr(&caller.answer.call_id, LONG);
    println!(
        "[st-expire] CDR end {} q850 {} talk_ms {}",
        cdr["end"], cdr["q850"], cdr["talk_ms"]
    );
    assert_eq!(cdr["end"], "local-bye", "{cdr}");
    assert_eq!(cdr["q850"], 102, "recovery on timer expiry: {cdr}");
}

/// c) The caller supports timers, makes rivr the refresher and has no
/// UPDATE in its Allow: rivr refreshes at half the interval by re-INVITE
/// carrying its SDP unchanged (the same body as its 200, so the same o=
/// version, RFC 3264 §8), and ACKs the 200.
#[test]
fn rivr_refreshes_at_half_by_reinvite_by_update_and_on_a_call_it_placed() {
    require_sipp!();
    // Three scenarios of ~47 s, each waiting on its own timers (its own
    // rivr and SIPp): side by side rather than after each other.
    let scenarios: [(&str, fn()); 3] = [
        (
            "by re-INVITE without UPDATE",
            inbound_rivr_refreshes_by_reinvite_without_update,
        ),
        (
            "by UPDATE at half",
            inbound_rivr_refreshes_by_update_at_half,
        ),
        (
            "outbound, by UPDATE at half",
            outbound_rivr_refreshes_by_update_at_half,
        ),
    ];
    let running: Vec<_> = scenarios
        .into_iter()
        .map(|(name, run)| (name, std::thread::spawn(run)))
        .collect();
    let failed: Vec<String> = running
        .into_iter()
        .filter_map(|(name, handle)| {
            handle.join().err().map(|p| {
                let why = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                format!("{name}: {why}")
            })
        })
        .collect();
    assert!(
        failed.is_empty(),
        "refresh scenarios failed:\n{}",
        failed.join("\n")
    );
}

fn inbound_rivr_refreshes_by_reinvite_without_update() {
    let rivr = rivr("st-reinvite");
    let mut caller = Caller::answered(
        &rivr,
        "st-reinvite",
        CallSpec {
            scenario: "uac_session_reinvite.xml",
            number: NUMBER,
            extra_args: &[
                "-key",
                "se",
                "90;refresher=uas",
                "-key",
                "allow",
                ALLOW_NO_UPDATE,
                "-timeout",
                SIPP_TIMEOUT,
            ],
            ..CallSpec::default()
        },
    );
    caller.sipp.expect_pass(LONG);
    let trace = Trace::parse(&caller.sipp.messages());
    let ok = trace.first_response(200, 1);
    let reinvite = trace.first_request("INVITE");
    let after = reinvite.at - ok.at;
    let origin = |m: &str| {
        body(m)
            .lines()
            .find(|l| l.starts_with("o="))
            .unwrap_or("")
            .to_string()
    };
    println!(
        "[st-reinvite] rivr's 200: Session-Expires: {:?}; re-INVITE {after:.3} s after it: \
         Session-Expires: {:?}, CSeq: {:?}, o= {:?} (200's o= {:?})",
        header(ok, "Session-Expires"),
        header(reinvite, "Session-Expires"),
        header(reinvite, "CSeq"),
        origin(reinvite),
        origin(ok),
    );
    assert_eq!(header(ok, "Session-Expires"), "90;refresher=uas", "{ok}");
    assert!(has_token(ok, "Require", "timer"), "{ok}");
    assert!(
        (40.0..=50.0).contains(&after),
        "rivr's refresh came {after:.3} s after its 200, not 40–50 s"
    );
    assert_refresh_headers(reinvite);
    assert!(
        !origin(reinvite).is_empty() && body(reinvite) == body(ok),
        "the refresh re-INVITE's SDP is not rivr's unchanged SDP:\n{}\n--- vs the 200's ---\n{}",
        body(reinvite),
        body(ok)
    );
    assert_eq!(
        distinct_cseqs(&trace.received_requests("INVITE")).len(),
        1,
        "one refresh"
    );
    let (refresh_cseq, _) = cseq(reinvite);
    let acks = trace.received_requests("ACK");
    assert!(
        acks.iter().any(|a| cseq(a) == (refresh_cseq, "ACK")),
        "rivr did not ACK the 200 to its re-INVITE (CSeq {refresh_cseq})"
    );
    assert!(
        trace.received_requests("UPDATE").is_empty(),
        "rivr sent UPDATE to a caller whose Allow has none"
    );
    let cdr = rivr.wait_cdr(&caller.answer.call_id, LONG);
    assert_eq!(cdr["end"], "remote-bye", "the caller hung up: {cdr}");
}

/// d) The caller makes rivr the refresher and allows UPDATE: rivr sends an
/// UPDATE (no SDP) 45 s after its 200; the call goes on until the caller
/// hangs up.
fn inbound_rivr_refreshes_by_update_at_half() {
    let rivr = rivr("st-update");
    let mut caller = Caller::answered(
        &rivr,
        "st-update",
        CallSpec {
            scenario: "uac_session_update.xml",
            number: NUMBER,
            extra_args: &[
                "-key",
                "se",
                "90;refresher=uas",
                "-key",
                "allow",
                ALLOW_UPDATE,
                "-timeout",
                SIPP_TIMEOUT,
            ],
            ..CallSpec::default()
        },
    );
    caller.sipp.expect_pass(LONG);
    let trace = Trace::parse(&caller.sipp.messages());
    let ok = trace.first_response(200, 1);
    let update = trace.first_request("UPDATE");
    let after = update.at - ok.at;
    println!(
        "[st-update] rivr's 200: Session-Expires: {:?}, Require: {:?}; UPDATE {after:.3} s after it: \
         Session-Expires: {:?}, Min-SE: {:?}, Supported: {:?}",
        header(ok, "Session-Expires"),
        header(ok, "Require"),
        header(update, "Session-Expires"),
        header(update, "Min-SE"),
        header(update, "Supported"),
    );
    assert_eq!(header(ok, "Session-Expires"), "90;refresher=uas", "{ok}");
    assert!(has_token(ok, "Require", "timer"), "{ok}");
    assert!(
        (40.0..=50.0).contains(&after),
        "rivr's UPDATE came {after:.3} s after its 200, not 40–50 s"
    );
    assert_refresh_headers(update);
    assert!(body(update).is_empty(), "a refresh UPDATE with a body");
    assert_eq!(
        distinct_cseqs(&trace.received_requests("UPDATE")).len(),
        1,
        "one refresh"
    );
    assert!(
        trace.received_requests("INVITE").is_empty(),
        "rivr re-INVITEd a caller that allows UPDATE"
    );
    let cdr = rivr.wait_cdr(&caller.answer.call_id, LONG);
    assert_eq!(cdr["end"], "remote-bye", "the caller hung up: {cdr}");
}

/// e) rivr places the call; the carrier's 200 says `Session-Expires:
/// 90;refresher=uac` and allows UPDATE, so rivr (the UAC) refreshes by
/// UPDATE 45 s after the 200; the carrier hangs up 2 s after answering it.
fn outbound_rivr_refreshes_by_update_at_half() {
    let dir = Scratch::new("st-out");
    let peer = RtpPeer::bind();
    let mut carrier = Carrier::start_with(
        dir.path(),
        "st-out",
        "uas_session_update.xml",
        0,
        &[
            ("rtp_port", peer.port.to_string()),
            ("codec", "0".to_string()),
            ("se", "90;refresher=uac".to_string()),
            ("allow", ALLOW_UPDATE.to_string()),
        ],
        &["-timeout", SIPP_TIMEOUT],
    );
    let mut call = Dialer::start(
        dir.path(),
        "st-out",
        &CallSetup {
            trunk_port: carrier.port,
            trunk_params: "",
            trunk_extra: "",
            script: Some("sleep(120000);\n"),
            args: &[],
            number: "15550190",
        },
    );
    carrier.expect_pass(LONG);
    let placed = call.finish(LONG);
    let trace = Trace::parse(&carrier.messages());
    let invite = trace.first_request("INVITE");
    let ok = trace
        .entries
        .iter()
        .find(|e| e.sent && e.text.starts_with("SIP/2.0 200") && cseq(&e.text).1 == "INVITE")
        .unwrap_or_else(|| panic!("the carrier sent no 200 to the INVITE"));
    let update = trace.first_request("UPDATE");
    let after = update.at - ok.at;
    println!(
        "[st-out] rivr's INVITE: Supported: {:?}, Session-Expires: {:?}, Min-SE: {:?}; \
         UPDATE {after:.3} s after the carrier's 200: Session-Expires: {:?}; talk_ms {}",
        header(invite, "Supported"),
        header(invite, "Session-Expires"),
        header(invite, "Min-SE"),
        header(update, "Session-Expires"),
        placed.ms("talk_ms"),
    );
    assert!(has_token(invite, "Supported", "timer"), "{invite}");
    // The Dialer's config leaves [sip] session_expires at its default.
    assert_eq!(header(invite, "Session-Expires"), "1800", "{invite}");
    assert_eq!(header(invite, "Min-SE"), "90", "{invite}");
    assert!(
        (40.0..=50.0).contains(&after),
        "rivr's UPDATE came {after:.3} s after the 200, not 40–50 s"
    );
    assert_refresh_headers(update);
    assert_eq!(
        distinct_cseqs(&trace.received_requests("UPDATE")).len(),
        1,
        "one refresh"
    );
    assert!(
        trace.received_requests("INVITE").len() == 1 && trace.received_requests("BYE").is_empty(),
        "rivr re-INVITEd or hung up itself"
    );
    assert_eq!(placed.outcome(), "answered", "{}", placed.json);
    assert_eq!(placed.json["q850"], 16, "normal clearing: {}", placed.json);
}

/// A refresh request of rivr's: the interval with rivr (the UAC of this
/// transaction) as the refresher, its Min-SE, `Supported: timer`.
fn assert_refresh_headers(req: &str) {
    assert_eq!(header(req, "Session-Expires"), "90;refresher=uac", "{req}");
    assert_eq!(header(req, "Min-SE"), "90", "{req}");
    assert!(has_token(req, "Supported", "timer"), "{req}");
}

/// One message of SIPp's `-trace_msg` file: when SIPp sent or received it.
struct Traced {
    /// Seconds (since 1970, local time as SIPp printed it).
    at: f64,
    sent: bool,
    text: String,
}

/// SIPp's message trace: each entry is a line of dashes with the date and
/// time (`2026-12-04 10:01:50.317827`), `UDP message sent (N bytes):` or
/// `UDP message received [N] bytes :`, a blank line, the message.
struct Trace {
    entries: Vec<Traced>,
}

impl Trace {
    fn parse(file: &str) -> Trace {
        let mut entries = Vec::new();
        let mut current: Option<(f64, Vec<&str>)> = None;
        let mut flush = |cur: Option<(f64, Vec<&str>)>| {
            let Some((at, lines)) = cur else { return };
            let mut lines = lines.into_iter().skip_while(|l| l.trim().is_empty());
            let Some(kind) = lines.next() else { return };
            let text: Vec<&str> = lines.map(|l| l.trim_end_matches('\r')).collect();
            entries.push(Traced {
                at,
                sent: kind.contains("message sent"),
                text: text.join("\n").trim().to_string(),
            });
        };
        for line in file.lines() {
            if line.starts_with("-----") {
                flush(current.take());
                let at = parse_stamp(line)
                    .unwrap_or_else(|| panic!("a SIPp trace banner without a time: {line:?}"));
                current = Some((at, Vec::new()));
            } else if let Some((_, lines)) = current.as_mut() {
                lines.push(line);
            }
        }
        flush(current);
        Trace { entries }
    }

    fn received(&self) -> impl Iterator<Item = &Traced> {
        self.entries.iter().filter(|e| !e.sent)
    }

    fn received_requests(&self, method: &str) -> Vec<&str> {
        let start = format!("{method} ");
        self.received()
            .filter(|e| e.text.starts_with(&start))
            .map(|e| e.text.as_str())
            .collect()
    }

    fn received_responses(&self, code: u16) -> Vec<&str> {
        let start = format!("SIP/2.0 {code} ");
        self.received()
            .filter(|e| e.text.starts_with(&start))
            .map(|e| e.text.as_str())
            .collect()
    }

    /// The first `method` request SIPp received.
    fn first_request(&self, method: &str) -> &Traced {
        let start = format!("{method} ");
        self.received()
            .find(|e| e.text.starts_with(&start))
            .unwrap_or_else(|| panic!("SIPp received no {method}:\n{}", self.dump()))
    }

    /// The first `code` response SIPp received to its INVITE with CSeq `n`.
    fn first_response(&self, code: u16, n: u32) -> &Traced {
        let start = format!("SIP/2.0 {code} ");
        self.received()
            .find(|e| e.text.starts_with(&start) && cseq(&e.text) == (n, "INVITE"))
            .unwrap_or_else(|| {
                panic!(
                    "SIPp received no {code} to INVITE CSeq {n}:\n{}",
                    self.dump()
                )
            })
    }

    fn dump(&self) -> String {
        self.entries
            .iter()
            .map(|e| {
                let dir = if e.sent { "sent" } else { "received" };
                format!("--- {:.3} {dir}\n{}\n", e.at, e.text)
            })
            .collect()
    }
}

impl std::ops::Deref for Traced {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for Traced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// `----- 2026-12-04 10:01:50.317827` → seconds since 1970-01-01 00:00.
fn parse_stamp(banner: &str) -> Option<f64> {
    let mut words = banner.split_whitespace().rev();
    let time = words.next()?;
    let date = words.next()?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    let s = t.next()?.parse::<f64>().ok()?;
    Some(days_from_civil(y, m, day) as f64 * 86_400.0 + h * 3600.0 + min * 60.0 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The values of header `name` (long name, case-insensitive) in `msg`.
fn headers<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// The one value of header `name`; panics when it is absent or repeated.
fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    match headers(msg, name).as_slice() {
        [one] => one,
        other => panic!("{} `{name}` headers in:\n{msg}", other.len()),
    }
}

/// True when a `name` header lists `token` (comma-separated).
fn has_token(msg: &str, name: &str, token: &str) -> bool {
    headers(msg, name)
        .iter()
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// `CSeq: 7 UPDATE` → (7, "UPDATE").
fn cseq(msg: &str) -> (u32, &str) {
    let v = header(msg, "CSeq");
    let (n, method) = v.split_once(' ').unwrap_or((v, ""));
    (n.trim().parse().unwrap_or(0), method.trim())
}

/// The distinct CSeq numbers of `msgs` (a retransmission repeats one).
fn distinct_cseqs(msgs: &[&str]) -> std::collections::BTreeSet<u32> {
    msgs.iter().map(|m| cseq(m).0).collect()
}

/// The message body (after the first blank line), trimmed.
fn body(msg: &str) -> &str {
    msg.split_once("\n\n").map(|(_, b)| b.trim()).unwrap_or("")
}

#[test]
fn trace_parses_times_and_directions() {
    let file = "----------------------------------------------- 2026-12-04 23:59:59.500000\n\
                UDP message received [20] bytes :\n\n\
                SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\nSession-Expires: 90;refresher=uas\r\n\r\nv=0\r\n\n\
                ----------------------------------------------- 2026-12-05 00:00:45.250000\n\
                UDP message sent (10 bytes):\n\n\
                UPDATE sip:x SIP/2.0\r\nCSeq: 9 UPDATE\r\nContent-Length: 0\r\n\r\n\n";
    let t = Trace::parse(file);
    assert_eq!(t.entries.len(), 2);
    assert!(!t.entries[0].sent && t.entries[1].sent);
    assert!((t.entries[1].at - t.entries[0].at - 45.75).abs() < 1e-6);
    let ok = t.first_response(200, 1);
    assert_eq!(header(ok, "session-expires"), "90;refresher=uas");
    assert_eq!(body(ok), "v=0");
    assert_eq!(cseq(&t.entries[1].text), (9, "UPDATE"));
    assert!(body(&t.entries[1].text).is_empty());
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
}
