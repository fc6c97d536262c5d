//! Keeps the transport's receive loops alive: a loop that panics or fails
//! is logged, counted in `TransportStats` and started again on the same
//! socket after a backoff that grows while it keeps failing, so the server
//! never goes deaf.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::TransportStats;

/// The first wait before a failed loop is started again; it doubles while
/// the loop keeps failing quickly, up to [`MAX_BACKOFF`].
pub(super) const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A loop that ran this long before failing starts again at [`FIRST_BACKOFF`].
const HEALTHY_RUN: Duration = Duration::from_secs(10);

/// How a receive loop ended.
#[derive(Debug)]
pub(super) enum LoopEnd {
    /// The signalling task is gone (shutdown): do not start it again.
    Closed,
    /// An error the loop cannot serve through.
    Failed(std::io::Error),
}

/// Runs the loop `start` makes as its own task and starts it again (after
/// a backoff) whenever it panics or fails, counting each restart in the
/// counter `restarts` picks. Returns when the loop reports `Closed` or the
/// runtime cancels it.
pub(super) async fn supervise<F, Fut>(
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
pub(super) fn is_transient(e: &std::io::Error) -> bool {
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

#[cfg(test)]
mod tests {
    use super::super::udp::udp_loop;
    use super::super::TransportLimits;
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use tokio::net::UdpSocket;
    use tokio::sync::mpsc;

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
                let run = udp_loop(
                    s.clone(),
                    tx.clone(),
                    Arc::new(TransportLimits::default()),
                    Arc::new(TransportStats::default()),
                );
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
        let crate::sip::transport::Up::Message(got) = got else {
            panic!("a message, not {got:?}");
        };
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
