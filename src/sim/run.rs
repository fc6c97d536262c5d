//! Runs one simulated call: the script through the server's own runner
//! (`script::runner::spawn`, on a `script-N` thread with the same stack,
//! limits and panic handling), with the prompts and the script cache built
//! as the server builds them (`server::prompt_store`,
//! `server::script_cache`), against a `SimCall`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::call::control::CallInfo;
use crate::config::Config;
use crate::media::prompt::PromptStore;
use crate::script::runner::{self, Outcome};
use crate::script::ScriptCache;
use crate::sim::call::{lock, SimCall};
use crate::sim::caller::{HeardAudio, SimCore};
use crate::sim::keys::KeyPlan;
use crate::sim::transcript::{Event, Line};

/// One simulated call: the flow, the caller and what a `dial()` meets.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub script: PathBuf,
    /// How the transcript's `start` line names the script (default: its
    /// path as given).
    pub label: Option<String>,
    pub keys: KeyPlan,
    pub from: String,
    pub to: String,
    pub vars: Vec<(String, String)>,
    pub hangup_after: Option<Duration>,
    /// `call.lang` (a language tag); "" takes the `lang` of the route
    /// that `to` reaches, as the server does.
    pub lang: String,
    /// How every `dial()` ends: `no_answer` (the default), `answered`,
    /// `busy`, `rejected`, `unreachable`, `congestion`, `failed`.
    pub dial_outcome: String,
}

/// The caller id a simulated call has unless told otherwise.
pub const DEFAULT_FROM: &str = "sip:caller@sim.invalid";
/// `dial()` outcomes the simulator knows.
pub const DIAL_OUTCOMES: [&str; 7] = [
    "no_answer",
    "answered",
    "busy",
    "rejected",
    "unreachable",
    "congestion",
    "failed",
];

impl SimOptions {
    pub fn new(script: impl Into<PathBuf>) -> SimOptions {
        SimOptions {
            script: script.into(),
            label: None,
            keys: KeyPlan::default(),
            from: DEFAULT_FROM.into(),
            to: String::new(),
            vars: Vec::new(),
            hangup_after: None,
            lang: String::new(),
            dial_outcome: "no_answer".into(),
        }
    }
}

/// What happened on a simulated call.
#[derive(Debug, Clone)]
pub struct SimReport {
    pub lines: Vec<Line>,
    pub heard: Vec<HeardAudio>,
    pub results: Vec<(String, String)>,
    pub outcome: Outcome,
    /// The call's length on its virtual clock.
    pub duration_ms: u64,
}

impl SimReport {
    /// completed, hung_up, caller_hung_up or failed.
    pub fn outcome_name(&self) -> &'static str {
        outcome_name(&self.outcome)
    }

    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed(_))
    }

    /// The prompts the caller heard (at least part of), in order.
    pub fn prompts_heard(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter_map(|l| match &l.event {
                Event::Heard { prompts, .. } => Some(prompts),
                _ => None,
            })
            .flatten()
            .map(|p| p.name.clone())
            .collect()
    }

    /// The results as the CDR has them: the last value of each key.
    pub fn results_map(&self) -> BTreeMap<String, String> {
        self.results.iter().cloned().collect()
    }

    /// The transcript as text, one line per event.
    pub fn text(&self) -> Vec<String> {
        self.lines.iter().map(Line::text).collect()
    }
}

pub fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Completed => "completed",
        Outcome::HungUp => "hung_up",
        Outcome::CallerHungUp => "caller_hung_up",
        Outcome::Failed(_) => "failed",
    }
}

/// The configuration a simulation uses: `path` if given, else `rivr.toml`
/// in the current directory if there is one, else the built-in defaults
/// (prompts in `./prompts`).
pub fn load_config(path: Option<&Path>) -> Result<Config, String> {
    if let Some(p) = path {
        return Config::load(p).map_err(|e| e.to_string());
    }
    let default = Path::new("rivr.toml");
    if default.is_file() {
        return Config::load(default).map_err(|e| e.to_string());
    }
    Config::parse("", "(built-in defaults)", Path::new(".")).map_err(|e| e.to_string())
}

/// Prompts and scripts, loaded once for any number of simulated calls.
pub struct Simulator {
    prompts: Arc<PromptStore>,
    scripts: Arc<ScriptCache>,
    config: Config,
}

impl Simulator {
    pub fn new(config: Config) -> Simulator {
        Simulator {
            prompts: crate::server::prompt_store(&config),
            scripts: Arc::new(crate::server::script_cache(&config, 1)),
            config,
        }
    }

    /// The number a call to `script` would be dialed on: the route that
    /// runs it, if any.
    pub fn routed_number(&self, script: &Path) -> Option<String> {
        let want = script.canonicalize().ok()?;
        self.config
            .routes
            .iter()
            .find(|r| r.script.canonicalize().ok().as_deref() == Some(want.as_path()))
            .and_then(|r| r.number.clone())
    }

    /// Runs the call to its end.
    pub fn run(&self, opts: &SimOptions) -> SimReport {
        let core = Arc::new(Mutex::new(SimCore::new(
            opts.keys.clone(),
            opts.hangup_after,
            &opts.dial_outcome,
        )));
        let to = if opts.to.is_empty() {
            self.routed_number(&opts.script).unwrap_or_default()
        } else {
            opts.to.clone()
        };
        lock(&core).note(Event::Start {
            script: opts
                .label
                .clone()
                .unwrap_or_else(|| opts.script.display().to_string()),
            from: opts.from.clone(),
            to: to.clone(),
        });
        let lang = if opts.lang.is_empty() {
            self.config
                .route_for(&to)
                .and_then(|r| r.lang.clone())
                .unwrap_or_default()
        } else {
            opts.lang.clone()
        };
        let info = CallInfo {
            amd: false,
            lang,
            id: "sim-1".into(),
            from: opts.from.clone(),
            to,
            direction: "inbound",
            started_at: SystemTime::now(),
            trunk: None,
            vars: opts.vars.clone(),
            headers: Vec::new(),
        };
        let ctl = SimCall::new(core.clone(), self.prompts.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let outcome = match runner::spawn(
            self.scripts.clone(),
            opts.script.clone(),
            info,
            Box::new(ctl),
            move |o: &Outcome| {
                let _ = tx.send(o.clone());
            },
        ) {
            Ok(handle) => {
                let _ = handle.join();
                rx.recv()
                    .unwrap_or_else(|_| Outcome::Failed("the script thread ended".into()))
            }
            Err(e) => Outcome::Failed(e.to_string()),
        };
        let mut c = lock(&core);
        let error = match &outcome {
            Outcome::Failed(m) => Some(m.clone()),
            _ => None,
        };
        c.finish(outcome_name(&outcome), error);
        SimReport {
            lines: c.lines.clone(),
            heard: c.heard.clone(),
            results: c.results.clone(),
            outcome,
            duration_ms: u64::try_from(c.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }
}
