//! Runs one call's script on its own OS thread (Rhai is synchronous; the
//! thread blocks on the call's control channel while a verb waits). The
//! script's end — normal, hangup, error, limit or panic — always ends the
//! call cleanly: BYE once answered, a final response before.
//!
//! A panic anywhere on the script thread (a verb, the engine, the call
//! control, the `done` callback) is caught here: it fails that call with
//! `Outcome::Failed("panic: …")`, is counted in `ScriptThreads::panics`,
//! and never reaches the rest of the process.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rhai::{CallFnOptions, Dynamic, EvalAltResult, Map, Scope};

use crate::call::control::{CallControl, CallInfo};
use crate::script::api::{
    self, Running, END_CALLER_GONE, END_HANGUP, END_MEMORY, END_STUCK, END_TIME,
};
use crate::script::ends::Limit;
use crate::script::engine::{ScriptCache, ScriptError};
use crate::script::memory::MemoryBudget;
use crate::script::threads::{next_thread_name, SpawnError};
use crate::script::verbs::Session;

/// How a script ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Ran to its end.
    Completed,
    /// Called hangup() or reject().
    HungUp,
    /// The caller hung up first.
    CallerHungUp,
    /// An error, a limit or a panic; the message has file:line:col where
    /// known, and starts with "panic: " after a panic.
    Failed(String),
}

/// What a flow puts in its script's scope, and takes back once the script
/// ended: a call's `call` map ([`CallScope`]); an SMS's `sms` map and its
/// `session` (`sms::flow`).
pub trait FlowScope: Send {
    fn fill(&mut self, scope: &mut Scope, info: &CallInfo);
    /// Runs on the script's thread after the script (and `on_hangup`).
    fn take(&mut self, _scope: &Scope, _outcome: &Outcome) {}
}

/// A call's scope: the `call` map.
pub struct CallScope;

impl FlowScope for CallScope {
    fn fill(&mut self, scope: &mut Scope, info: &CallInfo) {
        let mut call = call_map(info);
        // `rivr call --amd`: the verdict is known before the script runs.
        if info.amd {
            call.insert("answered_by".into(), detect_before_script().into());
        }
        scope.push_constant("call", call);
    }
}

/// Stack for a script thread: deep enough for the call-depth limit.
const SCRIPT_STACK: usize = 1024 * 1024;

/// Starts the script for a call on a new thread (`script-N`), if the cap on
/// running scripts allows; `done` runs on that thread when the call has
/// been ended. The slot is given back when the thread ends.
pub fn spawn(
    cache: Arc<ScriptCache>,
    path: PathBuf,
    info: CallInfo,
    ctl: Box<dyn CallControl>,
    done: impl FnOnce(&Outcome) + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, SpawnError> {
    spawn_flow(cache, path, info, ctl, Box::new(CallScope), done)
}

/// [`spawn`] with the scope a flow other than a call gives its script.
pub fn spawn_flow(
    cache: Arc<ScriptCache>,
    path: PathBuf,
    info: CallInfo,
    ctl: Box<dyn CallControl>,
    mut extra: Box<dyn FlowScope>,
    done: impl FnOnce(&Outcome) + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, SpawnError> {
    let slot = cache.threads().try_acquire()?;
    // Made here, on the spawning thread: tracing's span registry keeps a
    // shard of slots per thread that makes spans, a page of them (4.8 kB)
    // per script thread if each made its own — more than a held call's
    // whole jitter buffer.
    let span = call_span(&info);
    let handle = std::thread::Builder::new()
        .name(next_thread_name())
        .stack_size(SCRIPT_STACK)
        .spawn(move || {
            // `run` catches what panics inside it; this also covers what
            // it drops on the way out.
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                run_flow(span, &cache, &path, info, ctl, &mut *extra)
            }))
            .unwrap_or_else(|p| {
                slot.threads().count_panic();
                Outcome::Failed(format!("panic: {}", panic_message(&*p)))
            });
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| done(&outcome))) {
                slot.threads().count_panic();
                tracing::error!(panic = ?panic_message(&*p), "a script's done callback panicked");
            }
            drop(slot);
        })?;
    Ok(handle)
}

/// Runs the script to its end on this thread and ends the call. A panic in
/// the script's verbs, the engine or the call control is caught and is the
/// call's `Failed("panic: …")`; the call is ended all the same.
pub fn run(cache: &ScriptCache, path: &Path, info: CallInfo, ctl: Box<dyn CallControl>) -> Outcome {
    run_flow(call_span(&info), cache, path, info, ctl, &mut CallScope)
}

/// The span every line of a call's script is logged in.
fn call_span(info: &CallInfo) -> tracing::Span {
    tracing::info_span!("call", id = %info.id)
}

/// [`run`] with the scope `extra` fills, in `span`.
fn run_flow(
    span: tracing::Span,
    cache: &ScriptCache,
    path: &Path,
    info: CallInfo,
    ctl: Box<dyn CallControl>,
    extra: &mut dyn FlowScope,
) -> Outcome {
    let _enter = span.enter();
    let limits = cache.limits();
    // The call's control goes into the thread-local state first, so that
    // whatever happens below, it can be taken back to end the call.
    let mut session = Session::with_time_limit(ctl, Duration::from_millis(limits.max_duration_ms));
    if let Err(e) = session.set_lang(&info.lang) {
        // Checked where it is set (config, call vars); never fatal here.
        tracing::warn!(error = %e, "call language ignored");
    }
    api::install(Running {
        session,
        call_id: info.id.clone(),
        memory: MemoryBudget::start(limits.max_memory_bytes),
        ops_now: 0,
        ops_at_last_verb: 0,
        max_ops_between_verbs: limits.max_operations_between_verbs,
        stop: None,
        http: cache.http().clone(),
        speaker: cache.speaker().clone(),
    });
    let outcome = match catch_unwind(AssertUnwindSafe(|| {
        run_installed(cache, path, &info, extra)
    })) {
        Ok(o) => o,
        Err(p) => {
            cache.threads().count_panic();
            Outcome::Failed(format!("panic: {}", panic_message(&*p)))
        }
    };
    let failed = matches!(outcome, Outcome::Failed(_));
    let mut memory_peak = 0;
    if let Some(mut r) = api::uninstall() {
        memory_peak = r.memory.peak();
        let ended = catch_unwind(AssertUnwindSafe(|| {
            if !r.session.is_ended() {
                end_call(r.session.control(), failed);
            }
        }));
        if let Err(p) = ended {
            cache.threads().count_panic();
            tracing::error!(panic = ?panic_message(&*p), "ending the call panicked");
        }
    }
    cache.threads().ends().count(&outcome);
    match &outcome {
        Outcome::Failed(m) => {
            tracing::error!(error = ?m, memory_peak, "script failed; call ended")
        }
        o => tracing::info!(outcome = ?o, memory_peak, "script ended"),
    }
    outcome
}

/// The script and its `on_hangup`, with the state installed.
fn run_installed(
    cache: &ScriptCache,
    path: &Path,
    info: &CallInfo,
    extra: &mut dyn FlowScope,
) -> Outcome {
    let ast = match cache.get_versioned(path) {
        Ok(v) => {
            tracing::debug!(script = %path.display(), version = v.version, "script started");
            v.ast
        }
        Err(e) => {
            tracing::error!(error = %e, "script does not compile");
            return Outcome::Failed(e.to_string());
        }
    };
    let mut scope = Scope::new();
    extra.fill(&mut scope, info);
    let outcome = match cache.engine().run_ast_with_scope(&mut scope, &ast) {
        Ok(()) => Outcome::Completed,
        Err(e) => classify(path, *e, cache),
    };
    if matches!(outcome, Outcome::CallerHungUp)
        && ast
            .iter_functions()
            .any(|f| f.name == "on_hangup" && f.params.is_empty())
    {
        // Not `call_fn`: it runs the script's top level again first, which
        // replayed every verb before the first one that needs the call
        // (set_result, send_sms twice) and then failed before on_hangup.
        let once = CallFnOptions::new().eval_ast(false);
        let r: Result<Dynamic, _> =
            cache
                .engine()
                .call_fn_with_options(once, &mut scope, &ast, "on_hangup", ());
        if let Err(e) = r {
            if let Outcome::Failed(m) = classify(path, *e, cache) {
                tracing::warn!(error = ?m, "on_hangup failed");
            }
        }
    }
    extra.take(&scope, &outcome);
    outcome
}

/// What a panic said, when it said it with a string.
fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// BYE when answered; before that 500 after a failure, else 480.
fn end_call(ctl: &mut dyn CallControl, failed: bool) {
    if ctl.is_gone() {
        return;
    }
    if ctl.is_answered() || !failed {
        ctl.hangup();
    } else {
        let _ = ctl.reject(500);
    }
}

fn classify(path: &Path, e: EvalAltResult, cache: &ScriptCache) -> Outcome {
    let max_memory = cache.limits().max_memory_bytes;
    let ends = cache.threads().ends();
    match &e {
        EvalAltResult::ErrorTooManyOperations(_) => ends.count_limit(Limit::Operations),
        EvalAltResult::ErrorStackOverflow(_) => ends.count_limit(Limit::CallDepth),
        EvalAltResult::ErrorDataTooLarge(..) => ends.count_limit(Limit::DataSize),
        _ => {}
    }
    if let EvalAltResult::ErrorTerminated(tag, pos) = &e {
        let tag = tag.clone().into_string().unwrap_or_default();
        let failed = |message: String| {
            Outcome::Failed(ScriptError::from_position(path, *pos, message).to_string())
        };
        return match tag.as_str() {
            END_HANGUP => Outcome::HungUp,
            END_CALLER_GONE => Outcome::CallerHungUp,
            END_STUCK => {
                ends.count_limit(Limit::Stuck);
                failed("stopped: too many operations without a verb (a busy loop?)".into())
            }
            END_TIME => {
                ends.count_limit(Limit::Time);
                failed(
                    "stopped: the script ran past its time limit ([script] max_duration_ms)".into(),
                )
            }
            END_MEMORY => {
                ends.count_limit(Limit::Memory);
                failed(format!(
                    "stopped: the script held more than {max_memory} bytes ([script] max_memory_bytes)"
                ))
            }
            other => failed(format!("terminated: {other}")),
        };
    }
    let pos = e.position();
    Outcome::Failed(ScriptError::from_position(path, pos, e.to_string()).to_string())
}

/// `amd` on an outbound call: the verdict for `call.answered_by` ("" when
/// the call ended first; the script's first verb then sees the hangup).
fn detect_before_script() -> String {
    let cfg = crate::media::amd::AmdConfig::rivr();
    match api::with(|r| r.session.detect_machine(cfg)) {
        Ok(v) => v.answered_by.as_str().to_string(),
        Err(e) => {
            tracing::info!(error = %e, "no answering-machine verdict");
            String::new()
        }
    }
}

fn call_map(info: &CallInfo) -> Map {
    let mut m = Map::new();
    m.insert("id".into(), info.id.clone().into());
    m.insert("from".into(), info.from.clone().into());
    m.insert("to".into(), info.to.clone().into());
    m.insert("direction".into(), info.direction.into());
    m.insert("lang".into(), info.lang.clone().into());
    m.insert("started_at".into(), rfc3339(info.started_at).into());
    m.insert(
        "trunk".into(),
        info.trunk
            .clone()
            .map(Dynamic::from)
            .unwrap_or(Dynamic::UNIT),
    );
    let mut vars = Map::new();
    for (k, v) in &info.vars {
        vars.insert(k.as_str().into(), v.clone().into());
    }
    m.insert("vars".into(), vars.into());
    // Header names are case-insensitive: the map's keys are lower case; a
    // header sent twice keeps its first value.
    let mut headers = Map::new();
    for (k, v) in &info.headers {
        headers
            .entry(k.to_ascii_lowercase().as_str().into())
            .or_insert_with(|| v.clone().into());
    }
    m.insert("headers".into(), headers.into());
    m
}

/// `YYYY-MM-DDTHH:MM:SSZ` without a date crate (civil-from-days, H. Hinnant).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests;
