//! A leg's packets over RTP: its port pair, its [`RtpSession`] and the
//! reflection guard ([`SendGate`]) that decides whether anything may go to
//! the peer. It drains the sockets into the leg's [`MediaCore`] and puts
//! what the core gives into RTP; it knows nothing of prompts, keys or
//! joins. Audio goes out at the negotiated ptime: the core's 20 ms frames
//! (or pairs of 10 ms Opus packets) pass through a [`Packetizer`]; a new
//! ptime from a re-INVITE takes effect on the next tick, on the same
//! stream. Neither direction allocates or locks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::Codec;
use crate::media::core::{MediaCore, Outgoing, Received};
use crate::media::packetizer::Packetizer;
use crate::media::ports::{PortAllocator, PortPair};
use crate::media::rtp_session::{Inbound, RtpSession, RtpSessionConfig};
use crate::media::send_gate::{Flow, SendGate};

use super::ntp_now;
use super::recv_batch::{RecvBatch, BATCH};
use std::cell::RefCell;

pub(super) struct RtpPath {
    ports: PortPair,
    allocator: Arc<PortAllocator>,
    session: RtpSession,
    gate: SendGate,
    codec: Codec,
    /// False until the remote address is known (`Configure`).
    configured: bool,
    /// The media clock at the first packet of the key being sent as
    /// telephone-events (its events' timestamp).
    event_start: u32,
    /// 20 ms frames to packets of the peer's ptime.
    packetizer: Packetizer,
    /// A ptime to switch to on the next tick.
    next_ptime: Option<u32>,
    /// Ticks until the RTCP socket is read again ([`RTCP_READ_EVERY`]).
    rtcp_countdown: u32,
    /// The sockets are IPv6 ones (which header set a batch read uses).
    v6: bool,
}

thread_local! {
    /// The worker thread's batch of receive buffers and headers (not
    /// `Send`, so it lives with the thread rather than in the worker).
    static RECV: RefCell<RecvBatch> = RefCell::new(RecvBatch::new());
}

/// The RTCP socket is read every this many ticks (100 ms), not every
/// tick: reports come every few seconds, and a read that finds nothing is
/// still a system call — at 1,000 calls, 50,000 a second, a quarter of
/// the worker's calls into the kernel. Calls are spread over the ticks
/// by port so each tick reads a fifth of them.
const RTCP_READ_EVERY: u32 = 5;

impl Drop for RtpPath {
    fn drop(&mut self) {
        self.allocator.release(self.ports.port);
    }
}

impl RtpPath {
    pub fn new(
        ports: PortPair,
        allocator: Arc<PortAllocator>,
        session: RtpSessionConfig,
        codec: Codec,
        configured: bool,
        early_media_unverified: Duration,
        now: Instant,
    ) -> RtpPath {
        let packetizer = Packetizer::new(codec, session.ptime_ms);
        let mut session = RtpSession::new(session, now);
        session.set_wallclock(now, ntp_now());
        let rtcp_countdown = u32::from(ports.port / 2) % RTCP_READ_EVERY;
        let v6 = ports.rtp.local_addr().is_ok_and(|a| a.is_ipv6());
        RtpPath {
            v6,
            packetizer,
            ports,
            allocator,
            session,
            gate: SendGate::new(early_media_unverified),
            codec,
            configured,
            event_start: 0,
            next_ptime: None,
            rtcp_countdown,
        }
    }

    /// Whether telephone-events may be sent: negotiated, at the audio's
    /// clock (events share the audio's SSRC and timestamps).
    pub fn telephone_events(&self) -> bool {
        let cfg = self.session.config();
        cfg.telephone_event_pt.is_some() && cfg.telephone_event_rate == cfg.clock_rate
    }

    /// The negotiated media, when it was not known at the start.
    pub fn configure(&mut self, session: RtpSessionConfig, codec: Codec, now: Instant) {
        self.packetizer = Packetizer::new(codec, session.ptime_ms);
        self.next_ptime = None;
        self.session = RtpSession::new(session, now);
        self.session.set_wallclock(now, ntp_now());
        self.codec = codec;
        self.configured = true;
        self.gate.remote_changed();
    }

    /// Packets of `ptime_ms` from the next tick on: same SSRC, sequence
    /// and clock, what waits for a packet carried into the new ones
    /// ([`Packetizer::set_ptime`]).
    pub fn set_ptime(&mut self, ptime_ms: u32) {
        self.next_ptime = Some(ptime_ms);
    }

    pub fn set_remote(&mut self, rtp: SocketAddr, rtcp: SocketAddr) {
        self.session.set_remote(rtp, rtcp);
        self.gate.remote_changed();
    }

    pub fn start(&mut self, now: Instant, early: bool) {
        if early {
            self.gate.early_media(now);
        } else {
            self.gate.answered();
        }
    }

    pub fn peer_confirmed(&mut self) {
        self.gate.peer_confirmed();
    }

    /// Drains the RTP socket into `core`, and the RTCP socket every
    /// [`RTCP_READ_EVERY`] ticks.
    pub fn receive(&mut self, now: Instant, buf: &mut [u8], core: &mut MediaCore) {
        RECV.with_borrow_mut(|batch| loop {
            let n = batch.recv(&self.ports.rtp, self.v6);
            for i in 0..n {
                let Some((datagram, from)) = batch.datagram(i) else {
                    continue;
                };
                self.take_rtp(from, datagram, core);
            }
            if n < BATCH {
                break;
            }
        });
        if self.rtcp_countdown > 0 {
            self.rtcp_countdown -= 1;
            return;
        }
        self.rtcp_countdown = RTCP_READ_EVERY - 1;
        while let Ok((n, from)) = self.ports.rtcp.recv_from(buf) {
            if let Some(d) = buf.get(..n) {
                self.session.handle_rtcp(now, from, d);
            }
        }
    }

    /// One RTP datagram from `from`, read now, into `core`.
    fn take_rtp(&mut self, from: SocketAddr, datagram: &[u8], core: &mut MediaCore) {
        // The time the packet is read. Sockets are drained once per
        // tick, so a packet is seen up to one tick after it arrived; a
        // path whose packets land near a tick boundary shows up to
        // 20 ms of extra jitter, which the buffer's target then covers.
        let now = Instant::now();
        let inbound = self.session.handle_rtp(now, from, datagram);
        let packet = match inbound {
            Inbound::Audio {
                seq,
                timestamp,
                ssrc,
                marker,
                payload,
                ..
            } => Received::Audio {
                seq,
                timestamp,
                ssrc,
                marker,
                payload,
            },
            Inbound::TelephoneEvent {
                seq,
                timestamp,
                ssrc,
                marker,
                payload,
            } => Received::Event {
                seq,
                timestamp,
                ssrc,
                marker,
                payload,
            },
            Inbound::OtherPayload { seq, ssrc, .. } => Received::NotAudio { seq, ssrc },
            Inbound::Dropped(_) => return,
        };
        // Latching accepted it: it came from where media is sent.
        self.gate.peer_heard(now);
        core.receive(now, packet);
    }

    /// What the reflection guard allows this tick; `None` while the
    /// remote address is unknown.
    pub fn flow(&self, now: Instant) -> Option<Flow> {
        self.configured.then(|| self.gate.flow(now))
    }

    /// A frame held back: RTP time still follows real time, so the peer's
    /// jitter buffer sees a pause, not late packets, when media resumes.
    pub fn hold(&mut self) {
        // Audio waiting for a packet is let go with the frame: the clock
        // runs past both.
        let pending = self.packetizer.pending_samples();
        self.packetizer.clear();
        if let Some(ptime) = self.next_ptime.take() {
            self.packetizer.set_ptime(ptime, |_, _| {});
        }
        self.session
            .skip_audio(self.codec.timestamp_step_20ms().wrapping_add(pending));
    }

    /// Puts this tick's output in RTP; sends it when `open`, or lets the
    /// media clock run past it (muted).
    pub fn send(&mut self, now: Instant, out: &Outgoing<'_>, open: bool, buf: &mut [u8]) {
        if matches!(out, Outgoing::Audio(_) | Outgoing::Halves(_)) && !open {
            return self.hold();
        }
        let Self {
            session,
            ports,
            packetizer,
            next_ptime,
            ..
        } = self;
        let mut write = |payload: &[u8], samples: u32| {
            let n = session.write_audio(now, payload, samples, buf);
            transmit(ports, session, n.filter(|_| open), buf);
        };
        if let Some(ptime) = next_ptime.take() {
            packetizer.set_ptime(ptime, &mut write);
        }
        match out {
            Outgoing::Event(e) => {
                if e.first {
                    // Audio still waiting goes first, as a shorter packet,
                    // so the event starts at the true media time.
                    packetizer.flush(&mut write);
                    self.event_start = session.next_timestamp();
                }
                let ts = self.event_start.wrapping_add(e.offset);
                let n = session.write_event(now, e.bytes(), ts, e.first, buf);
                transmit(ports, session, n.filter(|_| open), buf);
            }
            Outgoing::Audio(payload) => packetizer.push(payload, &mut write),
            Outgoing::Halves(halves) => {
                for half in halves {
                    packetizer.push(half, &mut write);
                }
            }
        }
    }

    /// Any RTCP report due; one due while the guard is shut waits for it.
    pub fn send_reports(&mut self, now: Instant, buf: &mut [u8], open: bool) {
        if open && self.session.poll_timeout().is_some_and(|t| t <= now) {
            if let Some(n) = self.session.poll_rtcp(now, buf) {
                if let Some(pkt) = buf.get(..n) {
                    let _ = self.ports.rtcp.send_to(pkt, self.session.remote_rtcp());
                }
            }
        }
    }

    /// The leg ended: RTCP BYE, if the peer may be sent to at all.
    pub fn close(&mut self, now: Instant, buf: &mut [u8]) {
        if !self.gate.may_send(now) {
            return;
        }
        if let Some(n) = self.session.write_bye(buf) {
            if let Some(pkt) = buf.get(..n) {
                let _ = self.ports.rtcp.send_to(pkt, self.session.remote_rtcp());
            }
        }
    }

    /// For the log when the leg ends.
    pub fn stats(&self) -> &crate::media::rtp_session::RtpStats {
        self.session.stats()
    }
}

/// Sends the `written` bytes of `buf` to the peer.
fn transmit(ports: &PortPair, session: &RtpSession, written: Option<usize>, buf: &[u8]) {
    if let Some(pkt) = written.and_then(|n| buf.get(..n)) {
        let _ = ports.rtp.send_to(pkt, session.remote_rtp());
    }
}
