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
mod cdr_store;
pub mod core;
pub mod drain;
pub mod env;
pub mod node;
pub mod one_call;
mod overload;
pub mod pri_legs;
mod signals;
pub mod sim;
pub mod sim_drive;
pub mod sip_legs;
pub mod sizing;
pub mod stats;
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
    /// The JSON-lines CDR file (`[cdr] file`).
    pub cdr: Option<cdr::CdrWriter>,
    /// CDR rows for the store (`[cdr] store`, with a store given).
    pub cdr_store: Option<cdr_store::CdrStoreQueue>,
    /// Every CDR record also goes here (`rivr call` waits for its own).
    pub cdr_tap: Option<mpsc::UnboundedSender<CdrRecord>>,
    /// Where tagged calls' dialogs stand (the campaign dialer stores them).
    pub dialog_tap: Option<mpsc::UnboundedSender<sip_legs::DialogNote>>,
    pub sms: Option<crate::sms::SmsService>,
    /// The store, when the server has one (`opt_out()` writes to it).
    pub store: Option<crate::store::Store>,
    /// Legs ended, by direction, trunk and outcome (`/metrics`).
    pub call_counts: stats::CallCounts,
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
    /// Where CDR rows go when `[cdr] store` is on (`serve` opens it).
    pub store: Option<crate::store::Store>,
    /// Send the trunks' OPTIONS keepalives (`serve`; a single `rivr call`
    /// has no use for them).
    pub keepalive: bool,
}

/// The prompts as every call (and `rivr sim`) finds them: `[media] prompts`.
pub fn prompt_store(config: &Config) -> Arc<PromptStore> {
    Arc::new(PromptStore::new(config.media.prompts.clone()))
}

/// The script engine and compiled scripts as every call (and `rivr sim`)
/// runs them: `[script]` limits and every verb.
pub fn script_cache(config: &Config, max_scripts: usize) -> ScriptCache {
    ScriptCache::with_max_scripts(config.script.clone(), max_scripts).with_speaker(Arc::new(
        crate::script::say::Speaker::from_config(&config.tts),
    ))
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
        let prompts = prompt_store(&config);
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
        let scripts = Arc::new(script_cache(
            &config,
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
        for r in &config.sms.routes {
            if let Err(e) = scripts.get(&r.script) {
                return Err(anyhow_like::Error(format!("sms_route {}: {e}", r.name)));
            }
        }
        let sms = if config.smpp.is_some() || !config.smsc.is_empty() || config.sms_http.is_some() {
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
        let store = opts.store.clone();
        let (cdr, cdr_store) = cdr::writers(&config, opts.store, &sig_tx)?;
        let shared = Arc::new(Shared {
            ports,
            cdr,
            cdr_store,
            cdr_tap: opts.cdr_tap,
            dialog_tap: opts.dialog_tap,
            config,
            prompts,
            scripts,
            media,
            sig_tx,
            sms,
            store,
            call_counts: stats::CallCounts::default(),
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

    /// The SMS service, when `[smpp]` or `[sms_http]` is configured.
    pub fn sms(&self) -> Option<crate::sms::SmsService> {
        self.shared.sms.clone()
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
            campaigns::Control::Calls { reply } => {
                let mut calls = self.core.registry.live_calls(Instant::now());
                for leg in calls.iter_mut().flat_map(|c| c.legs.iter_mut()) {
                    leg.media = self.core.env.live_media(leg.id);
                }
                let _ = reply.send(calls);
            }
            campaigns::Control::Hangup { id, reply } => {
                let call = self.core.registry.call_by_text(&id);
                if let Some(call) = call {
                    self.core.operator_hangup(Instant::now(), call);
                }
                let _ = reply.send(call.is_some());
            }
            campaigns::Control::Trunks { reply } => {
                let _ = reply.send(self.trunk_states());
            }
            campaigns::Control::Stats { reply } => {
                let _ = reply.send(self.stats());
            }
            campaigns::Control::JitterDelays { reply } => {
                let _ = reply.send(self.shared.media.take_delays());
            }
            campaigns::Control::TtsSynthTimes { reply } => {
                let cache = self.shared.scripts.speaker().cache();
                let _ = reply.send(cache.take_synth_seconds());
            }
            campaigns::Control::TrunkCaps {
                name,
                max_channels,
                cps,
            } => self.core.registry.set_trunk_caps(&name, max_channels, cps),
            campaigns::Control::EndOrphan { tag, trunk, dialog } => {
                self.core
                    .end_orphan(Instant::now(), tag, trunk.as_deref(), *dialog)
            }
        }
    }

    /// Every trunk of the file, SIP then PRI, as it stands now.
    fn trunk_states(&self) -> Vec<campaigns::TrunkState> {
        let trunks = self.core.registry.trunks();
        let c = &self.shared.config;
        let sip = c.trunks.iter().map(|t| campaigns::TrunkState {
            name: t.name.clone(),
            kind: "sip",
            up: trunks.is_up(&t.name),
            registered: self
                .core
                .legs
                .trunk_id(&t.name)
                .and_then(|id| self.core.endpoint.trunk_registered(id)),
            channels_in_use: trunks.in_use(&t.name),
            max_channels: t.max_channels,
            cps: t.cps,
            spans: Vec::new(),
        });
        let pri = c.pri_trunks.iter().map(|t| campaigns::TrunkState {
            name: t.name.clone(),
            kind: "pri",
            up: trunks.is_up(&t.name),
            registered: None,
            channels_in_use: trunks.in_use(&t.name),
            max_channels: t.max_channels,
            cps: t.cps,
            spans: t
                .spans
                .iter()
                .map(|name| {
                    let (busy, up) = self.core.pri.span_state(name).unwrap_or((0, false));
                    campaigns::SpanState {
                        name: name.clone(),
                        up,
                        channels_in_use: busy,
                        channels: c
                            .spans
                            .iter()
                            .find(|s| &s.name == name)
                            .map_or(0, |s| s.channels.len()),
                    }
                })
                .collect(),
        });
        sip.chain(pri).collect()
    }

    /// Serves until `stop` completes; returns what it gave.
    pub async fn run_until<F: std::future::Future>(&mut self, stop: F) -> F::Output {
        let mut stop = Box::pin(stop);
        loop {
            if let Some(out) = self.turn(None, &mut stop).await {
                return out;
            }
        }
    }

    /// Handles one thing (a message, a command, a due timer) and sends
    /// what it caused; wakes by `until` at the latest. `Some` when `stop`
    /// completed instead.
    async fn turn<F: std::future::Future + Unpin>(
        &mut self,
        until: Option<tokio::time::Instant>,
        stop: &mut F,
    ) -> Option<F::Output> {
        send_all(&mut self.core, &self.transports).await;
        let timer = self
            .sup
            .next_timer(self.core.poll_timeout())
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        let sleep_until = until.map_or(timer, |u| u.min(timer));
        tokio::select! {
            Some(msg) = self.up_rx.recv() => {
                self.sup.on_inbound(&mut self.core, msg);
                self.gate_log.maybe_log(Instant::now(), &self.core.gate);
            }
            Some(cmd) = self.sig_rx.recv() => self.sup.on_command(&mut self.core, cmd),
            Some((trunk, addrs)) = self.targets_rx.recv() => self.core.endpoint.set_trunk_targets(trunk, addrs),
            Some(ctl) = self.control_rx.recv() => self.on_control(ctl),
            Some((span, ev)) = self.span_rx.recv() => self.sup.on_span_event(&mut self.core, span, ev),
            // A wake-up for `until` alone runs no due timer: a spurious
            // timeout round is a no-op.
            _ = tokio::time::sleep_until(sleep_until) => self.sup.on_timeout(&mut self.core, Instant::now()),
            out = stop => return Some(out),
        }
        send_all(&mut self.core, &self.transports).await;
        self.send_span_commands().await;
        None
    }

    /// The drain (docs/config.md, "Stopping rivr"): from now on new calls
    /// get 503 and OPTIONS pings 503, both with `Retry-After`; the calls in
    /// progress are served until they have all ended, or `timeout` has
    /// passed, or `interrupt` completes (a second signal). The caller then
    /// runs [`Server::shutdown`], which ends whatever is left.
    pub async fn drain<F: std::future::Future>(
        &mut self,
        timeout: Duration,
        interrupt: F,
    ) -> drain::Outcome {
        let t0 = Instant::now();
        let mut clock = drain::DrainClock::new(t0, timeout);
        let mut retry_after = clock.retry_after(t0);
        self.core.set_draining(Some(retry_after));
        tracing::info!(
            calls = self.core.tracked(),
            timeout_s = timeout.as_secs(),
            retry_after_s = crate::rate::retry_after_secs(retry_after),
            "drain: started; new INVITEs and OPTIONS get 503 with Retry-After, calls in progress go on"
        );
        let mut interrupt = Box::pin(interrupt);
        let end = loop {
            let now = Instant::now();
            let held = self.core.tracked();
            let until = match clock.poll(now, held) {
                drain::Step::Done(end) => break end,
                drain::Step::WaitUntil(t) => t,
            };
            if clock.report_due(now) {
                tracing::info!(
                    calls = held,
                    waited_s = now.duration_since(t0).as_secs(),
                    left_s = clock.deadline().saturating_duration_since(now).as_secs(),
                    "drain: waiting for calls in progress"
                );
            }
            // Whole seconds: refreshed only when the figure changes.
            let wait = clock.retry_after(now);
            if wait.as_secs() != retry_after.as_secs() {
                retry_after = wait;
                self.core.set_draining(Some(retry_after));
            }
            if self
                .turn(Some(tokio::time::Instant::from_std(until)), &mut interrupt)
                .await
                .is_some()
            {
                let left = self.core.tracked();
                tracing::warn!(
                    calls = left,
                    waited_ms = t0.elapsed().as_millis() as u64,
                    "drain: interrupted by a second signal; ending the calls left now"
                );
                break drain::DrainEnd::Interrupted { left };
            }
        };
        let outcome = drain::Outcome {
            end,
            took: t0.elapsed(),
            peak: clock.peak(),
            refused_invites: self
                .core
                .registry
                .admission()
                .map_or(0, |a| a.stats().refused_draining),
            refused_options: self.core.endpoint.stats().options_refused,
        };
        match end {
            drain::DrainEnd::Empty => tracing::info!(
                took_ms = outcome.took.as_millis() as u64,
                calls_at_start = outcome.peak,
                refused_invites = outcome.refused_invites,
                refused_options = outcome.refused_options,
                "drain: every call ended on its own"
            ),
            drain::DrainEnd::Deadline { left } => tracing::warn!(
                calls_left = left,
                took_ms = outcome.took.as_millis() as u64,
                refused_invites = outcome.refused_invites,
                refused_options = outcome.refused_options,
                "drain: timeout reached; ending the calls left"
            ),
            drain::DrainEnd::Interrupted { .. } => {}
        }
        outcome
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
        self.wait_cdrs_stored().await;
        self.shared.media.shutdown();
        if let Some(sms) = &self.shared.sms {
            sms.shutdown(Duration::from_secs(2)).await;
        }
        tracing::info!("stopped");
    }
}

/// Runs the server until SIGINT, or SIGTERM and the drain it starts.
pub async fn serve(config: Config) -> anyhow_like::Result<()> {
    serve_with(config, drain::Drain::new()).await
}

/// Runs the server until SIGINT, or until a drain (SIGTERM, or `drain`
/// started by someone else: the HTTP API's `POST /drain`) has run its
/// course; `drain` reads as draining from then on (`/ready`).
pub async fn serve_with(config: Config, drain: drain::Drain) -> anyhow_like::Result<()> {
    // Before anything slow: a SIGTERM during the start must not kill the
    // process with the default action.
    let mut signals = signals::Signals::install();
    let store = crate::store::Store::open(&config.store.url, &config.base_dir)
        .await
        .map_err(|e| {
            let url = crate::store::redact_url(&config.store.url);
            anyhow_like::Error(format!("store.url {url}: {e}"))
        })?;
    // This process is node `[cluster] node_id` of the database, its id
    // held until serve returns (or the process dies).
    let node = node::Node::join(&store, &config.cluster)
        .await
        .map_err(|e| {
            let url = crate::store::redact_url(&config.store.url);
            anyhow_like::Error(format!("store.url {url}: {e}"))
        })?;
    let (tap, cdrs) = mpsc::unbounded_channel();
    let (dialog_tap, dialogs) = mpsc::unbounded_channel();
    let mut server = Server::start(
        config,
        StartOptions {
            keepalive: true,
            cdr_tap: Some(tap),
            dialog_tap: Some(dialog_tap),
            store: Some(store.clone()),
            ..StartOptions::default()
        },
    )
    .await?;
    if server.config().http.is_some() {
        let api = crate::api::ApiState::new(
            Arc::new(server.config().clone()),
            server.control(),
            store.clone(),
            server.shared.sms.clone(),
            drain.clone(),
        );
        let addr = crate::api::start(api).await.map_err(anyhow_like::Error)?;
        println!("rivr HTTP API on http://{addr}/");
    }
    let sms_flows = start_sms_flows(&server);
    let (stop_dialing, stop_rx) = tokio::sync::watch::channel(false);
    let runner = campaigns::Runner::new(
        store,
        server.shared.sms.clone(),
        server.control(),
        runner_config(server.config()),
    )
    .with_node(node);
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
    let first = server
        .run_until(async {
            tokio::select! {
                s = signals.next() => s,
                _ = drain.started() => signals::Stop::Drain,
            }
        })
        .await;
    // The dialer claims no new attempt from here; the calls it placed
    // are served to their end and recorded (docs/campaigns.md, "Stopping").
    let _ = stop_dialing.send(true);
    if first == signals::Stop::Drain {
        drain.start();
        let timeout = server.config().server.drain_timeout;
        server.drain(timeout, signals.next()).await;
    } else {
        tracing::info!("SIGINT: stopping now");
    }
    if let Some(f) = sms_flows {
        f.abort();
    }
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

/// The two-way SMS flows (`sms::flow`), when SMS is configured: inbound
/// SMS run their `[[sms_route]]` script; opt-out keywords are honoured
/// with or without routes.
fn start_sms_flows(server: &Server) -> Option<tokio::task::JoinHandle<()>> {
    let c = server.config();
    let Some(sms) = server.sms() else {
        if !c.sms.routes.is_empty() {
            tracing::warn!(
                "[[sms_route]] is set but neither [smpp] nor [sms_http] is: no SMS can arrive"
            );
        }
        return None;
    };
    Some(crate::sms::flow::start(
        c.sms.clone(),
        sms,
        server.shared.scripts.clone(),
    ))
}

/// The campaign dialer's settings from the config: every trunk's pace,
/// SIP and PRI alike (the dialer does not care which).
pub fn runner_config(c: &Config) -> campaigns::RunnerConfig {
    campaigns::RunnerConfig {
        trunks: c
            .trunks
            .iter()
            .map(|t| (&t.name, t.cps, t.max_channels))
            .chain(
                c.pri_trunks
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
        ghost_hold: ghost_hold(c),
        unanswered_hold: Duration::from_secs(u64::from(ring_max(c))) + campaigns::SIXTY_FOUR_T1,
    }
}

/// The longest ring timeout of any trunk (45 s without trunks).
fn ring_max(c: &Config) -> u32 {
    c.trunks
        .iter()
        .map(|t| t.ring_timeout_s)
        .chain(c.pri_trunks.iter().map(|t| t.ring_timeout_s))
        .max()
        .unwrap_or(45)
}

/// How long a call a dead process left at the carrier is counted against
/// its trunk: the longest ring timeout, then the session interval rivr asks
/// for (or an hour when it asks for none).
fn ghost_hold(c: &Config) -> Duration {
    let ring = ring_max(c);
    let talk = c.sip.session_ask.map_or(3600, u64::from);
    Duration::from_secs(u64::from(ring) + talk)
}

async fn send_all(core: &mut ServerCore<RealEnv>, transports: &Transports) {
    while let Some(t) = core.poll_transmit() {
        transports.send(t.transport, t.dest, t.bytes).await;
    }
    // The INVITEs of the calls started in this turn have left.
    core.registry.starts_sent(Instant::now());
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
