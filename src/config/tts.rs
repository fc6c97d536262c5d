//! `[tts]`: text to speech for `say()` — the engine (espeak-ng's program),
//! the default voice, language and rate, and the cache's size and
//! directory. Errors name the key and its line.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::trunk::Err;
use super::ConfigError;

/// How `say()` speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtsConfig {
    /// The engine; only `espeak-ng` today.
    pub engine: String,
    /// The engine's program (`espeak-ng` on `PATH`, or a path).
    pub program: PathBuf,
    /// The default voice; `None`: the language's default voice.
    pub voice: Option<String>,
    /// The default language (`en`, `fr`, `de`…).
    pub lang: String,
    /// The default rate, words per minute.
    pub rate: u32,
    /// The in-memory cache's size in bytes (prompts and their encodings).
    pub cache_bytes: usize,
    /// Where synthesized sentences are also kept, across restarts.
    pub cache_dir: Option<PathBuf>,
    /// The longest one synthesis may take, in milliseconds (also bounded
    /// by the script's own time budget).
    pub timeout_ms: u64,
}

impl Default for TtsConfig {
    fn default() -> Self {
        TtsConfig {
            engine: "espeak-ng".into(),
            program: PathBuf::from("espeak-ng"),
            voice: None,
            lang: "en".into(),
            rate: 160,
            cache_bytes: 64 << 20,
            cache_dir: None,
            timeout_ms: 10_000,
        }
    }
}

/// One line per key, so keys added in parallel merge cleanly.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTts {
    engine: Option<Spanned<String>>,
    program: Option<Spanned<String>>,
    voice: Option<Spanned<String>>,
    lang: Option<Spanned<String>>,
    rate: Option<Spanned<u64>>,
    cache_bytes: Option<Spanned<u64>>,
    cache_dir: Option<Spanned<String>>,
    timeout_ms: Option<Spanned<u64>>,
}

pub(super) fn parse_tts(
    raw: Option<RawTts>,
    base_dir: &Path,
    err: Err<'_>,
) -> Result<TtsConfig, ConfigError> {
    let raw = raw.unwrap_or_default();
    let d = TtsConfig::default();
    if let Some(e) = &raw.engine {
        if e.get_ref() != "espeak-ng" {
            return Err(err(
                Some(e.span()),
                format!(
                    "tts.engine: {:?} is not an engine rivr has (espeak-ng)",
                    e.get_ref()
                ),
            ));
        }
    }
    let name = |key: &str, v: &Spanned<String>| -> Result<String, ConfigError> {
        crate::media::tts::SayRequest::new("x", v.get_ref(), v.get_ref(), d.rate)
            .map(|_| v.get_ref().clone())
            .map_err(|e| err(Some(v.span()), format!("tts.{key}: {e}")))
    };
    let voice = raw.voice.as_ref().map(|v| name("voice", v)).transpose()?;
    let lang = match &raw.lang {
        Some(l) => name("lang", l)?,
        None => d.lang,
    };
    let rate = match &raw.rate {
        None => d.rate,
        Some(r) => u32::try_from(*r.get_ref())
            .ok()
            .filter(|n| crate::media::tts::RATE_RANGE.contains(n))
            .ok_or_else(|| {
                err(
                    Some(r.span()),
                    format!(
                        "tts.rate: {} is not {}-{} words per minute",
                        r.get_ref(),
                        crate::media::tts::RATE_RANGE.start(),
                        crate::media::tts::RATE_RANGE.end()
                    ),
                )
            })?,
    };
    let cache_bytes = match &raw.cache_bytes {
        None => d.cache_bytes,
        Some(b) => usize::try_from(*b.get_ref())
            .ok()
            .filter(|&n| n <= isize::MAX as usize)
            .ok_or_else(|| {
                err(
                    Some(b.span()),
                    format!("tts.cache_bytes: {} is too large", b.get_ref()),
                )
            })?,
    };
    let timeout_ms = match &raw.timeout_ms {
        None => d.timeout_ms,
        Some(t) if (100..=600_000).contains(t.get_ref()) => *t.get_ref(),
        Some(t) => {
            return Err(err(
                Some(t.span()),
                format!("tts.timeout_ms: {} is not 100-600000", t.get_ref()),
            ))
        }
    };
    let program = match &raw.program {
        None => d.program,
        Some(p) if p.get_ref().is_empty() => {
            return Err(err(Some(p.span()), "tts.program: empty".into()))
        }
        // A bare name is looked up on PATH; a path is relative to the file.
        Some(p) if !p.get_ref().contains('/') => PathBuf::from(p.get_ref()),
        Some(p) => base_dir.join(p.get_ref()),
    };
    Ok(TtsConfig {
        engine: d.engine,
        program,
        voice,
        lang,
        rate,
        cache_bytes,
        cache_dir: raw.cache_dir.map(|c| base_dir.join(c.into_inner())),
        timeout_ms,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::{Path, PathBuf};

    fn parse(s: &str) -> Result<Config, String> {
        Config::parse(s, "rivr.toml", Path::new("/etc/rivr")).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_every_key() {
        assert_eq!(parse("").unwrap().tts, super::TtsConfig::default());
        let t = parse(
            "[tts]\nengine = \"espeak-ng\"\nprogram = \"bin/espeak-ng\"\nvoice = \"en-us+f3\"\n\
             lang = \"fr\"\nrate = 140\ncache_bytes = 1000000\ncache_dir = \"var/tts\"\ntimeout_ms = 5000\n",
        )
        .unwrap()
        .tts;
        assert_eq!(t.program, PathBuf::from("/etc/rivr/bin/espeak-ng"));
        assert_eq!(t.voice.as_deref(), Some("en-us+f3"));
        assert_eq!(
            (t.lang.as_str(), t.rate, t.cache_bytes),
            ("fr", 140, 1_000_000)
        );
        assert_eq!(t.cache_dir, Some(PathBuf::from("/etc/rivr/var/tts")));
        assert_eq!(t.timeout_ms, 5000);
    }

    #[test]
    fn errors_name_the_key_and_line() {
        for (text, want) in [
            ("[tts]\n\nengine = \"polly\"\n", "rivr.toml:3: tts.engine"),
            ("[tts]\nvoice = \"-x\"\n", "rivr.toml:2: tts.voice"),
            ("[tts]\nlang = \"\"\n", "rivr.toml:2: tts.lang"),
            ("[tts]\nrate = 5\n", "rivr.toml:2: tts.rate"),
            ("[tts]\ntimeout_ms = 0\n", "rivr.toml:2: tts.timeout_ms"),
            ("[tts]\nprogram = \"\"\n", "rivr.toml:2: tts.program"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
        let e = parse("[tts]\nrate = 160\nvoices = \"en\"\n").unwrap_err();
        assert!(e.starts_with("rivr.toml:3:") && e.contains("voices"), "{e}");
    }
}
