//! The server core with nothing real behind it: [`SimEnv`] records what
//! the core asks of the world (ports, media commands, script starts, CDRs)
//! and can be told to fail, and [`sim_core`] builds a whole `ServerCore` —
//! gate, SIP core, SIP legs, registry — around it. Unit tests drive it on a
//! virtual clock with SIP text; the whole-server fuzz target drives it with
//! arbitrary datagrams and script verbs.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::core::ServerCore;
use super::env::{Env, MediaSpec};
use super::sip_legs::{SipLegs, SipLegsConfig, SipTrunk};
use crate::call::admission::{Admission, AdmissionConfig};
use crate::call::control::DialResult;
use crate::call::id::{CallId, LegId};
use crate::call::registry::{CdrRecord, Registry, ScriptStart};
use crate::call::trunks::{TrunkLimits, Trunks};
use crate::codec::Codec;
use crate::config::Route;
use crate::media::worker::{BChannelKind, MediaCommand};
use crate::sip::acl::{Acl, UntrustedPolicy};
use crate::sip::endpoint::{Endpoint, EndpointConfig};
use crate::sip::flood::{FloodConfig, DEFAULT_CAPACITY};
use crate::sip::gate::{Gate, GateConfig};
use crate::sip::transaction::TimerConfig;

/// What the simulated world did for the core, for tests to read.
#[derive(Default)]
pub struct SimEnv {
    next_port: u16,
    /// Ports reserved and not yet handed to media or released.
    pub reserved: BTreeSet<u16>,
    /// Legs with media, and every command their media got.
    pub media: HashMap<LegId, Vec<MediaCommand>>,
    /// B-channel legs' media: the channel's path and codec.
    pub bchannels: HashMap<LegId, (PathBuf, BChannelKind, Codec)>,
    /// Media specs as added.
    pub specs: HashMap<LegId, MediaSpec>,
    pub scripts: Vec<ScriptStart>,
    pub gone: Vec<CallId>,
    pub cdrs: Vec<CdrRecord>,
    pub closed: Vec<CallId>,
    pub results: HashMap<CallId, Vec<(String, String)>>,
    /// Make the next reservations / media adds / script starts fail.
    pub fail_ports: bool,
    pub fail_media: bool,
    pub fail_scripts: bool,
    /// Ports still reserved or held by media: 0 when nothing leaked.
    pub held_ports: usize,
    /// Ringback, joins and dial ends, in order.
    pub bridge: Vec<String>,
    pub dials: Vec<(CallId, DialResult)>,
    /// What tagged calls' dialogs did, in order.
    pub dialog_notes: Vec<super::sip_legs::DialogNote>,
    /// Hold closed calls as if their CDR rows were being stored, until
    /// `CdrStored`.
    pub hold_cdrs: bool,
    pub cdrs_storing: BTreeSet<CallId>,
}

impl Env for SimEnv {
    fn dialog_note(&mut self, note: super::sip_legs::DialogNote) {
        self.dialog_notes.push(note);
    }

    fn reserve_rtp(&mut self) -> Result<u16, String> {
        if self.fail_ports {
            return Err("no free RTP port pair (simulated)".into());
        }
        self.next_port = self.next_port.wrapping_add(2).max(20_000);
        self.reserved.insert(self.next_port);
        self.held_ports += 1;
        Ok(self.next_port)
    }

    fn release_rtp(&mut self, port: u16) {
        if self.reserved.remove(&port) {
            self.held_ports -= 1;
        }
    }

    fn media_add(
        &mut self,
        _call: CallId,
        leg: LegId,
        port: u16,
        spec: MediaSpec,
    ) -> Result<(), String> {
        if !self.reserved.remove(&port) {
            return Err(format!("port {port} not reserved"));
        }
        if self.fail_media {
            self.held_ports -= 1;
            return Err("no media worker (simulated)".into());
        }
        self.media.insert(leg, Vec::new());
        self.specs.insert(leg, spec);
        Ok(())
    }

    fn media_add_bchannel(
        &mut self,
        _call: CallId,
        leg: LegId,
        path: PathBuf,
        kind: BChannelKind,
        codec: Codec,
    ) -> Result<(), String> {
        if self.fail_media {
            return Err("no media worker (simulated)".into());
        }
        self.media.insert(leg, Vec::new());
        self.bchannels.insert(leg, (path, kind, codec));
        Ok(())
    }

    fn media(&mut self, leg: LegId, cmd: MediaCommand) {
        if let Some(log) = self.media.get_mut(&leg) {
            // Keep memory bounded under a fuzzer: only the last commands.
            if log.len() >= 64 {
                log.remove(0);
            }
            log.push(cmd);
        }
    }

    fn media_remove(&mut self, leg: LegId) {
        if self.bchannels.remove(&leg).is_some() {
            self.media.remove(&leg);
            return;
        }
        if self.media.remove(&leg).is_some() {
            self.specs.remove(&leg);
            self.held_ports -= 1;
        }
    }

    fn start_script(&mut self, start: &ScriptStart) -> Result<(), String> {
        if self.fail_scripts {
            return Err("script threads full (simulated)".into());
        }
        self.scripts.push(start.clone());
        Ok(())
    }

    fn call_gone(&mut self, call: CallId) {
        self.gone.push(call);
    }

    fn results(&mut self, call: CallId) -> Vec<(String, String)> {
        self.results.remove(&call).unwrap_or_default()
    }

    fn write_cdr(&mut self, record: &CdrRecord) {
        self.cdrs.push(record.clone());
    }

    fn call_closed(&mut self, call: CallId) {
        self.closed.push(call);
        if self.hold_cdrs {
            self.cdrs_storing.insert(call);
        }
    }

    fn cdr_stored(&mut self, call: CallId) {
        self.cdrs_storing.remove(&call);
    }

    fn cdrs_pending(&self) -> usize {
        self.cdrs_storing.len()
    }

    fn ringback(&mut self, leg: LegId, on: bool) {
        self.bridge.push(format!("ringback {leg} {on}"));
    }

    fn detect_machine(&mut self, leg: LegId) {
        self.bridge.push(format!("detect-machine {leg}"));
    }

    fn classify_early_media(&mut self, leg: LegId, on: bool) {
        self.bridge.push(format!("classify-early {leg} {on}"));
    }

    fn join(&mut self, listener: LegId, source: LegId) {
        self.bridge.push(format!("join {listener}<-{source}"));
    }

    fn unjoin(&mut self, listener: LegId) {
        self.bridge.push(format!("unjoin {listener}"));
    }

    fn dial_ended(&mut self, call: CallId, result: DialResult) {
        self.dials.push((call, result));
    }
}

/// How to build a simulated server.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub local: SocketAddr,
    /// (number, script); `"*"` is the default route.
    pub routes: Vec<(String, String)>,
    pub max_calls: usize,
    pub max_cps: u32,
    pub per_source_cps: u32,
    pub trusted: Option<Acl>,
    pub untrusted: UntrustedPolicy,
    pub seed: u64,
    /// Trunks for outbound calls: the SIP side, and the call layer's limits.
    pub trunks: Vec<SipTrunk>,
    pub trunk_limits: Vec<TrunkLimits>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            local: SocketAddr::from(([127, 0, 0, 1], 5060)),
            routes: vec![
                ("1000".into(), "scripts/main_menu.rhai".into()),
                ("2000".into(), "scripts/survey.rhai".into()),
            ],
            max_calls: 1000,
            max_cps: 1000,
            per_source_cps: 1000,
            trusted: None,
            untrusted: UntrustedPolicy::Reject,
            seed: 1,
            trunks: Vec::new(),
            trunk_limits: Vec::new(),
        }
    }
}

/// A whole server core around a [`SimEnv`], its clocks anchored at `now`.
pub fn sim_core(opts: &SimOptions, now: Instant) -> ServerCore<SimEnv> {
    let gate = Gate::new(GateConfig {
        trusted: opts.trusted.clone(),
        untrusted: opts.untrusted,
        flood: FloodConfig {
            rate: opts.per_source_cps,
            burst: opts.per_source_cps,
            capacity: DEFAULT_CAPACITY.min(4096),
            ..FloodConfig::default()
        },
    });
    let endpoint = Endpoint::new(EndpointConfig {
        local_addr: opts.local,
        user_agent: "rivr-sim".into(),
        timers: TimerConfig::default(),
        seed: opts.seed,
        session: Default::default(),
        session_ask: Some(1800),
    });
    let routes = opts
        .routes
        .iter()
        .map(|(n, s)| Route {
            number: (n != "*").then(|| n.clone()),
            script: PathBuf::from(s),
            lang: None,
        })
        .collect();
    let registry = Registry::new(
        routes,
        now,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000),
        opts.seed as u32,
    )
    .with_admission(Admission::new(AdmissionConfig {
        max_calls: opts.max_calls,
        max_cps: opts.max_cps,
    }))
    .with_trunks(Trunks::new(opts.trunk_limits.clone()));
    let legs = SipLegs::new(SipLegsConfig {
        public_ip: opts.local.ip(),
        placeholder_ip: IpAddr::from([127, 0, 0, 1]),
        codecs: Codec::ALL.to_vec(),
        early_media_unverified: Duration::from_secs(1),
        seed: opts.seed,
        trunks: opts.trunks.clone(),
    });
    ServerCore::new(gate, endpoint, registry, legs, SimEnv::default())
}
