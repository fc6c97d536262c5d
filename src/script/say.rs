//! The speaking verbs: `say(text)`, `say_number(n)`, `say_date(d)`, each
//! with an optional `#{ voice, lang, rate, interrupt }`. Text becomes a
//! prompt through the shared TTS cache ([`Speaker`], held by the script
//! cache and handed to each script by the runner), synthesized on the
//! script's own thread within its time budget, then played like any prompt.
//! `say_number` and `say_date` hand the engine words it reads in the
//! voice's language (espeak-ng reads numbers itself); `say_digits` stays on
//! the recorded `digits/N` prompts.

use std::sync::Arc;
use std::time::Duration;

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use crate::config::TtsConfig;
use crate::media::tts::{Espeak, SayRequest, TtsCache, TtsError};
use crate::script::api::{key_string, with};
use crate::script::say_words::{self, Date};
use crate::script::verbs::options::VerbOptions;
use crate::script::verbs::VerbError;

/// `say()`'s engine, cache and defaults; one per process.
#[derive(Debug)]
pub struct Speaker {
    cache: TtsCache,
    voice: Option<String>,
    lang: String,
    rate: u32,
    timeout: Duration,
}

impl Default for Speaker {
    fn default() -> Self {
        Speaker::from_config(&TtsConfig::default())
    }
}

impl Speaker {
    /// As `[tts]` says. Nothing runs until the first `say`.
    pub fn from_config(c: &TtsConfig) -> Speaker {
        Speaker {
            cache: TtsCache::new(
                Box::new(Espeak::new(c.program.clone())),
                c.cache_bytes,
                c.cache_dir.clone(),
            ),
            voice: c.voice.clone(),
            lang: c.lang.clone(),
            rate: c.rate,
            timeout: Duration::from_millis(c.timeout_ms),
        }
    }

    /// A speaker over any cache (tests, another engine).
    pub fn with_cache(cache: TtsCache, c: &TtsConfig) -> Speaker {
        Speaker {
            cache,
            ..Speaker::from_config(c)
        }
    }

    pub fn cache(&self) -> &TtsCache {
        &self.cache
    }
}

/// A verb's options, resolved against the defaults.
struct Options {
    voice: String,
    lang: String,
    rate: u32,
    interrupt: bool,
}

/// `call_lang` is the call's language (`call.lang`, `set_lang`; "" for
/// none): it comes before the `[tts]` defaults, so one flow speaks each
/// caller's language.
fn options(
    verb: &'static str,
    s: &Speaker,
    call_lang: &str,
    m: Option<&Map>,
) -> Result<Options, VerbError> {
    let empty = Map::new();
    let o = VerbOptions::new(
        verb,
        m.unwrap_or(&empty),
        &["voice", "lang", "rate", "interrupt"],
    )?;
    let voice_opt = o.text("voice")?;
    let lang_opt = o.text("lang")?;
    let call_lang = (!call_lang.is_empty()).then(|| call_lang.to_owned());
    // An explicit language picks its own default voice over the
    // configured one; an explicit voice implies its language.
    let voice = voice_opt
        .clone()
        .or_else(|| lang_opt.clone())
        .or_else(|| call_lang.clone())
        .or_else(|| s.voice.clone())
        .unwrap_or_else(|| s.lang.clone());
    let lang = lang_opt
        .or_else(|| voice_opt.map(|v| say_words::primary(&v)))
        .or(call_lang)
        .unwrap_or_else(|| s.lang.clone());
    // The range is checked with the text (`SayRequest`), so the message
    // names the value: "rate 5000 is not 80-450".
    let rate = match o.get("rate") {
        None => s.rate,
        Some(v) => v
            .as_int()
            .ok()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| o.bad("rate", "must be words per minute"))?,
    };
    let interrupt = o.flag("interrupt")?.unwrap_or(false);
    Ok(Options {
        voice,
        lang,
        rate,
        interrupt,
    })
}

/// Speaks `text` (made by `words` from the resolved language) to the
/// caller; returns the key that interrupted it, or `""`.
fn speak(
    verb: &'static str,
    opts: Option<&Map>,
    words: impl FnOnce(&str) -> Result<String, String>,
) -> Result<String, Box<EvalAltResult>> {
    with(|r| {
        // Nothing to synthesize for a caller who is gone (`on_hangup`).
        if r.session.is_ended() || r.session.control().is_gone() {
            return Err(VerbError::CallEnded);
        }
        let speaker = Arc::clone(&r.speaker);
        let o = options(verb, &speaker, r.session.lang(), opts)?;
        let text = words(&o.lang).map_err(|e| VerbError::BadArgument(format!("{verb}: {e}")))?;
        let req = SayRequest::new(&text, &o.voice, &o.lang, o.rate)
            .map_err(|e| VerbError::BadArgument(format!("{verb}: {e}")))?;
        let timeout = match r.session.time_left() {
            Some(left) => left.min(speaker.timeout),
            None => speaker.timeout,
        };
        // The cache's memory (and the synthesis' buffers) are not the
        // script's.
        let got = crate::script::memory::uncharged(|| speaker.cache.get(&req, timeout));
        let prompt = match got {
            Ok((prompt, source)) => {
                tracing::debug!(call = %r.call_id, ?source, prompt = prompt.name(), "say");
                prompt
            }
            Err(TtsError::Timeout(_)) => {
                r.session.check_time()?;
                return Err(VerbError::BadArgument(format!(
                    "{verb}: text to speech took longer than {} ms ([tts] timeout_ms)",
                    timeout.as_millis()
                )));
            }
            Err(e) => return Err(VerbError::BadArgument(format!("{verb}: {e}"))),
        };
        Ok(key_string(
            r.session.play_prompts(vec![prompt], o.interrupt)?,
        ))
    })
}

fn say_text(text: &str, opts: Option<&Map>) -> Result<String, Box<EvalAltResult>> {
    let text = text.to_owned();
    speak("say", opts, move |_| Ok(text))
}

fn say_number(n: i64, opts: Option<&Map>) -> Result<String, Box<EvalAltResult>> {
    speak("say_number", opts, move |_| Ok(n.to_string()))
}

fn say_date(d: Dynamic, opts: Option<&Map>) -> Result<String, Box<EvalAltResult>> {
    let date = if let Ok(secs) = d.as_int() {
        Date::from_unix(secs).ok_or_else(|| format!("{secs} is not a Unix time from 1970 to 9999"))
    } else if let Some(s) = d.clone().try_cast::<rhai::ImmutableString>() {
        Date::parse(&s)
    } else {
        Err(format!(
            "expected \"YYYY-MM-DD\" or Unix seconds, got {}",
            d.type_name()
        ))
    };
    speak("say_date", opts, move |lang| {
        date.and_then(|d| say_words::date_text(lang, d))
    })
}

/// Registers `say`, `say_number`, `say_date`.
pub fn register(engine: &mut Engine) {
    engine.register_fn("say", |text: &str| say_text(text, None));
    engine.register_fn("say", |text: &str, opts: Map| say_text(text, Some(&opts)));
    engine.register_fn("say_number", |n: i64| say_number(n, None));
    engine.register_fn("say_number", |n: i64, opts: Map| say_number(n, Some(&opts)));
    engine.register_fn("say_date", |d: Dynamic| say_date(d, None));
    engine.register_fn("say_date", |d: Dynamic, opts: Map| say_date(d, Some(&opts)));
}

#[cfg(test)]
mod tests;
