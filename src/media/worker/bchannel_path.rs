//! A PRI B-channel as a leg's packet path (the socket span: one connected
//! `SOCK_SEQPACKET` socket carrying 160-octet G.711 frames, one per
//! 20 ms, in the span's law). No RTP, no latching, no RTCP, no
//! telephone-events (keys go as tones); received frames are numbered as
//! they arrive so the listener's jitter buffer takes them like any stream
//! (the channel is isochronous: it stays at its floor). The channel may
//! carry media as soon as it is connected; a closed socket is silence.

use std::io::Read as _;
use std::time::Instant;

use socket2::Socket;

use crate::media::core::{MediaCore, Outgoing, Received};
use crate::media::send_gate::Flow;

/// The SSRC the listener sees for a B-channel's frames.
const B_SSRC: u32 = 0x0b0b_0b0b;

pub(super) struct BChannelPath {
    /// Connected and non-blocking.
    socket: Socket,
    open: bool,
    seq: u16,
    timestamp: u32,
}

impl BChannelPath {
    /// `socket` is the B-channel's connection, set non-blocking here.
    #[allow(dead_code)] // Until the worker creates B-channel legs.
    pub fn new(socket: Socket) -> std::io::Result<BChannelPath> {
        socket.set_nonblocking(true)?;
        Ok(BChannelPath {
            socket,
            open: true,
            seq: 0,
            timestamp: 0,
        })
    }

    /// Every frame received since the last tick, into `core`.
    pub fn receive(&mut self, now: Instant, buf: &mut [u8], core: &mut MediaCore) {
        while self.open {
            match (&self.socket).read(buf) {
                Ok(0) => self.open = false,
                Ok(n) => {
                    let Some(payload) = buf.get(..n) else { break };
                    core.receive(
                        now,
                        Received::Audio {
                            seq: self.seq,
                            timestamp: self.timestamp,
                            ssrc: B_SSRC,
                            marker: false,
                            payload,
                        },
                    );
                    self.seq = self.seq.wrapping_add(1);
                    self.timestamp = self.timestamp.wrapping_add(n as u32);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => self.open = false,
            }
        }
    }

    /// Media flows while the channel is connected.
    pub fn flow(&self) -> Option<Flow> {
        self.open.then_some(Flow::Send)
    }

    /// This tick's frame, when `open`; a muted or held tick sends nothing
    /// (the channel idles).
    pub fn send(&mut self, out: &Outgoing<'_>, open: bool) {
        if !open || !self.open {
            return;
        }
        let frames: &[&[u8]] = match out {
            Outgoing::Audio(a) => &[a],
            Outgoing::Halves(h) => h,
            // Never asked for: the path has no telephone-events.
            Outgoing::Event(_) => &[],
        };
        for f in frames {
            if let Err(e) = self.socket.send(f) {
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    self.open = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;
    use crate::media::g711::{alaw_to_linear, linear_to_alaw};
    use socket2::{Domain, Type};

    /// Frame `k` of a noise-like signal: no two stretches alike, so the
    /// lag at which it is heard is found to the sample.
    fn frame(k: usize) -> [u8; 160] {
        let mut f = [0u8; 160];
        let mut x = (k as u32).wrapping_mul(2_654_435_761).wrapping_add(1);
        for b in f.iter_mut() {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            *b = linear_to_alaw(((x >> 16) as i16) / 4);
        }
        f
    }

    #[test]
    fn frames_from_the_channel_are_heard_and_the_cores_frames_go_out_whole() {
        let (ours, peer) = Socket::pair(Domain::UNIX, Type::SEQPACKET, None).unwrap();
        let mut path = BChannelPath::new(ours).unwrap();
        let mut core = MediaCore::new(Codec::Pcma, false, 20);
        let mut buf = [0u8; 2048];
        let t0 = Instant::now();
        let mut heard = Vec::new();
        for tick in 0..25usize {
            let now = t0 + std::time::Duration::from_millis(20 * tick as u64);
            peer.send(&frame(tick)).unwrap();
            path.receive(now, &mut buf, &mut core);
            core.hear(now);
            heard.extend_from_slice(core.heard());
            core.end_tick();
        }
        // Once the jitter buffer and the PLC's history (3.75 ms) have
        // filled, what the channel carried is heard sample for sample.
        let sent: Vec<i16> = (0..25).flat_map(frame).map(alaw_to_linear).collect();
        let lag = (0..=160 * 10)
            .find(|lag| heard.get(lag + 160..lag + 480) == sent.get(160..480))
            .expect("the channel's audio is heard whole");
        let n = heard.len() - lag;
        assert!(n >= 160 * 15, "lag {lag}");
        assert_eq!(heard[lag + 160..], sent[160..n], "lag {lag}");

        assert_eq!(path.flow(), Some(Flow::Send));
        let out = frame(99);
        path.send(&Outgoing::Audio(&out), true);
        path.send(&Outgoing::Audio(&out), false);
        let mut got = [0u8; 512];
        let n = (&peer).read(&mut got).unwrap();
        assert_eq!(&got[..n], &out[..]);
        peer.set_nonblocking(true).unwrap();
        assert!(
            (&peer).read(&mut got).is_err(),
            "a muted tick sends nothing"
        );

        drop(peer);
        path.receive(t0, &mut buf, &mut core);
        assert_eq!(path.flow(), None, "a closed channel carries nothing");
    }
}
