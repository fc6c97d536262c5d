//! Which classifier a leg's heard audio is running through, for the media
//! worker: answering-machine detection, waiting for a beep, or early-media
//! classification (`amd`, `sit`). Started and stopped by the owner
//! (`MediaCommand::Classify`), each result reported as
//! `MediaEvent::Classified`. Nothing here knows SIP or calls.

use crate::media::amd::{Amd, AmdConfig, AmdVerdict, BeepWait, BeepWaitOutcome};
use crate::media::sit::{EarlyMedia, EarlyMediaClassifier};

/// What to listen for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassifyKind {
    /// Who answered; one result.
    Amd(AmdConfig),
    /// The end of a greeting's beep, or `silence_ms` of quiet; one result.
    Beep { silence_ms: u32 },
    /// SIT, ringback, busy, announcement: a result for each new thing
    /// heard, until stopped.
    EarlyMedia,
}

/// A classifier's finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classified {
    Amd(AmdVerdict),
    Beep(BeepWaitOutcome),
    /// Something heard before answer, `at_ms` after the classifier started.
    EarlyMedia {
        heard: EarlyMedia,
        at_ms: u64,
    },
}

/// A classifier running on one leg.
#[derive(Debug, Clone)]
pub struct Classifier {
    pub id: u64,
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    Amd(Box<Amd>),
    Beep(Box<BeepWait>),
    Early(Box<EarlyMediaClassifier>, u64),
}

impl Classifier {
    pub fn new(id: u64, kind: ClassifyKind) -> Self {
        let state = match kind {
            ClassifyKind::Amd(cfg) => State::Amd(Box::new(Amd::new(cfg))),
            ClassifyKind::Beep { silence_ms } => State::Beep(Box::new(BeepWait::new(silence_ms))),
            ClassifyKind::EarlyMedia => State::Early(Box::default(), 0),
        };
        Classifier { id, state }
    }

    /// One heard frame; a finding, and whether the classifier is done.
    pub fn frame(&mut self, pcm: &[i16]) -> (Option<Classified>, bool) {
        match &mut self.state {
            State::Amd(a) => match a.push(pcm) {
                Some(v) => (Some(Classified::Amd(v)), true),
                None => (None, false),
            },
            State::Beep(w) => match w.push(pcm) {
                Some(o) => (Some(Classified::Beep(o)), true),
                None => (None, false),
            },
            State::Early(c, ms) => {
                *ms += pcm.len() as u64 / 8;
                let found = c
                    .push(pcm)
                    .map(|heard| Classified::EarlyMedia { heard, at_ms: *ms });
                (found, false)
            }
        }
    }
}
