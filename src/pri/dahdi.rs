//! The DAHDI span transport: a span on a real E1/T1 card, whose D-channel
//! and B-channels are DAHDI channel device files (dahdi-linux). It is built
//! to DAHDI's user interface (`include/dahdi/user.h`) and to the way
//! Asterisk's chan_dahdi opens PRI channels, and it is **not tested against
//! a card** on the machine it was written on (docs/pri.md, "DAHDI").
//!
//! This module owns the device path forms ([`DahdiPath`]), opening and
//! setting up a channel, the D-channel's framing and the meaning of
//! DAHDI's events for a span ([`event_action`]). The ioctls themselves,
//! the only `unsafe` involved, are in the `dahdi-ioctl` crate.
//!
//! The framing is the socket span's: one read gives one HDLC frame
//! followed by its two FCS octets, one write takes a frame followed by two
//! octets of room. DAHDI computes the FCS on transmit and checks it on
//! receive (a bad frame comes as a `BADFCS` event, not as data), so rivr
//! strips the two octets unread and sends two zero octets. While an event
//! waits on a channel, its reads and writes fail with `ELAST`; the event is
//! then fetched with `DAHDI_GETEVENT`. Every channel is opened
//! non-blocking: the D-channel waits under tokio's reactor (`POLLPRI` says
//! an event is waiting), a B-channel is read once a media tick like the
//! socket span's.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};

use dahdi_ioctl::{event, BufferInfo};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::dchannel::Received;
use super::socket::{strip_fcs, FCS_LEN};
use crate::codec::Law;

/// DAHDI's highest channel number (`DAHDI_MAX_CHANNELS`).
const MAX_CHANNEL: u32 = 1024;

/// The D-channel's buffers, as Asterisk's chan_dahdi sets them on a PRI
/// D-channel (`prepare_pri`: both policies immediate, 32 buffers of 1024
/// octets): a Q.921 frame is at most 260 octets with its FCS, and 32 of
/// them ride out a burst (a whole window both ways, and then some) while
/// the task is busy. The buffer size is also the channel's block size, the
/// most one read returns, so no separate `DAHDI_SET_BLOCKSIZE` is made;
/// chan_dahdi makes none on D-channels either.
const D_BUFFERS: BufferInfo = BufferInfo {
    txbufpolicy: dahdi_ioctl::policy::IMMEDIATE,
    rxbufpolicy: dahdi_ioctl::policy::IMMEDIATE,
    numbufs: 32,
    bufsize: 1024,
    readbufs: 0,
    writebufs: 0,
};

/// A B-channel's block: one 20 ms frame of 8 kHz G.711, what the media
/// worker reads and writes once a tick (Asterisk's `READ_SIZE` too).
const B_BLOCK: i32 = 160;

/// A B-channel's buffers: chan_dahdi's default for every channel (policy
/// immediate, 4 buffers), each one block.
const B_BUFFERS: BufferInfo = BufferInfo {
    txbufpolicy: dahdi_ioctl::policy::IMMEDIATE,
    rxbufpolicy: dahdi_ioctl::policy::IMMEDIATE,
    numbufs: 4,
    bufsize: B_BLOCK,
    readbufs: 0,
    writebufs: 0,
};

/// The largest D-channel read: a block.
const MAX_READ: usize = 1024;

/// Where a DAHDI channel is, as a span's `dchannel` or `bchannels` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DahdiPath {
    /// A channel's own device node (`/dev/dahdi/chan/001/016`, DAHDI's
    /// span/position naming), used as it is.
    Node(PathBuf),
    /// The generic channel device (`/dev/dahdi/channel#16`) bound to a
    /// channel number with `DAHDI_SPECIFY` after the open.
    Specify { device: PathBuf, channel: u32 },
}

/// Why a path names no DAHDI channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("{0:?} after '#' is not a DAHDI channel number (1-1024)")]
    BadChannel(String),
    #[error("nothing before '#' (like \"/dev/dahdi/channel#16\")")]
    NoDevice,
}

impl DahdiPath {
    /// `device#N` is the generic device and channel N; anything else is a
    /// channel's own node. Only the last `#` counts.
    pub fn parse(path: &Path) -> Result<DahdiPath, PathError> {
        let Some((device, number)) = path.to_str().and_then(|s| s.rsplit_once('#')) else {
            return Ok(DahdiPath::Node(path.to_path_buf()));
        };
        if device.is_empty() {
            return Err(PathError::NoDevice);
        }
        let channel = number
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_CHANNEL).contains(n) && number.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| PathError::BadChannel(number.to_string()))?;
        Ok(DahdiPath::Specify {
            device: PathBuf::from(device),
            channel,
        })
    }

    /// Opens the channel, non-blocking, and binds it when it is named by
    /// number.
    pub fn open(&self) -> io::Result<File> {
        match self {
            DahdiPath::Node(p) => dahdi_ioctl::open(p),
            DahdiPath::Specify { device, channel } => {
                let f = dahdi_ioctl::open(device)?;
                // ≤ 1024 by `parse`.
                let n = i32::try_from(*channel).unwrap_or(i32::MAX);
                dahdi_ioctl::specify(f.as_fd(), n).map_err(|e| context("DAHDI_SPECIFY", e))?;
                Ok(f)
            }
        }
    }
}

/// `e` with the ioctl that failed, keeping its kind.
fn context(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Opens the channel at `path` (either form of [`DahdiPath`]).
fn open_channel(path: &Path) -> io::Result<File> {
    DahdiPath::parse(path)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        .open()
}

/// Opens a B-channel for the media worker: 160-octet blocks, chan_dahdi's
/// buffers, the call's law, audio mode. The file is non-blocking; it
/// carries the channel while open (DAHDI resets the law on close).
pub fn open_bchannel(path: &Path, law: Law) -> io::Result<File> {
    let f = open_channel(path)?;
    let fd = f.as_fd();
    dahdi_ioctl::set_blocksize(fd, B_BLOCK).map_err(|e| context("DAHDI_SET_BLOCKSIZE", e))?;
    dahdi_ioctl::set_bufinfo(fd, &B_BUFFERS).map_err(|e| context("DAHDI_SET_BUFINFO", e))?;
    let law = match law {
        Law::Alaw => dahdi_ioctl::Law::Alaw,
        Law::Ulaw => dahdi_ioctl::Law::Mulaw,
    };
    dahdi_ioctl::set_law(fd, law).map_err(|e| context("DAHDI_SETLAW", e))?;
    dahdi_ioctl::audio_mode(fd, true).map_err(|e| context("DAHDI_AUDIOMODE", e))?;
    Ok(f)
}

/// Takes the next event off a channel (`DAHDI_GETEVENT`).
pub fn take_event(f: &File) -> io::Result<i32> {
    dahdi_ioctl::get_event(f.as_fd()).map_err(|e| context("DAHDI_GETEVENT", e))
}

/// Whether a failed read or write means "an event is waiting" (`ELAST`).
pub fn event_pending(e: &io::Error) -> bool {
    e.raw_os_error() == Some(dahdi_ioctl::ELAST)
}

/// What the span's line did, as the D-channel driver needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEvent {
    /// The span went into alarm: the link is down.
    Alarm,
    /// The alarm cleared: establish the link again.
    NoAlarm,
}

/// An HDLC receive error DAHDI reports as an event; Q.921 recovers from
/// the lost frame by itself, so these are counted and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    BadFcs,
    Abort,
    Overrun,
}

/// What a `DAHDI_GETEVENT` value means for a span's channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAction {
    Line(LineEvent),
    Frame(FrameError),
    /// The device is gone: close it (and open it again later).
    Removed,
    /// Nothing for a PRI channel (none, or an analog-line event).
    Ignore,
}

/// Maps DAHDI's event numbers (user.h) to what the span does about them.
pub fn event_action(ev: i32) -> EventAction {
    match ev {
        event::ALARM => EventAction::Line(LineEvent::Alarm),
        event::NOALARM => EventAction::Line(LineEvent::NoAlarm),
        event::BADFCS => EventAction::Frame(FrameError::BadFcs),
        event::ABORT => EventAction::Frame(FrameError::Abort),
        event::OVERRUN => EventAction::Frame(FrameError::Overrun),
        event::REMOVED => EventAction::Removed,
        _ => EventAction::Ignore,
    }
}

/// The HDLC errors a D-channel has seen since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameErrors {
    pub bad_fcs: u64,
    pub abort: u64,
    pub overrun: u64,
}

impl FrameErrors {
    /// Counts one; returns the new count of its kind.
    fn count(&mut self, e: FrameError) -> u64 {
        let n = match e {
            FrameError::BadFcs => &mut self.bad_fcs,
            FrameError::Abort => &mut self.abort,
            FrameError::Overrun => &mut self.overrun,
        };
        *n = n.saturating_add(1);
        *n
    }
}

/// What the driver waits for: data, and on Linux the `POLLPRI` that says
/// an event is waiting (DAHDI raises it with no data to read).
#[cfg(any(target_os = "linux", target_os = "android"))]
const READ_INTEREST: Interest = Interest::READABLE.add(Interest::PRIORITY);
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const READ_INTEREST: Interest = Interest::READABLE;

/// A span's D-channel on a DAHDI HDLC channel: Q.921 frames in and out,
/// the FCS octets handled, the line's events reported.
#[derive(Debug)]
pub struct DChannel {
    fd: AsyncFd<File>,
    out: Vec<u8>,
    /// Events a write ran into, reported by the next `recv`.
    pending: VecDeque<Received>,
    errors: FrameErrors,
}

impl DChannel {
    /// Opens the D-channel at `path` (`/dev/dahdi/chan/001/016` or
    /// `/dev/dahdi/channel#16`) and gives it chan_dahdi's D-channel
    /// buffers.
    pub fn open(path: &Path) -> io::Result<DChannel> {
        let f = open_channel(path)?;
        dahdi_ioctl::set_bufinfo(f.as_fd(), &D_BUFFERS)
            .map_err(|e| context("DAHDI_SET_BUFINFO", e))?;
        DChannel::from_file(f)
    }

    /// Wraps an open, set-up, non-blocking channel (as `open` makes it);
    /// makes no ioctl, so the tests give it one end of a socket pair, which
    /// keeps frame bounds alike.
    pub fn from_file(f: File) -> io::Result<DChannel> {
        let interest = READ_INTEREST.add(Interest::WRITABLE);
        // `AsyncFd::with_interest` is deprecated for types whose descriptor
        // could change or close under it; a `File` owns its descriptor for
        // its whole life, which is the invariant `register_with_interest`
        // asks for, and this crate forbids the `unsafe` that calling it
        // needs (as in `pri::socket`).
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(f, interest)?;
        Ok(DChannel {
            fd,
            out: Vec::with_capacity(MAX_READ),
            pending: VecDeque::new(),
            errors: FrameErrors::default(),
        })
    }

    /// The HDLC errors seen so far.
    pub fn frame_errors(&self) -> FrameErrors {
        self.errors
    }

    /// The next frame without its FCS octets, or what the line did.
    /// Cancel-safe: a frame or an event is taken within one poll.
    pub async fn recv(&mut self) -> io::Result<Received> {
        let mut buf = [0u8; MAX_READ];
        loop {
            if let Some(r) = self.pending.pop_front() {
                return Ok(r);
            }
            let read = {
                let mut guard = self.fd.ready(READ_INTEREST).await?;
                match guard.try_io(|fd| fd.get_ref().read(&mut buf)) {
                    Ok(r) => r,
                    Err(_would_block) => continue,
                }
            };
            match read {
                // A device never ends its stream; a 0 would come back on
                // every read (a spin), so it is taken as the device gone.
                Ok(0) => return Ok(Received::Closed),
                Ok(n) => {
                    if let Some(frame) = buf.get(..n).and_then(strip_fcs) {
                        return Ok(Received::Frame(frame.to_vec()));
                    }
                }
                Err(e) if event_pending(&e) => {
                    if let Some(r) = self.take_event()? {
                        return Ok(r);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends a frame with two octets of room for the FCS DAHDI computes.
    /// A write that runs into an event fetches it (for `recv`) and tries
    /// again.
    pub async fn send_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        self.out.clear();
        self.out.extend_from_slice(frame);
        self.out.extend_from_slice(&[0; FCS_LEN]);
        loop {
            let written = {
                let mut guard = self.fd.writable().await?;
                let out = &self.out;
                match guard.try_io(|fd| fd.get_ref().write(out)) {
                    Ok(r) => r,
                    Err(_would_block) => continue,
                }
            };
            match written {
                Ok(n) if n == self.out.len() => return Ok(()),
                Ok(n) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("DAHDI D-channel took {n} of {} octets", self.out.len()),
                    ))
                }
                Err(e) if event_pending(&e) => {
                    // Each ELAST takes one event off DAHDI's bounded queue,
                    // so this ends.
                    if let Some(r) = self.take_event()? {
                        self.pending.push_back(r);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `DAHDI_GETEVENT` and what it means here.
    fn take_event(&mut self) -> io::Result<Option<Received>> {
        let ev = take_event(self.fd.get_ref())?;
        Ok(self.on_event(ev))
    }

    /// What event `ev` means for the driver; frame errors are counted and
    /// logged here (at warn on the 1st, 2nd, 4th, 8th… of a kind, so a
    /// noisy line is seen without flooding the log).
    fn on_event(&mut self, ev: i32) -> Option<Received> {
        match event_action(ev) {
            EventAction::Line(l) => {
                match l {
                    LineEvent::Alarm => tracing::warn!("pri: DAHDI span in alarm; D-channel down"),
                    LineEvent::NoAlarm => {
                        tracing::info!("pri: DAHDI span alarm cleared; establishing the link")
                    }
                }
                Some(Received::Line(l))
            }
            EventAction::Frame(e) => {
                let n = self.errors.count(e);
                if n.is_power_of_two() {
                    tracing::warn!(error = ?e, count = n, "pri: DAHDI D-channel frame error");
                } else {
                    tracing::debug!(error = ?e, count = n, "pri: DAHDI D-channel frame error");
                }
                None
            }
            EventAction::Removed => {
                tracing::warn!("pri: DAHDI D-channel removed");
                Some(Received::Closed)
            }
            EventAction::Ignore => {
                tracing::debug!(event = ev, "pri: DAHDI event ignored");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Socket, Type};
    use std::os::fd::OwnedFd;

    #[test]
    fn a_path_is_a_channel_node_or_the_generic_device_and_a_number() {
        assert_eq!(
            DahdiPath::parse(Path::new("/dev/dahdi/chan/001/016")),
            Ok(DahdiPath::Node("/dev/dahdi/chan/001/016".into()))
        );
        assert_eq!(
            DahdiPath::parse(Path::new("/dev/dahdi/channel#16")),
            Ok(DahdiPath::Specify {
                device: "/dev/dahdi/channel".into(),
                channel: 16
            })
        );
        // `{n}` in a DAHDI span's bchannels comes out three digits wide.
        assert_eq!(
            DahdiPath::parse(Path::new("/dev/dahdi/channel#031")),
            Ok(DahdiPath::Specify {
                device: "/dev/dahdi/channel".into(),
                channel: 31
            })
        );
        for bad in ["x", "", "0", "1025", "+5", "-1", "1 6"] {
            let p = format!("/dev/dahdi/channel#{bad}");
            assert_eq!(
                DahdiPath::parse(Path::new(&p)),
                Err(PathError::BadChannel(bad.into())),
                "{p}"
            );
        }
        assert_eq!(DahdiPath::parse(Path::new("#16")), Err(PathError::NoDevice));
    }

    #[test]
    fn elast_means_an_event_waits_and_events_map_to_what_the_span_does() {
        assert!(event_pending(&io::Error::from_raw_os_error(500)));
        // EAGAIN
        assert!(!event_pending(&io::Error::from_raw_os_error(11)));
        assert!(!event_pending(&io::Error::from(io::ErrorKind::WouldBlock)));
        assert_eq!(event_action(4), EventAction::Line(LineEvent::Alarm));
        assert_eq!(event_action(5), EventAction::Line(LineEvent::NoAlarm));
        assert_eq!(event_action(6), EventAction::Frame(FrameError::Abort));
        assert_eq!(event_action(7), EventAction::Frame(FrameError::Overrun));
        assert_eq!(event_action(8), EventAction::Frame(FrameError::BadFcs));
        assert_eq!(event_action(20), EventAction::Removed);
        for other in [0, 1, 2, 3, 9, 13, 19, 21, 1 << 16, -1] {
            assert_eq!(event_action(other), EventAction::Ignore, "{other}");
        }
    }

    /// One end of a `SOCK_SEQPACKET` pair stands in for the device file:
    /// it keeps frame bounds as DAHDI's HDLC channel does.
    fn device() -> (DChannel, Socket) {
        let (ours, peer) = Socket::pair(Domain::UNIX, Type::SEQPACKET, None).unwrap();
        ours.set_nonblocking(true).unwrap();
        let d = DChannel::from_file(File::from(OwnedFd::from(ours))).unwrap();
        (d, peer)
    }

    #[tokio::test]
    async fn frames_carry_two_fcs_octets_and_a_closed_device_is_reported() {
        let (mut d, peer) = device();
        d.send_frame(&[0x00, 0x01, 0x7f]).await.unwrap();
        let mut buf = [0u8; 64];
        let n = (&peer).read(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[0x00, 0x01, 0x7f, 0, 0]);

        peer.send(&[0x02]).unwrap();
        peer.send(&[0x02, 0x01]).unwrap();
        peer.send(&[0x02, 0x01, 0x73, 0xab, 0xcd]).unwrap();
        assert_eq!(
            d.recv().await.unwrap(),
            Received::Frame(vec![0x02, 0x01, 0x73]),
            "too-short reads are skipped, the FCS stripped unread"
        );
        drop(peer);
        assert_eq!(d.recv().await.unwrap(), Received::Closed);
    }

    #[tokio::test]
    async fn events_are_reported_counted_or_ignored() {
        let (mut d, _peer) = device();
        assert_eq!(
            d.on_event(event::ALARM),
            Some(Received::Line(LineEvent::Alarm))
        );
        assert_eq!(
            d.on_event(event::NOALARM),
            Some(Received::Line(LineEvent::NoAlarm))
        );
        assert_eq!(d.on_event(event::REMOVED), Some(Received::Closed));
        for ev in [
            event::BADFCS,
            event::BADFCS,
            event::ABORT,
            event::OVERRUN,
            13,
        ] {
            assert_eq!(d.on_event(ev), None);
        }
        assert_eq!(
            d.frame_errors(),
            FrameErrors {
                bad_fcs: 2,
                abort: 1,
                overrun: 1
            }
        );
        // An event a write ran into comes out of the next `recv` first.
        d.pending.push_back(Received::Line(LineEvent::Alarm));
        assert_eq!(d.recv().await.unwrap(), Received::Line(LineEvent::Alarm));
    }

    #[test]
    fn opening_a_missing_or_non_dahdi_channel_is_an_error() {
        assert!(DChannel::open(Path::new("/nonexistent/dahdi/chan/001/016")).is_err());
        assert!(open_bchannel(Path::new("/nonexistent/dahdi/channel#1"), Law::Alaw).is_err());
        // /dev/null opens but refuses DAHDI's ioctls.
        let e = open_bchannel(Path::new("/dev/null"), Law::Ulaw).unwrap_err();
        assert!(e.to_string().starts_with("DAHDI_SET_BLOCKSIZE: "), "{e}");
        let e = open_channel(Path::new("/dev/null#3")).unwrap_err();
        assert!(e.to_string().starts_with("DAHDI_SPECIFY: "), "{e}");
        let e = open_channel(Path::new("/dev/null#x")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
