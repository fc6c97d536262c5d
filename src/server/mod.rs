//! `rivr serve`: wires the config, the SIP transport and core, the media
//! workers and the script runner together, and shuts them down cleanly.
//!
//! The signalling core (`core::ServerCore`: gate, SIP core, SIP legs glue,
//! call registry — all sans-IO) lives in one tokio task, fed by the
//! transports, by the scripts' requests and by its own next timeout; its
//! effects outside the task go through `env::RealEnv`. `supervise` runs
//! each unit of work so that a panic ends one call, not the process.

mod cdr;
pub mod core;
pub mod env;
mod overload;
pub mod sim;
pub mod sim_drive;
pub mod sip_legs;
pub mod sizing;
mod supervise;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use crate::call::channel::SigCommand;
use crate::call::registry::Registry;
use crate::config::Config;
use crate::media::ports::PortAllocator;
use crate::media::prompt::PromptStore;
use crate::media::worker::MediaPool;
use crate::script::ScriptCache;
use crate::sip::endpoint::{Endpoint, EndpointConfig};
use crate::sip::transaction::TimerConfig;
use crate::sip::transport::{Inbound, Transports};

use self::core::ServerCore;
use env::RealEnv;
use sip_legs::{SipLegs, SipLegsConfig};
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
    let endpoint = Endpoint::new(EndpointConfig {
        local_addr: contact_addr,
        user_agent: format!("rivr/{}", env!("CARGO_PKG_VERSION")),
        timers: TimerConfig::default(),
        seed: rand::random(),
    });
    let registry = Registry::new(
        shared.config.routes.clone(),
        Instant::now(),
        SystemTime::now(),
        rand::random(),
    )
    .with_admission(admission);
    let legs = SipLegs::new(SipLegsConfig {
        public_ip: shared.config.sip.public_ip,
        placeholder_ip: shared.config.sip.listen.ip(),
        codecs: shared.config.media.codecs.clone(),
        early_media_unverified: shared.config.rtp.early_media_unverified,
        seed: rand::random(),
    });
    let gate = overload::gate(&shared.config);
    let mut gate_log = overload::GateLog::new();
    let mut core = ServerCore::new(gate, endpoint, registry, legs, RealEnv::new(shared.clone()));
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
            .next_timer(core.poll_timeout())
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            Some(msg) = up_rx.recv() => {
                sup.on_inbound(&mut core, msg);
                gate_log.maybe_log(Instant::now(), &core.gate);
            }
            Some(cmd) = sig_rx.recv() => sup.on_command(&mut core, cmd),
            _ = tokio::time::sleep_until(sleep_until) => sup.on_timeout(&mut core, Instant::now()),
            _ = &mut stop => break,
        }
        send_all(&mut core, &transports).await;
    }
    tracing::info!(active = core.active(), "shutting down: ending active calls");
    core.hangup_all(Instant::now());
    send_all(&mut core, &transports).await;
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while core.tracked() > 0 && tokio::time::Instant::now() < deadline {
        let next = sup
            .next_timer(core.poll_timeout())
            .map(tokio::time::Instant::from_std)
            .unwrap_or(deadline)
            .min(deadline);
        tokio::select! {
            Some(msg) = up_rx.recv() => sup.on_inbound(&mut core, msg),
            Some(cmd) = sig_rx.recv() => sup.on_command(&mut core, cmd),
            _ = tokio::time::sleep_until(next) => sup.on_timeout(&mut core, Instant::now()),
        }
        send_all(&mut core, &transports).await;
    }
    core.flush_unfinished(Instant::now());
    shared.media.shutdown();
    if let Some(sms) = &shared.sms {
        sms.shutdown(Duration::from_secs(2)).await;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn send_all(core: &mut ServerCore<RealEnv>, transports: &Transports) {
    while let Some(t) = core.poll_transmit() {
        transports.send(t.transport, t.dest, t.bytes).await;
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
