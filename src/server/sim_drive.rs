//! The whole-server fuzz target's body: arbitrary bytes become a run of
//! the real signalling core (`sim::sim_core`) on a virtual clock — raw
//! datagrams and TCP messages from a few sources, INVITEs built from a
//! template and then mutated (so inputs reach routing, admission, SDP and
//! media setup behind a valid INVITE), in-dialog requests that use the
//! tags rivr really sent, script verbs, time passing, shutdown. After the
//! run every call is ended and the invariants are checked: no panic, and
//! nothing left behind — no call, leg, RTP port or media.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::sim::{sim_core, SimOptions};
use crate::call::channel::SigCommand;
use crate::call::registry::ScriptCommand;
use crate::sip::message::Transport;

/// Reads the fuzz input as a sequence of small integers and byte runs;
/// past the end it yields zeros, so every input is a valid program.
struct Input<'a> {
    data: &'a [u8],
    at: usize,
}

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at = self.at.saturating_add(1);
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn bytes(&mut self, max: usize) -> &[u8] {
        let n = usize::from(self.u16()).min(max);
        let start = self.at.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.at = end;
        self.data.get(start..end).unwrap_or(&[])
    }

    fn done(&self) -> bool {
        self.at >= self.data.len()
    }
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.9\r\ns=-\r\nc=IN IP4 127.0.0.9\r\nt=0 0\r\n\
                   m=audio 40000 RTP/AVP 0 8 111 101\r\na=rtpmap:111 opus/48000/2\r\n\
                   a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";

/// A call the driver placed: what it sent and what rivr answered.
struct Placed {
    call_id: String,
    invite: Vec<u8>,
    source: SocketAddr,
    to_tag: Option<String>,
    cseq: u32,
}

fn source(i: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1 + i % 4], 5070 + u16::from(i % 2)))
}

fn invite(number: &str, call_id: &str, branch: u32, sdp: bool) -> Vec<u8> {
    let body = if sdp { SDP } else { "" };
    // Every other call asks rivr to refresh its session (RFC 4028), so
    // time passing sends rivr's own re-INVITEs and UPDATEs.
    let timer = if branch % 2 == 1 {
        "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\n"
    } else {
        ""
    };
    let ctype = if sdp {
        "Content-Type: application/sdp\r\n"
    } else {
        ""
    };
    format!(
        "INVITE sip:{number}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bK{branch}\r\n\
         From: \"Fuzz\" <sip:fuzz@127.0.0.9>;tag=f{branch}\r\nTo: <sip:{number}@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:fuzz@127.0.0.9:5070>\r\n\
         Max-Forwards: 70\r\nX-Custom: v\r\n{timer}{ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn in_dialog(p: &Placed, method: &str, branch: u32) -> Vec<u8> {
    let tag = p.to_tag.as_deref().unwrap_or("none");
    let from_tag = String::from_utf8_lossy(&p.invite)
        .split(";tag=")
        .nth(1)
        .and_then(|s| s.split("\r\n").next())
        .unwrap_or("f0")
        .to_string();
    format!(
        "{method} sip:rivr@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bKd{branch}\r\n\
         From: <sip:fuzz@127.0.0.9>;tag={from_tag}\r\nTo: <sip:1000@127.0.0.1>;tag={tag}\r\n\
         Call-ID: {}\r\nCSeq: {} {method}\r\nMax-Forwards: 70\r\nContent-Type: application/dtmf-relay\r\n\
         Content-Length: 10\r\n\r\nSignal=5\r\n",
        p.call_id, p.cseq
    )
    .into_bytes()
}

/// The To tag of a response to `call_id`, if `bytes` is one.
fn to_tag_of(bytes: &[u8], call_id: &str) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    if !text.starts_with("SIP/2.0 2") || !text.contains(&format!("Call-ID: {call_id}\r\n")) {
        return None;
    }
    let to = text.lines().find(|l| l.starts_with("To:"))?;
    Some(to.split("tag=").nth(1)?.trim().to_string())
}

/// One fuzz input through the whole server.
pub fn run(data: &[u8]) {
    let _ = run_report(data);
}

/// What a run reached, for tests that check the seeds go deep.
#[derive(Debug, Default)]
pub struct Report {
    pub scripts_started: usize,
    pub answered: usize,
    pub cdrs: usize,
    pub transmits: usize,
}

/// [`run`], saying what the run reached.
pub fn run_report(data: &[u8]) -> Report {
    let mut report = Report::default();
    let mut input = Input { data, at: 0 };
    let opts = SimOptions {
        max_calls: 1 + usize::from(input.u8() % 8),
        max_cps: 1 + u32::from(input.u8() % 50),
        per_source_cps: 1 + u32::from(input.u8() % 30),
        routes: vec![
            ("1000".into(), "menu.rhai".into()),
            ("*".into(), "default.rhai".into()),
        ],
        ..SimOptions::default()
    };
    let t0 = Instant::now();
    let mut now = t0;
    let mut core = sim_core(&opts, now);
    let mut placed: Vec<Placed> = Vec::new();
    let mut branch = 0u32;
    let mut ops = 0;
    while !input.done() && ops < 256 {
        ops += 1;
        branch = branch.wrapping_add(1);
        match input.u8() % 9 {
            0 => {
                let src = source(input.u8());
                let transport = if input.u8() % 4 == 0 {
                    Transport::Tcp(u64::from(input.u8() % 3))
                } else {
                    Transport::Udp
                };
                let bytes = input.bytes(4096).to_vec();
                core.handle_inbound(now, transport, src, &bytes);
            }
            1 | 2 => {
                let number = ["1000", "2000", "999", ""][usize::from(input.u8() % 4)];
                let call_id = format!("fz{}", input.u16());
                let mut msg = invite(number, &call_id, branch, input.u8() % 5 != 0);
                // A few byte mutations keep most of the INVITE valid.
                for _ in 0..(input.u8() % 4) {
                    let at = usize::from(input.u16()) % msg.len().max(1);
                    let b = input.u8();
                    if let Some(x) = msg.get_mut(at) {
                        *x = b;
                    }
                }
                let src = source(input.u8());
                core.handle_inbound(now, Transport::Udp, src, &msg);
                placed.push(Placed {
                    call_id,
                    invite: msg,
                    source: src,
                    to_tag: None,
                    cseq: 1,
                });
                if placed.len() > 32 {
                    placed.remove(0);
                }
            }
            3 => {
                let n = placed.len().max(1);
                let i = usize::from(input.u8()) % n;
                let method = [
                    "ACK", "BYE", "CANCEL", "INFO", "OPTIONS", "INVITE", "UPDATE",
                ][usize::from(input.u8() % 7)];
                if let Some(p) = placed.get_mut(i) {
                    if method != "ACK" && method != "CANCEL" {
                        p.cseq = p.cseq.saturating_add(1);
                    }
                    let msg = if method == "CANCEL" {
                        let text = String::from_utf8_lossy(&p.invite).into_owned();
                        text.replacen("INVITE sip:", "CANCEL sip:", 1)
                            .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL")
                            .into_bytes()
                    } else {
                        in_dialog(p, method, branch)
                    };
                    let src = p.source;
                    core.handle_inbound(now, Transport::Udp, src, &msg);
                }
            }
            4 | 5 => {
                let scripts = &core.env.scripts;
                if scripts.is_empty() {
                    continue;
                }
                let i = usize::from(input.u8()) % scripts.len();
                let call = scripts[i].call;
                let cmd = match input.u8() % 7 {
                    0 | 1 => Some(ScriptCommand::Answer),
                    2 => Some(ScriptCommand::Ring {
                        early_media: input.u8() % 2 == 0,
                    }),
                    3 => Some(ScriptCommand::Reject {
                        status: input.u16() % 800,
                    }),
                    4 => Some(ScriptCommand::Hangup),
                    5 => {
                        core.handle_sig(
                            now,
                            SigCommand::ScriptDone {
                                call,
                                outcome: "completed".into(),
                            },
                        );
                        None
                    }
                    _ => {
                        core.handle_sig(now, SigCommand::MediaFailed(call));
                        None
                    }
                };
                if let Some(cmd) = cmd {
                    let (reply, rx) = std::sync::mpsc::sync_channel(1);
                    core.handle_sig(now, SigCommand::Script { call, cmd, reply });
                    // Every verb is answered, whatever state the call is in.
                    assert!(rx.try_recv().is_ok(), "a script verb got no reply");
                }
            }
            6 | 7 => {
                now += Duration::from_millis(u64::from(input.u16()) * 2);
                while let Some(t) = core.poll_timeout() {
                    if t > now {
                        break;
                    }
                    core.handle_timeout(t.max(t0));
                }
            }
            _ => core.hangup_all(now),
        }
        while let Some(t) = core.poll_transmit() {
            report.transmits += 1;
            for p in placed.iter_mut() {
                if p.to_tag.is_none() {
                    p.to_tag = to_tag_of(&t.bytes, &p.call_id);
                }
            }
        }
    }
    // The end: every call is ended, every script finishes, every timer runs.
    core.hangup_all(now);
    let calls: Vec<_> = core.env.scripts.iter().map(|s| s.call).collect();
    for call in calls {
        core.handle_sig(
            now,
            SigCommand::ScriptDone {
                call,
                outcome: "completed".into(),
            },
        );
    }
    now += Duration::from_secs(120);
    while let Some(t) = core.poll_timeout() {
        if t > now {
            break;
        }
        core.handle_timeout(t);
    }
    core.flush_unfinished(now);
    while core.poll_transmit().is_some() {}
    assert_eq!(core.registry.tracked(), 0, "a call was never closed");
    assert!(
        core.legs.is_empty(),
        "the SIP glue kept {} legs",
        core.legs.len()
    );
    assert_eq!(core.env.held_ports, 0, "RTP ports leaked");
    assert!(core.env.media.is_empty(), "media left running");
    assert_eq!(core.endpoint.active_calls(), 0, "the SIP core kept calls");
    assert_eq!(
        core.endpoint.active_transactions(),
        0,
        "the SIP core kept transactions"
    );
    report.scripts_started = core.env.scripts.len();
    report.cdrs = core.env.cdrs.len();
    report.answered = core.env.cdrs.iter().filter(|c| c.answered).count();
    report
}

/// Seed programs: a plain call answered and hung up; a late offer; a
/// CANCEL; a flood from one source; a 404.
pub fn seeds() -> Vec<Vec<u8>> {
    // limits, then: INVITE(1000, sdp) · answer · wait · ACK · BYE · done
    vec![
        vec![
            7, 10, 10, // max_calls, max_cps, per_source_cps
            1, 0, 1, 0, 1, 0, 0, // INVITE to 1000, call-id 1, sdp, no mutation, source 0
            4, 0, 0, // answer script 0
            6, 100, 0, // 200 ms
            3, 0, 0, // ACK
            6, 0xe8, 3, // 2 s
            3, 0, 1, // BYE
            4, 0, 5, // script done
        ],
        vec![
            7, 10, 10, 1, 1, 2, 0, 0, 0, 0, 4, 0, 2, 0, 3, 0, 2, 6, 0, 0x80, 4, 0, 5,
        ],
        vec![
            3, 40, 2, 1, 0, 1, 0, 1, 0, 0, 1, 0, 2, 0, 1, 0, 0, 1, 0, 3, 0, 1, 0, 0, 1, 0, 4, 0, 1,
            0, 0, 6, 0xff, 0xff, 8,
        ],
        vec![7, 10, 10, 1, 2, 9, 0, 1, 0, 0, 6, 0x10, 0x27],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_run_clean_and_reach_calls() {
        let reports: Vec<Report> = seeds().iter().map(|s| run_report(s)).collect();
        // The first seed is a whole call: started, answered, closed.
        let r = &reports[0];
        assert_eq!((r.scripts_started, r.answered, r.cdrs), (1, 1, 1), "{r:?}");
        assert!(reports.iter().all(|r| r.transmits > 0), "{reports:?}");
    }

    /// A bounded random run on stable (the fuzz harness runs longer).
    #[test]
    fn random_programs_never_panic_or_leak() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..300 {
            let mut data = seeds()[rng.gen_range(0..4)].clone();
            for _ in 0..rng.gen_range(0..24) {
                let at = rng.gen_range(0..=data.len());
                data.insert(at, rng.gen());
            }
            run(&data);
        }
    }
}
