//! `rivr call`: outbound calls without a running `serve` — the same
//! server core on a free SIP port, one `originate` per call (`--count N`
//! places N to the same number, paced by the trunk's `cps` and capped by
//! its `max_channels`, as a campaign would be), and, as each call closes,
//! one JSON line made from its first leg's CDR record.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{anyhow_like, shutdown_signal, Server, StartOptions};
use crate::call::registry::{CdrRecord, OriginateRequest};
use crate::config::Config;

/// What `rivr call` was asked.
#[derive(Debug, Clone, Default)]
pub struct CallArgs {
    pub number: String,
    pub trunk: Option<String>,
    pub script: Option<PathBuf>,
    pub caller_id: Option<String>,
    pub ring_timeout: Option<Duration>,
    pub vars: Vec<(String, String)>,
    /// How many calls to place (`--count`); 0 is taken as 1.
    pub count: u32,
    /// Answering-machine detection before the script (`--amd`).
    pub amd: bool,
}

impl CallArgs {
    /// What must hold before dialing: the trunk exists, there is a way
    /// out, the script compiles. `rivr call` and `POST /calls` both ask.
    pub fn check(&self, config: &Config) -> Result<(), String> {
        if let Some(t) = &self.trunk {
            if !config.trunks.iter().any(|x| &x.name == t)
                && !config.pri_trunks.iter().any(|x| &x.name == t)
            {
                return Err(format!("--trunk {t:?}: no [[trunk]] with that name"));
            }
        }
        if config.trunks.is_empty()
            && config.pri_trunks.is_empty()
            && !self.number.starts_with("sip:")
        {
            return Err("no [[trunk]] in the config: add one, or call a sip: URI".into());
        }
        if let Some(script) = &self.script {
            let engine = crate::script::engine::build_engine(&config.script);
            crate::script::engine::compile(&engine, script).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The request for one of the calls.
    pub fn request(&self) -> OriginateRequest {
        OriginateRequest {
            amd: self.amd,
            target: self.number.clone(),
            trunk: self.trunk.clone(),
            caller_id: self.caller_id.clone(),
            ring_timeout: self.ring_timeout,
            script: self.script.clone(),
            vars: self.vars.clone(),
            tag: None,
            pace: None,
        }
    }
}

/// The one JSON object `rivr call` prints.
pub fn outcome_json(number: &str, r: &CdrRecord) -> serde_json::Value {
    serde_json::json!({
        "id": r.call_id,
        "number": number,
        "trunk": r.trunk,
        "outcome": r.outcome,
        "refined_outcome": r.refined_outcome,
        "early_media": r.early_media,
        "sip_status": r.sip_status,
        "reason": r.reason,
        "q850": r.q850,
        "ring_ms": r.ring_ms,
        "talk_ms": r.talk_ms,
        "results": r.results,
        "answered_by": r.results.get(crate::script::verbs::amd::RESULT_KEY),
    })
}

/// Places the call and waits for its end; `Ok` with the outcome whatever
/// it is, `Err` for usage, config or script errors.
pub async fn place(config: Config, args: CallArgs) -> anyhow_like::Result<serde_json::Value> {
    let mut last = None;
    place_each(config, CallArgs { count: 1, ..args }, |json| {
        last = Some(json)
    })
    .await?;
    last.ok_or_else(|| anyhow_like::Error("the call ended with no record".into()))
}

/// How long `rivr call` waits for the PRI trunks' D-channel links before
/// dialing anyway (the call then fails as the trunk being down).
const PRI_LINK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Places `args.count` calls at once (the trunk paces them) and hands
/// each call's outcome to `emit` as it ends; returns when every call has
/// ended (`Ok` whatever the outcomes), or with `Err` for usage, config or
/// script errors, or when interrupted before every call ended.
pub async fn place_each(
    config: Config,
    args: CallArgs,
    mut emit: impl FnMut(serde_json::Value),
) -> anyhow_like::Result<()> {
    args.check(&config).map_err(anyhow_like::Error)?;
    let (tap, mut records) = mpsc::unbounded_channel();
    // Its CDR rows go where `rivr serve`'s do.
    let store = if config.cdr.store {
        Some(
            crate::store::Store::open(&config.store.url, &config.base_dir)
                .await
                .map_err(|e| {
                    let url = crate::store::redact_url(&config.store.url);
                    anyhow_like::Error(format!("store.url {url}: {e}"))
                })?,
        )
    } else {
        None
    };
    // A free port beside any `rivr serve` on this box.
    let listen = std::net::SocketAddr::new(config.sip.listen.ip(), 0);
    let mut server = Server::start(
        config,
        StartOptions {
            listen: Some(listen),
            cdr_tap: Some(tap),
            dialog_tap: None,
            store,
            keepalive: false,
        },
    )
    .await?;
    // A PRI trunk is up once its D-channel link is (a second or so).
    server.wait_pri_trunks_up(PRI_LINK_WAIT).await;
    let mut pending = HashSet::new();
    for _ in 0..args.count.max(1) {
        let call = server.originate(args.request()).await;
        pending.insert(server.call_id_text(call));
    }
    let wait = async {
        tokio::select! {
            () = async {
                while let Some(r) = records.recv().await {
                    if r.leg == 0 && pending.remove(&r.call_id) {
                        emit(outcome_json(&args.number, &r));
                        if pending.is_empty() {
                            return;
                        }
                    }
                }
            } => true,
            _ = shutdown_signal() => false,
        }
    };
    let finished = server.run_until(wait).await;
    server.shutdown().await;
    if finished {
        return Ok(());
    }
    // Interrupted: the shutdown wrote the records of the calls still up.
    while let Ok(r) = records.try_recv() {
        if r.leg == 0 && pending.remove(&r.call_id) {
            emit(outcome_json(&args.number, &r));
        }
    }
    if pending.is_empty() {
        Ok(())
    } else {
        Err(anyhow_like::Error(format!(
            "interrupted before {} call(s) ended",
            pending.len()
        )))
    }
}
