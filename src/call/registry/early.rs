//! Early media on outbound legs: once a leg's far end sends audio before
//! answering (183 with SDP), the glue is asked to classify it (SIT,
//! ringback, busy, an announcement); what is heard comes back here, and
//! the most telling verdict refines the leg's outcome in its CDR
//! (`call::outcome_refine`). A carrier may also answer to play its SIT,
//! so on a call rivr placed the classifier listens on for
//! [`SIT_AFTER_ANSWER`] after the answer (started then if there was no
//! early media); in that window only a SIT counts — speech is the
//! callee's, and belongs to the script and AMD. A party a script dialed
//! stops at the answer: its caller hears it from then on.

use std::time::{Duration, Instant};

use super::{Output, Registry};
use crate::call::id::LegId;
use crate::call::leg::Direction;
use crate::media::sit::EarlyMedia;

/// How long after the answer a SIT still refines the outcome: a SIT
/// takes ~1 s and carriers play it at once.
pub const SIT_AFTER_ANSWER: Duration = Duration::from_secs(3);

/// What an outbound leg's early media said so far.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct EarlyHeard {
    listening: bool,
    heard: Option<EarlyMedia>,
    /// Answered: the classifier stops then, and only a SIT counts.
    answered_until: Option<Instant>,
}

impl Registry {
    /// The leg reported progress with early media: classify it, once.
    pub(super) fn early_media_started(&mut self, leg: LegId) {
        let outbound = self
            .legs
            .get(&leg)
            .is_some_and(|l| l.direction == Direction::Outbound && l.answered_at.is_none());
        if !outbound {
            return;
        }
        let e = self.early.entry(leg).or_default();
        if !e.listening {
            e.listening = true;
            self.outputs
                .push_back(Output::ClassifyEarlyMedia { leg, on: true });
        }
    }

    /// The leg answered: listen for a SIT for [`SIT_AFTER_ANSWER`] more
    /// if `sit_window`, else stop (the verdict so far is kept).
    pub(super) fn early_media_answered(&mut self, now: Instant, leg: LegId, sit_window: bool) {
        if !sit_window {
            if let Some(e) = self.early.get_mut(&leg).filter(|e| e.listening) {
                e.listening = false;
                self.outputs
                    .push_back(Output::ClassifyEarlyMedia { leg, on: false });
            }
            return;
        }
        let e = self.early.entry(leg).or_default();
        e.answered_until = Some(now + SIT_AFTER_ANSWER);
        if !e.listening {
            e.listening = true;
            self.outputs
                .push_back(Output::ClassifyEarlyMedia { leg, on: true });
        }
    }

    /// Stops the classifiers whose window after the answer is over.
    pub(super) fn early_timeout(&mut self, now: Instant) {
        let due: Vec<LegId> = self
            .early
            .iter()
            .filter(|(_, e)| e.listening && e.answered_until.is_some_and(|t| t <= now))
            .map(|(leg, _)| *leg)
            .collect();
        for leg in due {
            if let Some(e) = self.early.get_mut(&leg) {
                e.listening = false;
            }
            if self.legs.contains_key(&leg) {
                self.outputs
                    .push_back(Output::ClassifyEarlyMedia { leg, on: false });
            }
        }
    }

    /// When a window after an answer ends.
    pub(super) fn early_next_timeout(&self) -> Option<Instant> {
        self.early
            .values()
            .filter(|e| e.listening)
            .filter_map(|e| e.answered_until)
            .min()
    }

    /// The classifier on `leg`'s early media heard `heard`; the most
    /// telling thing heard is kept (a SIT over speech over busy over
    /// ringback). After the answer only a SIT counts, and nothing once
    /// the window is over.
    pub fn early_media_heard(&mut self, leg: LegId, heard: EarlyMedia) {
        let Some(e) = self.early.get_mut(&leg).filter(|e| e.listening) else {
            return;
        };
        if e.answered_until.is_some() && !matches!(heard, EarlyMedia::Sit(_)) {
            return;
        }
        tracing::info!(leg = %leg, heard = %heard.as_str(), "early media classified");
        if e.heard.is_none_or(|h| heard.rank() >= h.rank()) {
            e.heard = Some(heard);
        }
    }

    /// What the leg's early media said so far.
    pub(super) fn early_heard(&self, leg: LegId) -> Option<EarlyMedia> {
        self.early.get(&leg).and_then(|e| e.heard)
    }

    /// What the leg's early media said, forgotten with the leg.
    pub(super) fn early_verdict(&mut self, leg: LegId) -> Option<EarlyMedia> {
        self.early.remove(&leg).and_then(|e| e.heard)
    }
}
