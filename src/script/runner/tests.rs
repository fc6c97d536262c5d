//! The runner on a real script thread against a call double with a virtual
//! clock: panics, the thread cap, the wall-clock and memory budgets.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Receiver;

use super::*;
use crate::call::control::{CallEnded, CallEvent};
use crate::config::ScriptConfig;
use crate::media::prompt::Prompt;

#[test]
fn rfc3339_dates() {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    assert_eq!(rfc3339(t), "2026-11-18T11:06:40Z");
    assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
}

const MAX_MEMORY: usize = 8 << 20;

fn limits() -> ScriptConfig {
    ScriptConfig {
        max_operations: 50_000_000,
        max_duration_ms: 10_000,
        max_operations_between_verbs: 1_000_000,
        max_memory_bytes: MAX_MEMORY,
        ..ScriptConfig::default()
    }
}

fn cache(max_scripts: usize) -> Arc<ScriptCache> {
    Arc::new(ScriptCache::with_max_scripts(limits(), max_scripts))
}

/// Writes a script to its own file.
fn script(text: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!("rivr-runner-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join(format!("{}.rhai", N.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&f, text).unwrap();
    f
}

#[derive(Clone, Copy, PartialEq)]
enum PanicIn {
    Nowhere,
    Answer,
    Play,
}

/// What the double saw, readable after the script thread ended.
#[derive(Default)]
struct Seen {
    /// "answer", "hangup", "reject 500", each with the virtual ms.
    actions: Vec<String>,
    /// The name of the thread the verbs ran on.
    thread: Option<String>,
    /// Bytes the thread held when the script answered.
    held_at_answer: isize,
    /// Most bytes the thread held, above `held_at_answer`, seen by set_result.
    most_held: isize,
    /// The last `set_result` value.
    last_result: Option<String>,
    /// Every `set_result`, in order.
    results: Vec<(String, String)>,
    /// The names of the prompts played, in order.
    played: Vec<String>,
}

/// The only prompts in a language folder the double has.
const LOCALIZED: [&str; 2] = ["fr/menu", "pt/menu"];

struct TestCall {
    t0: Instant,
    now: Instant,
    answered: bool,
    panic_in: PanicIn,
    /// When set, waits block until it is closed, then the caller hangs up.
    gate: Option<Receiver<()>>,
    pending: Vec<CallEvent>,
    seen: Arc<Mutex<Seen>>,
}

impl TestCall {
    fn new(panic_in: PanicIn) -> (Self, Arc<Mutex<Seen>>) {
        let t0 = Instant::now();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let call = TestCall {
            t0,
            now: t0,
            answered: false,
            panic_in,
            gate: None,
            pending: Vec::new(),
            seen: seen.clone(),
        };
        (call, seen)
    }

    fn act(&self, what: &str) {
        let t = (self.now - self.t0).as_millis();
        self.seen
            .lock()
            .unwrap()
            .actions
            .push(format!("{what} at {t}"));
    }
}

impl CallControl for TestCall {
    fn now(&self) -> Instant {
        self.now
    }
    fn answer(&mut self) -> Result<(), CallEnded> {
        {
            let mut seen = self.seen.lock().unwrap();
            seen.thread = std::thread::current().name().map(String::from);
            seen.held_at_answer = alloc_meter::thread_held();
        }
        if self.panic_in == PanicIn::Answer {
            panic!("answer exploded");
        }
        self.act("answer");
        self.answered = true;
        Ok(())
    }
    fn ring(&mut self, _: bool) -> Result<(), CallEnded> {
        Ok(())
    }
    fn reject(&mut self, code: u16) -> Result<(), CallEnded> {
        self.act(&format!("reject {code}"));
        Ok(())
    }
    fn hangup(&mut self) {
        self.act("hangup");
    }
    fn play(&mut self, id: u64, prompts: Vec<Arc<Prompt>>, _: bool) -> Result<(), CallEnded> {
        if self.panic_in == PanicIn::Play {
            panic!("play exploded");
        }
        self.seen
            .lock()
            .unwrap()
            .played
            .extend(prompts.iter().map(|p| p.name().to_owned()));
        self.pending.push(CallEvent::PlayDone {
            id,
            interrupted: false,
        });
        Ok(())
    }
    fn stop_play(&mut self, _: u64) {}
    fn send_digits(&mut self, _: u64, _: &str) -> Result<(), CallEnded> {
        Ok(())
    }
    fn next_event(&mut self, timeout: Option<Duration>) -> Option<CallEvent> {
        if let Some(gate) = &self.gate {
            let _ = gate.recv();
            return Some(CallEvent::Hangup);
        }
        if let Some(ev) = self.pending.pop() {
            return Some(ev);
        }
        match timeout {
            Some(t) => {
                self.now += t;
                None
            }
            None => Some(CallEvent::Hangup),
        }
    }
    fn prompt(&self, name: &str) -> Result<Arc<Prompt>, String> {
        if let Some((folder, _)) = name.split_once('/') {
            if folder != "digits" && !LOCALIZED.contains(&name) {
                return Err(format!("prompt {name:?} not found"));
            }
        }
        Ok(Arc::new(Prompt::from_pcm_8k(name, vec![0; 160])))
    }
    fn set_result(&mut self, key: &str, value: &str) {
        let mut seen = self.seen.lock().unwrap();
        seen.results.push((key.to_string(), value.to_string()));
        let held = alloc_meter::thread_held() - seen.held_at_answer;
        seen.most_held = seen.most_held.max(held);
        seen.last_result = Some(value.to_string());
    }
    fn is_answered(&self) -> bool {
        self.answered
    }
    fn is_gone(&self) -> bool {
        false
    }
    fn send_sms(&mut self, _: &str, _: &str) -> Result<String, String> {
        Ok("sms".into())
    }
}

fn info() -> CallInfo {
    CallInfo {
        amd: false,
        // A Call-ID with a NUL byte once named the thread and killed rivr.
        id: "abc\0def@10.0.0.1".into(),
        from: "sip:caller@10.0.0.1".into(),
        to: "1000".into(),
        direction: "inbound",
        started_at: SystemTime::now(),
        trunk: None,
        vars: Vec::new(),
        headers: Vec::new(),
        lang: String::new(),
    }
}

/// Runs `text` on a script thread to its end; the outcome `done` got.
fn run_script(cache: &Arc<ScriptCache>, text: &str, call: TestCall) -> Outcome {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let handle = spawn(
        cache.clone(),
        script(text),
        info(),
        Box::new(call),
        move |o: &Outcome| {
            let _ = tx.send(o.clone());
        },
    )
    .expect("the script starts");
    handle.join().expect("no panic leaves the script thread");
    rx.recv().expect("done ran")
}

#[test]
fn prompts_are_looked_up_in_the_calls_language_first() {
    let cache = cache(4);
    let (call, seen) = TestCall::new(PanicIn::Nowhere);
    let mut fr = info();
    fr.lang = "fr".into();
    let text = "set_result(\"lang\", call.lang);\n\
                play(\"menu\");\n\
                set_lang(\"pt-BR\"); play(\"menu\"); play(\"other\");\n\
                say_digits(\"7\");\n\
                set_lang(\"\"); play(\"menu\");\n\
                try { set_lang(\"../etc\"); } catch (e) { set_result(\"bad\", e); }\n";
    let (tx, rx) = crossbeam_channel::bounded(1);
    spawn(
        cache,
        script(text),
        fr,
        Box::new(call),
        move |o: &Outcome| {
            let _ = tx.send(o.clone());
        },
    )
    .expect("the script starts")
    .join()
    .expect("no panic");
    let outcome = rx.recv().expect("done ran");
    assert!(matches!(outcome, Outcome::Completed), "{outcome:?}");
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.played,
        ["fr/menu", "pt/menu", "other", "digits/7", "menu"],
        "pt-BR falls back to pt, then to the base prompt"
    );
    assert_eq!(seen.results[0], ("lang".into(), "fr".into()));
    assert!(
        seen.results[1].1.contains("not a language tag"),
        "{:?}",
        seen.results
    );
}

#[test]
fn a_script_reads_the_call_map_with_its_vars_trunk_and_headers() {
    let cache = cache(4);
    let (call, seen) = TestCall::new(PanicIn::Nowhere);
    let mut outbound = info();
    outbound.direction = "outbound";
    outbound.trunk = Some("carrier".into());
    outbound.vars = vec![("campaign".into(), "spring".into())];
    outbound.headers = vec![("X-Account".into(), "42".into())];
    let text = "set_result(\"r\", call.direction + \"/\" + call.trunk + \"/\" \
                + call.vars.campaign + \"/x-account=\" \
                + call.headers[\"x-account\"] + \"/\" + call.to);\n";
    let (tx, rx) = crossbeam_channel::bounded(1);
    spawn(
        cache,
        script(text),
        outbound,
        Box::new(call),
        move |o: &Outcome| {
            let _ = tx.send(o.clone());
        },
    )
    .expect("the script starts")
    .join()
    .expect("no panic");
    let outcome = rx.recv().expect("done ran");
    assert!(matches!(outcome, Outcome::Completed), "{outcome:?}");
    assert_eq!(
        seen.lock().unwrap().last_result.as_deref(),
        Some("outbound/carrier/spring/x-account=42/1000")
    );
}

#[test]
fn on_hangup_runs_once_without_replaying_the_script() {
    let cache = cache(4);
    let (mut call, seen) = TestCall::new(PanicIn::Nowhere);
    // A closed gate: the first wait sees the caller hang up.
    let (hang_up, gate) = crossbeam_channel::bounded::<()>(0);
    drop(hang_up);
    call.gate = Some(gate);
    let text = "fn on_hangup() { set_result(\"end\", \"hangup\"); }\n\
                set_result(\"top\", \"ran\");\nanswer();\nplay(\"hello\");\n\
                set_result(\"end\", \"played\");\n";
    let o = run_script(&cache, text, call);
    assert!(matches!(o, Outcome::CallerHungUp), "{o:?}");
    let results = seen.lock().unwrap().results.clone();
    let pairs: Vec<(&str, &str)> = results
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [("top", "ran"), ("end", "hangup")],
        "the top level runs once, then on_hangup"
    );
}

fn failure(o: &Outcome) -> &str {
    match o {
        Outcome::Failed(m) => m,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn a_panicking_verb_fails_only_its_call_which_gets_a_bye() {
    let cache = cache(4);
    let (call, seen) = TestCall::new(PanicIn::Play);
    let o = run_script(&cache, "answer();\nplay(\"hello\");\n", call);
    assert_eq!(failure(&o), "panic: play exploded");
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.actions,
        ["answer at 0", "hangup at 0"],
        "answered: BYE once"
    );
    let name = seen.thread.clone().unwrap();
    assert!(
        name.starts_with("script-"),
        "named from a counter, not the Call-ID: {name:?}"
    );
    assert_eq!(cache.threads().panics(), 1);
    assert_eq!(cache.threads().running(), 0, "the slot came back");
}

#[test]
fn a_panic_before_the_answer_gets_a_500() {
    let cache = cache(4);
    let (call, seen) = TestCall::new(PanicIn::Answer);
    let o = run_script(&cache, "answer();\n", call);
    assert_eq!(failure(&o), "panic: answer exploded");
    assert_eq!(seen.lock().unwrap().actions, ["reject 500 at 0"]);
    assert_eq!(cache.threads().panics(), 1);
}

#[test]
fn a_panicking_done_callback_is_caught_and_gives_its_slot_back() {
    let cache = cache(1);
    let (call, _) = TestCall::new(PanicIn::Nowhere);
    let handle = spawn(
        cache.clone(),
        script("answer();\n"),
        info(),
        Box::new(call),
        |_| panic!("done exploded"),
    )
    .unwrap();
    handle.join().expect("the panic stayed inside the thread");
    assert_eq!(cache.threads().panics(), 1);
    assert_eq!(cache.threads().running(), 0);
    let (call, _) = TestCall::new(PanicIn::Nowhere);
    assert!(matches!(
        run_script(&cache, "answer();\n", call),
        Outcome::Completed
    ));
}

#[test]
fn the_thread_cap_refuses_a_script_until_one_ends() {
    let cache = cache(1);
    let (gate_tx, gate_rx) = crossbeam_channel::bounded::<()>(0);
    let (mut blocked, _) = TestCall::new(PanicIn::Nowhere);
    blocked.gate = Some(gate_rx);
    let first = spawn(
        cache.clone(),
        script("sleep(1000);\n"),
        info(),
        Box::new(blocked),
        |_| {},
    )
    .unwrap();
    assert_eq!(cache.threads().running(), 1);
    let (call, seen) = TestCall::new(PanicIn::Nowhere);
    let refused = spawn(
        cache.clone(),
        script("answer();\n"),
        info(),
        Box::new(call),
        |_| {},
    );
    let e = refused.expect_err("one script is the cap");
    assert!(matches!(e, SpawnError::Full { max: 1 }), "{e:?}");
    assert!(
        seen.lock().unwrap().actions.is_empty(),
        "the refused call is the server's to answer (503)"
    );
    drop(gate_tx);
    first.join().unwrap();
    assert_eq!(cache.threads().running(), 0);
    let (call, _) = TestCall::new(PanicIn::Nowhere);
    assert!(matches!(
        run_script(&cache, "answer();\n", call),
        Outcome::Completed
    ));
}

#[test]
fn a_loop_of_sleeps_ends_at_max_duration() {
    let cache = cache(4);
    let (call, seen) = TestCall::new(PanicIn::Nowhere);
    let o = run_script(&cache, "answer();\nloop { sleep(1000); }\n", call);
    let m = failure(&o);
    assert!(m.contains(":2:") && m.contains("max_duration_ms"), "{m}");
    assert_eq!(
        seen.lock().unwrap().actions,
        ["answer at 0", "hangup at 10000"]
    );
}

#[test]
fn a_loop_of_gathers_ends_at_max_duration() {
    let cache = cache(4);
    let (call, seen) = TestCall::new(PanicIn::Nowhere);
    let text = "answer();\nlet n = 0;\nloop { gather(#{ prompt: \"menu\", timeout: 3000 }); n += 1; set_result(\"n\", n); }\n";
    let o = run_script(&cache, text, call);
    assert!(failure(&o).contains("max_duration_ms"), "{o:?}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.actions, ["answer at 0", "hangup at 10000"]);
    assert_eq!(
        seen.last_result.as_deref(),
        Some("3"),
        "three 3 s gathers fit in 10 s"
    );
}

/// A 65,000-byte string of its own (Rhai's limit is 64 KiB per string).
const BIG: &str = "fn big(i) { let s = \"x\"; s.pad(65000, \"y\"); s + i }\n";

fn assert_stopped_near_the_limit(o: &Outcome, seen: &Seen) {
    let m = failure(o);
    assert!(m.contains("max_memory_bytes"), "{m}");
    let most = seen.most_held as usize;
    assert!(
        (MAX_MEMORY - (512 << 10)..MAX_MEMORY + (512 << 10)).contains(&most),
        "held {most} bytes at most, the limit is {MAX_MEMORY}"
    );
}

#[test]
fn an_array_of_big_strings_is_stopped_at_the_memory_limit() {
    // Rhai checks an array's total size when it is used whole, not on
    // `a[i] = s`: without the budget this holds 650 MB.
    let cache = cache(4);
    let (call, seen) = TestCall::new(PanicIn::Nowhere);
    let text = format!(
        "{BIG}answer();\nlet a = [];\na.pad(10000, \"\");\nfor i in 0..10000 {{ a[i] = big(i); set_result(\"i\", i); }}\n"
    );
    let o = run_script(&cache, &text, call);
    let seen = seen.lock().unwrap();
    assert_stopped_near_the_limit(&o, &seen);
    let i: usize = seen.last_result.as_deref().unwrap().parse().unwrap();
    assert!((60..130).contains(&i), "stopped after {i} strings of 65 kB");
    assert_eq!(seen.actions.last().unwrap(), "hangup at 0");
}

#[test]
fn many_variables_are_stopped_at_the_memory_limit() {
    let cache = cache(4);
    let (call, seen) = TestCall::new(PanicIn::Nowhere);
    let mut text = format!("{BIG}answer();\n");
    for i in 0..300 {
        text.push_str(&format!("let v{i} = big({i}); set_result(\"i\", {i});\n"));
    }
    let o = run_script(&cache, &text, call);
    assert_stopped_near_the_limit(&o, &seen.lock().unwrap());
}

#[test]
fn a_script_under_the_memory_limit_completes() {
    let cache = cache(4);
    let (call, seen) = TestCall::new(PanicIn::Nowhere);
    let mut text = format!("{BIG}answer();\n");
    for i in 0..50 {
        text.push_str(&format!("let v{i} = big({i}); set_result(\"i\", {i});\n"));
    }
    let o = run_script(&cache, &text, call);
    assert!(matches!(o, Outcome::Completed), "{o:?}");
    let most = seen.lock().unwrap().most_held as usize;
    assert!(most > 50 * 65_000, "the strings were really held: {most}");
}

#[test]
fn ends_and_limits_are_counted_for_metrics() {
    use crate::script::ends::Limit;
    let cache = cache(4);
    let ends = || cache.threads().ends().counts();
    let (call, _) = TestCall::new(PanicIn::Nowhere);
    run_script(&cache, "answer();\n", call);
    let (call, _) = TestCall::new(PanicIn::Nowhere);
    run_script(&cache, "answer();\nhangup();\n", call);
    let (call, _) = TestCall::new(PanicIn::Nowhere);
    run_script(&cache, "answer();\nloop { sleep(1000); }\n", call);
    let (call, _) = TestCall::new(PanicIn::Nowhere);
    run_script(&cache, "answer();\nthis_is_not_a_function();\n", call);
    let (call, _) = TestCall::new(PanicIn::Nowhere);
    run_script(&cache, "fn f(n) { f(n + 1) }\nanswer();\nf(0);\n", call);
    let c = ends();
    assert_eq!((c.completed, c.hung_up, c.failed), (1, 1, 3), "{c:?}");
    let at = |l: Limit| Limit::ALL.iter().position(|x| *x == l).unwrap();
    assert_eq!(c.limits[at(Limit::Time)], 1, "{c:?}");
    assert_eq!(c.limits[at(Limit::CallDepth)], 1, "{c:?}");
    assert_eq!(
        c.limits.iter().sum::<u64>(),
        2,
        "an unknown function is no limit: {c:?}"
    );
}
