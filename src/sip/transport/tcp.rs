//! TCP: the accept loop (connection caps in all and per source,
//! trusted-only accept, backoff on accept errors such as EMFILE instead of
//! spinning) and one task per
//! connection that frames messages from the stream (size limit, idle
//! timeout; a CRLF keepalive counts as traffic) and writes what is sent back.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::per_source::PerSource;
use super::supervise::LoopEnd;
use super::{
    Inbound, TransportLimits, TransportStats, Up, ACCEPT_BACKOFF, CONNECT_TIMEOUT, LOG_EVERY,
    TCP_QUEUE,
};
use crate::rate::LogThrottle;
use crate::sip::message::Transport;
use crate::sip::wire;

pub(super) async fn accept_loop(
    listener: Arc<TcpListener>,
    conns: Arc<DashMap<u64, mpsc::Sender<Vec<u8>>>>,
    per_source: PerSource,
    up: mpsc::Sender<Up>,
    limits: Arc<TransportLimits>,
    stats: Arc<TransportStats>,
) -> LoopEnd {
    let mut backoff = ACCEPT_BACKOFF.0;
    let mut error_log = LogThrottle::new(LOG_EVERY);
    let mut full_log = LogThrottle::new(LOG_EVERY);
    let mut source_log = LogThrottle::new(LOG_EVERY);
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
        if up.is_closed() {
            return LoopEnd::Closed;
        }
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
        // One source may not take every slot: without this, 1,024 idle
        // connections from one address shut TCP for everyone until they
        // time out (tests/abuse/tcp_idle.rs).
        let Some(slot) = per_source.take(source.ip(), limits.tcp_max_per_source) else {
            stats.tcp_refused_per_source.fetch_add(1, Ordering::Relaxed);
            if let Some(held_back) = source_log.event(Instant::now()) {
                tracing::warn!(
                    max = limits.tcp_max_per_source,
                    source = ?source,
                    more_since_last_line = held_back,
                    "limits.tcp_max_per_source reached: connection closed"
                );
            }
            continue;
        };
        stats.tcp_open.fetch_add(1, Ordering::Relaxed);
        stats.tcp_accepted.fetch_add(1, Ordering::Relaxed);
        let id = next_conn_id();
        let (tx, rx) = mpsc::channel(TCP_QUEUE);
        conns.insert(id, tx);
        let conns = conns.clone();
        let up = up.clone();
        let limits = limits.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            // Its own task, so that a panic in it is seen here: the entry is
            // removed either way (its writer then sees the channel close).
            let st = stats.clone();
            let served = tokio::spawn(async move {
                serve_connection(id, stream, source, rx, up, &limits, &st).await
            })
            .await;
            conns.remove(&id);
            drop(slot);
            stats.tcp_open.fetch_sub(1, Ordering::Relaxed);
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

/// Connection ids, inbound and outbound alike (one map holds both).
pub(super) fn next_conn_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The maps an outbound connection removes itself from when it ends.
pub(super) struct OutConns {
    pub conns: Arc<DashMap<u64, mpsc::Sender<Vec<u8>>>>,
    pub out: Arc<DashMap<SocketAddr, u64>>,
}

/// An outbound connection (`Transport::TcpTo`): connects to `dest`, then
/// serves it like an accepted one — the same framing, limits and idle
/// timeout — so responses and the far end's in-dialog requests read on it
/// come up as `Transport::Tcp(id)` and what rivr answers goes back on it.
/// A failed connect is reported up (`Up::ConnectFailed`).
pub(super) async fn connect_and_serve(
    id: u64,
    dest: SocketAddr,
    outgoing: mpsc::Receiver<Vec<u8>>,
    maps: OutConns,
    up: mpsc::Sender<Up>,
    limits: Arc<TransportLimits>,
    stats: Arc<TransportStats>,
) {
    let forget = |maps: &OutConns| {
        maps.conns.remove(&id);
        maps.out.remove_if(&dest, |_, v| *v == id);
    };
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(dest)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            stats.tcp_connect_failed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%dest, error = %e, "TCP connect failed");
            forget(&maps);
            let _ = up.send(Up::ConnectFailed { dest }).await;
            return;
        }
        Err(_) => {
            stats.tcp_connect_failed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%dest, timeout_s = CONNECT_TIMEOUT.as_secs(), "TCP connect timed out");
            forget(&maps);
            let _ = up.send(Up::ConnectFailed { dest }).await;
            return;
        }
    };
    stats.tcp_connected.fetch_add(1, Ordering::Relaxed);
    // SIP messages are whole writes; waiting to coalesce them only delays.
    let _ = stream.set_nodelay(true);
    let st = stats.clone();
    // Its own task, so that a panic in it closes this connection only.
    let served = tokio::spawn(async move {
        serve_connection(id, stream, dest, outgoing, up, &limits, &st).await
    })
    .await;
    forget(&maps);
    if let Err(e) = served {
        if e.is_panic() {
            stats.tcp_connection_panics.fetch_add(1, Ordering::Relaxed);
            let payload = e.into_panic();
            let message = crate::supervision::panic_message(payload.as_ref());
            tracing::error!(conn = id, %dest, ?message, "TCP connection task panicked; connection closed");
        }
    }
}

async fn serve_connection(
    id: u64,
    stream: TcpStream,
    source: SocketAddr,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
    up: mpsc::Sender<Up>,
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
                    if up.send(Up::Message(inbound)).await.is_err() {
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
