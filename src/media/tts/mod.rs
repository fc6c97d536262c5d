//! Text to speech: a small engine trait ([`TtsEngine`]; espeak-ng's
//! program is the default engine, [`Espeak`]) and the cache in front of it
//! ([`TtsCache`]), which turns a sentence into an `Arc<Prompt>` once —
//! resampled to 8 kHz and pre-encoded like any prompt — and hands the same
//! prompt to every later call that says it. A cloud engine is one more
//! [`TtsEngine`].
//!
//! Nothing here runs on the media tick: synthesis happens on the asking
//! script's own thread.

mod cache;
mod espeak;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use cache::{CacheSource, TtsCache, TtsCounts};
pub use espeak::Espeak;

/// Longest text one `say` may speak, in characters (about 4 minutes of
/// speech at 160 words per minute).
pub const MAX_TEXT_CHARS: usize = 4000;
/// Speaking rates accepted, in words per minute.
pub const RATE_RANGE: std::ops::RangeInclusive<u32> = 80..=450;
/// Longest voice name accepted, in bytes.
const MAX_VOICE_LEN: usize = 64;

/// Audio an engine produced: mono samples in `[-1.0, 1.0]` at `rate_hz`.
#[derive(Debug, Clone)]
pub struct Speech {
    pub samples: Vec<f32>,
    pub rate_hz: u32,
}

/// A text to speak, already checked by [`SayRequest::new`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SayRequest {
    text: String,
    voice: String,
    lang: String,
    rate_wpm: u32,
}

impl SayRequest {
    /// Checks and normalises a request: control characters become spaces,
    /// the text is trimmed and must hold 1 to [`MAX_TEXT_CHARS`]
    /// characters; the voice and language are names of letters, digits and
    /// `-_+.`, not starting with `-`; the rate is in [`RATE_RANGE`].
    pub fn new(text: &str, voice: &str, lang: &str, rate_wpm: u32) -> Result<SayRequest, TtsError> {
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let text = text.trim();
        if text.is_empty() {
            return Err(TtsError::BadRequest("the text is empty".into()));
        }
        let chars = text.chars().count();
        if chars > MAX_TEXT_CHARS {
            return Err(TtsError::BadRequest(format!(
                "the text has {chars} characters, more than {MAX_TEXT_CHARS}"
            )));
        }
        check_name("voice", voice)?;
        check_name("lang", lang)?;
        if !RATE_RANGE.contains(&rate_wpm) {
            return Err(TtsError::BadRequest(format!(
                "rate {rate_wpm} is not {}-{} words per minute",
                RATE_RANGE.start(),
                RATE_RANGE.end()
            )));
        }
        Ok(SayRequest {
            text: text.to_owned(),
            voice: voice.to_owned(),
            lang: lang.to_owned(),
            rate_wpm,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The engine's voice (espeak-ng: `en`, `en-us`, `fr+f2`).
    pub fn voice(&self) -> &str {
        &self.voice
    }

    pub fn lang(&self) -> &str {
        &self.lang
    }

    pub fn rate_wpm(&self) -> u32 {
        self.rate_wpm
    }
}

/// A voice or language name is passed to an engine's program: letters,
/// digits and `-_+.` only, so it can never be read as an option or a path
/// outside the engine's own voices.
fn check_name(what: &str, name: &str) -> Result<(), TtsError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_VOICE_LEN
        && !name.starts_with(['-', '.'])
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_+.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(TtsError::BadRequest(format!(
            "{what} {name:?} is not a voice name (1-{MAX_VOICE_LEN} of letters, digits, - _ + .)"
        )))
    }
}

/// Why a text could not be spoken. Cloned to every caller waiting on the
/// same synthesis.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtsError {
    /// The text, voice or rate is not acceptable.
    #[error("{0}")]
    BadRequest(String),
    /// The engine does not know the voice.
    #[error("unknown voice {0:?}")]
    UnknownVoice(String),
    /// The engine could not be run or failed.
    #[error("{0}")]
    Engine(String),
    /// The synthesis (or the wait for another call's) took longer than
    /// allowed.
    #[error("text to speech took longer than {0:?}")]
    Timeout(Duration),
    /// The engine's audio could not be decoded or resampled.
    #[error("cannot use the engine's audio: {0}")]
    Audio(String),
}

/// A speech synthesizer. `name` is part of the cache key, so two engines
/// never share results; `synthesize` runs on the asking script's thread
/// and must return by `timeout`.
pub trait TtsEngine: Send + Sync {
    fn name(&self) -> &str;
    fn synthesize(&self, req: &SayRequest, timeout: Duration) -> Result<Speech, TtsError>;
}
