//! The tokio driver of one span's D-channel: the socket span's wire
//! (`socket::DChannel`) under the sans-IO LAPD link (`q921::Link`). It
//! connects to the peer's listening socket (again after a second when
//! that fails or the socket closes), keeps the link established, hands
//! layer-3 messages both ways, and says when the link goes up and down.
//! No protocol decision is made here.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::q921::{Link, LinkConfig, LinkEvent};
use super::socket::DChannel;

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

/// Runs the D-channel at `path` until `to_l3` is closed. `from_l3`
/// carries the messages to send; while the link is down they wait in the
/// link's queue (it starts establishment).
pub async fn run(
    path: PathBuf,
    cfg: LinkConfig,
    mut from_l3: mpsc::Receiver<Vec<u8>>,
    to_l3: mpsc::Sender<DEvent>,
) {
    loop {
        let mut d = match DChannel::connect(&path).await {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "pri: D-channel connect failed; retrying");
                tokio::time::sleep(RECONNECT).await;
                if to_l3.is_closed() {
                    return;
                }
                continue;
            }
        };
        tracing::info!(path = %path.display(), "pri: D-channel connected");
        let mut link = Link::new(cfg.clone());
        link.establish(Instant::now());
        let gone = serve(&mut d, &mut link, &mut from_l3, &to_l3).await;
        if to_l3.send(DEvent::Down).await.is_err() || gone {
            return;
        }
        tracing::warn!(path = %path.display(), "pri: D-channel socket closed; reconnecting");
        tokio::time::sleep(RECONNECT).await;
    }
}

/// One connection's life; true when layer 3 is gone (stop for good).
async fn serve(
    d: &mut DChannel,
    link: &mut Link,
    from_l3: &mut mpsc::Receiver<Vec<u8>>,
    to_l3: &mpsc::Sender<DEvent>,
) -> bool {
    let mut up = false;
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
        if !up && !link.state().is_established() && link.poll_timeout().is_none() {
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
            r = d.recv_frame() => match r {
                Ok(Some(frame)) => link.handle_frame(Instant::now(), &frame),
                Ok(None) | Err(_) => return false,
            },
            m = from_l3.recv() => match m {
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
        tokio::spawn(run(pu, LinkConfig::new(Side::User), rx_u, ev_u));
        tokio::spawn(run(pn, LinkConfig::new(Side::Network), rx_n, ev_n));
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
}
