use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

/// An engine that makes `ms` of a tone per request, counting calls.
struct Fake {
    calls: Arc<AtomicUsize>,
    delay: Duration,
    audio_ms: usize,
    fail: bool,
}

impl Fake {
    fn new(audio_ms: usize) -> (Fake, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let fake = Fake {
            calls: Arc::clone(&calls),
            delay: Duration::ZERO,
            audio_ms,
            fail: false,
        };
        (fake, calls)
    }
}

impl TtsEngine for Fake {
    fn name(&self) -> &str {
        "fake"
    }

    fn synthesize(&self, req: &SayRequest, _timeout: Duration) -> Result<Speech, TtsError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.delay);
        if self.fail {
            return Err(TtsError::UnknownVoice(req.voice().into()));
        }
        let n = self.audio_ms * 16;
        let hz = 200.0 + req.text().len() as f32;
        let samples = (0..n)
            .map(|i| 0.3 * (std::f32::consts::TAU * hz * i as f32 / 16_000.0).sin())
            .collect();
        Ok(Speech {
            samples,
            rate_hz: 16_000,
        })
    }
}

fn req(text: &str) -> SayRequest {
    SayRequest::new(text, "en", "en", 160).unwrap()
}

const T: Duration = Duration::from_secs(5);

#[test]
fn the_key_is_engine_voice_lang_rate_and_text() {
    let (fake, calls) = Fake::new(100);
    let cache = TtsCache::new(Box::new(fake), 10 << 20, None);
    let (a, src) = cache.get(&req("hello"), T).unwrap();
    assert_eq!(src, CacheSource::Synthesized);
    assert_eq!(a.pcm_8k().len(), 800, "resampled to 8 kHz");
    assert_eq!(a.name(), "say:hello");
    let (b, src) = cache.get(&req("hello"), T).unwrap();
    assert_eq!(src, CacheSource::Memory);
    assert!(Arc::ptr_eq(&a, &b), "the same prompt is shared");
    // Control characters and outer blanks are not part of the key.
    assert_eq!(
        cache.get(&req(" hello\n"), T).unwrap().1,
        CacheSource::Memory
    );
    for other in [
        SayRequest::new("hello", "en-us", "en", 160),
        SayRequest::new("hello", "en", "fr", 160),
        SayRequest::new("hello", "en", "en", 161),
        SayRequest::new("Hello", "en", "en", 160),
    ] {
        let (_, src) = cache.get(&other.unwrap(), T).unwrap();
        assert_eq!(src, CacheSource::Synthesized);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    let c = cache.counts();
    assert_eq!((c.synth_ok, c.hits_memory, c.entries), (5, 2, 5), "{c:?}");
}

#[test]
fn two_calls_asking_at_once_share_one_synthesis() {
    let (mut fake, calls) = Fake::new(100);
    fake.delay = Duration::from_millis(300);
    let cache = Arc::new(TtsCache::new(Box::new(fake), 10 << 20, None));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let cache = Arc::clone(&cache);
            std::thread::spawn(move || cache.get(&req("same words"), T).unwrap())
        })
        .collect();
    let got: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one synthesis");
    let made = got
        .iter()
        .filter(|(_, s)| *s == CacheSource::Synthesized)
        .count();
    assert_eq!(made, 1);
    assert!(got.iter().all(|(p, _)| Arc::ptr_eq(p, &got[0].0)));
    assert_eq!(cache.counts().hits_in_flight, 3);
}

#[test]
fn a_waiter_gives_up_at_its_own_deadline_and_errors_are_not_cached() {
    let (mut fake, calls) = Fake::new(100);
    fake.delay = Duration::from_millis(400);
    fake.fail = true;
    let cache = Arc::new(TtsCache::new(Box::new(fake), 10 << 20, None));
    let first = {
        let cache = Arc::clone(&cache);
        std::thread::spawn(move || cache.get(&req("x"), T))
    };
    std::thread::sleep(Duration::from_millis(50));
    let t0 = Instant::now();
    let waited = cache.get(&req("x"), Duration::from_millis(100));
    assert!(matches!(waited, Err(TtsError::Timeout(_))), "{waited:?}");
    assert!(t0.elapsed() < Duration::from_millis(300));
    let first = first.join().unwrap();
    assert_eq!(first.unwrap_err(), TtsError::UnknownVoice("en".into()));
    // Not cached: the next call tries again.
    assert!(cache.get(&req("x"), T).is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.counts().synth_failed, 2);
    assert_eq!(cache.counts().entries, 0);
}

#[test]
fn the_least_recently_used_go_first_when_the_bytes_are_spent() {
    let (fake, calls) = Fake::new(1000);
    let one = {
        let (f, _) = Fake::new(1000);
        let c = TtsCache::new(Box::new(f), usize::MAX, None);
        c.get(&req("a"), T).unwrap().0.size_bytes()
    };
    // Room for two one-second prompts, not three.
    let cache = TtsCache::new(Box::new(fake), one * 2 + one / 2, None);
    cache.get(&req("a"), T).unwrap();
    cache.get(&req("b"), T).unwrap();
    cache.get(&req("a"), T).unwrap(); // a is now the most recent
    cache.get(&req("c"), T).unwrap(); // evicts b
    assert_eq!(cache.get(&req("a"), T).unwrap().1, CacheSource::Memory);
    assert_eq!(cache.get(&req("c"), T).unwrap().1, CacheSource::Memory);
    assert_eq!(cache.get(&req("b"), T).unwrap().1, CacheSource::Synthesized);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    let c = cache.counts();
    assert_eq!(c.entries, 2);
    assert!(c.bytes as usize <= one * 2 + one / 2, "{c:?}");
    // A prompt larger than the whole cache is served, not kept.
    let (big, _) = Fake::new(1000);
    let tiny = TtsCache::new(Box::new(big), one / 2, None);
    assert!(tiny.get(&req("a"), T).is_ok());
    assert_eq!(tiny.get(&req("a"), T).unwrap().1, CacheSource::Synthesized);
    assert_eq!(tiny.counts().bytes, 0);
}

#[test]
fn the_cache_directory_outlives_the_process() {
    let dir = std::env::temp_dir().join(format!("rivr-tts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (fake, calls) = Fake::new(200);
    let first = TtsCache::new(Box::new(fake), 10 << 20, Some(dir.clone()));
    let (a, _) = first.get(&req("kept on disk"), T).unwrap();
    let (fake, calls2) = Fake::new(200);
    let second = TtsCache::new(Box::new(fake), 10 << 20, Some(dir.clone()));
    let (b, src) = second.get(&req("kept on disk"), T).unwrap();
    assert_eq!(src, CacheSource::Disk);
    assert_eq!(a.pcm_8k(), b.pcm_8k());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(calls2.load(Ordering::SeqCst), 0);
    // A damaged file is a miss, not an error.
    for f in std::fs::read_dir(&dir).unwrap() {
        std::fs::write(f.unwrap().path(), b"RIFFjunk").unwrap();
    }
    let (fake, calls3) = Fake::new(200);
    let third = TtsCache::new(Box::new(fake), 10 << 20, Some(dir.clone()));
    assert_eq!(
        third.get(&req("kept on disk"), T).unwrap().1,
        CacheSource::Synthesized
    );
    assert_eq!(calls3.load(Ordering::SeqCst), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_requests_are_refused_with_the_reason() {
    let cases = [
        (SayRequest::new("", "en", "en", 160), "empty"),
        (SayRequest::new(" \n\t", "en", "en", 160), "empty"),
        (
            SayRequest::new(&"a".repeat(MAX_TEXT_CHARS + 1), "en", "en", 160),
            "4001 characters",
        ),
        (SayRequest::new("hi", "-x", "en", 160), "voice \"-x\""),
        (SayRequest::new("hi", "en/../x", "en", 160), "voice"),
        (SayRequest::new("hi", "", "en", 160), "voice"),
        (SayRequest::new("hi", "en", "e n", 160), "lang"),
        (SayRequest::new("hi", "en", "en", 20), "rate 20"),
    ];
    for (r, want) in cases {
        let e = r.unwrap_err().to_string();
        assert!(e.contains(want), "{e} (wanted {want})");
    }
    assert!(SayRequest::new(&"é".repeat(MAX_TEXT_CHARS), "fr+f2", "fr", 450).is_ok());
}

fn espeak_available() -> bool {
    std::process::Command::new("espeak-ng")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn espeak_speaks_and_refuses_unknown_voices() {
    assert!(
        espeak_available(),
        "espeak-ng is required (`make deps` installs it)"
    );
    let e = Espeak::default();
    let t0 = Instant::now();
    let s = e
        .synthesize(&req("Hello, your balance is 1250 dollars."), T)
        .unwrap();
    let took = t0.elapsed();
    assert_eq!(s.rate_hz, 22_050);
    let secs = s.samples.len() as f64 / 22_050.0;
    assert!((1.5..6.0).contains(&secs), "{secs} s of speech");
    let peak = s.samples.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(peak > 0.1, "speech is not silent: peak {peak}");
    println!("espeak-ng: {secs:.2} s of speech in {took:?}");
    // A text that looks like options is spoken, not obeyed.
    let dashed = e.synthesize(&req("--help -v xx"), T).unwrap();
    assert!(dashed.samples.len() > 22_050 / 2);
    let bad = SayRequest::new("hi", "xx-nosuch", "en", 160).unwrap();
    assert_eq!(
        e.synthesize(&bad, T).unwrap_err(),
        TtsError::UnknownVoice("xx-nosuch".into())
    );
    let missing = Espeak::new("/nonexistent/espeak-ng");
    let err = missing.synthesize(&req("hi"), T).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/espeak-ng"), "{err}");
}

#[test]
fn a_synthesis_past_its_timeout_is_killed() {
    assert!(espeak_available(), "espeak-ng is required");
    let e = Espeak::default();
    let long = "This sentence is long enough to take some time. ".repeat(80);
    let t0 = Instant::now();
    let r = e.synthesize(&req(&long), Duration::from_millis(1));
    assert!(
        matches!(r, Err(TtsError::Timeout(_))),
        "{:?}",
        r.map(|s| s.samples.len())
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
}

/// The figures in docs/performance.md ("Text to speech"): per sentence,
/// espeak-ng alone, a first `say` (espeak-ng, decode, resample, encode
/// for every codec) and a cache hit.
#[test]
fn cost_of_a_first_say_and_of_a_cache_hit() {
    assert!(espeak_available(), "espeak-ng is required");
    let cache = TtsCache::new(Box::new(Espeak::default()), 64 << 20, None);
    for text in [
        "Goodbye.",
        "Thank you for calling. Your balance is 1250 dollars.",
        "Your appointment with doctor Smith is confirmed for Tuesday, December 8th, \
         at half past ten. Press 1 to confirm, 2 to cancel, or stay on the line to \
         speak to someone at the front desk.",
    ] {
        let r = req(text);
        let t0 = Instant::now();
        Espeak::default().synthesize(&r, T).unwrap();
        let espeak = t0.elapsed();
        let t0 = Instant::now();
        let (p, src) = cache.get(&r, T).unwrap();
        let first = t0.elapsed();
        assert_eq!(src, CacheSource::Synthesized);
        let t0 = Instant::now();
        let n = 1000;
        for _ in 0..n {
            assert_eq!(cache.get(&r, T).unwrap().1, CacheSource::Memory);
        }
        let hit = t0.elapsed() / n;
        // The encoding part alone (G.711 tables, libopus).
        let t0 = Instant::now();
        crate::media::prompt::Prompt::from_pcm_8k("again", p.pcm_8k().to_vec());
        let encode = t0.elapsed();
        println!(
            "tts cost: {} chars, {} ms of speech: espeak-ng {:.1} ms, first say {:.1} ms (encoding {:.1} ms), cache hit {:.2} µs, {} bytes cached",
            text.len(),
            p.duration_ms(),
            espeak.as_secs_f64() * 1e3,
            first.as_secs_f64() * 1e3,
            encode.as_secs_f64() * 1e3,
            hit.as_secs_f64() * 1e6,
            p.size_bytes()
        );
        assert!(
            hit * 10 < first,
            "a hit ({hit:?}) is far cheaper than a synthesis ({first:?})"
        );
    }
}
