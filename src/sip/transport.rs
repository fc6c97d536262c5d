//! The one tokio layer of SIP: a UDP socket and a TCP listener on the same
//! address. It moves bytes only: datagrams and stream-framed messages go
//! up as `Inbound`, and `send` puts bytes on the wire (TCP responses go back
//! on the connection the request came in on, RFC 3261 §18.2.2).
//!
//! It also holds the transport limits (`[limits]`): the largest message,
//! the number of TCP connections open at once (more are accepted and
//! closed at once), and how long a connection may stay silent (a CRLF
//! keepalive, RFC 5626 §3.5.1, counts as traffic). An accept error such as
//! EMFILE backs off instead of spinning, and is logged at most once per
//! `LOG_EVERY`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use crate::rate::LogThrottle;
use crate::sip::acl::Acl;
use crate::sip::message::Transport;
use crate::sip::wire;

/// What the transports accept (`[limits]`, `[sip] trusted`).
#[derive(Debug, Clone)]
pub struct TransportLimits {
    /// Largest message on any transport (at most `wire::MAX_MESSAGE_BYTES`).
    pub max_message_bytes: usize,
    /// TCP connections open at once.
    pub tcp_max_connections: usize,
    /// A TCP connection that sends nothing for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// When set, TCP connections from anywhere else are closed at accept
    /// (`[sip] untrusted = "drop"`: nothing they could send would be read).
    pub tcp_accept_only: Option<Acl>,
}

impl Default for TransportLimits {
    fn default() -> Self {
        TransportLimits {
            max_message_bytes: wire::MAX_MESSAGE_BYTES,
            tcp_max_connections: 1024,
            tcp_idle_timeout: Duration::from_secs(300),
            tcp_accept_only: None,
        }
    }
}

/// Counters for logs and metrics.
#[derive(Debug, Default)]
pub struct TransportStats {
    pub udp_oversize_dropped: AtomicU64,
    pub tcp_accepted: AtomicU64,
    /// Accepted and closed at once: `tcp_max_connections` were open.
    pub tcp_refused_over_limit: AtomicU64,
    /// Accepted and closed at once: the source is not trusted.
    pub tcp_refused_untrusted: AtomicU64,
    pub tcp_idle_closed: AtomicU64,
    /// Closed because a message was larger than `max_message_bytes` or
    /// its framing was broken.
    pub tcp_framing_closed: AtomicU64,
    pub accept_errors: AtomicU64,
    /// TCP connections open now.
    pub tcp_open: AtomicUsize,
}

/// The shortest and longest pause after an accept error.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// At most one log line per this, per kind of repeated event.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// A message as it arrived.
#[derive(Debug)]
pub struct Inbound {
    pub transport: Transport,
    pub source: SocketAddr,
    pub bytes: Vec<u8>,
}

/// Outgoing bytes queued per TCP connection.
const TCP_QUEUE: usize = 256;

#[derive(Clone)]
pub struct Transports {
    udp: Arc<UdpSocket>,
    tcp: Arc<DashMap<u64, mpsc::Sender<Vec<u8>>>>,
    local: SocketAddr,
    stats: Arc<TransportStats>,
}

impl Transports {
    /// Binds UDP and TCP on `addr` (port 0 picks one free port for both)
    /// and starts the receive loops.
    pub async fn bind(
        addr: SocketAddr,
        up: mpsc::Sender<Inbound>,
        limits: TransportLimits,
    ) -> std::io::Result<Transports> {
        let (udp, listener) = bind_both(addr).await?;
        let local = udp.local_addr()?;
        let udp = Arc::new(udp);
        let tcp = Arc::new(DashMap::new());
        let stats = Arc::new(TransportStats::default());
        let limits = Arc::new(TransportLimits {
            max_message_bytes: limits.max_message_bytes.min(wire::MAX_MESSAGE_BYTES),
            ..limits
        });
        tokio::spawn(udp_loop(
            udp.clone(),
            up.clone(),
            limits.clone(),
            stats.clone(),
        ));
        tokio::spawn(accept_loop(
            listener,
            tcp.clone(),
            up,
            limits,
            stats.clone(),
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

async fn udp_loop(
    udp: Arc<UdpSocket>,
    up: mpsc::Sender<Inbound>,
    limits: Arc<TransportLimits>,
    stats: Arc<TransportStats>,
) {
    let mut buf = vec![0u8; wire::MAX_MESSAGE_BYTES + 1];
    loop {
        match udp.recv_from(&mut buf).await {
            Ok((n, source)) => {
                if n == 0 {
                    continue;
                }
                if n > limits.max_message_bytes {
                    stats.udp_oversize_dropped.fetch_add(1, Ordering::Relaxed);
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
                    return;
                }
            }
            Err(e) => {
                // ICMP errors surface here on some systems; keep serving.
                tracing::debug!(error = %e, "UDP receive error");
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    conns: Arc<DashMap<u64, mpsc::Sender<Vec<u8>>>>,
    up: mpsc::Sender<Inbound>,
    limits: Arc<TransportLimits>,
    stats: Arc<TransportStats>,
) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let mut backoff = ACCEPT_BACKOFF.0;
    let mut error_log = LogThrottle::new(LOG_EVERY);
    let mut full_log = LogThrottle::new(LOG_EVERY);
    loop {
        let (stream, source) = match listener.accept().await {
            Ok(accepted) => {
                backoff = ACCEPT_BACKOFF.0;
                accepted
            }
            Err(e) => {
                // EMFILE/ENFILE/ENOMEM leave the connection in the backlog:
                // accepting again at once would spin. Wait, longer each time.
                stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                if let Some(held_back) = error_log.event(Instant::now()) {
                    tracing::warn!(error = %e, more_since_last_line = held_back, backoff_ms = backoff.as_millis() as u64, "TCP accept failed; backing off");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                continue;
            }
        };
        if let Some(acl) = &limits.tcp_accept_only {
            if !acl.allows(source.ip()) {
                stats.tcp_refused_untrusted.fetch_add(1, Ordering::Relaxed);
                continue; // dropping the stream closes it
            }
        }
        if stats.tcp_open.load(Ordering::Relaxed) >= limits.tcp_max_connections {
            stats.tcp_refused_over_limit.fetch_add(1, Ordering::Relaxed);
            if let Some(held_back) = full_log.event(Instant::now()) {
                tracing::warn!(
                    max = limits.tcp_max_connections,
                    source = ?source,
                    more_since_last_line = held_back,
                    "limits.tcp_max_connections reached: connection closed"
                );
            }
            continue;
        }
        stats.tcp_open.fetch_add(1, Ordering::Relaxed);
        stats.tcp_accepted.fetch_add(1, Ordering::Relaxed);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(TCP_QUEUE);
        conns.insert(id, tx);
        let conns = conns.clone();
        let up = up.clone();
        let limits = limits.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            serve_connection(id, stream, source, rx, up, &limits, &stats).await;
            conns.remove(&id);
            stats.tcp_open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn serve_connection(
    id: u64,
    stream: TcpStream,
    source: SocketAddr,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
    up: mpsc::Sender<Inbound>,
    limits: &TransportLimits,
    stats: &TransportStats,
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
        // Any bytes, a CRLF keepalive too, restart the idle clock.
        let n = match tokio::time::timeout(limits.tcp_idle_timeout, rd.read(&mut chunk)).await {
            Err(_) => {
                stats.tcp_idle_closed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(conn = id, "TCP connection idle; closing");
                break;
            }
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => n,
        };
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        loop {
            match wire::frame_stream_limited(&buf, limits.max_message_bytes) {
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
                    if buf.len() > 2 * limits.max_message_bytes {
                        stats.tcp_framing_closed.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(conn = id, "TCP message too large; closing");
                        break 'read;
                    }
                    break;
                }
                Err(e) => {
                    stats.tcp_framing_closed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(conn = id, error = %e, "TCP framing error; closing");
                    break 'read;
                }
            }
        }
    }
    writer.abort();
}
