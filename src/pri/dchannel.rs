//! The tokio driver of one span's D-channel: the span's wire — the socket
//! span's `SOCK_SEQPACKET` socket (`socket::DChannel`) or a DAHDI HDLC
//! channel (`dahdi::DChannel`), both behind the small [`Wire`] trait —
//! under the sans-IO LAPD link (`q921::Link`). It connects or opens the
//! wire (again after a second when that fails or the wire closes), keeps
//! the link established, hands layer-3 messages both ways, and says when
//! the link goes up and down; on DAHDI a span alarm takes the link down
//! and its end brings it up again. No protocol decision is made here.

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::dahdi::{self, LineEvent};
use super::q921::{Link, LinkConfig, LinkEvent};
use super::socket;
use crate::config::SpanTransport;

/// How long to wait before connecting again.
const RECONNECT: Duration = Duration::from_secs(1);

/// What the D-channel tells layer 3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DEvent {
    /// Multiple frame operation: layer-3 messages flow (again: after a
    /// reset, messages in transit may be lost).
    Up,
    /// The link or its socket is down; queued messages are dropped.
    Down,
    /// A layer-3 message, in order, once.
    Message(Vec<u8>),
}

/// What one receive from a wire gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A Q.921 frame, its FCS octets gone.
    Frame(Vec<u8>),
    /// The peer closed the socket, or the device went away.
    Closed,
    /// The span's line went into alarm or out of it (DAHDI only).
    Line(LineEvent),
}

/// A D-channel wire: frames in and out, FCS octets handled below.
/// `recv` must be cancel-safe (the driver selects on it).
pub(crate) trait Wire {
    async fn recv(&mut self) -> io::Result<Received>;
    async fn send_frame(&mut self, frame: &[u8]) -> io::Result<()>;
}

impl Wire for socket::DChannel {
    async fn recv(&mut self) -> io::Result<Received> {
        Ok(match self.recv_frame().await? {
            Some(frame) => Received::Frame(frame),
            None => Received::Closed,
        })
    }

    async fn send_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        socket::DChannel::send_frame(self, frame).await
    }
}

impl Wire for dahdi::DChannel {
    async fn recv(&mut self) -> io::Result<Received> {
        dahdi::DChannel::recv(self).await
    }

    async fn send_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        dahdi::DChannel::send_frame(self, frame).await
    }
}

/// Runs the D-channel at `path` over `transport` until `to_l3` is closed.
/// `from_l3` carries the messages to send; while the link is down they
/// wait in the link's queue (it starts establishment).
pub async fn run(
    path: PathBuf,
    transport: SpanTransport,
    cfg: LinkConfig,
    mut from_l3: mpsc::Receiver<Vec<u8>>,
    to_l3: mpsc::Sender<DEvent>,
) {
    // The last DAHDI open error, so a device that stays missing is logged
    // once as an error and then quietly retried.
    let mut open_error: Option<String> = None;
    loop {
        let ended = match transport {
            SpanTransport::Socket => match socket::DChannel::connect(&path).await {
                Ok(mut d) => {
                    tracing::info!(path = %path.display(), "pri: D-channel connected");
                    Some(connection(&mut d, &cfg, &mut from_l3, &to_l3).await)
                }
                Err(e) => {
                    tracing::debug!(path = %path.display(), error = %e, "pri: D-channel connect failed; retrying");
                    None
                }
            },
            SpanTransport::Dahdi => match dahdi::DChannel::open(&path) {
                Ok(mut d) => {
                    tracing::info!(path = %path.display(), "pri: DAHDI D-channel open");
                    open_error = None;
                    let gone = connection(&mut d, &cfg, &mut from_l3, &to_l3).await;
                    let errors = d.frame_errors();
                    tracing::info!(path = %path.display(), bad_fcs = errors.bad_fcs, abort = errors.abort, overrun = errors.overrun, "pri: DAHDI D-channel frame errors while open");
                    Some(gone)
                }
                Err(e) => {
                    let text = e.to_string();
                    if open_error.as_deref() != Some(text.as_str()) {
                        tracing::error!(path = %path.display(), error = %e, "pri: cannot open the DAHDI D-channel; retrying each second");
                    } else {
                        tracing::debug!(path = %path.display(), error = %e, "pri: cannot open the DAHDI D-channel");
                    }
                    open_error = Some(text);
                    None
                }
            },
        };
        match ended {
            None => {
                tokio::time::sleep(RECONNECT).await;
                if to_l3.is_closed() {
                    return;
                }
            }
            Some(gone) => {
                if to_l3.send(DEvent::Down).await.is_err() || gone {
                    return;
                }
                match transport {
                    SpanTransport::Socket => {
                        tracing::warn!(path = %path.display(), "pri: D-channel socket closed; reconnecting")
                    }
                    SpanTransport::Dahdi => {
                        tracing::warn!(path = %path.display(), "pri: DAHDI D-channel closed; opening it again")
                    }
                }
                tokio::time::sleep(RECONNECT).await;
            }
        }
    }
}

/// One connection's life with a fresh link; true when layer 3 is gone
/// (stop for good).
async fn connection<W: Wire>(
    d: &mut W,
    cfg: &LinkConfig,
    from_l3: &mut mpsc::Receiver<Vec<u8>>,
    to_l3: &mpsc::Sender<DEvent>,
) -> bool {
    let mut link = Link::new(cfg.clone());
    link.establish(Instant::now());
    serve(d, &mut link, cfg, from_l3, to_l3).await
}

async fn serve<W: Wire>(
    d: &mut W,
    link: &mut Link,
    cfg: &LinkConfig,
    from_l3: &mut mpsc::Receiver<Vec<u8>>,
    to_l3: &mpsc::Sender<DEvent>,
) -> bool {
    let mut up = false;
    // The span is in alarm (DAHDI): nothing is sent until it clears, as
    // chan_dahdi has libpri wait for the alarm's end before restarting.
    let mut alarm = false;
    loop {
        while let Some(frame) = link.poll_transmit() {
            if d.send_frame(&frame).await.is_err() {
                return false;
            }
        }
        while let Some(ev) = link.poll_event() {
            let out = match ev {
                LinkEvent::Established => {
                    up = true;
                    DEvent::Up
                }
                LinkEvent::Released => {
                    up = false;
                    DEvent::Down
                }
                LinkEvent::Data(m) | LinkEvent::UnitData(m) => DEvent::Message(m),
                LinkEvent::Error(e) => {
                    tracing::warn!(error = %e, "pri: Q.921");
                    continue;
                }
            };
            if to_l3.send(out).await.is_err() {
                return true;
            }
        }
        if !alarm && !up && !link.state().is_established() && link.poll_timeout().is_none() {
            // Released and idle (the peer refused): try again later.
            tokio::time::sleep(RECONNECT).await;
            link.establish(Instant::now());
            continue;
        }
        let deadline = link
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            r = d.recv() => match r {
                Ok(Received::Frame(frame)) => link.handle_frame(Instant::now(), &frame),
                Ok(Received::Line(LineEvent::Alarm)) => {
                    // The link is gone with the line: a fresh, released
                    // link that sends nothing, and layer 3 told.
                    alarm = true;
                    *link = Link::new(cfg.clone());
                    if up {
                        up = false;
                        if to_l3.send(DEvent::Down).await.is_err() {
                            return true;
                        }
                    }
                }
                Ok(Received::Line(LineEvent::NoAlarm)) => {
                    if alarm || !up {
                        alarm = false;
                        *link = Link::new(cfg.clone());
                        link.establish(Instant::now());
                    }
                }
                Ok(Received::Closed) | Err(_) => return false,
            },
            m = from_l3.recv() => match m {
                Some(_) if alarm => {
                    tracing::debug!("pri: layer-3 message dropped; the span is in alarm");
                }
                Some(m) => {
                    if let Err(e) = link.send(Instant::now(), m) {
                        tracing::warn!(error = %e, "pri: layer-3 message not sent");
                    }
                }
                None => return true,
            },
            _ = tokio::time::sleep_until(deadline) => link.handle_timeout(Instant::now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::pri::q921::Side;
    use crate::pri::socket::SeqPacket;
    use socket2::{Domain, SockAddr, Socket, Type};

    async fn accept(l: &Socket) -> SeqPacket {
        loop {
            if let Ok((s, _)) = l.accept() {
                return SeqPacket::from_socket(s).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Accepts one connection on each listener and copies packets across
    /// until either side closes (or the task is aborted, which closes both).
    async fn relay(lu: Arc<Socket>, ln: Arc<Socket>) {
        let a = accept(&lu).await;
        let b = accept(&ln).await;
        let (mut ba, mut bb) = ([0u8; 600], [0u8; 600]);
        loop {
            tokio::select! {
                n = a.recv(&mut ba) => match n {
                    Ok(n) if n > 0 => { let _ = b.send(&ba[..n]).await; }
                    _ => break,
                },
                n = b.recv(&mut bb) => match n {
                    Ok(n) if n > 0 => { let _ = a.send(&bb[..n]).await; }
                    _ => break,
                },
            }
        }
    }

    async fn next(rx: &mut mpsc::Receiver<DEvent>) -> Option<DEvent> {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// rivr's user side and a network side, each behind this driver, over
    /// a relay that can cut the wire: the link comes up, messages pass
    /// both ways, and after the sockets close both drivers reconnect and
    /// the link comes up again.
    #[tokio::test]
    async fn two_drivers_bring_the_link_up_pass_messages_and_survive_a_closed_socket() {
        let dir = std::env::temp_dir().join(format!(
            "rivr-pri-dchannel-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let listen = |name: &str| {
            let path = dir.join(name);
            let l = Socket::new(Domain::UNIX, Type::SEQPACKET, None).unwrap();
            l.bind(&SockAddr::unix(&path).unwrap()).unwrap();
            l.listen(4).unwrap();
            l.set_nonblocking(true).unwrap();
            (Arc::new(l), path)
        };
        let (lu, pu) = listen("user");
        let (ln, pn) = listen("net");
        let wire = tokio::spawn(relay(lu.clone(), ln.clone()));
        let (tx_u, rx_u) = mpsc::channel(16);
        let (ev_u, mut evs_u) = mpsc::channel(16);
        let (tx_n, rx_n) = mpsc::channel(16);
        let (ev_n, mut evs_n) = mpsc::channel(16);
        tokio::spawn(run(
            pu,
            SpanTransport::Socket,
            LinkConfig::new(Side::User),
            rx_u,
            ev_u,
        ));
        tokio::spawn(run(
            pn,
            SpanTransport::Socket,
            LinkConfig::new(Side::Network),
            rx_n,
            ev_n,
        ));
        assert_eq!(next(&mut evs_u).await, Some(DEvent::Up));
        assert_eq!(next(&mut evs_n).await, Some(DEvent::Up));
        tx_u.send(b"\x08\x02\x00\x01\x05".to_vec()).await.unwrap();
        assert_eq!(
            next(&mut evs_n).await,
            Some(DEvent::Message(b"\x08\x02\x00\x01\x05".to_vec()))
        );
        tx_n.send(b"\x08\x02\x80\x01\x02".to_vec()).await.unwrap();
        assert_eq!(
            next(&mut evs_u).await,
            Some(DEvent::Message(b"\x08\x02\x80\x01\x02".to_vec()))
        );

        // Cut the wire: both drivers see it, reconnect, and come up again.
        wire.abort();
        let _ = wire.await;
        assert_eq!(next(&mut evs_u).await, Some(DEvent::Down));
        assert_eq!(next(&mut evs_n).await, Some(DEvent::Down));
        let _wire = tokio::spawn(relay(lu, ln));
        assert_eq!(next(&mut evs_u).await, Some(DEvent::Up));
        assert_eq!(next(&mut evs_n).await, Some(DEvent::Up));
        tx_u.send(b"\x08\x02\x00\x02\x05".to_vec()).await.unwrap();
        assert_eq!(
            next(&mut evs_n).await,
            Some(DEvent::Message(b"\x08\x02\x00\x02\x05".to_vec()))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A wire the test plays: what the driver receives comes from
    /// `line`, what it sends goes to `sent`.
    struct Scripted {
        line: mpsc::Receiver<Received>,
        sent: mpsc::UnboundedSender<Vec<u8>>,
    }

    impl Wire for Scripted {
        async fn recv(&mut self) -> io::Result<Received> {
            Ok(self.line.recv().await.unwrap_or(Received::Closed))
        }

        async fn send_frame(&mut self, frame: &[u8]) -> io::Result<()> {
            let _ = self.sent.send(frame.to_vec());
            Ok(())
        }
    }

    /// Plays the network side's LAPD (sans-IO) against the driver's
    /// frames until the driver tells layer 3 something.
    async fn answer_until_event(
        net: &mut Link,
        sent: &mut mpsc::UnboundedReceiver<Vec<u8>>,
        line: &mpsc::Sender<Received>,
        evs: &mut mpsc::Receiver<DEvent>,
    ) -> Option<DEvent> {
        let give_up = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            tokio::select! {
                f = sent.recv() => {
                    net.handle_frame(Instant::now(), &f?);
                    while let Some(t) = net.poll_transmit() {
                        line.send(Received::Frame(t)).await.ok()?;
                    }
                    while net.poll_event().is_some() {}
                }
                ev = evs.recv() => return ev,
                _ = tokio::time::sleep_until(give_up) => return None,
            }
        }
    }

    /// On DAHDI a span alarm takes the link down at once (layer 3 hears
    /// `Down`, nothing is sent into the dead line, layer-3 messages are
    /// dropped) and the alarm's end establishes it again.
    #[tokio::test]
    async fn a_span_alarm_takes_the_link_down_and_its_end_brings_it_up_again() {
        let (line, line_rx) = mpsc::channel(16);
        let (sent_tx, mut sent) = mpsc::unbounded_channel();
        let (to_d, mut from_l3) = mpsc::channel(16);
        let (ev_tx, mut evs) = mpsc::channel(16);
        let cfg = LinkConfig::new(Side::User);
        let driver = tokio::spawn(async move {
            let mut wire = Scripted {
                line: line_rx,
                sent: sent_tx,
            };
            connection(&mut wire, &cfg, &mut from_l3, &ev_tx).await
        });
        let mut net = Link::new(LinkConfig::new(Side::Network));
        assert_eq!(
            answer_until_event(&mut net, &mut sent, &line, &mut evs).await,
            Some(DEvent::Up)
        );
        while sent.try_recv().is_ok() {}

        line.send(Received::Line(LineEvent::Alarm)).await.unwrap();
        assert_eq!(next(&mut evs).await, Some(DEvent::Down));
        to_d.send(b"\x08\x02\x00\x01\x05".to_vec()).await.unwrap();
        // Once the driver has taken the message (the channel's room is
        // back; the test runtime has one thread, so the driver then waits
        // again), whatever it would have sent for it is in `sent`.
        let give_up = Instant::now() + Duration::from_secs(5);
        while to_d.capacity() < to_d.max_capacity() && Instant::now() < give_up {
            tokio::task::yield_now().await;
        }
        assert_eq!(to_d.capacity(), to_d.max_capacity());
        assert!(
            sent.try_recv().is_err(),
            "nothing goes into a line in alarm"
        );

        // The line is back: both sides start afresh and the link comes up.
        net = Link::new(LinkConfig::new(Side::Network));
        line.send(Received::Line(LineEvent::NoAlarm)).await.unwrap();
        assert_eq!(
            answer_until_event(&mut net, &mut sent, &line, &mut evs).await,
            Some(DEvent::Up)
        );
        line.send(Received::Closed).await.unwrap();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), driver)
                .await
                .ok()
                .and_then(Result::ok),
            Some(false),
            "a closed wire ends the connection, not the driver"
        );
    }
}
