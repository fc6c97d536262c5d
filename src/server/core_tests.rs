//! The whole signalling core on a virtual clock, driven with SIP text:
//! gate → SIP core → SIP legs → registry, with a recording environment.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::ServerCore;
use crate::call::channel::SigCommand;
use crate::call::control::CallEnded;
use crate::call::registry::ScriptCommand;
use crate::media::worker::MediaCommand;
use crate::server::sim::{sim_core, SimEnv, SimOptions};
use crate::sip::message::Transport;

struct T {
    core: ServerCore<SimEnv>,
    now: Instant,
    caller: SocketAddr,
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

fn invite(to: &str, call_id: &str, branch: &str, sdp: Option<&str>) -> String {
    let body = sdp.unwrap_or("");
    let ctype = if sdp.is_some() {
        "Content-Type: application/sdp\r\n"
    } else {
        ""
    };
    format!(
        "INVITE sip:{to}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
         From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:{to}@127.0.0.1>\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.1:5070>\r\nMax-Forwards: 70\r\n{ctype}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn in_dialog(method: &str, call_id: &str, to_tag: &str, cseq: u32, branch: &str) -> String {
    format!(
        "{method} sip:rivr@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
         From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:1000@127.0.0.1>;tag={to_tag}\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

fn to_tag(resp: &str) -> String {
    let to = resp
        .lines()
        .find(|l| l.starts_with("To:"))
        .expect("a To header");
    to.split("tag=").nth(1).unwrap_or("").trim().to_string()
}

impl T {
    fn new(opts: SimOptions) -> T {
        let now = Instant::now();
        T {
            core: sim_core(&opts, now),
            now,
            caller: "127.0.0.1:5070".parse().unwrap(),
        }
    }

    fn sent(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.core.poll_transmit())
            .map(|t| String::from_utf8_lossy(&t.bytes).into_owned())
            .collect()
    }

    fn send(&mut self, msg: &str) -> Vec<String> {
        self.core
            .handle_inbound(self.now, Transport::Udp, self.caller, msg.as_bytes());
        self.sent()
    }

    fn advance(&mut self, ms: u64) -> Vec<String> {
        let until = self.now + Duration::from_millis(ms);
        let mut out = Vec::new();
        while let Some(t) = self.core.poll_timeout() {
            if t > until {
                break;
            }
            self.now = t.max(self.now);
            self.core.handle_timeout(self.now);
            out.extend(self.sent());
        }
        self.now = until;
        out
    }

    fn script(&mut self, cmd: ScriptCommand) -> Result<(), CallEnded> {
        let call = self.core.env.scripts.last().expect("a started script").call;
        let (reply, rx) = std::sync::mpsc::sync_channel(1);
        self.core
            .handle_sig(self.now, SigCommand::Script { call, cmd, reply });
        rx.recv().unwrap()
    }

    fn script_done(&mut self, outcome: &str) {
        let call = self.core.env.scripts.last().expect("a started script").call;
        self.core.handle_sig(
            self.now,
            SigCommand::ScriptDone {
                call,
                outcome: outcome.into(),
            },
        );
    }
}

fn first_lines(msgs: &[String]) -> Vec<&str> {
    msgs.iter()
        .map(|m| m.lines().next().unwrap_or(""))
        .collect()
}

#[test]
fn an_inbound_call_from_invite_to_cdr() {
    let mut t = T::new(SimOptions::default());
    let out = t.send(&invite("1000", "c1", "z9hG4bK1", Some(SDP)));
    assert_eq!(first_lines(&out), vec!["SIP/2.0 100 Trying"]);
    // Routed, admitted, ports reserved, answer negotiated, media handed
    // over, script started — all before any answer to the caller.
    let start = t.core.env.scripts[0].clone();
    assert_eq!(start.info.to, "1000");
    assert_eq!(start.info.direction, "inbound");
    assert_eq!(start.script.to_str(), Some("scripts/main_menu.rhai"));
    assert_eq!(t.core.env.media.len(), 1);
    assert_eq!(t.core.env.held_ports, 1);
    t.script(ScriptCommand::Answer).unwrap();
    let out = t.sent();
    assert_eq!(first_lines(&out), vec!["SIP/2.0 200 OK"]);
    assert!(out[0].contains("m=audio 20000 RTP/AVP 0 101"), "{}", out[0]);
    let tag = to_tag(&out[0]);
    let log = &t.core.env.media[&start.leg];
    assert!(matches!(
        log.last(),
        Some(MediaCommand::Start { early: false, .. })
    ));
    // The ACK confirms the peer for media.
    let out = t.send(&in_dialog("ACK", "c1", &tag, 1, "z9hG4bK2"));
    assert!(out.is_empty());
    assert!(matches!(
        t.core.env.media[&start.leg].last(),
        Some(MediaCommand::PeerConfirmed { .. })
    ));
    t.advance(3000);
    let out = t.send(&in_dialog("BYE", "c1", &tag, 2, "z9hG4bK3"));
    assert_eq!(first_lines(&out), vec!["SIP/2.0 200 OK"]);
    assert_eq!(t.core.env.gone, vec![start.call]);
    assert!(t.core.env.media.is_empty(), "media removed at the BYE");
    assert_eq!(t.core.env.held_ports, 0);
    assert!(t.core.env.cdrs.is_empty(), "the script still runs");
    t.core
        .env
        .results
        .insert(start.call, vec![("q".into(), "1".into())]);
    t.script_done("caller-hung-up");
    let cdr = &t.core.env.cdrs[0];
    assert_eq!(cdr.transport_id, "c1");
    assert_eq!((cdr.end, cdr.outcome), ("remote-bye", "answered"));
    assert_eq!(cdr.talk_ms, 3000);
    assert_eq!(cdr.results["q"], "1");
    assert_eq!(t.core.tracked(), 0);
}

/// A closed call whose CDR rows the store has not confirmed still counts
/// (shutdown and drain wait for it); the confirmation lets it go.
#[test]
fn a_closed_call_is_tracked_until_its_cdr_rows_are_stored() {
    let mut t = T::new(SimOptions::default());
    t.core.env.hold_cdrs = true;
    t.send(&invite("1000", "c1", "z9hG4bK1", Some(SDP)));
    let start = t.core.env.scripts[0].clone();
    t.script(ScriptCommand::Answer).unwrap();
    let tag = to_tag(&t.sent()[0]);
    t.send(&in_dialog("ACK", "c1", &tag, 1, "z9hG4bK2"));
    t.send(&in_dialog("BYE", "c1", &tag, 2, "z9hG4bK3"));
    t.script_done("caller-hung-up");
    assert_eq!(t.core.env.cdrs.len(), 1);
    assert_eq!(t.core.env.closed, vec![start.call]);
    assert_eq!(t.core.tracked(), 1, "held for its CDR rows");
    t.core.handle_sig(t.now, SigCommand::CdrStored(start.call));
    assert_eq!(t.core.tracked(), 0);
}

#[test]
fn unknown_number_is_404_with_a_cdr_and_no_ports() {
    let mut t = T::new(SimOptions::default());
    let out = t.send(&invite("999", "c2", "z9hG4bK1", Some(SDP)));
    assert_eq!(
        first_lines(&out),
        vec!["SIP/2.0 100 Trying", "SIP/2.0 404 Not Found"]
    );
    assert_eq!(t.core.env.cdrs[0].script, "none (no route)");
    assert_eq!(t.core.env.held_ports, 0);
    assert!(t.core.env.scripts.is_empty());
}

#[test]
fn no_common_codec_is_488_and_the_port_goes_back() {
    let mut t = T::new(SimOptions::default());
    let g729 = SDP
        .replace("RTP/AVP 0 101", "RTP/AVP 18")
        .replace("a=rtpmap:101 telephone-event/8000\r\n", "");
    let out = t.send(&invite("1000", "c3", "z9hG4bK1", Some(&g729)));
    assert_eq!(
        first_lines(&out),
        vec!["SIP/2.0 100 Trying", "SIP/2.0 488 Not Acceptable Here"]
    );
    assert_eq!(t.core.env.held_ports, 0);
    assert_eq!(t.core.env.cdrs[0].script, "none (488)");
    assert_eq!(t.core.env.cdrs[0].sip_status, Some(488));
}

#[test]
fn over_max_calls_is_503_with_retry_after_and_no_state() {
    let mut t = T::new(SimOptions {
        max_calls: 1,
        ..SimOptions::default()
    });
    t.send(&invite("1000", "c4", "z9hG4bK1", Some(SDP)));
    let out = t.send(&invite("1000", "c5", "z9hG4bK2", Some(SDP)));
    assert_eq!(
        first_lines(&out),
        vec!["SIP/2.0 100 Trying", "SIP/2.0 503 Service Unavailable"]
    );
    assert!(out[1].contains("\r\nRetry-After: 5\r\n"), "{}", out[1]);
    assert_eq!(t.core.env.scripts.len(), 1);
    assert_eq!(t.core.env.held_ports, 1);
    assert!(t.core.env.cdrs.is_empty());
}

/// A load balancer's OPTIONS probe says whether this node takes a call now:
/// 503 with Retry-After while `max_calls` calls are held, 200 again once
/// one has ended (a dispatcher then sends it calls again).
#[test]
fn options_answer_503_while_full_and_200_once_a_call_ends() {
    let mut t = T::new(SimOptions {
        max_calls: 1,
        ..SimOptions::default()
    });
    let ping = |n: u32| {
        in_dialog(
            "OPTIONS",
            &format!("lb{n}"),
            "x",
            1,
            &format!("z9hG4bKp{n}"),
        )
        .replace(";tag=x", "")
    };
    assert_eq!(first_lines(&t.send(&ping(1))), vec!["SIP/2.0 200 OK"]);
    t.send(&invite("1000", "c1", "z9hG4bK1", Some(SDP)));
    t.script(ScriptCommand::Answer).unwrap();
    let tag = to_tag(&t.sent()[0]);
    t.send(&in_dialog("ACK", "c1", &tag, 1, "z9hG4bK2"));
    let out = t.send(&ping(2));
    assert_eq!(first_lines(&out), vec!["SIP/2.0 503 Service Unavailable"]);
    assert!(out[0].contains("\r\nRetry-After: 5\r\n"), "{}", out[0]);
    // The caller's own keepalive in its dialog is still 200.
    let keepalive = in_dialog("OPTIONS", "c1", &tag, 2, "z9hG4bK3");
    assert_eq!(first_lines(&t.send(&keepalive)), vec!["SIP/2.0 200 OK"]);
    t.send(&in_dialog("BYE", "c1", &tag, 3, "z9hG4bK4"));
    t.script_done("caller-hung-up");
    assert_eq!(first_lines(&t.send(&ping(3))), vec!["SIP/2.0 200 OK"]);
}

#[test]
fn resources_that_fail_refuse_the_call_with_503() {
    for which in ["ports", "media", "scripts"] {
        let mut t = T::new(SimOptions::default());
        match which {
            "ports" => t.core.env.fail_ports = true,
            "media" => t.core.env.fail_media = true,
            _ => t.core.env.fail_scripts = true,
        }
        let out = t.send(&invite("1000", "c6", "z9hG4bK1", Some(SDP)));
        assert_eq!(
            first_lines(&out),
            vec!["SIP/2.0 100 Trying", "SIP/2.0 503 Service Unavailable"],
            "{which}"
        );
        assert_eq!(t.core.env.held_ports, 0, "{which}: ports leaked");
        assert!(t.core.env.media.is_empty(), "{which}");
        assert_eq!(t.core.env.cdrs.len(), 1, "{which}");
        assert_eq!(t.core.tracked(), 0, "{which}");
    }
}

#[test]
fn no_ack_ends_the_call_with_bye_after_64_t1() {
    let mut t = T::new(SimOptions::default());
    t.send(&invite("1000", "c7", "z9hG4bK1", Some(SDP)));
    t.script(ScriptCommand::Answer).unwrap();
    t.sent();
    let out = t.advance(40_000);
    // 2xx retransmitted on T1 doubling to T2, then BYE at 32 s.
    assert!(
        first_lines(&out)
            .iter()
            .filter(|l| **l == "SIP/2.0 200 OK")
            .count()
            >= 5
    );
    assert!(first_lines(&out).iter().any(|l| l.starts_with("BYE ")));
    let call = t.core.env.scripts[0].call;
    assert_eq!(t.core.env.gone, vec![call]);
    t.script_done("caller-hung-up");
    assert_eq!(t.core.env.cdrs[0].end, "ack-timeout");
    assert_eq!(t.core.env.cdrs[0].q850, Some(102));
}

#[test]
fn cancel_before_answer_is_487_and_the_script_learns_it() {
    let mut t = T::new(SimOptions::default());
    let inv = invite("1000", "c8", "z9hG4bK1", Some(SDP));
    t.send(&inv);
    t.script(ScriptCommand::Ring { early_media: false })
        .unwrap();
    assert_eq!(first_lines(&t.sent()), vec!["SIP/2.0 180 Ringing"]);
    let cancel = inv
        .replacen("INVITE sip:", "CANCEL sip:", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    let cancel =
        cancel.split("Content-Type").next().unwrap().to_string() + "Content-Length: 0\r\n\r\n";
    let out = t.send(&cancel);
    assert_eq!(
        first_lines(&out),
        vec!["SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]
    );
    assert_eq!(t.script(ScriptCommand::Answer), Err(CallEnded));
    t.script_done("caller-hung-up");
    let cdr = &t.core.env.cdrs[0];
    assert_eq!(
        (cdr.end, cdr.outcome, cdr.sip_status),
        ("cancelled", "cancelled", Some(487))
    );
    assert_eq!(t.core.env.held_ports, 0);
}

#[test]
fn a_script_reject_keeps_its_status_and_media_failure_ends_the_call() {
    let mut t = T::new(SimOptions::default());
    t.send(&invite("1000", "c9", "z9hG4bK1", Some(SDP)));
    t.script(ScriptCommand::Reject { status: 603 }).unwrap();
    assert_eq!(first_lines(&t.sent()), vec!["SIP/2.0 603 Decline"]);
    t.script_done("hangup");
    assert_eq!(t.core.env.cdrs[0].q850, Some(21));

    t.send(&invite("1000", "c10", "z9hG4bK2", Some(SDP)));
    t.script(ScriptCommand::Answer).unwrap();
    let tag = to_tag(&t.sent()[0]);
    t.send(&in_dialog("ACK", "c10", &tag, 1, "z9hG4bK3"));
    let call = t.core.env.scripts[1].call;
    t.core.handle_sig(t.now, SigCommand::MediaFailed(call));
    let out = t.sent();
    assert!(
        first_lines(&out).iter().any(|l| l.starts_with("BYE ")),
        "{out:?}"
    );
    assert!(t.core.env.gone.contains(&call));
    t.script_done("caller-hung-up");
    assert_eq!(t.core.env.cdrs[1].end, "media-failed");
    assert_eq!(t.core.env.held_ports, 0);
}

#[test]
fn late_offer_gets_an_offer_in_the_200_and_media_is_configured_by_the_ack() {
    let mut t = T::new(SimOptions::default());
    t.send(&invite("1000", "c11", "z9hG4bK1", None));
    let leg = t.core.env.scripts[0].leg;
    assert!(!t.core.env.specs[&leg].configured);
    t.script(ScriptCommand::Answer).unwrap();
    let ok = t.sent().remove(0);
    assert!(ok.contains("m=audio 20000 RTP/AVP 0 8 111 101"), "{ok}");
    let tag = to_tag(&ok);
    let ack = in_dialog("ACK", "c11", &tag, 1, "z9hG4bK2").replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{}",
            SDP.replace(" 0 101", " 8")
                .replace("a=rtpmap:101 telephone-event/8000\r\n", "")
                .len(),
            SDP.replace(" 0 101", " 8")
                .replace("a=rtpmap:101 telephone-event/8000\r\n", "")
        ),
    );
    t.send(&ack);
    let log = &t.core.env.media[&leg];
    assert!(log.iter().any(|c| matches!(
        c,
        MediaCommand::Configure {
            codec: crate::codec::Codec::Pcma,
            ..
        }
    )));
    assert!(matches!(
        log.last(),
        Some(MediaCommand::PeerConfirmed { .. })
    ));
}

#[test]
fn shutdown_ends_every_call_and_flushes_their_cdrs() {
    let mut t = T::new(SimOptions::default());
    t.send(&invite("1000", "c12", "z9hG4bK1", Some(SDP)));
    t.script(ScriptCommand::Answer).unwrap();
    let tag = to_tag(&t.sent()[0]);
    t.send(&in_dialog("ACK", "c12", &tag, 1, "z9hG4bK2"));
    t.send(&invite("1000", "c13", "z9hG4bK3", Some(SDP)));
    t.core.hangup_all(t.now);
    let out = t.sent();
    assert!(
        first_lines(&out).iter().any(|l| l.starts_with("BYE ")),
        "{out:?}"
    );
    assert!(
        first_lines(&out).contains(&"SIP/2.0 480 Temporarily Unavailable"),
        "{out:?}"
    );
    t.core.flush_unfinished(t.now);
    assert_eq!(t.core.env.cdrs.len(), 2);
    assert!(t.core.env.cdrs.iter().all(|c| c.end == "shutdown"));
    assert_eq!(t.core.env.held_ports, 0);
}

/// An answered, ACKed call: its To tag.
fn answered(t: &mut T, call_id: &str) -> String {
    t.send(&invite("1000", call_id, "z9hG4bKa1", Some(SDP)));
    t.script(ScriptCommand::Answer).unwrap();
    let tag = to_tag(&t.sent()[0]);
    t.send(&in_dialog("ACK", call_id, &tag, 1, "z9hG4bKa2"));
    tag
}

fn reinvite(call_id: &str, tag: &str, cseq: u32, branch: &str, sdp: Option<&str>) -> String {
    let base = in_dialog("INVITE", call_id, tag, cseq, branch);
    match sdp {
        None => base,
        Some(body) => base.replace(
            "Content-Length: 0\r\n\r\n",
            &format!(
                "Contact: <sip:alice@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        ),
    }
}

#[test]
fn reinvite_hold_and_resume_are_answered_and_stop_and_restart_sending() {
    let mut t = T::new(SimOptions::default());
    let tag = answered(&mut t, "r1");
    let leg = t.core.env.scripts[0].leg;
    let hold = SDP.replace("a=rtpmap:101", "a=sendonly\r\na=rtpmap:101");
    let out = t.send(&reinvite("r1", &tag, 2, "z9hG4bKh1", Some(&hold)));
    assert_eq!(first_lines(&out), vec!["SIP/2.0 200 OK"]);
    assert!(out[0].contains("a=recvonly"), "{}", out[0]);
    assert!(!out[0].contains("a=sendrecv"), "{}", out[0]);
    assert!(matches!(
        t.core.env.media[&leg].last(),
        Some(MediaCommand::Hold { on: true, .. })
    ));
    // The 2xx is retransmitted until its ACK.
    let again = t.advance(600);
    assert_eq!(first_lines(&again), vec!["SIP/2.0 200 OK"]);
    t.send(&in_dialog("ACK", "r1", &tag, 2, "z9hG4bKh2"));
    assert!(t.advance(5000).is_empty());
    let out = t.send(&reinvite("r1", &tag, 3, "z9hG4bKh3", Some(SDP)));
    assert!(out[0].contains("a=sendrecv"), "{}", out[0]);
    assert!(matches!(
        t.core.env.media[&leg].last(),
        Some(MediaCommand::Hold { on: false, .. })
    ));
}

/// A re-INVITE that changes only the ptime (20 → 30 → 20 ms PCMU) is
/// answered with the new ptime and tells the media the new packet size
/// on the same stream (`SetPtime`, no `Configure`); one that keeps it
/// tells nothing.
#[test]
fn reinvite_changing_only_the_ptime_sets_it_on_the_same_stream() {
    let mut t = T::new(SimOptions::default());
    let tag = answered(&mut t, "rp");
    let leg = t.core.env.scripts[0].leg;
    let sent_before = t.core.env.media[&leg].len();
    let ptime = |ms: u32| format!("{SDP}a=ptime:{ms}\r\n");
    let steps = [(2u32, 30u32, Some(30u32)), (4, 20, Some(20)), (6, 20, None)];
    for (cseq, ms, told) in steps {
        let from = t.core.env.media[&leg].len();
        let out = t.send(&reinvite(
            "rp",
            &tag,
            cseq,
            &format!("z9hG4bKp{cseq}"),
            Some(&ptime(ms)),
        ));
        assert_eq!(first_lines(&out), vec!["SIP/2.0 200 OK"]);
        assert!(out[0].contains(&format!("a=ptime:{ms}\r\n")), "{}", out[0]);
        t.send(&in_dialog(
            "ACK",
            "rp",
            &tag,
            cseq,
            &format!("z9hG4bKa{cseq}"),
        ));
        let new = &t.core.env.media[&leg][from..];
        let set: Vec<u32> = new
            .iter()
            .filter_map(|c| match c {
                MediaCommand::SetPtime { ptime_ms, .. } => Some(*ptime_ms),
                _ => None,
            })
            .collect();
        assert_eq!(
            set,
            told.into_iter().collect::<Vec<_>>(),
            "re-INVITE at {ms} ms"
        );
        assert!(!new
            .iter()
            .any(|c| matches!(c, MediaCommand::Configure { .. })));
    }
    assert!(t.core.env.media[&leg].len() > sent_before);
    assert_eq!(t.core.active(), 1);
}

#[test]
fn reinvite_codec_change_reconfigures_media_and_no_common_codec_is_488() {
    let mut t = T::new(SimOptions::default());
    let tag = answered(&mut t, "r2");
    let leg = t.core.env.scripts[0].leg;
    let pcma = SDP.replace("RTP/AVP 0 101", "RTP/AVP 8 101");
    let out = t.send(&reinvite("r2", &tag, 2, "z9hG4bKc1", Some(&pcma)));
    assert!(out[0].contains("m=audio 20000 RTP/AVP 8 101"), "{}", out[0]);
    assert!(t.core.env.media[&leg].iter().any(|c| matches!(
        c,
        MediaCommand::Configure {
            codec: crate::codec::Codec::Pcma,
            ..
        }
    )));
    t.send(&in_dialog("ACK", "r2", &tag, 2, "z9hG4bKc2"));
    let g729 = SDP
        .replace("RTP/AVP 0 101", "RTP/AVP 18")
        .replace("a=rtpmap:101 telephone-event/8000\r\n", "");
    let out = t.send(&reinvite("r2", &tag, 3, "z9hG4bKc3", Some(&g729)));
    assert_eq!(first_lines(&out), vec!["SIP/2.0 488 Not Acceptable Here"]);
    // A stale CSeq is refused; the call goes on.
    let out = t.send(&reinvite("r2", &tag, 3, "z9hG4bKc4", Some(SDP)));
    assert_eq!(first_lines(&out), vec!["SIP/2.0 500 Server Internal Error"]);
    assert_eq!(t.core.active(), 1);
}

#[test]
fn reinvite_without_sdp_gets_an_offer_and_the_ack_answer_configures_media() {
    let mut t = T::new(SimOptions::default());
    let tag = answered(&mut t, "r3");
    let leg = t.core.env.scripts[0].leg;
    let out = t.send(&reinvite("r3", &tag, 2, "z9hG4bKo1", None));
    assert!(
        out[0].contains("m=audio 20000 RTP/AVP 0 8 111 101"),
        "{}",
        out[0]
    );
    let answer = SDP
        .replace(" 0 101", " 8")
        .replace("a=rtpmap:101 telephone-event/8000\r\n", "");
    let ack = in_dialog("ACK", "r3", &tag, 2, "z9hG4bKo2").replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        ),
    );
    t.send(&ack);
    assert!(t.core.env.media[&leg].iter().any(|c| matches!(
        c,
        MediaCommand::Configure {
            codec: crate::codec::Codec::Pcma,
            ..
        }
    )));
}

fn with_trunk() -> SimOptions {
    use crate::call::trunks::TrunkLimits;
    use crate::server::sip_legs::SipTrunk;
    SimOptions {
        trunks: vec![SipTrunk {
            name: "carrier".into(),
            dest: "127.0.0.1:5080".parse().unwrap(),
            targets: vec!["127.0.0.1:5080".parse().unwrap()],
            transport: Transport::Udp,
            host_port: "127.0.0.1:5080".into(),
            tcp: false,
            credentials: None,
            route: Vec::new(),
            from_host: "127.0.0.1".into(),
            caller_name: None,
            send_pai: false,
            privacy: false,
            codecs: vec![crate::codec::Codec::Pcma],
            options_every: None,
            register: false,
        }],
        trunk_limits: vec![TrunkLimits {
            name: "carrier".into(),
            max_channels: 2,
            cps: 10,
            ring_timeout: Duration::from_secs(30),
            caller_id: Some("15550100".into()),
        }],
        ..SimOptions::default()
    }
}

/// The carrier's response to one of rivr's requests.
fn carrier_reply(req: &str, status: &str, tag: &str, extra: &str, body: &str) -> String {
    let h = |n: &str| {
        req.lines()
            .find(|l| l.starts_with(&format!("{n}:")))
            .map(|l| l[n.len() + 1..].trim().to_string())
            .unwrap()
    };
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag={tag}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}{ctype}Content-Length: {}\r\n\r\n{body}",
        h("Via"), h("From"), h("To"), h("Call-ID"), h("CSeq"), body.len()
    )
}

#[test]
fn dial_bridges_the_caller_to_a_trunk_party_and_reports_how_it_went() {
    use crate::call::control::DialRequest;
    let mut t = T::new(with_trunk());
    let tag = answered(&mut t, "d1");
    let call = t.core.env.scripts[0].call;
    let caller = t.core.env.scripts[0].leg;
    t.core.handle_sig(
        t.now,
        SigCommand::Dial {
            call,
            request: DialRequest {
                target: "15551234".into(),
                ..DialRequest::default()
            },
        },
    );
    let out = t.sent();
    let inv = out
        .iter()
        .find(|m| m.starts_with("INVITE sip:15551234@127.0.0.1:5080"))
        .expect("INVITE to the trunk")
        .clone();
    assert!(inv.contains("From: <sip:15550100@127.0.0.1>;tag="), "{inv}");
    assert!(inv.contains("RTP/AVP 8 101"), "{inv}");
    let far = t
        .core
        .env
        .specs
        .keys()
        .copied()
        .find(|l| *l != caller)
        .unwrap();
    let trunk: SocketAddr = "127.0.0.1:5080".parse().unwrap();
    let reply = |t: &mut T, msg: String| {
        t.core
            .handle_inbound(t.now, Transport::Udp, trunk, msg.as_bytes());
        t.sent()
    };
    reply(&mut t, carrier_reply(&inv, "180 Ringing", "far", "", ""));
    assert_eq!(t.core.env.bridge, vec![format!("ringback {caller} true")]);
    let answer = SDP.replace("RTP/AVP 0 101", "RTP/AVP 8 101");
    t.now += Duration::from_secs(3);
    let out = reply(
        &mut t,
        carrier_reply(
            &inv,
            "200 OK",
            "far",
            "Contact: <sip:gw@127.0.0.1:5080>\r\n",
            &answer,
        ),
    );
    assert!(
        out.iter()
            .any(|m| m.starts_with("ACK sip:gw@127.0.0.1:5080")),
        "{out:?}"
    );
    assert_eq!(
        &t.core.env.bridge[1..],
        &[
            format!("ringback {caller} false"),
            format!("join {caller}<-{far}"),
            format!("join {far}<-{caller}")
        ]
    );
    // The far party hangs up: the caller stays, the script hears it.
    t.now += Duration::from_secs(5);
    let from = inv.lines().find(|l| l.starts_with("From:")).unwrap()[5..]
        .trim()
        .to_string();
    let call_id = inv.lines().find(|l| l.starts_with("Call-ID:")).unwrap()[8..]
        .trim()
        .to_string();
    let bye = format!(
        "BYE sip:rivr@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKfb\r\n\
         From: <sip:15551234@127.0.0.1:5080>;tag=far\r\nTo: {from}\r\nCall-ID: {call_id}\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let out = reply(&mut t, bye);
    assert_eq!(first_lines(&out), vec!["SIP/2.0 200 OK"]);
    let (c, r) = &t.core.env.dials[0];
    assert_eq!(*c, call);
    assert_eq!(
        (r.outcome.as_str(), r.ring_ms, r.talk_ms),
        ("answered", 3000, 5000)
    );
    assert!(t.core.env.bridge.contains(&format!("unjoin {caller}")));
    assert_eq!(t.core.active(), 1, "the caller is still there");
    // The caller hangs up; the script ends: two CDR records, one call id.
    t.send(&in_dialog("BYE", "d1", &tag, 5, "z9hG4bKcb"));
    t.script_done("caller-hung-up");
    let cdrs = &t.core.env.cdrs;
    assert_eq!(cdrs.len(), 2);
    assert_eq!(cdrs[0].call_id, cdrs[1].call_id);
    assert_eq!(
        (cdrs[1].leg, cdrs[1].direction, cdrs[1].end),
        (1, "outbound", "remote-bye")
    );
    assert_eq!(cdrs[1].trunk.as_deref(), Some("carrier"));
    assert_eq!(t.core.env.held_ports, 0);
}

#[test]
fn a_dial_that_is_busy_leaves_the_caller_with_the_script() {
    use crate::call::control::DialRequest;
    let mut t = T::new(with_trunk());
    answered(&mut t, "d2");
    let call = t.core.env.scripts[0].call;
    t.core.handle_sig(
        t.now,
        SigCommand::Dial {
            call,
            request: DialRequest {
                target: "15559999".into(),
                ..DialRequest::default()
            },
        },
    );
    let inv = t
        .sent()
        .into_iter()
        .find(|m| m.starts_with("INVITE "))
        .unwrap();
    let trunk: SocketAddr = "127.0.0.1:5080".parse().unwrap();
    let busy = carrier_reply(&inv, "486 Busy Here", "far", "", "");
    t.core
        .handle_inbound(t.now, Transport::Udp, trunk, busy.as_bytes());
    let (_, r) = &t.core.env.dials[0];
    assert_eq!(
        (r.outcome.as_str(), r.sip_status, r.q850),
        ("busy", Some(486), Some(17))
    );
    assert_eq!(t.core.active(), 1);
}

/// A tagged call's dialog is told to its owner as it forms (after the
/// INVITE, at ringing, at the answer), and another core — the process
/// after a crash — ends the call from the last note: BYE in that dialog,
/// then `OrphanGone` once the carrier answers it.
#[test]
fn a_tagged_calls_dialog_is_noted_and_a_new_core_ends_it_from_the_note() {
    use crate::call::registry::OriginateRequest;
    use crate::server::sip_legs::DialogNote;
    let trunk: SocketAddr = "127.0.0.1:5080".parse().unwrap();
    let mut t = T::new(with_trunk());
    t.core.originate(
        t.now,
        OriginateRequest {
            target: "15551234".into(),
            trunk: Some("carrier".into()),
            tag: Some("a00000000000000ab".into()),
            ..OriginateRequest::default()
        },
    );
    let inv = t
        .sent()
        .into_iter()
        .find(|m| m.starts_with("INVITE "))
        .unwrap();
    assert!(inv.contains("Call-ID: a00000000000000ab."), "{inv}");
    let reply = |t: &mut T, msg: String| {
        t.core
            .handle_inbound(t.now, Transport::Udp, trunk, msg.as_bytes());
        t.sent()
    };
    reply(&mut t, carrier_reply(&inv, "180 Ringing", "far", "", ""));
    let answer = SDP.replace("RTP/AVP 0 101", "RTP/AVP 8 101");
    reply(
        &mut t,
        carrier_reply(
            &inv,
            "200 OK",
            "far",
            "Contact: <sip:gw@127.0.0.1:5080>\r\n",
            &answer,
        ),
    );
    let notes = &t.core.env.dialog_notes;
    let answered: Vec<bool> = notes
        .iter()
        .map(|n| match n {
            DialogNote::Dialog { tag, answered, .. } => {
                assert_eq!(tag, "a00000000000000ab");
                *answered
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(answered, [false, false, true]);
    let Some(DialogNote::Dialog { dialog, .. }) = notes.last().cloned() else {
        unreachable!()
    };
    assert_eq!(dialog.remote_tag.as_deref(), Some("far"));

    // The process died; a new one ends the call from the note.
    let mut n = T::new(with_trunk());
    n.core
        .end_orphan(n.now, "a00000000000000ab".into(), Some("carrier"), *dialog);
    let bye = n
        .sent()
        .into_iter()
        .find(|m| m.starts_with("BYE "))
        .expect("a BYE");
    assert!(
        bye.starts_with("BYE sip:gw@127.0.0.1:5080 SIP/2.0"),
        "{bye}"
    );
    assert!(bye.contains("Call-ID: a00000000000000ab."), "{bye}");
    assert!(n.core.env.dialog_notes.is_empty());
    n.core.handle_inbound(
        n.now,
        Transport::Udp,
        trunk,
        carrier_reply(&bye, "200 OK", "far", "", "").as_bytes(),
    );
    assert_eq!(
        n.core.env.dialog_notes,
        [DialogNote::OrphanGone {
            tag: "a00000000000000ab".into()
        }]
    );
    assert_eq!(n.core.legs.orphans(), 0);
    assert_eq!(n.core.tracked(), 0);
}

/// A drain on the virtual clock: the call in progress goes on to its own
/// BYE, every new INVITE and every OPTIONS ping is refused 503 with the
/// drain's Retry-After, and the drain ends when the call closes, well
/// before its deadline.
#[test]
fn draining_refuses_new_calls_and_pings_and_lets_the_call_in_progress_end() {
    use crate::server::drain::{DrainClock, DrainEnd, Step};
    let mut t = T::new(SimOptions::default());
    t.send(&invite("1000", "up", "z9hG4bK1", Some(SDP)));
    t.script(ScriptCommand::Answer).unwrap();
    let tag = to_tag(&t.sent()[0]);
    t.send(&in_dialog("ACK", "up", &tag, 1, "z9hG4bK2"));

    let mut drain = DrainClock::new(t.now, Duration::from_secs(60));
    t.core.set_draining(Some(drain.retry_after(t.now)));
    assert!(matches!(
        drain.poll(t.now, t.core.tracked()),
        Step::WaitUntil(_)
    ));
    t.advance(2000);

    let out = t.send(&invite("1000", "new", "z9hG4bK3", Some(SDP)));
    assert_eq!(
        first_lines(&out),
        vec!["SIP/2.0 100 Trying", "SIP/2.0 503 Service Unavailable"]
    );
    assert!(out[1].contains("\r\nRetry-After: 60\r\n"), "{}", out[1]);
    let ping = in_dialog("OPTIONS", "lb", "x", 1, "z9hG4bK4").replace(";tag=x", "");
    let out = t.send(&ping);
    assert_eq!(first_lines(&out), vec!["SIP/2.0 503 Service Unavailable"]);
    assert!(out[0].contains("\r\nRetry-After: 60\r\n"), "{}", out[0]);
    assert_eq!(
        t.core.env.scripts.len(),
        1,
        "no script for the refused call"
    );
    assert_eq!(
        t.core
            .registry
            .admission()
            .map(|a| a.stats().refused_draining),
        Some(1)
    );

    // The call in progress: its keepalive answered, then its own BYE.
    let out = t.send(&in_dialog("OPTIONS", "up", &tag, 2, "z9hG4bK5"));
    assert_eq!(first_lines(&out), vec!["SIP/2.0 200 OK"]);
    t.advance(5000);
    assert!(matches!(
        drain.poll(t.now, t.core.tracked()),
        Step::WaitUntil(_)
    ));
    let out = t.send(&in_dialog("BYE", "up", &tag, 3, "z9hG4bK6"));
    assert_eq!(first_lines(&out), vec!["SIP/2.0 200 OK"]);
    assert!(
        matches!(drain.poll(t.now, t.core.tracked()), Step::WaitUntil(_)),
        "the script has not returned yet"
    );
    t.script_done("caller-hung-up");
    assert_eq!(
        drain.poll(t.now, t.core.tracked()),
        Step::Done(DrainEnd::Empty)
    );
    assert_eq!(
        t.now.duration_since(drain.started()),
        Duration::from_secs(7)
    );
    let cdr = &t.core.env.cdrs[0];
    assert_eq!((cdr.end, cdr.outcome), ("remote-bye", "answered"));
}
