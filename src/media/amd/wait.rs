//! Waiting for the beep that ends a voicemail greeting (`wait_for_beep`):
//! done when a beep ends, or when the line has been silent for a while
//! with no beep under way (a greeting without one).

use super::beep::{self, BeepDetector, BeepEvent};
use super::level::{self, Level};

/// How the wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeepWaitOutcome {
    /// A beep of `freq_hz` ended at `at_ms`.
    Beep { freq_hz: u32, at_ms: u64 },
    /// `silence_ms` passed with neither voice nor a beep; `at_ms` is when.
    Silence { at_ms: u64 },
}

impl BeepWaitOutcome {
    pub fn at_ms(&self) -> u64 {
        match *self {
            BeepWaitOutcome::Beep { at_ms, .. } | BeepWaitOutcome::Silence { at_ms } => at_ms,
        }
    }
}

/// Sans-IO: samples in, the outcome once; time is the samples fed.
#[derive(Debug, Clone)]
pub struct BeepWait {
    beep: BeepDetector,
    level: Level,
    silence_ms: u32,
    quiet_ms: u32,
    pending: [i16; beep::FRAME],
    pending_len: usize,
    elapsed_ms: u64,
    done: Option<BeepWaitOutcome>,
}

impl BeepWait {
    /// `silence_ms`: quiet that ends the wait without a beep (rivr uses
    /// 1500 ms: longer than a pause inside a greeting, short enough that the
    /// message is not cut off by the machine's own recording limit).
    pub fn new(silence_ms: u32) -> Self {
        Self {
            beep: BeepDetector::new(),
            level: Level::new(256, true),
            silence_ms,
            quiet_ms: 0,
            pending: [0; beep::FRAME],
            pending_len: 0,
            elapsed_ms: 0,
            done: None,
        }
    }

    pub fn outcome(&self) -> Option<BeepWaitOutcome> {
        self.done
    }

    /// Feeds audio of any length; the outcome on the call that reaches it.
    pub fn push(&mut self, mut pcm: &[i16]) -> Option<BeepWaitOutcome> {
        if self.done.is_some() {
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
                if let Some(o) = self.frame(&frame) {
                    self.done = Some(o);
                    return Some(o);
                }
            }
        }
        None
    }

    fn frame(&mut self, frame: &[i16; beep::FRAME]) -> Option<BeepWaitOutcome> {
        let event = self.beep.frame(frame);
        let mut voiced = false;
        for part in frame.chunks(level::FRAME) {
            voiced |= self.level.voiced(part);
        }
        self.elapsed_ms += beep::FRAME as u64 / 8;
        if event == Some(BeepEvent::Ended) {
            let freq_hz = self.beep.beep().map_or(0, |b| b.freq_hz.round() as u32);
            let at_ms = self
                .beep
                .beep()
                .and_then(|b| b.end_ms)
                .unwrap_or(self.elapsed_ms);
            return Some(BeepWaitOutcome::Beep { freq_hz, at_ms });
        }
        let in_beep = self.beep.beep().is_some_and(|b| b.end_ms.is_none());
        if voiced || in_beep {
            self.quiet_ms = 0;
        } else {
            self.quiet_ms += beep::FRAME as u32 / 8;
            if self.quiet_ms >= self.silence_ms {
                return Some(BeepWaitOutcome::Silence {
                    at_ms: self.elapsed_ms,
                });
            }
        }
        None
    }
}
