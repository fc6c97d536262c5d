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

/// Outgoing bytes queued per TCP connection.
pub(super) const TCP_QUEUE: usize = 256;

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
        let listener = Arc::new(listener);
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
