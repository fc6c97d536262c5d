//! The call-flow verbs as Rhai functions. The engine is shared by every
//! call, so a verb finds its call through a thread-local: each running
//! script has its own OS thread (see `runner`), which makes the thread the
//! call's identity while the script runs.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, NativeCallContext, Position};

use crate::script::memory::MemoryBudget;
use crate::script::verbs::http::{HttpClient, Verb};
use crate::script::verbs::options::{VerbOptions, MAX_MS};
use crate::script::verbs::{GatherOptions, Session, VerbError};

/// Marker values a terminated script carries, so the runner can tell a
/// normal end from a limit or an error.
pub const END_HANGUP: &str = "rivr:hangup";
pub const END_CALLER_GONE: &str = "rivr:caller-hung-up";
pub const END_STUCK: &str = "rivr:stuck";
pub const END_TIME: &str = "rivr:time-limit";
pub const END_MEMORY: &str = "rivr:memory-limit";

/// The per-thread state of the running script.
pub struct Running {
    /// The call, with the script's wall-clock deadline.
    pub session: Session,
    pub call_id: String,
    pub memory: MemoryBudget,
    pub ops_now: u64,
    pub ops_at_last_verb: u64,
    pub max_ops_between_verbs: u64,
    /// Set by a verb once the call is over; makes the next op stop.
    pub stop: Option<&'static str>,
    /// `http_get`/`http_post`: the server's client and `[script] http_*`.
    pub http: Arc<HttpClient>,
    /// `say()`'s engine and cache (the script cache's, shared).
    pub speaker: Arc<crate::script::say::Speaker>,
}

thread_local! {
    static RUNNING: RefCell<Option<Running>> = const { RefCell::new(None) };
}

/// Installs the state for the script about to run on this thread.
pub fn install(r: Running) {
    RUNNING.with(|c| *c.borrow_mut() = Some(r));
}

/// Takes the state back after the script ended.
pub fn uninstall() -> Option<Running> {
    RUNNING.with(|c| c.borrow_mut().take())
}

pub(crate) fn with<T>(
    f: impl FnOnce(&mut Running) -> Result<T, VerbError>,
) -> Result<T, Box<EvalAltResult>> {
    RUNNING.with(|c| {
        let mut guard = c.borrow_mut();
        let Some(r) = guard.as_mut() else {
            return Err(runtime("verbs are only available inside a call"));
        };
        r.ops_at_last_verb = r.ops_now;
        let has_call = r.session.control().has_call();
        let checked = if r.memory.over() {
            Err(VerbError::MemoryLimit)
        } else {
            r.session.check_time()
        };
        checked.and_then(|()| f(r)).map_err(|e| match e {
            VerbError::CallEnded if !has_call => {
                runtime("this verb needs a call; an SMS script has none")
            }
            VerbError::CallEnded => terminated(END_CALLER_GONE),
            VerbError::HungUp => terminated(END_HANGUP),
            VerbError::TimeLimit => terminated(END_TIME),
            VerbError::MemoryLimit => terminated(END_MEMORY),
            VerbError::BadArgument(m) | VerbError::Failed(m) => runtime(&m),
        })
    })
}

/// `gather` with no prompt would only wait on a flow with no call.
fn needs_call(r: &mut Running) -> Result<(), VerbError> {
    if r.session.control().has_call() {
        Ok(())
    } else {
        Err(VerbError::CallEnded)
    }
}

fn runtime(msg: &str) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(msg.into(), Position::NONE))
}

fn terminated(tag: &'static str) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorTerminated(tag.into(), Position::NONE))
}

/// Checked on Rhai's progress hook: a stuck loop, the memory budget (every
/// operation: one read of a thread-local), the wall-clock budget, or a call
/// that ended while the script computes stop the script.
fn on_progress(ops: u64) -> Option<Dynamic> {
    RUNNING.with(|c| {
        let mut guard = c.try_borrow_mut().ok()?;
        let r = guard.as_mut()?;
        r.ops_now = ops;
        if let Some(tag) = r.stop {
            return Some(tag.into());
        }
        if ops.saturating_sub(r.ops_at_last_verb) > r.max_ops_between_verbs {
            return Some(END_STUCK.into());
        }
        if r.memory.over() {
            return Some(END_MEMORY.into());
        }
        if ops % 1024 == 0 {
            if r.session.control().is_gone() {
                return Some(END_CALLER_GONE.into());
            }
            if r.session.check_time().is_err() {
                return Some(END_TIME.into());
            }
        }
        None
    })
}

fn prompt_names(v: &Dynamic) -> Result<Vec<String>, VerbError> {
    if let Some(s) = v.clone().try_cast::<rhai::ImmutableString>() {
        return Ok(vec![s.to_string()]);
    }
    if let Some(a) = v.clone().try_cast::<Array>() {
        return a
            .into_iter()
            .map(|x| {
                x.try_cast::<rhai::ImmutableString>()
                    .map(|s| s.to_string())
                    .ok_or_else(|| {
                        VerbError::BadArgument(
                            "play: a list of prompt names must hold strings".into(),
                        )
                    })
            })
            .collect();
    }
    Err(VerbError::BadArgument(format!(
        "play: expected a prompt name or a list of names, got {}",
        v.type_name()
    )))
}

fn dial_with(target: &str, opts: &Map) -> Result<Map, Box<EvalAltResult>> {
    with(|r| {
        let req = dial_request(target, opts)?;
        let out = r.session.dial(req)?;
        let mut m = Map::new();
        m.insert("outcome".into(), out.outcome.into());
        m.insert(
            "sip_status".into(),
            out.sip_status
                .map(|s| Dynamic::from(i64::from(s)))
                .unwrap_or(Dynamic::UNIT),
        );
        m.insert(
            "q850".into(),
            out.q850
                .map(|s| Dynamic::from(i64::from(s)))
                .unwrap_or(Dynamic::UNIT),
        );
        m.insert("ring_ms".into(), (out.ring_ms as i64).into());
        m.insert("talk_ms".into(), (out.talk_ms as i64).into());
        m.insert("refined_outcome".into(), out.refined_outcome.into());
        m.insert(
            "answered_by".into(),
            out.answered_by.map(Dynamic::from).unwrap_or(Dynamic::UNIT),
        );
        Ok(m)
    })
}

fn dial_request(target: &str, m: &Map) -> Result<crate::call::control::DialRequest, VerbError> {
    let o = VerbOptions::new("dial", m, &["trunk", "timeout", "caller_id", "amd"])?;
    Ok(crate::call::control::DialRequest {
        target: target.to_string(),
        trunk: o.text("trunk")?,
        caller_id: o.text("caller_id")?,
        timeout: o.ms("timeout", 0..=MAX_MS)?,
        amd: o.flag("amd")?.unwrap_or(false),
    })
}

fn gather_options(m: &Map) -> Result<GatherOptions, VerbError> {
    let d = GatherOptions::default();
    let o = VerbOptions::new(
        "gather",
        m,
        &[
            "prompt",
            "max_digits",
            "timeout",
            "inter_digit_timeout",
            "finish_on",
        ],
    )?;
    let prompt = match o.get("prompt") {
        Some(p) => prompt_names(p)?,
        None => Vec::new(),
    };
    Ok(GatherOptions {
        prompt,
        max_digits: o
            .int("max_digits", 1..=128)?
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(d.max_digits),
        timeout: o.ms("timeout", 0..=MAX_MS)?.unwrap_or(d.timeout),
        inter_digit_timeout: o
            .ms("inter_digit_timeout", 0..=MAX_MS)?
            .unwrap_or(d.inter_digit_timeout),
        finish_on: o.text("finish_on")?.unwrap_or(d.finish_on),
    })
}

fn http_with(
    ctx: &NativeCallContext,
    verb: Verb,
    url: &Dynamic,
    body: Option<&Dynamic>,
    opts: Option<&Dynamic>,
) -> Result<Map, Box<EvalAltResult>> {
    let engine = ctx.engine();
    with(|r| crate::script::verbs::http::run(engine, &r.http, &r.session, verb, url, body, opts))
}

pub(crate) fn key_string(k: Option<char>) -> String {
    k.map(String::from).unwrap_or_default()
}

fn play_with(names: Dynamic, opts: Option<Map>) -> Result<String, Box<EvalAltResult>> {
    with(|r| {
        let names = prompt_names(&names)?;
        let interrupt = match &opts {
            None => false,
            Some(m) => VerbOptions::new("play", m, &["interrupt"])?
                .flag("interrupt")?
                .unwrap_or(false),
        };
        Ok(key_string(r.session.play(&names, interrupt)?))
    })
}

/// Registers every verb on the shared engine.
pub fn register(engine: &mut Engine) {
    engine.on_progress(on_progress);
    engine.register_fn("answer", || with(|r| Ok(r.session.control().answer()?)));
    engine.register_fn("ring", || with(|r| Ok(r.session.control().ring(false)?)));
    engine.register_fn("progress", || {
        with(|r| Ok(r.session.control().ring(true)?))
    });
    engine.register_fn("reject", |code: i64| {
        with(|r| {
            if !(300..700).contains(&code) {
                return Err(VerbError::BadArgument(format!(
                    "reject: {code} is not a final error code (300-699)"
                )));
            }
            if r.session.control().is_answered() {
                return Err(VerbError::BadArgument(
                    "reject: the call is already answered; use hangup()".into(),
                ));
            }
            r.session.control().reject(code as u16)?;
            Err::<(), _>(VerbError::HungUp)
        })
    });
    engine.register_fn("hangup", || {
        with(|r| {
            r.session.control().hangup();
            Err::<(), _>(VerbError::HungUp)
        })
    });
    engine.register_fn("play", |names: Dynamic| play_with(names, None));
    engine.register_fn("play", |names: Dynamic, opts: Map| {
        play_with(names, Some(opts))
    });
    engine.register_fn("gather", |opts: Map| {
        with(|r| {
            let o = gather_options(&opts)?;
            needs_call(r)?;
            r.session.gather(&o)
        })
    });
    engine.register_fn("gather", || {
        with(|r| {
            needs_call(r)?;
            r.session.gather(&GatherOptions::default())
        })
    });
    engine.register_fn("sleep", |ms: i64| {
        with(|r| {
            if !(0..=3_600_000).contains(&ms) {
                return Err(VerbError::BadArgument(
                    "sleep: expected 0 to 3600000 ms".into(),
                ));
            }
            r.session.sleep(Duration::from_millis(ms as u64))
        })
    });
    engine.register_fn("say_digits", |s: &str| {
        with(|r| {
            let names: Vec<String> = s
                .chars()
                .filter(char::is_ascii_digit)
                .map(|c| format!("digits/{c}"))
                .collect();
            if names.is_empty() {
                return Ok(());
            }
            r.session.play(&names, false).map(|_| ())
        })
    });
    engine.register_fn("set_lang", |tag: &str| with(|r| r.session.set_lang(tag)));
    crate::script::say::register(engine);
    engine.register_fn("dial", |target: &str| dial_with(target, &Map::new()));
    engine.register_fn("dial", |target: &str, opts: Map| dial_with(target, &opts));
    engine.register_fn("detect_machine", |opts: Map| {
        with(|r| crate::script::verbs::amd::detect_machine_verb(&mut r.session, &opts))
    });
    engine.register_fn("detect_machine", || {
        with(|r| crate::script::verbs::amd::detect_machine_verb(&mut r.session, &Map::new()))
    });
    engine.register_fn("wait_for_beep", |opts: Map| {
        with(|r| crate::script::verbs::amd::wait_for_beep_verb(&mut r.session, &opts))
    });
    engine.register_fn("wait_for_beep", || {
        with(|r| crate::script::verbs::amd::wait_for_beep_verb(&mut r.session, &Map::new()))
    });
    engine.register_fn("record", |opts: Map| {
        with(|r| crate::script::verbs::record::record_verb(&mut r.session, &r.call_id, &opts))
    });
    engine.register_fn("record", || {
        with(|r| crate::script::verbs::record::record_verb(&mut r.session, &r.call_id, &Map::new()))
    });
    use crate::script::verbs::transfer;
    engine.register_fn("transfer", |t: &str| {
        with(|r| transfer::run(&mut r.session, t, &Map::new()))
    });
    engine.register_fn("transfer", |t: &str, o: Map| {
        with(|r| transfer::run(&mut r.session, t, &o))
    });
    engine.register_fn("send_dtmf", |keys: &str| {
        with(|r| r.session.send_dtmf(keys))
    });
    engine.register_fn("send_sms", |to: &str, text: &str| {
        with(|r| {
            // The submission runs on this thread (the SMS service's store
            // and driver): its memory is the service's, not the script's.
            crate::script::memory::uncharged(|| r.session.control().send_sms(to, text))
                .map_err(VerbError::BadArgument)
        })
    });
    engine.register_fn("reply", |text: &str| {
        with(|r| {
            crate::script::memory::uncharged(|| r.session.control().reply(text))
                .map_err(VerbError::BadArgument)
        })
    });
    engine.register_fn("opt_out", || {
        with(|r| {
            crate::script::memory::uncharged(|| r.session.control().opt_out(None))
                .map_err(VerbError::Failed)
        })
    });
    engine.register_fn("opt_out", |number: &str| {
        with(|r| {
            crate::script::memory::uncharged(|| r.session.control().opt_out(Some(number)))
                .map_err(VerbError::Failed)
        })
    });
    engine.register_fn("send_sms", |to: &str, text: &str, o: Map| {
        with(|r| {
            let opts = crate::script::verbs::sms_options::read(&o)?;
            crate::script::memory::uncharged(|| r.session.control().send_sms_with(to, text, &opts))
                .map_err(VerbError::BadArgument)
        })
    });
    engine.register_fn("http_get", |ctx: NativeCallContext, url: Dynamic| {
        http_with(&ctx, Verb::Get, &url, None, None)
    });
    engine.register_fn(
        "http_get",
        |ctx: NativeCallContext, url: Dynamic, opts: Dynamic| {
            http_with(&ctx, Verb::Get, &url, None, Some(&opts))
        },
    );
    engine.register_fn(
        "http_post",
        |ctx: NativeCallContext, url: Dynamic, body: Dynamic| {
            http_with(&ctx, Verb::Post, &url, Some(&body), None)
        },
    );
    engine.register_fn(
        "http_post",
        |ctx: NativeCallContext, url: Dynamic, body: Dynamic, opts: Dynamic| {
            http_with(&ctx, Verb::Post, &url, Some(&body), Some(&opts))
        },
    );
    engine.register_fn("log", |msg: Dynamic| {
        with(|r| {
            tracing::info!(call = %r.call_id, script_log = ?msg.to_string(), "script");
            Ok(())
        })
    });
    engine.register_fn("set_result", |key: &str, value: Dynamic| {
        with(|r| {
            if key.is_empty() || key.len() > 64 {
                return Err(VerbError::BadArgument(
                    "set_result: the key must be 1 to 64 characters".into(),
                ));
            }
            r.session.control().set_result(key, &value.to_string());
            Ok(())
        })
    });
}
