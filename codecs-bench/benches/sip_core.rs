//! The SIP core's cost per short call while it holds many finished
//! transactions (issue 18).
//!
//! A server taking R calls a second keeps every INVITE transaction for
//! 32 s after its 2xx (RFC 6026 Timer L) and every BYE for Timer K, so at
//! 1,200 calls/s some 38,000 transactions are alive. Each iteration here
//! is one whole short call through `sip::endpoint::Endpoint` on a virtual
//! clock — INVITE, answer, ACK, rivr's BYE and its 200 — with
//! `poll_timeout` after every event and `handle_timeout` whenever a timer
//! is due, as the server's loop does; the clock advances 32 s / N per call
//! so that N INVITE transactions linger. A core whose per-event work
//! scans its transactions shows the cost growing with N.
//!
//! Before/after a change: `cargo bench --bench sip_core -- --save-baseline
//! before` on the old tree, then `-- --baseline before` on the new one
//! (same target directory), or `tests/load/compare.sh`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rivr::sip::endpoint::{Endpoint, EndpointConfig, Event, Output};
use rivr::sip::message::Transport;
use rivr::sip::transaction::TimerConfig;

const PEER: &str = "127.0.0.1:5070";
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n";
/// How long an answered INVITE's transaction lingers (64·T1).
const LINGER: Duration = Duration::from_secs(32);

struct Sim {
    ep: Endpoint,
    now: Instant,
    step: Duration,
    peer: SocketAddr,
    n: u64,
}

impl Sim {
    fn new(lingering: u32) -> Sim {
        let step = if lingering == 0 {
            LINGER * 2
        } else {
            LINGER / lingering
        };
        Sim {
            ep: Endpoint::new(EndpointConfig {
                local_addr: "127.0.0.1:5060".parse().expect("address"),
                user_agent: "rivr-bench".into(),
                timers: TimerConfig::default(),
                seed: 7,
                session: Default::default(),
                session_ask: None,
            }),
            now: Instant::now(),
            step,
            peer: PEER.parse().expect("address"),
            n: 0,
        }
    }

    /// Feeds bytes from the peer, then polls as the server loop does.
    fn input(&mut self, bytes: &[u8]) -> Vec<Output> {
        self.ep
            .handle_input(self.now, Transport::Udp, self.peer, bytes);
        self.outputs()
    }

    fn outputs(&mut self) -> Vec<Output> {
        let out: Vec<Output> = std::iter::from_fn(|| self.ep.poll_output()).collect();
        let _ = self.ep.poll_timeout();
        out
    }

    fn tick(&mut self) {
        self.now += self.step;
        while self.ep.poll_timeout().is_some_and(|t| t <= self.now) {
            self.ep.handle_timeout(self.now);
            let _ = self.outputs();
        }
    }

    /// One short call from INVITE to the 200 for rivr's BYE.
    fn call(&mut self) {
        self.tick();
        self.n += 1;
        let n = self.n;
        let invite = format!(
            "INVITE sip:1000@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PEER};branch=z9hG4bKi{n};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:caller@127.0.0.1>;tag=f{n}\r\nTo: <sip:1000@127.0.0.1>\r\n\
             Call-ID: c{n}@bench\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{PEER}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
            SDP.len()
        );
        let call = self
            .input(invite.as_bytes())
            .into_iter()
            .find_map(|o| match o {
                Output::Event(Event::IncomingCall { call, .. }) => Some(call),
                _ => None,
            });
        let Some(call) = call else {
            panic!("call {n}: no IncomingCall");
        };
        self.ep.answer(self.now, call, SDP).expect("answer");
        let ok = self.outputs();
        let to_tag = header_param(&sent(&ok), "To:", "tag=").expect("To tag in the 200");
        let ack = format!(
            "ACK sip:rivr@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PEER};branch=z9hG4bKa{n}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:caller@127.0.0.1>;tag=f{n}\r\n\
             To: <sip:1000@127.0.0.1>;tag={to_tag}\r\nCall-ID: c{n}@bench\r\nCSeq: 1 ACK\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let _ = self.input(ack.as_bytes());
        self.ep.hangup(self.now, call).expect("hangup");
        let bye = sent(&self.outputs());
        // The 200 echoes the BYE's Via, From, To, Call-ID and CSeq.
        let mut ok = String::from("SIP/2.0 200 OK\r\n");
        for line in bye.lines() {
            if ["Via:", "From:", "To:", "Call-ID:", "CSeq:"]
                .iter()
                .any(|h| line.starts_with(h))
            {
                ok.push_str(line);
                ok.push_str("\r\n");
            }
        }
        ok.push_str("Content-Length: 0\r\n\r\n");
        let _ = self.input(ok.as_bytes());
    }
}

fn sent(outs: &[Output]) -> String {
    outs.iter()
        .filter_map(|o| match o {
            Output::Transmit { bytes, .. } => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        })
        .next_back()
        .unwrap_or_default()
}

fn header_param(msg: &str, header: &str, param: &str) -> Option<String> {
    let line = msg.lines().find(|l| l.starts_with(header))?;
    let rest = line.split(param).nth(1)?;
    Some(rest.split([';', '>', ' ']).next()?.trim().to_string())
}

fn short_calls(c: &mut Criterion) {
    let mut g = c.benchmark_group("sip_core/short_call");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(3));
    for lingering in [0u32, 4_000, 38_400] {
        let mut sim = Sim::new(lingering);
        // Fill the core to its steady state first.
        let warm = if lingering == 0 { 10 } else { lingering + 500 };
        for _ in 0..warm {
            sim.call();
        }
        g.bench_with_input(
            BenchmarkId::from_parameter(lingering),
            &lingering,
            |b, _| b.iter(|| sim.call()),
        );
    }
    g.finish();
}

criterion_group!(benches, short_calls);
criterion_main!(benches);
