//! `rivr serve`: wires the config, the SIP transport and core, the media
//! workers and the script runner together, and shuts them down cleanly.
//!
//! The signalling core (`core::ServerCore`: gate, SIP core, SIP legs glue,
//! call registry — all sans-IO) lives in one tokio task, fed by the
//! transports, by the scripts' requests and by its own next timeout; its
//! effects outside the task go through `env::RealEnv`. `supervise` runs
//! each unit of work so that a panic ends one call, not the process.

pub mod campaigns;
mod cdr;
pub mod core;
pub mod env;
pub mod one_call;
mod overload;
pub mod pri_legs;
pub mod sim;
pub mod sim_drive;
pub mod sip_legs;
pub mod sizing;
mod supervise;
pub mod trunks;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use crate::call::channel::SigCommand;
use crate::call::id::CallId;
use crate::call::registry::{CdrRecord, OriginateRequest, Registry};
use crate::call::trunks::{TrunkLimits, Trunks};
use crate::config::Config;
use crate::media::ports::PortAllocator;
use crate::media::prompt::PromptStore;
use crate::media::worker::MediaPool;
use crate::pri::span::{SpanCommand, SpanEvent, SpanSignalling};
use crate::script::ScriptCache;
use crate::sip::endpoint::{Endpoint, EndpointConfig};
use crate::sip::transaction::TimerConfig;
use crate::sip::transport::{Transports, Up};

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
    /// Every CDR record also goes here (`rivr call` waits for its own).
    pub cdr_tap: Option<mpsc::UnboundedSender<CdrRecord>>,
    /// Where tagged calls' dialogs stand (the campaign dialer stores them).
    pub dialog_tap: Option<mpsc::UnboundedSender<sip_legs::DialogNote>>,
    pub sms: Option<crate::sms::SmsService>,
}

/// DAHDI is a Linux kernel module: elsewhere a DAHDI span could never
/// open its channels, and a server that ignored it would leave the
/// carrier's calls unanswered without a word.
#[cfg(not(target_os = "linux"))]
fn refuse_dahdi(config: &Config) -> anyhow_like::Result<()> {
    if let Some(s) = config
        .spans
        .iter()
        .find(|s| s.transport == crate::config::SpanTransport::Dahdi)
    {
        return Err(anyhow_like::Error(format!(
            "span {:?}: transport = \"dahdi\" needs Linux (DAHDI is a Linux kernel module; docs/pri.md)",
            s.name
        )));
    }
    Ok(())
}

/// Starts one task per span (`pri::span::run`, over the span's transport:
/// sockets or DAHDI) and one channel that carries every span's events,
/// tagged with the span's index. A span whose D-channel cannot be reached
/// yet logs it and tries again each second: a carrier's line may come up
/// later.
fn start_spans(
    config: &Config,
) -> (
    Vec<mpsc::Sender<SpanCommand>>,
    mpsc::Receiver<(usize, SpanEvent)>,
) {
    let (all_tx, all_rx) = mpsc::channel(4096);
    let mut commands = Vec::new();
    for (i, span) in config.spans.iter().enumerate() {
        let (cmd_tx, cmd_rx) = mpsc::channel(1024);
        let (ev_tx, mut ev_rx) = mpsc::channel(1024);
        let l2_side = match span.side {
            crate::pri::q931::Side::User => crate::pri::q921::Side::User,
            crate::pri::q931::Side::Network => crate::pri::q921::Side::Network,
        };
        let mut calls = span.q931();
        if let Some(t) = config
            .pri_trunks
            .iter()
            .find(|t| t.spans.contains(&span.name))
        {
            calls.hunt = match t.hunt {
                crate::config::Hunt::Lowest => crate::pri::q931::Hunt::Ascending,
                crate::config::Hunt::Highest => crate::pri::q931::Hunt::Descending,
                crate::config::Hunt::RoundRobin => crate::pri::q931::Hunt::RoundRobin,
            };
        }
        tokio::spawn(crate::pri::span::run(
            SpanSignalling {
                dchannel: span.dchannel.clone(),
                transport: span.transport,
                link: crate::pri::q921::LinkConfig::new(l2_side),
                calls,
            },
            cmd_rx,
            ev_tx,
        ));
        let all = all_tx.clone();
        tokio::spawn(async move {
            while let Some(ev) = ev_rx.recv().await {
                if all.send((i, ev)).await.is_err() {
                    return;
                }
            }
        });
        let transport = match span.transport {
            crate::config::SpanTransport::Socket => "socket",
            crate::config::SpanTransport::Dahdi => "dahdi",
        };
        tracing::info!(span = %span.name, transport, dchannel = %span.dchannel.display(), channels = %span.channels_text(), "PRI span started");
        commands.push(cmd_tx);
    }
    (commands, all_rx)
}

/// How long shutdown waits for BYEs to be answered.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// A running server: the signalling core and the channels that feed it.
pub struct Server {
    core: ServerCore<RealEnv>,
    transports: Transports,
    up_rx: mpsc::Receiver<Up>,
    sig_rx: mpsc::UnboundedReceiver<SigCommand>,
    /// New address lists of trunks whose DNS records expired.
    targets_rx: mpsc::UnboundedReceiver<(usize, Vec<std::net::SocketAddr>)>,
    /// The campaign dialer's requests.
    control_rx: mpsc::UnboundedReceiver<campaigns::Control>,
    control_tx: mpsc::UnboundedSender<campaigns::Control>,
    /// Each span's command channel, by index; and every span's events.
    span_tx: Vec<mpsc::Sender<SpanCommand>>,
    span_rx: mpsc::Receiver<(usize, SpanEvent)>,
    shared: Arc<Shared>,
    sup: Supervisor,
    gate_log: overload::GateLog,
}

/// How to start one.
#[derive(Default)]
pub struct StartOptions {
    /// Listen here instead of `[sip] listen` (`rivr call` takes a free port
    /// so it can run beside `rivr serve`).
    pub listen: Option<std::net::SocketAddr>,
    pub cdr_tap: Option<mpsc::UnboundedSender<CdrRecord>>,
    pub dialog_tap: Option<mpsc::UnboundedSender<sip_legs::DialogNote>>,
    /// Send the trunks' OPTIONS keepalives (`serve`; a single `rivr call`
    /// has no use for them).
    pub keepalive: bool,
}

impl Server {
    /// Loads prompts and scripts, binds SIP, starts media and SMS, builds
    /// the core. Errors say which key is at fault.
    pub async fn start(config: Config, opts: StartOptions) -> anyhow_like::Result<Server> {
        crate::supervision::install_panic_hook();
        #[cfg(not(target_os = "linux"))]
        refuse_dahdi(&config)?;
        // First, before anything opens a descriptor.
        let fd_limit = overload::raise_fd_limit();
        let prompts = Arc::new(PromptStore::new(config.media.prompts.clone()));
        match prompts.preload_all() {
            Ok(n) => {
                tracing::info!(prompts = n, dir = %config.media.prompts.display(), "prompts decoded and pre-encoded")
            }
            Err(e) => {
                tracing::warn!(error = %e, "some prompts did not load; they fail when played")
            }
        }
        let ports = Arc::new(PortAllocator::new(config.rtp.port_min, config.rtp.port_max));
        // A call holds an RTP pair or a B-channel: both bound the calls.
        let b_channels: usize = config.spans.iter().map(|s| s.channels.len()).sum();
        let admission = overload::admission(&config, ports.available() + b_channels, &fd_limit);
        // Scripts may outlive their call for a moment (on_hangup, the report
        // of their end), so the cap leaves a margin above the call cap.
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
        let listen = opts.listen.unwrap_or(config.sip.listen);
        let (up_tx, up_rx) = mpsc::channel::<Up>(4096);
        let transports = Transports::bind(listen, up_tx, overload::transport_limits(&config))
            .await
            .map_err(|e| anyhow_like::Error(format!("sip.listen {listen}: {e}")))?;
        let local = transports.local_addr();
        let contact_addr = std::net::SocketAddr::new(config.sip.public_ip, local.port());
        let (sip_trunks, mut trunk_limits, watch) = trunks::resolve(&config, contact_addr).await?;
        trunk_limits.extend(config.pri_trunks.iter().map(|t| TrunkLimits {
            name: t.name.clone(),
            max_channels: t.max_channels,
            cps: t.cps,
            ring_timeout: Duration::from_secs(u64::from(t.ring_timeout_s)),
            caller_id: t.caller_id.clone(),
        }));
        let (targets_tx, targets_rx) = mpsc::unbounded_channel();
        watch.spawn(targets_tx);
        let (sig_tx, sig_rx) = mpsc::unbounded_channel();
        let media = MediaPool::start(config.rtp.workers)
            .map_err(|e| anyhow_like::Error(format!("media workers: {e}")))?;
        let shared = Arc::new(Shared {
            ports,
            cdr: cdr::CdrWriter::open(&config.cdr_path).map_err(|e| {
                anyhow_like::Error(format!("cdr.path {}: {e}", config.cdr_path.display()))
            })?,
            cdr_tap: opts.cdr_tap,
            dialog_tap: opts.dialog_tap,
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
            session: shared.config.sip.session,
            session_ask: shared.config.sip.session_ask,
        });
        let mut registry = Registry::new(
            shared.config.routes.clone(),
            Instant::now(),
            SystemTime::now(),
            rand::random(),
        )
        .with_admission(admission)
        .with_trunks(Trunks::new(trunk_limits));
        // A PRI trunk is up once one of its spans' D-channel link is.
        for t in &shared.config.pri_trunks {
            registry.set_trunk_up(&t.name, false);
        }
        let legs = SipLegs::new(SipLegsConfig {
            public_ip: shared.config.sip.public_ip,
            placeholder_ip: shared.config.sip.listen.ip(),
            codecs: shared.config.media.codecs.clone(),
            early_media_unverified: shared.config.rtp.early_media_unverified,
            seed: rand::random(),
            trunks: sip_trunks,
        });
        let gate = overload::gate(&shared.config);
        let pri = pri_legs::PriLegs::new(
            shared.config.spans.clone(),
            shared.config.pri_trunks.clone(),
        );
        let mut core =
            ServerCore::new(gate, endpoint, registry, legs, RealEnv::new(shared.clone()))
                .with_pri(pri);
        let (span_tx, span_rx) = start_spans(&shared.config);
        core.start_trunk_links(Instant::now(), opts.keepalive);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        Ok(Server {
            core,
            transports,
            up_rx,
            sig_rx,
            targets_rx,
            control_rx,
            control_tx,
            span_tx,
            span_rx,
            shared,
            sup: Supervisor::default(),
            gate_log: overload::GateLog::new(),
        })
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.transports.local_addr()
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The id scripts and CDRs know a call by.
    pub fn call_id_text(&self, call: CallId) -> String {
        self.core.registry.call_id_text(call)
    }

    /// Places a call (`rivr call`, and later campaigns and the API).
    pub async fn originate(&mut self, req: OriginateRequest) -> CallId {
        send_all(&mut self.core, &self.transports).await;
        let call = self.core.originate(Instant::now(), req);
        send_all(&mut self.core, &self.transports).await;
        self.send_span_commands().await;
        call
    }

    /// Serves until every PRI trunk is up (a span's D-channel link is
    /// established), or `wait` has passed.
    pub async fn wait_pri_trunks_up(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let names: Vec<String> = self
                .shared
                .config
                .pri_trunks
                .iter()
                .map(|t| t.name.clone())
                .collect();
            let trunks = self.core.registry.trunks();
            if names.iter().all(|n| trunks.is_up(n)) || tokio::time::Instant::now() >= deadline {
                return;
            }
            self.run_until(tokio::time::sleep(Duration::from_millis(50)))
                .await;
        }
    }

    /// Hands the spans what the core asked of them.
    async fn send_span_commands(&mut self) {
        while let Some((span, cmd)) = self.core.poll_span_command() {
            if let Some(tx) = self.span_tx.get(span) {
                // A span task only ends with the server.
                let _ = tx.send(cmd).await;
            }
        }
    }

    /// Where the campaign dialer sends its requests.
    pub fn control(&self) -> mpsc::UnboundedSender<campaigns::Control> {
        self.control_tx.clone()
    }

    fn on_control(&mut self, ctl: campaigns::Control) {
        match ctl {
            campaigns::Control::Originate { req, reply } => {
                let call = self.core.originate(Instant::now(), req);
                let _ = reply.send((call, self.call_id_text(call)));
            }
            campaigns::Control::End { call } => self.core.end_call(Instant::now(), call),
            campaigns::Control::EndOrphan { tag, trunk, dialog } => {
                self.core
                    .end_orphan(Instant::now(), tag, trunk.as_deref(), *dialog)
            }
        }
    }

    /// Serves until `stop` completes; returns what it gave.
    pub async fn run_until<F: std::future::Future>(&mut self, stop: F) -> F::Output {
        send_all(&mut self.core, &self.transports).await;
        let mut stop = Box::pin(stop);
        loop {
            let sleep_until = self
                .sup
                .next_timer(self.core.poll_timeout())
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                Some(msg) = self.up_rx.recv() => {
                    self.sup.on_inbound(&mut self.core, msg);
                    self.gate_log.maybe_log(Instant::now(), &self.core.gate);
                }
                Some(cmd) = self.sig_rx.recv() => self.sup.on_command(&mut self.core, cmd),
                Some((trunk, addrs)) = self.targets_rx.recv() => self.core.endpoint.set_trunk_targets(trunk, addrs),
                Some(ctl) = self.control_rx.recv() => self.on_control(ctl),
                Some((span, ev)) = self.span_rx.recv() => self.sup.on_span_event(&mut self.core, span, ev),
                _ = tokio::time::sleep_until(sleep_until) => self.sup.on_timeout(&mut self.core, Instant::now()),
                out = &mut stop => return out,
            }
            send_all(&mut self.core, &self.transports).await;
            self.send_span_commands().await;
        }
    }

    /// Ends every call (BYE, CANCEL, a final response), waits a little for
    /// them to be answered, writes every CDR, stops media and SMS.
    pub async fn shutdown(mut self) {
        tracing::info!(
            active = self.core.active(),
            "shutting down: ending active calls"
        );
        self.core.hangup_all(Instant::now());
        send_all(&mut self.core, &self.transports).await;
        self.send_span_commands().await;
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while self.core.tracked() > 0 && tokio::time::Instant::now() < deadline {
            let next = self
                .sup
                .next_timer(self.core.poll_timeout())
                .map(tokio::time::Instant::from_std)
                .unwrap_or(deadline)
                .min(deadline);
            tokio::select! {
                Some(msg) = self.up_rx.recv() => self.sup.on_inbound(&mut self.core, msg),
                Some(cmd) = self.sig_rx.recv() => self.sup.on_command(&mut self.core, cmd),
                Some((span, ev)) = self.span_rx.recv() => self.sup.on_span_event(&mut self.core, span, ev),
                _ = tokio::time::sleep_until(next) => self.sup.on_timeout(&mut self.core, Instant::now()),
            }
            send_all(&mut self.core, &self.transports).await;
            self.send_span_commands().await;
        }
        self.core.flush_unfinished(Instant::now());
        self.shared.media.shutdown();
        if let Some(sms) = &self.shared.sms {
            sms.shutdown(Duration::from_secs(2)).await;
        }
        tracing::info!("stopped");
    }
}

/// Runs the server until SIGINT/SIGTERM.
pub async fn serve(config: Config) -> anyhow_like::Result<()> {
    let store = crate::store::Store::open(&config.store.url, &config.base_dir)
        .await
        .map_err(|e| anyhow_like::Error(format!("store.url {}: {e}", config.store.url)))?;
    let (tap, cdrs) = mpsc::unbounded_channel();
    let (dialog_tap, dialogs) = mpsc::unbounded_channel();
    let mut server = Server::start(
        config,
        StartOptions {
            keepalive: true,
            cdr_tap: Some(tap),
            dialog_tap: Some(dialog_tap),
            ..StartOptions::default()
        },
    )
    .await?;
    let (stop_dialing, stop_rx) = tokio::sync::watch::channel(false);
    let runner = campaigns::Runner::new(
        store,
        server.shared.sms.clone(),
        server.control(),
        campaigns::RunnerConfig {
            trunks: server
                .config()
                .trunks
                .iter()
                .map(|t| (&t.name, t.cps, t.max_channels))
                .chain(
                    server
                        .config()
                        .pri_trunks
                        .iter()
                        .map(|t| (&t.name, t.cps, t.max_channels)),
                )
                .map(
                    |(name, cps, max_channels)| crate::campaign::pace::TrunkPace {
                        name: name.clone(),
                        cps,
                        max_channels,
                    },
                )
                .collect(),
            ghost_hold: ghost_hold(server.config()),
        },
    );
    let runner = tokio::spawn(runner.run(cdrs, dialogs, stop_rx));
    let c = server.config();
    println!(
        "rivr {} listening on udp+tcp {} (rtp {}-{}); routes: {}{}",
        env!("CARGO_PKG_VERSION"),
        server.local_addr(),
        c.rtp.port_min,
        c.rtp.port_max,
        c.routes
            .iter()
            .map(|r| format!(
                "{} -> {}",
                r.number.as_deref().unwrap_or("*"),
                r.script.display()
            ))
            .collect::<Vec<_>>()
            .join(", "),
        if c.trunks.is_empty() && c.pri_trunks.is_empty() {
            String::new()
        } else {
            format!(
                "; trunks: {}",
                c.trunks
                    .iter()
                    .map(|t| t.name.as_str())
                    .chain(c.pri_trunks.iter().map(|t| t.name.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    server.run_until(shutdown_signal()).await;
    let _ = stop_dialing.send(true);
    server.shutdown().await;
    // The tap closes with the server: the dialer records the calls the
    // shutdown ended, then returns.
    if tokio::time::timeout(Duration::from_secs(5), runner)
        .await
        .is_err()
    {
        tracing::warn!(
            "campaigns: outcomes of the last calls not all recorded; the next start resolves them"
        );
    }
    Ok(())
}

/// How long a call a dead process left at the carrier is counted against
/// its trunk: the longest ring timeout, then the session interval rivr asks
/// for (or an hour when it asks for none).
fn ghost_hold(c: &Config) -> Duration {
    let ring = c
        .trunks
        .iter()
        .map(|t| t.ring_timeout_s)
        .chain(c.pri_trunks.iter().map(|t| t.ring_timeout_s))
        .max()
        .unwrap_or(45);
    let talk = c.sip.session_ask.map_or(3600, u64::from);
    Duration::from_secs(u64::from(ring) + talk)
}

async fn send_all(core: &mut ServerCore<RealEnv>, transports: &Transports) {
    while let Some(t) = core.poll_transmit() {
        transports.send(t.transport, t.dest, t.bytes).await;
    }
}

pub async fn shutdown_signal() {
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
