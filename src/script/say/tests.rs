//! The speaking verbs through the runner, against a call double and a fake
//! engine: what the engine is asked, what the caller is played, the cache
//! across calls, and bad input failing the verb (catchable), not the call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::call::control::{CallControl, CallEnded, CallEvent, CallInfo};
use crate::config::{ScriptConfig, TtsConfig};
use crate::media::prompt::Prompt;
use crate::media::tts::{SayRequest, Speech, TtsCache, TtsEngine, TtsError};
use crate::script::runner::{run, Outcome};
use crate::script::say::Speaker;
use crate::script::ScriptCache;

/// (text, voice, lang, rate) of one synthesis.
type Request = (String, String, String, u32);

/// Records every synthesis, and the time each was given.
#[derive(Clone, Default)]
struct Asked(Arc<Mutex<Vec<Request>>>, Arc<Mutex<Vec<Duration>>>);

struct Fake(Asked);

impl TtsEngine for Fake {
    fn name(&self) -> &str {
        "fake"
    }
    fn synthesize(&self, req: &SayRequest, timeout: Duration) -> Result<Speech, TtsError> {
        self.0 .1.lock().unwrap().push(timeout);
        if req.voice().contains("nosuch") {
            return Err(TtsError::UnknownVoice(req.voice().into()));
        }
        self.0 .0.lock().unwrap().push((
            req.text().into(),
            req.voice().into(),
            req.lang().into(),
            req.rate_wpm(),
        ));
        Ok(Speech {
            samples: vec![0.25; 8000],
            rate_hz: 8000,
        })
    }
}

/// A call that plays everything at once and hears `keys` during plays.
struct Call {
    now: Instant,
    events: Vec<CallEvent>,
    keys: Vec<char>,
    played: Arc<Mutex<Vec<Arc<Prompt>>>>,
    results: Arc<Mutex<Vec<(String, String)>>>,
}

impl CallControl for Call {
    fn now(&self) -> Instant {
        self.now
    }
    fn answer(&mut self) -> Result<(), CallEnded> {
        Ok(())
    }
    fn ring(&mut self, _: bool) -> Result<(), CallEnded> {
        Ok(())
    }
    fn reject(&mut self, _: u16) -> Result<(), CallEnded> {
        Ok(())
    }
    fn hangup(&mut self) {}
    fn play(&mut self, id: u64, prompts: Vec<Arc<Prompt>>, _: bool) -> Result<(), CallEnded> {
        self.played.lock().unwrap().extend(prompts);
        if let Some(k) = self.keys.pop() {
            self.events.push(CallEvent::Digit {
                digit: k,
                source: crate::call::control::DigitSource::Rfc4733,
            });
        }
        self.events.push(CallEvent::PlayDone {
            id,
            interrupted: false,
        });
        Ok(())
    }
    fn stop_play(&mut self, _: u64) {}
    fn send_digits(&mut self, _: u64, _: &str) -> Result<(), CallEnded> {
        Err(CallEnded)
    }
    fn next_event(&mut self, _: Option<Duration>) -> Option<CallEvent> {
        if self.events.is_empty() {
            self.now += Duration::from_millis(20);
            return None;
        }
        Some(self.events.remove(0))
    }
    fn prompt(&self, name: &str) -> Result<Arc<Prompt>, String> {
        Ok(Arc::new(Prompt::from_pcm_8k(name, vec![0; 160])))
    }
    fn set_result(&mut self, key: &str, value: &str) {
        self.results
            .lock()
            .unwrap()
            .push((key.into(), value.into()));
    }
    fn is_answered(&self) -> bool {
        true
    }
    fn is_gone(&self) -> bool {
        false
    }
    fn send_sms(&mut self, _: &str, _: &str) -> Result<String, String> {
        Err("no sms".into())
    }
}

struct Ran {
    outcome: Outcome,
    played: Vec<Arc<Prompt>>,
    results: Vec<(String, String)>,
}

fn cache_with(asked: &Asked) -> ScriptCache {
    cache_limited(asked, 60_000)
}

fn cache_limited(asked: &Asked, max_duration_ms: u64) -> ScriptCache {
    let limits = ScriptConfig {
        max_duration_ms,
        ..ScriptConfig::default()
    };
    let tts = TtsConfig {
        lang: "en".into(),
        rate: 170,
        ..TtsConfig::default()
    };
    let cache = TtsCache::new(Box::new(Fake(asked.clone())), 1 << 20, None);
    ScriptCache::new(limits).with_speaker(Arc::new(Speaker::with_cache(cache, &tts)))
}

fn run_script(cache: &ScriptCache, text: &str, keys: &[char]) -> Ran {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!("rivr-say-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.rhai", N.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, text).unwrap();
    let played = Arc::new(Mutex::new(Vec::new()));
    let results = Arc::new(Mutex::new(Vec::new()));
    let call = Call {
        now: Instant::now(),
        events: Vec::new(),
        keys: keys.to_vec(),
        played: played.clone(),
        results: results.clone(),
    };
    let info = CallInfo {
        amd: false,
        id: "t-1".into(),
        from: "sip:a@b".into(),
        to: "100".into(),
        direction: "inbound",
        started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000),
        trunk: None,
        vars: Vec::new(),
        headers: Vec::new(),
        lang: String::new(),
    };
    let outcome = run(cache, &path, info, Box::new(call));
    let played = played.lock().unwrap().clone();
    let results = results.lock().unwrap().clone();
    Ran {
        outcome,
        played,
        results,
    }
}

fn asked(a: &Asked) -> Vec<Request> {
    a.0.lock().unwrap().clone()
}

#[test]
fn say_speaks_once_and_every_later_call_hears_the_cached_prompt() {
    let a = Asked::default();
    let cache = cache_with(&a);
    let r = run_script(
        &cache,
        r#"say("Welcome to rivr."); say("Welcome to rivr.");"#,
        &[],
    );
    assert!(matches!(r.outcome, Outcome::Completed), "{:?}", r.outcome);
    assert_eq!(r.played.len(), 2);
    assert!(Arc::ptr_eq(&r.played[0], &r.played[1]));
    assert_eq!(r.played[0].name(), "say:Welcome to rivr.");
    // Another call: still one synthesis.
    let r2 = run_script(&cache, r#"say("Welcome to rivr.")"#, &[]);
    assert!(Arc::ptr_eq(&r2.played[0], &r.played[0]));
    assert_eq!(
        asked(&a),
        vec![("Welcome to rivr.".into(), "en".into(), "en".into(), 170)]
    );
    let c = cache.speaker().cache().counts();
    assert_eq!((c.synth_ok, c.hits_memory), (1, 2), "{c:?}");
}

#[test]
fn options_pick_voice_language_and_rate() {
    let a = Asked::default();
    let cache = cache_with(&a);
    let r = run_script(
        &cache,
        r#"
        say("Bonjour", #{ lang: "fr" });
        say("Hallo", #{ voice: "de+f2", rate: 120 });
        say_number(1250);
        say_number(-7, #{ lang: "es" });
        say_date("2026-12-05");
        say_date("2026-12-05T10:00:00Z", #{ lang: "de" });
        say_date(1795000000, #{ voice: "fr" });
        "#,
        &[],
    );
    assert!(matches!(r.outcome, Outcome::Completed), "{:?}", r.outcome);
    let s =
        |t: &str, v: &str, l: &str, rate: u32| (t.to_string(), v.to_string(), l.to_string(), rate);
    assert_eq!(
        asked(&a),
        vec![
            s("Bonjour", "fr", "fr", 170),
            s("Hallo", "de+f2", "de", 120),
            s("1250", "en", "en", 170),
            s("-7", "es", "es", 170),
            s("December 5th, 2026", "en", "en", 170),
            s("der fünfte Dezember 2026", "de", "de", 170),
            s("18 novembre 2026", "fr", "fr", 170),
        ]
    );
    assert_eq!(r.played.len(), 7);
}

#[test]
fn the_calls_language_comes_before_the_configured_one() {
    let a = Asked::default();
    let cache = cache_with(&a);
    let r = run_script(
        &cache,
        r#"
        set_lang("fr");
        say("Bonjour");
        say_date("2026-12-05");
        say("Hello", #{ lang: "en" });
        set_lang("");
        say("Hello again");
        "#,
        &[],
    );
    assert!(matches!(r.outcome, Outcome::Completed), "{:?}", r.outcome);
    let s =
        |t: &str, v: &str, l: &str, rate: u32| (t.to_string(), v.to_string(), l.to_string(), rate);
    assert_eq!(
        asked(&a),
        vec![
            s("Bonjour", "fr", "fr", 170),
            s("5 décembre 2026", "fr", "fr", 170),
            s("Hello", "en", "en", 170),
            s("Hello again", "en", "en", 170),
        ]
    );
}

#[test]
fn interrupt_returns_the_key() {
    let a = Asked::default();
    let cache = cache_with(&a);
    let r = run_script(
        &cache,
        r#"let k = say("Press a key", #{ interrupt: true }); set_result("k", k);
           let n = say("No barge in"); set_result("n", n);"#,
        &['5'],
    );
    assert!(matches!(r.outcome, Outcome::Completed), "{:?}", r.outcome);
    assert_eq!(
        r.results,
        vec![("k".into(), "5".into()), ("n".into(), "".into())]
    );
}

#[test]
fn bad_input_fails_the_verb_with_the_reason_and_a_script_can_catch_it() {
    let a = Asked::default();
    let cache = cache_with(&a);
    for (script, want) in [
        (r#"say("")"#, "say: the text is empty"),
        (r#"say(" \n ")"#, "say: the text is empty"),
        (
            r#"let s = "abcdefghij"; let t = ""; for i in 0..401 { t += s; } say(t)"#,
            "say: the text has 4010 characters, more than 4000",
        ),
        (
            r#"say("hi", #{ voice: "nosuch" })"#,
            "say: unknown voice \"nosuch\"",
        ),
        (
            r#"say("hi", #{ voice: "-v" })"#,
            "say: voice \"-v\" is not a voice name",
        ),
        (
            r#"say("hi", #{ rate: 5000 })"#,
            "say: rate 5000 is not 80-450",
        ),
        (
            r#"say("hi", #{ speed: 1 })"#,
            "say: unknown option \"speed\"",
        ),
        (
            r#"say_date("2026-02-30")"#,
            "say_date: \"2026-02-30\" is not a date",
        ),
        (r#"say_date(-5)"#, "say_date: -5 is not a Unix time"),
        (
            r#"say_date("2026-12-05", #{ lang: "xx" })"#,
            "say_date: no date words for language \"xx\"",
        ),
    ] {
        let r = run_script(&cache, script, &[]);
        match &r.outcome {
            Outcome::Failed(m) => {
                assert!(m.contains(want) && m.contains(".rhai:"), "{script}: {m}")
            }
            o => panic!("{script}: {o:?}"),
        }
        assert!(r.played.is_empty(), "{script}");
    }
    // Caught, the call goes on: a recorded fallback could play instead.
    let r = run_script(
        &cache,
        r#"try { say("hi", #{ voice: "nosuch-voice" }); } catch (e) { set_result("error", e); }
           say("after")"#,
        &[],
    );
    assert!(matches!(r.outcome, Outcome::Completed), "{:?}", r.outcome);
    assert_eq!(r.results[0].1, "say: unknown voice \"nosuch-voice\"");
    assert_eq!(r.played.len(), 1);
}

/// The "Text to speech" examples in docs/scripts.md run as written.
#[test]
fn the_guide_s_examples_run() {
    let guide = include_str!("../../../docs/scripts.md");
    let section = guide
        .split("## Text to speech")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Text to speech section");
    let blocks: Vec<&str> = section
        .split("```rhai\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert_eq!(blocks.len(), 2, "{section}");
    let a = Asked::default();
    let cache = cache_with(&a);
    for b in blocks {
        let r = run_script(&cache, b, &['1']);
        assert!(
            matches!(r.outcome, Outcome::Completed),
            "{b}: {:?}",
            r.outcome
        );
        assert!(!r.played.is_empty(), "{b}");
    }
    let texts: Vec<String> = asked(&a).into_iter().map(|(t, ..)| t).collect();
    assert_eq!(
        texts,
        [
            "Thank you for calling.",
            "Merci de votre appel.",
            "Press 1 for sales, 2 for support.",
            "1250",
            "der achtzehnte November 2026",
        ]
    );
}

/// A synthesis gets `[tts] timeout_ms` (10 s by default) at most, and never
/// more than the script's time left.
#[test]
fn a_synthesis_is_bounded_by_the_script_s_time_left() {
    let a = Asked::default();
    run_script(&cache_with(&a), r#"say("one")"#, &[]);
    run_script(&cache_limited(&a, 3000), r#"sleep(1000); say("two")"#, &[]);
    let given = a.1.lock().unwrap().clone();
    // (Less the moments the cache took before calling the engine.)
    let ten = Duration::from_secs(10);
    assert!(
        given[0] <= ten && given[0] > ten - Duration::from_millis(100),
        "{given:?}"
    );
    // 3 s budget, 1 s slept (on the double's clock), a little more in 20 ms steps.
    assert!(
        given[1] <= Duration::from_millis(2000) && given[1] >= Duration::from_millis(1900),
        "{given:?}"
    );
}
