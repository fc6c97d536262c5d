//! Answering-machine detection on a callee's 8 kHz audio after answer:
//! [`Amd`] says `human`, `machine` or `unsure` within a bounded time, and
//! [`BeepWait`] says when a voicemail greeting's beep has ended (or the
//! greeting has fallen silent without one), so a message can be left.
//!
//! Sans-IO: decoded samples in, a verdict out; time is the count of samples
//! fed (8 kHz), so a test runs on a virtual clock and the media worker needs
//! no timer of its own.
//!
//! The baseline is the algorithm Asterisk's `AMD()` documents (amd.conf
//! parameters: initial silence, greeting length, silence after the
//! greeting, word length and count, total analysis time, a fixed silence
//! threshold), reimplemented from that description. [`Method::Rivr`]
//! measurably does better on the corpus (docs/quality.md): it follows the
//! line's noise floor instead of a fixed threshold, takes a greeting's beep
//! as proof of a machine, needs a longer pause to split words (so one word
//! with a stop consonant is not two), and reports dead air as `unsure`
//! rather than `machine` (Twilio's "unknown").

mod beep;
mod level;
mod wait;

pub use beep::{Beep, BeepDetector, BeepEvent};
pub use level::Level as VoiceLevel;
pub use wait::{BeepWait, BeepWaitOutcome};

use level::Level;

/// Who answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnsweredBy {
    Human,
    Machine,
    Unsure,
}

impl AnsweredBy {
    pub fn as_str(self) -> &'static str {
        match self {
            AnsweredBy::Human => "human",
            AnsweredBy::Machine => "machine",
            AnsweredBy::Unsure => "unsure",
        }
    }
}

/// Why the verdict was reached (Asterisk's `AMDCAUSE`, plus `Beep`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmdCause {
    /// Nothing said within `initial_silence_ms`.
    InitialSilence,
    /// Voice for longer than `greeting_ms`.
    LongGreeting,
    /// One utterance longer than `max_word_ms`.
    MaxWordLength,
    /// `max_words` words.
    MaxWords,
    /// A short greeting, then `after_greeting_silence_ms` of silence.
    AfterGreetingSilence,
    /// A beep (rivr only).
    Beep,
    /// No decision within `total_analysis_ms`.
    TooLong,
}

impl AmdCause {
    pub fn as_str(self) -> &'static str {
        match self {
            AmdCause::InitialSilence => "initial-silence",
            AmdCause::LongGreeting => "long-greeting",
            AmdCause::MaxWordLength => "max-word-length",
            AmdCause::MaxWords => "max-words",
            AmdCause::AfterGreetingSilence => "after-greeting-silence",
            AmdCause::Beep => "beep",
            AmdCause::TooLong => "too-long",
        }
    }
}

/// The decision and when it was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmdVerdict {
    pub answered_by: AnsweredBy,
    pub cause: AmdCause,
    /// Milliseconds of audio analysed when the decision was reached.
    pub at_ms: u64,
}

/// Which rules run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Asterisk `AMD()` as documented.
    Asterisk,
    /// Asterisk's rules with an adaptive noise floor, beep detection, and
    /// dead air reported as `unsure`.
    Rivr,
}

/// The amd.conf parameters, in milliseconds where a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmdConfig {
    pub method: Method,
    pub initial_silence_ms: u32,
    pub greeting_ms: u32,
    pub after_greeting_silence_ms: u32,
    pub total_analysis_ms: u32,
    pub min_word_ms: u32,
    pub between_words_silence_ms: u32,
    pub max_words: u32,
    pub max_word_ms: u32,
    /// Mean absolute sample (of 32767) below which a frame is silence.
    pub silence_threshold: u16,
}

impl AmdConfig {
    /// Asterisk's documented defaults (amd.conf.sample).
    pub fn asterisk() -> Self {
        Self {
            method: Method::Asterisk,
            initial_silence_ms: 2500,
            greeting_ms: 1500,
            after_greeting_silence_ms: 800,
            total_analysis_ms: 5000,
            min_word_ms: 100,
            between_words_silence_ms: 50,
            max_words: 2,
            max_word_ms: 5000,
            silence_threshold: 256,
        }
    }

    /// rivr's defaults: Asterisk's times, with word splitting tuned on the
    /// corpus.
    pub fn rivr() -> Self {
        Self {
            method: Method::Rivr,
            between_words_silence_ms: 150,
            max_words: 4,
            silence_threshold: 128,
            ..Self::asterisk()
        }
    }
}

impl Default for AmdConfig {
    fn default() -> Self {
        Self::rivr()
    }
}

/// Level frames per beep frame.
const LEVELS_PER_BEEP: usize = beep::FRAME / level::FRAME;
const LEVEL_MS: u32 = 10;

/// The answering-machine classifier for one call.
#[derive(Debug, Clone)]
pub struct Amd {
    cfg: AmdConfig,
    level: Level,
    beep: BeepDetector,
    /// Samples waiting for a whole 20 ms frame.
    pending: [i16; beep::FRAME],
    pending_len: usize,
    elapsed_ms: u64,
    /// Milliseconds since the last word's voice (or since the start).
    silence_ms: u32,
    /// Length of the current run of voiced frames.
    voice_run_ms: u32,
    /// Voice heard in words so far.
    voice_total_ms: u32,
    in_word: bool,
    words: u32,
    verdict: Option<AmdVerdict>,
}

impl Amd {
    pub fn new(cfg: AmdConfig) -> Self {
        Self {
            cfg,
            level: Level::new(cfg.silence_threshold, cfg.method == Method::Rivr),
            beep: BeepDetector::new(),
            pending: [0; beep::FRAME],
            pending_len: 0,
            elapsed_ms: 0,
            silence_ms: 0,
            voice_run_ms: 0,
            voice_total_ms: 0,
            in_word: false,
            words: 0,
            verdict: None,
        }
    }

    /// The decision, once reached.
    pub fn verdict(&self) -> Option<AmdVerdict> {
        self.verdict
    }

    /// Words counted so far (for logs).
    pub fn words(&self) -> u32 {
        self.words
    }

    /// Feeds decoded audio of any length; returns the verdict on the call
    /// that reaches it (and `None` before and after).
    pub fn push(&mut self, mut pcm: &[i16]) -> Option<AmdVerdict> {
        if self.verdict.is_some() {
            return None;
        }
        while !pcm.is_empty() {
            let take = (beep::FRAME - self.pending_len).min(pcm.len());
            let (head, rest) = pcm.split_at(take);
            if let Some(dst) = self
                .pending
                .get_mut(self.pending_len..self.pending_len + take)
            {
                dst.copy_from_slice(head);
            }
            self.pending_len += take;
            pcm = rest;
            if self.pending_len == beep::FRAME {
                self.pending_len = 0;
                let frame = self.pending;
                if let Some(v) = self.frame(&frame) {
                    self.verdict = Some(v);
                    return Some(v);
                }
            }
        }
        None
    }

    fn frame(&mut self, frame: &[i16; beep::FRAME]) -> Option<AmdVerdict> {
        let beep = self.beep.frame(frame);
        for part in frame.chunks(level::FRAME).take(LEVELS_PER_BEEP) {
            let voiced = self.level.voiced(part);
            self.elapsed_ms += u64::from(LEVEL_MS);
            if let Some(v) = self.level_frame(voiced) {
                return Some(v);
            }
        }
        if self.cfg.method == Method::Rivr && beep == Some(BeepEvent::Started) {
            return Some(self.decide(AnsweredBy::Machine, AmdCause::Beep));
        }
        None
    }

    fn level_frame(&mut self, voiced: bool) -> Option<AmdVerdict> {
        let c = self.cfg;
        self.silence_ms = self.silence_ms.saturating_add(LEVEL_MS);
        if voiced {
            self.voice_run_ms += LEVEL_MS;
            if self.voice_run_ms >= c.min_word_ms {
                // The run is a word: its voice counts, silence starts over.
                if !self.in_word {
                    self.in_word = true;
                    self.words += 1;
                    self.voice_total_ms += self.voice_run_ms - LEVEL_MS;
                }
                self.voice_total_ms += LEVEL_MS;
                self.silence_ms = 0;
            }
        } else {
            self.voice_run_ms = 0;
            if self.in_word && self.silence_ms >= c.between_words_silence_ms {
                self.in_word = false;
            }
        }
        if self.words >= c.max_words {
            return Some(self.decide(AnsweredBy::Machine, AmdCause::MaxWords));
        }
        if self.voice_total_ms >= c.greeting_ms {
            return Some(self.decide(AnsweredBy::Machine, AmdCause::LongGreeting));
        }
        if self.voice_run_ms >= c.max_word_ms {
            return Some(self.decide(AnsweredBy::Machine, AmdCause::MaxWordLength));
        }
        if self.words == 0 && self.silence_ms >= c.initial_silence_ms {
            let who = match c.method {
                Method::Asterisk => AnsweredBy::Machine,
                Method::Rivr => AnsweredBy::Unsure,
            };
            return Some(self.decide(who, AmdCause::InitialSilence));
        }
        if self.words > 0 && self.silence_ms >= c.after_greeting_silence_ms {
            return Some(self.decide(AnsweredBy::Human, AmdCause::AfterGreetingSilence));
        }
        if self.elapsed_ms >= u64::from(c.total_analysis_ms) {
            return Some(self.decide(AnsweredBy::Unsure, AmdCause::TooLong));
        }
        None
    }

    fn decide(&self, answered_by: AnsweredBy, cause: AmdCause) -> AmdVerdict {
        AmdVerdict {
            answered_by,
            cause,
            at_ms: self.elapsed_ms,
        }
    }
}

#[cfg(test)]
mod tests;
