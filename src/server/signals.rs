//! The stop signals of `rivr serve`: SIGTERM asks for a drain, SIGINT (a
//! Ctrl-C at a terminal) for a stop at once; during a drain either one
//! ends it at once. Both handlers are installed once, before the server
//! runs, so a second signal is never lost to the default action (which
//! would kill the process without writing CDRs).

use tokio::signal::unix::{signal, Signal, SignalKind};

/// Which stop was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: drain, then stop.
    Drain,
    /// SIGINT: stop now (the clean shutdown: every call ended with BYE,
    /// its CDR written).
    Now,
}

pub struct Signals {
    term: Option<Signal>,
    int: Option<Signal>,
}

impl Signals {
    /// Installs the handlers; one that cannot be installed is logged and
    /// that signal keeps its default action.
    pub fn install() -> Signals {
        let open = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(signal = name, error = %e, "cannot handle the signal; it kills rivr without a shutdown");
                None
            }
        };
        Signals {
            term: open(SignalKind::terminate(), "SIGTERM"),
            int: open(SignalKind::interrupt(), "SIGINT"),
        }
    }

    /// The next stop signal.
    pub async fn next(&mut self) -> Stop {
        async fn recv(s: &mut Option<Signal>) {
            match s {
                Some(s) => {
                    // `None` only once the driver is gone: never ready again.
                    if s.recv().await.is_none() {
                        std::future::pending::<()>().await
                    }
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            _ = recv(&mut self.term) => Stop::Drain,
            _ = recv(&mut self.int) => Stop::Now,
        }
    }
}
