//! A PRI B-channel as a leg's packet path: 160-octet G.711 frames, one per
//! 20 ms, in the call's law, over the span's transport — a connected
//! `SOCK_SEQPACKET` socket (the socket span) or a DAHDI channel file on a
//! card (`pri::dahdi`). No RTP, no latching, no RTCP, no telephone-events
//! (keys go as tones); received frames are numbered as they arrive so the
//! listener's jitter buffer takes them like any stream (the channel is
//! isochronous: it stays at its floor). The channel may carry media as
//! soon as it is connected or open; a closed channel, or one that cannot
//! be connected or opened yet, is silence, and the path tries again once a
//! second (the peer listens on the timeslot's path; a Unix connect and a
//! DAHDI open never block).

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket, Type};

use super::commands::BChannelKind;
use crate::codec::{Codec, Law};
use crate::media::core::{MediaCore, Outgoing, Received};
use crate::media::send_gate::Flow;
use crate::pri::dahdi;

/// The SSRC the listener sees for a B-channel's frames.
const B_SSRC: u32 = 0x0b0b_0b0b;

/// How long a closed channel waits before connecting again.
const RECONNECT: Duration = Duration::from_secs(1);

/// An open channel: both read one frame per call and write one frame.
enum Channel {
    Socket(Socket),
    Dahdi(File),
}

impl Channel {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Channel::Socket(s) => (&*s).read(buf),
            Channel::Dahdi(f) => (&*f).read(buf),
        }
    }

    fn write(&self, frame: &[u8]) -> io::Result<usize> {
        match self {
            Channel::Socket(s) => s.send(frame),
            Channel::Dahdi(f) => (&*f).write(frame),
        }
    }

    /// A DAHDI channel with an event waiting (`ELAST`) takes it off, so
    /// its reads flow again; the span's state is the D-channel's business,
    /// so it is only logged. True when the error was that.
    fn took_event(&self, e: &io::Error) -> bool {
        let Channel::Dahdi(f) = self else {
            return false;
        };
        if !dahdi::event_pending(e) {
            return false;
        }
        match dahdi::take_event(f) {
            Ok(ev) => tracing::debug!(event = ev, "DAHDI B-channel event"),
            Err(e) => tracing::debug!(error = %e, "DAHDI B-channel event not read"),
        }
        true
    }
}

pub(super) struct BChannelPath {
    /// Connected or open, and non-blocking, while `open`.
    chan: Option<Channel>,
    open: bool,
    kind: BChannelKind,
    /// The law a DAHDI channel is set to.
    law: Law,
    /// Where the channel is; `None` for a path made from a socket.
    path: Option<PathBuf>,
    retry_at: Option<Instant>,
    seq: u16,
    timestamp: u32,
}

/// A non-blocking connection to the channel at `path`.
fn connect(path: &Path) -> io::Result<Socket> {
    let s = Socket::new(Domain::UNIX, Type::SEQPACKET, None)?;
    s.set_nonblocking(true)?;
    s.connect(&SockAddr::unix(path)?)?;
    Ok(s)
}

impl BChannelPath {
    /// `socket` is the B-channel's connection, set non-blocking here.
    #[cfg(test)]
    pub fn new(socket: Socket) -> io::Result<BChannelPath> {
        socket.set_nonblocking(true)?;
        Ok(BChannelPath::with(
            Some(Channel::Socket(socket)),
            None,
            BChannelKind::Socket,
            Law::Alaw,
        ))
    }

    /// `file` is an open DAHDI channel (a test's socket end), set
    /// non-blocking by the caller.
    #[cfg(test)]
    fn from_file(file: File) -> BChannelPath {
        BChannelPath::with(
            Some(Channel::Dahdi(file)),
            None,
            BChannelKind::Dahdi,
            Law::Alaw,
        )
    }

    fn with(
        chan: Option<Channel>,
        path: Option<PathBuf>,
        kind: BChannelKind,
        law: Law,
    ) -> BChannelPath {
        BChannelPath {
            open: chan.is_some(),
            chan,
            kind,
            law,
            path,
            retry_at: None,
            seq: 0,
            timestamp: 0,
        }
    }

    /// Connects to the channel the peer listens on at `path`, or opens
    /// the DAHDI channel there, in `codec`'s law; if it cannot yet, the
    /// path is silent and tries again each second.
    pub fn open(path: PathBuf, kind: BChannelKind, codec: Codec, now: Instant) -> BChannelPath {
        // A B-channel leg is G.711 (its span's law or its SETUP's).
        let law = codec.g711_law().unwrap_or(Law::Alaw);
        let mut p = BChannelPath::with(None, Some(path), kind, law);
        p.reconnect(now);
        p
    }

    fn reconnect(&mut self, now: Instant) {
        let Some(path) = &self.path else { return };
        let opened = match self.kind {
            BChannelKind::Socket => connect(path).map(Channel::Socket),
            BChannelKind::Dahdi => dahdi::open_bchannel(path, self.law).map(Channel::Dahdi),
        };
        match opened {
            Ok(c) => {
                self.chan = Some(c);
                self.open = true;
                self.retry_at = None;
            }
            Err(e) => {
                if self.retry_at.is_none() {
                    match self.kind {
                        BChannelKind::Socket => {
                            tracing::warn!(channel = %path.display(), error = %e, "cannot connect the B-channel; it is silent until it can")
                        }
                        BChannelKind::Dahdi => {
                            tracing::warn!(channel = %path.display(), error = %e, "cannot open the DAHDI B-channel; it is silent until it can")
                        }
                    }
                }
                self.chan = None;
                self.open = false;
                self.retry_at = Some(now + RECONNECT);
            }
        }
    }

    fn closed(&mut self, now: Instant) {
        self.open = false;
        self.chan = None;
        if self.path.is_some() {
            self.retry_at = Some(now + RECONNECT);
        }
    }

    /// Every frame received since the last tick, into `core`.
    pub fn receive(&mut self, now: Instant, buf: &mut [u8], core: &mut MediaCore) {
        if !self.open && self.retry_at.is_some_and(|t| now >= t) {
            self.reconnect(now);
        }
        while self.open {
            let Some(chan) = &self.chan else { break };
            match chan.read(buf) {
                Ok(0) => self.closed(now),
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
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if chan.took_event(&e) => continue,
                Err(_) => self.closed(now),
            }
        }
    }

    /// Media flows while the channel is connected.
    pub fn flow(&self) -> Option<Flow> {
        self.open.then_some(Flow::Send)
    }

    /// This tick's frame, when `open`; a muted or held tick sends nothing
    /// (the channel idles).
    pub fn send(&mut self, now: Instant, out: &Outgoing<'_>, open: bool) {
        if !open || !self.open {
            return;
        }
        let Some(chan) = &self.chan else { return };
        let frames: &[&[u8]] = match out {
            Outgoing::Audio(a) => &[a],
            Outgoing::Halves(h) => h,
            // Never asked for: the path has no telephone-events.
            Outgoing::Event(_) => &[],
        };
        let mut broken = false;
        for f in frames {
            if let Err(e) = chan.write(f) {
                // A DAHDI event (ELAST) loses this frame only; the next
                // read takes the event off.
                broken |= e.kind() != io::ErrorKind::WouldBlock && !dahdi::event_pending(&e);
            }
        }
        if broken {
            self.closed(now);
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
        path.send(t0, &Outgoing::Audio(&out), true);
        path.send(t0, &Outgoing::Audio(&out), false);
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

    #[test]
    fn a_channel_not_listened_on_yet_is_connected_a_second_later() {
        let dir = std::env::temp_dir().join(format!("rivr-bch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let at = dir.join("b1");
        let _ = std::fs::remove_file(&at);
        let t0 = Instant::now();
        let mut path = BChannelPath::open(at.clone(), BChannelKind::Socket, Codec::Pcma, t0);
        assert_eq!(path.flow(), None, "nobody listens yet");
        let listener = Socket::new(Domain::UNIX, Type::SEQPACKET, None).unwrap();
        listener.bind(&SockAddr::unix(&at).unwrap()).unwrap();
        listener.listen(4).unwrap();
        let mut core = MediaCore::new(Codec::Pcma, false, 20);
        let mut buf = [0u8; 2048];
        path.receive(t0 + Duration::from_millis(500), &mut buf, &mut core);
        assert_eq!(path.flow(), None, "not before a second has passed");
        path.receive(t0 + RECONNECT, &mut buf, &mut core);
        assert_eq!(path.flow(), Some(Flow::Send));
        let (peer, _) = listener.accept().unwrap();
        path.send(t0 + RECONNECT, &Outgoing::Audio(&frame(1)), true);
        let mut got = [0u8; 512];
        assert_eq!((&peer).read(&mut got).unwrap(), 160);
        // The peer goes; the channel is silent, then connects again.
        drop(peer);
        let t1 = t0 + RECONNECT * 2;
        path.receive(t1, &mut buf, &mut core);
        assert_eq!(path.flow(), None);
        path.receive(t1 + RECONNECT, &mut buf, &mut core);
        assert_eq!(path.flow(), Some(Flow::Send), "connected again");
        assert!(listener.accept().is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A DAHDI channel file carries frames like the socket (one end of a
    /// socket pair stands in for the device, read and written as a file).
    #[test]
    fn a_dahdi_channel_file_carries_the_frames_both_ways() {
        let (ours, peer) = Socket::pair(Domain::UNIX, Type::SEQPACKET, None).unwrap();
        ours.set_nonblocking(true).unwrap();
        let file = File::from(std::os::fd::OwnedFd::from(ours));
        let mut path = BChannelPath::from_file(file);
        let mut core = MediaCore::new(Codec::Pcma, false, 20);
        let mut buf = [0u8; 2048];
        let t0 = Instant::now();
        assert_eq!(path.flow(), Some(Flow::Send));
        peer.send(&frame(1)).unwrap();
        path.receive(t0, &mut buf, &mut core);
        assert_eq!(path.seq, 1, "one frame taken");
        path.send(t0, &Outgoing::Audio(&frame(2)), true);
        let mut got = [0u8; 512];
        let n = (&peer).read(&mut got).unwrap();
        assert_eq!(&got[..n], &frame(2)[..]);
        // A device that is gone is silence, and tried again a second later
        // (a path made from a file has nowhere to go back to).
        drop(peer);
        path.receive(t0, &mut buf, &mut core);
        assert_eq!(path.flow(), None);
    }

    /// A DAHDI B-channel whose device cannot be opened (missing here, or
    /// not a DAHDI channel) is silent and opened again each second.
    #[test]
    fn a_dahdi_channel_that_cannot_open_is_silent_and_retried_each_second() {
        let t0 = Instant::now();
        let mut core = MediaCore::new(Codec::Pcmu, false, 20);
        let mut buf = [0u8; 2048];
        for at in [
            "/nonexistent/dahdi/chan/001/001",
            "/dev/null",
            "/dev/dahdi/channel#7",
        ] {
            let mut path = BChannelPath::open(at.into(), BChannelKind::Dahdi, Codec::Pcmu, t0);
            assert_eq!(path.law, Law::Ulaw);
            assert_eq!(path.flow(), None, "{at}");
            assert_eq!(path.retry_at, Some(t0 + RECONNECT));
            path.receive(t0 + RECONNECT, &mut buf, &mut core);
            assert_eq!(path.flow(), None, "{at}");
            assert_eq!(path.retry_at, Some(t0 + RECONNECT * 2), "tried again");
            let out = frame(1);
            path.send(t0 + RECONNECT, &Outgoing::Audio(&out), true);
        }
    }
}
