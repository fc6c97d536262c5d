//! The one tokio layer of SIP: a UDP socket and a TCP listener on the same
//! address. It moves bytes only: datagrams and stream-framed messages go
//! up as `Inbound`, and `send` puts bytes on the wire (TCP responses go back
//! on the connection the request came in on, RFC 3261 §18.2.2).
//!
//! The UDP receive loop and the TCP accept loop are supervised: when one
//! ends by a panic or an error it is logged, counted in [`TransportStats`]
//! and started again on the same socket (after a short backoff that grows
//! while it keeps failing), so the server never goes deaf. A panic in one
//! TCP connection's task closes that connection only, and is counted.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use crate::sip::message::Transport;
use crate::sip::wire;

/// A message as it arrived.
#[derive(Debug)]
pub struct Inbound {
    pub transport: Transport,
    pub source: SocketAddr,
    pub bytes: Vec<u8>,
}

/// Outgoing bytes queued per TCP connection.
const TCP_QUEUE: usize = 256;

/// The first wait before a failed loop is started again; it doubles while
/// the loop keeps failing quickly, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A loop that ran this long before failing starts again at [`FIRST_BACKOFF`].
const HEALTHY_RUN: Duration = Duration::from_secs(10);

/// What the supervision of the transport saw (for metrics and logs).
#[derive(Debug, Default)]
pub struct TransportStats {
    /// The UDP receive loop ended (panic or error) and was started again.
    pub udp_loop_restarts: AtomicU64,
    /// The TCP accept loop ended (panic or error) and was started again.
    pub tcp_accept_restarts: AtomicU64,
    /// A TCP connection's task panicked; that connection was closed.
    pub tcp_connection_panics: AtomicU64,
}

#[derive(Clone)]
pub struct Transports {
    udp: Arc<UdpSocket>,
    tcp: Arc<DashMap<u64, mpsc::Sender<Vec<u8>>>>,
    local: SocketAddr,
    stats: Arc<TransportStats>,
}

impl Transports {
    /// Binds UDP and TCP on `addr` (port 0 picks one free port for both)
    /// and starts the supervised receive loops.
    pub async fn bind(addr: SocketAddr, up: mpsc::Sender<Inbound>) -> std::io::Result<Transports> {
        let (udp, listener) = bind_both(addr).await?;
        let local = udp.local_addr()?;
        let udp = Arc::new(udp);
        let listener = Arc::new(listener);
        let tcp = Arc::new(DashMap::new());
        let stats = Arc::new(TransportStats::default());
        let (sock, tx) = (udp.clone(), up.clone());
        tokio::spawn(supervise(
            "UDP receive loop",
            stats.clone(),
            |s| &s.udp_loop_restarts,
            FIRST_BACKOFF,
            move || udp_loop(sock.clone(), tx.clone()),
        ));
        let (conns, st) = (tcp.clone(), stats.clone());
        tokio::spawn(supervise(
            "TCP accept loop",
            stats.clone(),
            |s| &s.tcp_accept_restarts,
            FIRST_BACKOFF,
            move || accept_loop(listener.clone(), conns.clone(), up.clone(), st.clone()),
        ));
        Ok(Transports {
            udp,
            tcp,
            local,
            stats,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Restarts and panics the supervision has counted.
    pub fn stats(&self) -> &TransportStats {
        &self.stats
    }

    pub async fn send(&self, transport: Transport, dest: SocketAddr, bytes: Vec<u8>) {
        match transport {
            Transport::Udp => {
                if let Err(e) = self.udp.send_to(&bytes, dest).await {
                    tracing::debug!(%dest, error = %e, "UDP send failed");
                }
            }
            Transport::Tcp(id) => {
                let tx = self.tcp.get(&id).map(|t| t.clone());
                match tx {
                    Some(tx) => {
                        if tx.try_send(bytes).is_err() {
                            tracing::debug!(
                                conn = id,
                                "TCP connection gone or full; message dropped"
                            );
                        }
                    }
                    None => {
                        tracing::debug!(conn = id, %dest, "TCP connection closed; message dropped")
                    }
                }
            }
        }
    }
}

async fn bind_both(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    if addr.port() != 0 {
        let udp = UdpSocket::bind(addr).await?;
        let tcp = TcpListener::bind(addr).await?;
        return Ok((udp, tcp));
    }
    // Port 0: find one port free on both transports.
    let mut last = None;
    for _ in 0..32 {
        let udp = UdpSocket::bind(addr).await?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no port free on both UDP and TCP")))
}

/// How a receive loop ended.
#[derive(Debug)]
enum LoopEnd {
    /// The signalling task is gone (shutdown): do not start it again.
    Closed,
    /// An error the loop cannot serve through.
    Failed(std::io::Error),
}

/// Runs the loop `start` makes as its own task and starts it again (after
/// a backoff) whenever it panics or fails, counting each restart in the
/// counter `restarts` picks. Returns when the loop reports `Closed` or the
/// runtime cancels it.
async fn supervise<F, Fut>(
    name: &'static str,
    stats: Arc<TransportStats>,
    restarts: fn(&TransportStats) -> &AtomicU64,
    first_backoff: Duration,
    mut start: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = LoopEnd> + Send + 'static,
{
    let mut backoff = first_backoff;
    loop {
        let started = tokio::time::Instant::now();
        let why = match tokio::spawn(start()).await {
            Ok(LoopEnd::Closed) => return,
            Ok(LoopEnd::Failed(e)) => format!("error: {e}"),
            Err(e) if e.is_panic() => {
                let payload = e.into_panic();
                format!(
                    "panic: {:?}",
                    crate::supervision::panic_message(payload.as_ref())
                )
            }
            Err(_) => return,
        };
        if started.elapsed() >= HEALTHY_RUN {
            backoff = first_backoff;
        }
        let n = restarts(&stats)
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        tracing::error!(task = name, restarts = n, ?backoff, %why, "SIP transport loop ended; restarting it");
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
    }
}

/// Errors that concern one datagram or one connection attempt (an ICMP
/// error surfacing on the UDP socket, a connection reset before accept):
/// the loop goes on. Anything else (EMFILE, ENOBUFS, a closed socket) ends
/// the loop, and its supervisor starts it again after a backoff instead of
/// spinning on the error.
fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | Interrupted
            | WouldBlock
            | TimedOut
            | PermissionDenied
            | HostUnreachable
            | NetworkUnreachable
    )
}

async fn udp_loop(udp: Arc<UdpSocket>, up: mpsc::Sender<Inbound>) -> LoopEnd {
    let mut buf = vec![0u8; wire::MAX_MESSAGE_BYTES + 1];
    loop {
        match udp.recv_from(&mut buf).await {
            Ok((n, source)) => {
                if n == 0 || n > wire::MAX_MESSAGE_BYTES {
                    continue;
                }
                let Some(bytes) = buf.get(..n) else { continue };
                // keep-alive CRLFs (RFC 5626 §3.5.1) carry no message
                if bytes.iter().all(|b| *b == b'\r' || *b == b'\n') {
                    continue;
                }
                let msg = Inbound {
                    transport: Transport::Udp,
                    source,
                    bytes: bytes.to_vec(),
                };
                if up.send(msg).await.is_err() {
                    return LoopEnd::Closed;
                }
            }
            Err(e) if is_transient(&e) => {
                tracing::debug!(error = %e, "UDP receive error");
            }
            Err(e) => return LoopEnd::Failed(e),
        }
    }
}

async fn accept_loop(
    listener: Arc<TcpListener>,
    conns: Arc<DashMap<u64, mpsc::Sender<Vec<u8>>>>,
    up: mpsc::Sender<Inbound>,
    stats: Arc<TransportStats>,
) -> LoopEnd {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    loop {
        let (stream, source) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) if is_transient(&e) => {
                tracing::debug!(error = %e, "TCP accept error");
                continue;
            }
            Err(e) => return LoopEnd::Failed(e),
        };
        if up.is_closed() {
            return LoopEnd::Closed;
        }
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(TCP_QUEUE);
        conns.insert(id, tx);
        let conns = conns.clone();
        let up = up.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            // Its own task, so that a panic in it is seen here: the entry is
            // removed either way (its writer then sees the channel close).
            let served = tokio::spawn(serve_connection(id, stream, source, rx, up)).await;
            conns.remove(&id);
            if let Err(e) = served {
                if e.is_panic() {
                    stats.tcp_connection_panics.fetch_add(1, Ordering::Relaxed);
                    let payload = e.into_panic();
                    let message = crate::supervision::panic_message(payload.as_ref());
                    tracing::error!(
                        conn = id,
                        ?source,
                        ?message,
                        "TCP connection task panicked; connection closed"
                    );
                }
            }
        });
    }
}

async fn serve_connection(
    id: u64,
    stream: TcpStream,
    source: SocketAddr,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
    up: mpsc::Sender<Inbound>,
) {
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(b) = outgoing.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    });
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 8192];
    'read: loop {
        let n = match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        loop {
            match wire::frame_stream(&buf) {
                Ok(Some(len)) => {
                    let msg: Vec<u8> = buf.drain(..len.min(buf.len())).collect();
                    let trimmed = msg.iter().position(|b| *b != b'\r' && *b != b'\n');
                    if trimmed.is_none() {
                        continue;
                    }
                    let inbound = Inbound {
                        transport: Transport::Tcp(id),
                        source,
                        bytes: msg,
                    };
                    if up.send(inbound).await.is_err() {
                        break 'read;
                    }
                }
                Ok(None) => {
                    if buf.len() > 2 * wire::MAX_MESSAGE_BYTES {
                        tracing::debug!(conn = id, "TCP message too large; closing");
                        break 'read;
                    }
                    break;
                }
                Err(e) => {
                    tracing::debug!(conn = id, error = %e, "TCP framing error; closing");
                    break 'read;
                }
            }
        }
    }
    writer.abort();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counter(s: &TransportStats) -> &AtomicU64 {
        &s.udp_loop_restarts
    }

    #[tokio::test]
    async fn a_loop_that_panics_or_fails_is_started_again_and_counted() {
        let stats = Arc::new(TransportStats::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        supervise(
            "test loop",
            stats.clone(),
            counter,
            Duration::ZERO,
            move || {
                let run = r.fetch_add(1, Ordering::Relaxed);
                async move {
                    match run {
                        0 | 2 => panic!("loop bug {run}"),
                        1 => LoopEnd::Failed(std::io::Error::other("EMFILE-like")),
                        _ => LoopEnd::Closed,
                    }
                }
            },
        )
        .await;
        assert_eq!(runs.load(Ordering::Relaxed), 4);
        assert_eq!(stats.udp_loop_restarts.load(Ordering::Relaxed), 3);
        assert_eq!(stats.tcp_accept_restarts.load(Ordering::Relaxed), 0);
    }

    /// The real UDP loop on a real socket: after its first run panics, the
    /// supervisor's second run still receives datagrams on the same socket.
    #[tokio::test]
    async fn the_udp_loop_hears_again_after_a_panic() {
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = sock.local_addr().unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let stats = Arc::new(TransportStats::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let (r, s) = (runs.clone(), sock.clone());
        let supervisor = tokio::spawn(supervise(
            "UDP receive loop",
            stats.clone(),
            counter,
            Duration::ZERO,
            move || {
                let first = r.fetch_add(1, Ordering::Relaxed) == 0;
                let run = udp_loop(s.clone(), tx.clone());
                async move {
                    if first {
                        panic!("injected");
                    }
                    run.await
                }
            },
        ));
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.send_to(b"OPTIONS", addr).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a datagram after the restart")
            .expect("the channel is open");
        assert_eq!(got.bytes, b"OPTIONS");
        assert_eq!(got.source, client.local_addr().unwrap());
        assert_eq!(stats.udp_loop_restarts.load(Ordering::Relaxed), 1);
        assert_eq!(runs.load(Ordering::Relaxed), 2);
        supervisor.abort();
    }

    #[test]
    fn per_datagram_errors_are_transient_resource_errors_are_not() {
        use std::io::{Error, ErrorKind};
        assert!(is_transient(&Error::from(ErrorKind::ConnectionRefused)));
        assert!(is_transient(&Error::from(ErrorKind::ConnectionAborted)));
        assert!(!is_transient(&Error::from_raw_os_error(24))); // EMFILE
        assert!(!is_transient(&Error::from_raw_os_error(23))); // ENFILE
        assert!(!is_transient(&Error::from(ErrorKind::OutOfMemory)));
    }
}
