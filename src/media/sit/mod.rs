//! What a call plays before it is answered (early media after a 183, or the
//! first seconds after a 200 from a carrier that answers to play a
//! failure): Special Information Tones and their codes, ringback and busy
//! cadences, and speech (an operator announcement: "the number you have
//! dialled is switched off"). The call layer combines the verdict with the
//! SIP status and Q.850 cause into a refined outcome.
//!
//! Sans-IO: decoded 8 kHz samples in, events out; time is the samples fed.

mod cadence;
mod tones;

pub use cadence::{Cadence, CadenceDetector};
pub use tones::{SitCode, SitDetector};

use crate::media::amd::BeepDetector;

/// Something heard before answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlyMedia {
    Ringback,
    Busy,
    Sit(SitCode),
    /// Speech: an operator announcement (or a voice ringback).
    Announcement,
}

impl EarlyMedia {
    /// `ringback`, `busy`, `sit-vc`, `announcement`.
    pub fn as_str(self) -> String {
        match self {
            EarlyMedia::Ringback => "ringback".into(),
            EarlyMedia::Busy => "busy".into(),
            EarlyMedia::Sit(c) => format!("sit-{}", c.as_str()),
            EarlyMedia::Announcement => "announcement".into(),
        }
    }

    /// How much the sound says about why a call failed: a SIT names the
    /// reason, speech says someone explained it, busy and ringback only
    /// confirm what SIP says.
    pub fn rank(self) -> u8 {
        match self {
            EarlyMedia::Sit(_) => 3,
            EarlyMedia::Announcement => 2,
            EarlyMedia::Busy => 1,
            EarlyMedia::Ringback => 0,
        }
    }
}

/// Speech heard (outside tones) that makes an announcement.
const SPEECH_MS: u32 = 1000;
const FRAME: usize = cadence::FRAME;

/// The early-media classifier for one call attempt.
#[derive(Debug, Clone)]
pub struct EarlyMediaClassifier {
    sit: SitDetector,
    cadence: CadenceDetector,
    beep: BeepDetector,
    level: crate::media::amd::VoiceLevel,
    pending: [i16; FRAME],
    pending_len: usize,
    elapsed_ms: u64,
    speech_ms: u32,
    heard: Vec<(EarlyMedia, u64)>,
}

impl Default for EarlyMediaClassifier {
    fn default() -> Self {
        Self::new()
    }
}

impl EarlyMediaClassifier {
    pub fn new() -> Self {
        Self {
            sit: SitDetector::new(),
            cadence: CadenceDetector::new(),
            beep: BeepDetector::new(),
            level: crate::media::amd::VoiceLevel::new(256, true),
            pending: [0; FRAME],
            pending_len: 0,
            elapsed_ms: 0,
            speech_ms: 0,
            heard: Vec::new(),
        }
    }

    /// Everything heard, each kind once, with when (ms since the start).
    pub fn heard(&self) -> &[(EarlyMedia, u64)] {
        &self.heard
    }

    /// The most telling thing heard (SIT, then speech, then busy, then
    /// ringback).
    pub fn verdict(&self) -> Option<EarlyMedia> {
        self.heard.iter().map(|h| h.0).max_by_key(|m| m.rank())
    }

    /// Feeds audio of any length; returns what was newly recognised.
    pub fn push(&mut self, mut pcm: &[i16]) -> Option<EarlyMedia> {
        let mut new = None;
        while !pcm.is_empty() {
            let take = (FRAME - self.pending_len).min(pcm.len());
            let (head, rest) = pcm.split_at(take);
            if let Some(dst) = self
                .pending
                .get_mut(self.pending_len..self.pending_len + take)
            {
                dst.copy_from_slice(head);
            }
            self.pending_len += take;
            pcm = rest;
            if self.pending_len == FRAME {
                self.pending_len = 0;
                let frame = self.pending;
                if let Some(m) = self.frame(&frame) {
                    new = Some(m);
                }
            }
        }
        new
    }

    fn frame(&mut self, frame: &[i16; FRAME]) -> Option<EarlyMedia> {
        let mut found = None;
        let mut in_sit = false;
        let mut voiced = false;
        for block in frame.chunks(tones::BLOCK) {
            if let Some(code) = self.sit.block(block) {
                found = Some(EarlyMedia::Sit(code));
            }
            in_sit |= self.sit.in_tone();
            voiced |= self.level.voiced(block);
        }
        match self.cadence.frame(frame) {
            Some(Cadence::Ringback) => found = found.or(Some(EarlyMedia::Ringback)),
            Some(Cadence::Busy) => found = found.or(Some(EarlyMedia::Busy)),
            None => {}
        }
        let tone = in_sit || self.cadence.in_burst() || self.beep.frame(frame).is_some() || {
            self.beep.beep().is_some_and(|b| b.end_ms.is_none())
        };
        self.elapsed_ms += 20;
        if voiced && !tone {
            self.speech_ms += 20;
            if self.speech_ms == SPEECH_MS {
                found = found.or(Some(EarlyMedia::Announcement));
            }
        }
        let m = found?;
        if self.heard.iter().any(|h| h.0 == m) {
            return None;
        }
        self.heard.push((m, self.elapsed_ms));
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(f1: f64, f2: f64, ms: usize) -> Vec<i16> {
        let (w1, w2) = (
            f1 * std::f64::consts::TAU / 8000.0,
            f2 * std::f64::consts::TAU / 8000.0,
        );
        (0..ms * 8)
            .map(|n| (1500.0 * ((w1 * n as f64).sin() + (w2 * n as f64).sin())) as i16)
            .collect()
    }

    fn run(parts: &[Vec<i16>]) -> Option<EarlyMedia> {
        let mut c = EarlyMediaClassifier::new();
        for p in parts {
            for chunk in p.chunks(123) {
                c.push(chunk);
            }
        }
        c.verdict()
    }

    #[test]
    fn cadences() {
        let on_off = |f1: f64, f2: f64, on: usize, off: usize, n: usize| {
            (0..n)
                .flat_map(|_| [tone(f1, f2, on), vec![0; off * 8]])
                .collect::<Vec<_>>()
        };
        assert_eq!(
            run(&on_off(440.0, 480.0, 2000, 4000, 2)),
            Some(EarlyMedia::Ringback)
        );
        assert_eq!(
            run(&on_off(425.0, 425.0, 1000, 4000, 2)),
            Some(EarlyMedia::Ringback)
        );
        assert_eq!(
            run(&on_off(480.0, 620.0, 500, 500, 5)),
            Some(EarlyMedia::Busy)
        );
        assert_eq!(
            run(&on_off(425.0, 425.0, 250, 250, 8)),
            Some(EarlyMedia::Busy)
        );
        assert_eq!(run(&[vec![0; 8 * 3000]]), None);
    }
}
