//! The one tokio layer of SIP: a UDP socket and a TCP listener on the same
//! address. It moves bytes only: datagrams and stream-framed messages go
//! up as `Inbound`, and `send` puts bytes on the wire (TCP responses go back
//! on the connection the request came in on, RFC 3261 §18.2.2).
//!
//! The UDP receive loop and the TCP accept loop are supervised
//! (`supervise`): when one ends by a panic or an error it is logged, counted
//! in [`TransportStats`] and started again on the same socket, so the server
//! never goes deaf. A panic in one TCP connection's task closes that
//! connection only, and is counted.
//!
//! It also holds the transport limits (`[limits]`): the largest message,
//! the number of TCP connections open at once, in all and per source (more
//! are accepted and closed at once), and how long a connection may stay
//! silent (a CRLF
//! keepalive, RFC 5626 §3.5.1, counts as traffic). An accept error such as
//! EMFILE backs off instead of spinning, and is logged at most once per
//! `LOG_EVERY`.

mod per_source;
mod supervise;
mod tcp;
mod udp;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

use crate::sip::acl::Acl;
use crate::sip::message::Transport;
use crate::sip::wire;
use supervise::{supervise, FIRST_BACKOFF};

/// What the transports accept (`[limits]`, `[sip] trusted`).
#[derive(Debug, Clone)]
pub struct TransportLimits {
    /// Largest message on any transport (at most `wire::MAX_MESSAGE_BYTES`).
    pub max_message_bytes: usize,
    /// TCP connections open at once.
    pub tcp_max_connections: usize,
    /// TCP connections one source (an IPv4 address, an IPv6 /64) may hold.
    pub tcp_max_per_source: usize,
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
            tcp_max_per_source: 128,
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
    /// Accepted and closed at once: the source held `tcp_max_per_source`.
    pub tcp_refused_per_source: AtomicU64,
    /// Accepted and closed at once: the source is not trusted.
    pub tcp_refused_untrusted: AtomicU64,
    pub tcp_idle_closed: AtomicU64,
    /// Closed because a message was larger than `max_message_bytes` or
    /// its framing was broken.
    pub tcp_framing_closed: AtomicU64,
    pub accept_errors: AtomicU64,
    /// TCP connections open now.
    pub tcp_open: AtomicUsize,
    /// The UDP receive loop ended (panic or error) and was started again.
    pub udp_loop_restarts: AtomicU64,
    /// The TCP accept loop ended (panic or error) and was started again.
    pub tcp_accept_restarts: AtomicU64,
    /// A TCP connection's task panicked; that connection was closed.
    pub tcp_connection_panics: AtomicU64,
    /// Outbound TCP connections made (`Transport::TcpTo`).
    pub tcp_connected: AtomicU64,
    /// Outbound TCP connects that failed or timed out.
    pub tcp_connect_failed: AtomicU64,
}

/// The shortest and longest pause after an accept error.
pub(super) const ACCEPT_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(1));

/// At most one log line per this, per kind of repeated event.
pub(super) const LOG_EVERY: Duration = Duration::from_secs(10);

/// A message as it arrived.
#[derive(Debug)]
pub struct Inbound {
    pub transport: Transport,
    pub source: SocketAddr,
    pub bytes: Vec<u8>,
}

/// What the transport layer reports to the core.
#[derive(Debug)]
pub enum Up {
    Message(Inbound),
    /// A TCP connection rivr opened to `dest` (`Transport::TcpTo`) could
    /// not be made; what was queued for it is dropped. The core ends the
    /// transactions waiting on it at once instead of at timer B or F
    /// (RFC 3261 §17.1.1.2: a transport error is reported to the TU).
    ConnectFailed {
        dest: SocketAddr,
    },
}

/// How long an outbound TCP connect may take. Within timer B and F (32 s)
/// so a connect that never completes is reported before the transaction
/// would time out anyway.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Outgoing bytes queued per TCP connection.
pub(super) const TCP_QUEUE: usize = 256;

#[derive(Clone)]
pub struct Transports {
    udp: Arc<UdpSocket>,
    tcp: Arc<DashMap<u64, mpsc::Sender<Vec<u8>>>>,
    /// The connections rivr opened, by destination (one each, reused).
    out: Arc<DashMap<SocketAddr, u64>>,
    up: mpsc::Sender<Up>,
    limits: Arc<TransportLimits>,
    local: SocketAddr,
    stats: Arc<TransportStats>,
}

impl Transports {
    /// Binds UDP and TCP on `addr` (port 0 picks one free port for both)
    /// and starts the supervised receive loops.
    pub async fn bind(
        addr: SocketAddr,
        up: mpsc::Sender<Up>,
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
        let listener = Arc::new(listener);
        let (up_out, limits_out) = (up.clone(), limits.clone());
        let (sock, tx, lim, st) = (udp.clone(), up.clone(), limits.clone(), stats.clone());
        tokio::spawn(supervise(
            "UDP receive loop",
            stats.clone(),
            |s| &s.udp_loop_restarts,
            FIRST_BACKOFF,
            move || udp::udp_loop(sock.clone(), tx.clone(), lim.clone(), st.clone()),
        ));
        let (conns, st) = (tcp.clone(), stats.clone());
        let per_source = per_source::PerSource::default();
        tokio::spawn(supervise(
            "TCP accept loop",
            stats.clone(),
            |s| &s.tcp_accept_restarts,
            FIRST_BACKOFF,
            move || {
                tcp::accept_loop(
                    listener.clone(),
                    conns.clone(),
                    per_source.clone(),
                    up.clone(),
                    limits.clone(),
                    st.clone(),
                )
            },
        ));
        Ok(Transports {
            udp,
            tcp,
            out: Arc::new(DashMap::new()),
            up: up_out,
            limits: limits_out,
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
            Transport::TcpTo => self.send_tcp_to(dest, bytes),
        }
    }

    /// Queues `bytes` on the connection rivr keeps to `dest`, opening it
    /// first when there is none (or it closed). Never waits for the
    /// connect: the signalling task must not stall on one slow peer.
    fn send_tcp_to(&self, dest: SocketAddr, bytes: Vec<u8>) {
        let open = self
            .out
            .get(&dest)
            .and_then(|id| self.tcp.get(&*id).map(|t| t.clone()));
        let bytes = match open {
            Some(tx) => match tx.try_send(bytes) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::debug!(%dest, "TCP connection full; message dropped");
                    return;
                }
                // It closed since: connect again with these bytes.
                Err(mpsc::error::TrySendError::Closed(b)) => b,
            },
            None => bytes,
        };
        let id = tcp::next_conn_id();
        let (tx, rx) = mpsc::channel(TCP_QUEUE);
        // The first message waits in the queue until the connect is done.
        let _ = tx.try_send(bytes);
        self.tcp.insert(id, tx);
        self.out.insert(dest, id);
        tokio::spawn(tcp::connect_and_serve(
            id,
            dest,
            rx,
            tcp::OutConns {
                conns: self.tcp.clone(),
                out: self.out.clone(),
            },
            self.up.clone(),
            self.limits.clone(),
            self.stats.clone(),
        ));
    }
}

/// The TCP accept queue: a burst of connections (a scanner, a SYN flood
/// from one source, a restart of an SBC's pool) waits here while the
/// accept loop closes what is over the caps. With tokio's default of 1024
/// a burst of 2,500 connects in a second left some in SYN-RECEIVED that
/// the client took for open. The kernel caps it at `net.core.somaxconn`
/// (4096 on current Linux).
const TCP_BACKLOG: u32 = 4096;

fn tcp_listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // As std's TcpListener::bind does: a restart may rebind at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(TCP_BACKLOG)
}

async fn bind_both(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    if addr.port() != 0 {
        let udp = UdpSocket::bind(addr).await?;
        let tcp = tcp_listen(addr)?;
        return Ok((udp, tcp));
    }
    // Port 0: find one port free on both transports.
    let mut last = None;
    for _ in 0..32 {
        let udp = UdpSocket::bind(addr).await?;
        let port = udp.local_addr()?.port();
        match tcp_listen(SocketAddr::new(addr.ip(), port)) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no port free on both UDP and TCP")))
}
