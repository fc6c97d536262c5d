//! `detect_machine(#{…})` and `wait_for_beep(#{ timeout_ms })`: who
//! answered, and when a voicemail greeting is over (docs/scripts.md,
//! "Answering machines"). The classifiers run in the media worker
//! (`media::amd` through `media::classify`); these verbs start one, wait
//! for its finding, and keep the keys pressed meanwhile for `gather`.

use std::time::Duration;

use rhai::{Dynamic, Map};

use super::options::VerbOptions;
use super::{Session, VerbError};
use crate::call::control::CallEvent;
use crate::media::amd::{AmdConfig, AmdVerdict, BeepWaitOutcome};
use crate::media::classify::{Classified, ClassifyKind};

/// The result key and `call.answered_by`: `human`, `machine`, `unsure`.
pub const RESULT_KEY: &str = "answered_by";
/// `wait_for_beep`'s defaults: 30 s at most, done after 1.5 s of quiet.
pub const DEFAULT_BEEP_TIMEOUT_MS: i64 = 30_000;
pub const DEFAULT_BEEP_SILENCE_MS: i64 = 1500;

/// `detect_machine()`'s options: amd.conf's parameters, in milliseconds.
pub fn amd_options(m: &Map) -> Result<AmdConfig, VerbError> {
    let keys = [
        "initial_silence_ms",
        "greeting_ms",
        "after_greeting_silence_ms",
        "total_analysis_ms",
        "min_word_ms",
        "between_words_silence_ms",
        "max_words",
        "max_word_ms",
        "silence_threshold",
    ];
    let o = VerbOptions::new("detect_machine", m, &keys)?;
    let mut c = AmdConfig::rivr();
    let ms = |key: &str, into: &mut u32| -> Result<(), VerbError> {
        if let Some(d) = o.ms(key, 10..=60_000)? {
            *into = u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        }
        Ok(())
    };
    ms("initial_silence_ms", &mut c.initial_silence_ms)?;
    ms("greeting_ms", &mut c.greeting_ms)?;
    ms(
        "after_greeting_silence_ms",
        &mut c.after_greeting_silence_ms,
    )?;
    ms("total_analysis_ms", &mut c.total_analysis_ms)?;
    ms("min_word_ms", &mut c.min_word_ms)?;
    ms("between_words_silence_ms", &mut c.between_words_silence_ms)?;
    ms("max_word_ms", &mut c.max_word_ms)?;
    if let Some(n) = o.int("max_words", 1..=100)? {
        c.max_words = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(n) = o.int("silence_threshold", 1..=32767)? {
        c.silence_threshold = u16::try_from(n).unwrap_or(u16::MAX);
    }
    Ok(c)
}

impl Session {
    /// Runs the answering-machine classifier until it decides (it always
    /// does, within `total_analysis_ms`) and stores `answered_by`.
    pub fn detect_machine(&mut self, cfg: AmdConfig) -> Result<AmdVerdict, VerbError> {
        self.check()?;
        if !self.ctl.is_answered() {
            self.ctl.answer().map_err(|_| self.gone())?;
        }
        let Classified::Amd(v) = self.classify(ClassifyKind::Amd(cfg), None)? else {
            return Err(VerbError::Failed("detect_machine: no verdict".into()));
        };
        self.ctl.set_result(RESULT_KEY, v.answered_by.as_str());
        tracing::info!(
            answered_by = v.answered_by.as_str(),
            cause = v.cause.as_str(),
            ms = v.at_ms,
            "answering-machine detection"
        );
        Ok(v)
    }

    /// Waits for the greeting's beep to end (or quiet); `None` on timeout.
    pub fn wait_for_beep(
        &mut self,
        timeout: Duration,
        silence_ms: u32,
    ) -> Result<Option<BeepWaitOutcome>, VerbError> {
        self.check()?;
        let until = self.ctl.now() + timeout;
        match self.classify(ClassifyKind::Beep { silence_ms }, Some(until))? {
            Classified::Beep(o) => Ok(Some(o)),
            _ => Ok(None),
        }
    }

    fn gone(&mut self) -> VerbError {
        self.ended = true;
        VerbError::CallEnded
    }

    /// Starts a classifier and waits for its one finding (or `until`:
    /// then an early-media finding stands for "none").
    fn classify(
        &mut self,
        kind: ClassifyKind,
        until: Option<std::time::Instant>,
    ) -> Result<Classified, VerbError> {
        let id = self.next_play_id;
        self.next_play_id += 1;
        self.ctl.classify(id, kind).map_err(|_| self.gone())?;
        let mut keys = Vec::new();
        let found = loop {
            match self.wait(until) {
                Ok(Some(CallEvent::Digit { digit, .. })) => keys.push(digit),
                Ok(Some(CallEvent::Classified { id: got, result })) if got == id => {
                    break Ok(*result)
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    break Ok(Classified::EarlyMedia {
                        heard: crate::media::sit::EarlyMedia::Ringback,
                        at_ms: 0,
                    })
                }
                Err(e) => break Err(e),
            }
        };
        if found.is_err() || until.is_some() {
            self.ctl.stop_classify(id);
        }
        for k in keys {
            self.buffer(k);
        }
        found
    }
}

/// `detect_machine(opts)` for the Rhai API: `#{ answered_by, cause, ms }`.
pub fn detect_machine_verb(s: &mut Session, opts: &Map) -> Result<Map, VerbError> {
    let v = s.detect_machine(amd_options(opts)?)?;
    let mut m = Map::new();
    m.insert("answered_by".into(), v.answered_by.as_str().into());
    m.insert("cause".into(), v.cause.as_str().into());
    m.insert("ms".into(), Dynamic::from(v.at_ms as i64));
    Ok(m)
}

/// `wait_for_beep(opts)` for the Rhai API: `#{ beep, freq_hz, ms }`
/// (`beep` false when quiet ended the wait; `ms` -1 on timeout).
pub fn wait_for_beep_verb(s: &mut Session, opts: &Map) -> Result<Map, VerbError> {
    let o = VerbOptions::new("wait_for_beep", opts, &["timeout_ms", "silence_ms"])?;
    let timeout =
        o.ms("timeout_ms", 100..=super::options::MAX_MS)?
            .unwrap_or(Duration::from_millis(
                DEFAULT_BEEP_TIMEOUT_MS.unsigned_abs(),
            ));
    let silence = o
        .ms("silence_ms", 200..=60_000)?
        .map_or(DEFAULT_BEEP_SILENCE_MS as u32, |d| d.as_millis() as u32);
    let mut m = Map::new();
    let (beep, freq, ms) = match s.wait_for_beep(timeout, silence)? {
        Some(BeepWaitOutcome::Beep { freq_hz, at_ms }) => (true, i64::from(freq_hz), at_ms as i64),
        Some(BeepWaitOutcome::Silence { at_ms }) => (false, 0, at_ms as i64),
        None => (false, 0, -1),
    };
    m.insert("beep".into(), beep.into());
    m.insert("freq_hz".into(), Dynamic::from(freq));
    m.insert("ms".into(), Dynamic::from(ms));
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_by_name() {
        let mut m = Map::new();
        m.insert("greeting_ms".into(), Dynamic::from(2000_i64));
        m.insert("max_words".into(), Dynamic::from(3_i64));
        let c = amd_options(&m).expect("valid");
        assert_eq!((c.greeting_ms, c.max_words), (2000, 3));
        m.insert("grreting_ms".into(), Dynamic::from(1_i64));
        assert!(amd_options(&m).is_err());
        let mut m = Map::new();
        m.insert("max_words".into(), Dynamic::from(0_i64));
        let e = amd_options(&m).expect_err("0 words").to_string();
        assert!(e.contains("max_words"), "{e}");
    }
}
