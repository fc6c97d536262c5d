//! `rivr serve`: wires the config, the SIP transport and core, the media
//! workers and the script runner together, and shuts them down cleanly.
//!
//! The SIP core (`sip::endpoint::Endpoint`) lives in one tokio task, fed by
//! the transports, by the scripts' signalling commands and by its own next
//! timeout; `calls` holds what rivr does with each call it sees; `supervise`
//! runs each of those units of work so that a panic ends one call, not the
//! process.

mod calls;
mod cdr;
mod overload;
pub mod sizing;
mod supervise;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::call::channel::SigCommand;
use crate::config::Config;
use crate::media::ports::PortAllocator;
use crate::media::prompt::PromptStore;
use crate::media::worker::MediaPool;
use crate::script::ScriptCache;
use crate::sip::endpoint::{Endpoint, EndpointConfig, Output};
use crate::sip::transaction::TimerConfig;
use crate::sip::transport::{Inbound, Transports};

pub use calls::Calls;
pub use supervise::{SignallingStats, Supervisor};

/// Everything shared by the calls of one server.
pub struct Shared {
    pub config: Config,
    pub prompts: Arc<PromptStore>,
    pub scripts: Arc<ScriptCache>,
    pub media: MediaPool,
    pub ports: Arc<PortAllocator>,
    pub sig_tx: mpsc::UnboundedSender<SigCommand>,
    pub cdr: cdr::CdrWriter,
    pub sms: Option<crate::sms::SmsService>,
}

/// How long shutdown waits for BYEs to be answered.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Runs the server until SIGINT/SIGTERM.
pub async fn serve(config: Config) -> anyhow_like::Result<()> {
    crate::supervision::install_panic_hook();
    // First, before anything opens a descriptor.
    let fd_limit = overload::raise_fd_limit();
    let prompts = Arc::new(PromptStore::new(config.media.prompts.clone()));
    match prompts.preload_all() {
        Ok(n) => {
            tracing::info!(prompts = n, dir = %config.media.prompts.display(), "prompts decoded and pre-encoded")
        }
        Err(e) => tracing::warn!(error = %e, "some prompts did not load; they fail when played"),
    }
    let ports = Arc::new(PortAllocator::new(config.rtp.port_min, config.rtp.port_max));
    let admission = overload::admission(&config, ports.available(), &fd_limit);
    // Scripts may outlive their call for a moment (on_hangup, the report of
    // their end), so the cap leaves a margin above the call cap.
    let max_calls = admission.config().max_calls;
    let scripts = Arc::new(ScriptCache::with_max_scripts(
        config.script.clone(),
        max_calls.saturating_add((max_calls / 10).max(16)),
    ));
    for r in &config.routes {
        if let Err(e) = scripts.get(&r.script) {
            return Err(anyhow_like::Error(format!(
                "route {}: {e}",
                r.number.as_deref().unwrap_or("*")
            )));
        }
    }
    let sms = if config.smpp.is_some() || config.sms_http.is_some() {
        let s = crate::sms::SmsService::start(&config)
            .await
            .map_err(|e| anyhow_like::Error(format!("sms: {e}")))?;
        tracing::info!("SMS service started; scripts can send_sms()");
        Some(s)
    } else {
        None
    };
    let (up_tx, mut up_rx) = mpsc::channel::<Inbound>(4096);
    let transports = Transports::bind(
        config.sip.listen,
        up_tx,
        overload::transport_limits(&config),
    )
    .await
    .map_err(|e| anyhow_like::Error(format!("sip.listen {}: {e}", config.sip.listen)))?;
    let local = transports.local_addr();
    let contact_addr = std::net::SocketAddr::new(config.sip.public_ip, local.port());
    let (sig_tx, mut sig_rx) = mpsc::unbounded_channel();
    let media = MediaPool::start(config.rtp.workers)
        .map_err(|e| anyhow_like::Error(format!("media workers: {e}")))?;
    let shared = Arc::new(Shared {
        ports,
        cdr: cdr::CdrWriter::open(&config.cdr_path).map_err(|e| {
            anyhow_like::Error(format!("cdr.path {}: {e}", config.cdr_path.display()))
        })?,
        config,
        prompts,
        scripts,
        media,
        sig_tx,
        sms,
    });
    let mut endpoint = Endpoint::new(EndpointConfig {
        local_addr: contact_addr,
        user_agent: format!("rivr/{}", env!("CARGO_PKG_VERSION")),
        timers: TimerConfig::default(),
        seed: rand::random(),
    });
    let mut gate = overload::gate(&shared.config);
    let mut gate_log = overload::GateLog::new();
    let mut calls = Calls::new(shared.clone(), admission);
    println!(
        "rivr {} listening on udp+tcp {} (rtp {}-{}); routes: {}",
        env!("CARGO_PKG_VERSION"),
        local,
        shared.config.rtp.port_min,
        shared.config.rtp.port_max,
        shared
            .config
            .routes
            .iter()
            .map(|r| format!(
                "{} -> {}",
                r.number.as_deref().unwrap_or("*"),
                r.script.display()
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut sup = Supervisor::default();
    let mut stop = Box::pin(shutdown_signal());
    loop {
        let sleep_until = sup
            .next_timer(&endpoint)
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            Some(msg) = up_rx.recv() => {
                if let Some(msg) = overload::inbound(&mut gate, &transports, msg).await {
                    sup.on_inbound(&mut endpoint, &mut calls, msg);
                }
                gate_log.maybe_log(Instant::now(), &gate);
            }
            Some(cmd) = sig_rx.recv() => sup.on_command(&mut endpoint, &mut calls, cmd),
            _ = tokio::time::sleep_until(sleep_until) => sup.on_timeout(&mut endpoint, Instant::now()),
            _ = &mut stop => break,
        }
        drain(&mut endpoint, &mut calls, &transports, &sup).await;
    }
    tracing::info!(
        active = calls.active(),
        "shutting down: ending active calls"
    );
    calls.hangup_all(&mut endpoint);
    drain(&mut endpoint, &mut calls, &transports, &sup).await;
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while (endpoint.active_calls() > 0 || calls.tracked() > 0)
        && tokio::time::Instant::now() < deadline
    {
        let next = sup
            .next_timer(&endpoint)
            .map(tokio::time::Instant::from_std)
            .unwrap_or(deadline)
            .min(deadline);
        tokio::select! {
            Some(msg) = up_rx.recv() => {
                if let Some(msg) = overload::inbound(&mut gate, &transports, msg).await {
                    sup.on_inbound(&mut endpoint, &mut calls, msg);
                }
            }
            Some(cmd) = sig_rx.recv() => sup.on_command(&mut endpoint, &mut calls, cmd),
            _ = tokio::time::sleep_until(next) => sup.on_timeout(&mut endpoint, Instant::now()),
        }
        drain(&mut endpoint, &mut calls, &transports, &sup).await;
    }
    calls.flush_unfinished();
    shared.media.shutdown();
    if let Some(sms) = &shared.sms {
        sms.shutdown(Duration::from_secs(2)).await;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn drain(
    endpoint: &mut Endpoint,
    calls: &mut Calls,
    transports: &Transports,
    sup: &Supervisor,
) {
    // Handling an event can queue more output (a reject answers at once).
    while let Some(out) = endpoint.poll_output() {
        match out {
            Output::Transmit {
                transport,
                dest,
                bytes,
            } => transports.send(transport, dest, bytes).await,
            Output::Event(ev) => sup.on_event(endpoint, calls, ev),
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {}
                _ = i.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// A plain error with a message, for the top of `serve`.
pub mod anyhow_like {
    #[derive(Debug)]
    pub struct Error(pub String);
    impl std::fmt::Display for Error {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl std::error::Error for Error {}
    pub type Result<T> = std::result::Result<T, Error>;
}
