//! Runs one call's script on its own OS thread (Rhai is synchronous; the
//! thread blocks on the call's control channel while a verb waits). The
//! script's end — normal, hangup, error or limit — always ends the call
//! cleanly: BYE once answered, a final response before.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rhai::{Dynamic, EvalAltResult, Map, Scope};

use crate::call::control::{CallControl, CallInfo};
use crate::script::api::{self, Running, END_CALLER_GONE, END_HANGUP, END_STUCK, END_TIME};
use crate::script::engine::{ScriptCache, ScriptError};
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
    /// An error or a limit; the message has file:line:col where known.
    Failed(String),
}

/// Stack for a script thread: deep enough for the call-depth limit.
const SCRIPT_STACK: usize = 1024 * 1024;

/// Starts the script for a call on a new thread; `done` runs on that thread
/// when the call has been ended.
pub fn spawn(
    cache: Arc<ScriptCache>,
    path: PathBuf,
    info: CallInfo,
    ctl: Box<dyn CallControl>,
    done: impl FnOnce(&Outcome) + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("script-{}", info.id))
        .stack_size(SCRIPT_STACK)
        .spawn(move || {
            let outcome = run(&cache, &path, info, ctl);
            done(&outcome);
        })
}

/// Runs the script to its end on this thread and ends the call.
pub fn run(
    cache: &ScriptCache,
    path: &std::path::Path,
    info: CallInfo,
    ctl: Box<dyn CallControl>,
) -> Outcome {
    let call_id = info.id.clone();
    let span = tracing::info_span!("call", id = %call_id);
    let _enter = span.enter();
    let ast = match cache.get(path) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "script does not compile");
            let mut ctl = ctl;
            end_call(ctl.as_mut(), true);
            return Outcome::Failed(e.to_string());
        }
    };
    let limits = cache.limits();
    api::install(Running {
        session: Session::new(ctl),
        call_id: call_id.clone(),
        deadline: Instant::now() + Duration::from_millis(limits.max_duration_ms),
        ops_now: 0,
        ops_at_last_verb: 0,
        max_ops_between_verbs: limits.max_operations_between_verbs,
        stop: None,
    });
    let mut scope = Scope::new();
    scope.push_constant("call", call_map(&info));
    let result = cache.engine().run_ast_with_scope(&mut scope, &ast);
    let mut outcome = match result {
        Ok(()) => Outcome::Completed,
        Err(e) => classify(path, *e),
    };
    if matches!(outcome, Outcome::CallerHungUp)
        && ast
            .iter_functions()
            .any(|f| f.name == "on_hangup" && f.params.is_empty())
    {
        let r: Result<Dynamic, _> = cache.engine().call_fn(&mut scope, &ast, "on_hangup", ());
        if let Err(e) = r {
            if let Outcome::Failed(m) = classify(path, *e) {
                tracing::warn!(error = %m, "on_hangup failed");
            }
        }
    }
    let state = api::uninstall();
    if let Some(mut r) = state {
        let failed = matches!(outcome, Outcome::Failed(_));
        if !r.session.is_ended() {
            end_call(r.session.control(), failed);
        }
    }
    match &mut outcome {
        Outcome::Failed(m) => tracing::error!(error = %m, "script failed; call ended"),
        o => tracing::info!(outcome = ?o, "script ended"),
    }
    outcome
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

fn classify(path: &std::path::Path, e: EvalAltResult) -> Outcome {
    if let EvalAltResult::ErrorTerminated(tag, pos) = &e {
        let tag = tag.clone().into_string().unwrap_or_default();
        return match tag.as_str() {
            END_HANGUP => Outcome::HungUp,
            END_CALLER_GONE => Outcome::CallerHungUp,
            END_STUCK => Outcome::Failed(
                ScriptError::from_position(
                    path,
                    *pos,
                    "stopped: too many operations without a verb (a busy loop?)".into(),
                )
                .to_string(),
            ),
            END_TIME => Outcome::Failed(
                ScriptError::from_position(
                    path,
                    *pos,
                    "stopped: the script ran past its time limit".into(),
                )
                .to_string(),
            ),
            other => Outcome::Failed(
                ScriptError::from_position(path, *pos, format!("terminated: {other}")).to_string(),
            ),
        };
    }
    let pos = e.position();
    Outcome::Failed(ScriptError::from_position(path, pos, e.to_string()).to_string())
}

fn call_map(info: &CallInfo) -> Map {
    let mut m = Map::new();
    m.insert("id".into(), info.id.clone().into());
    m.insert("from".into(), info.from.clone().into());
    m.insert("to".into(), info.to.clone().into());
    m.insert("direction".into(), info.direction.into());
    m.insert("started_at".into(), rfc3339(info.started_at).into());
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
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(rfc3339(t), "2026-11-18T11:06:40Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
