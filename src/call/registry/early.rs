//! Early media on outbound legs: once a leg's far end sends audio before
//! answering (183 with SDP), the glue is asked to classify it (SIT,
//! ringback, busy, an announcement); what is heard comes back here, and
//! the most telling verdict refines the leg's outcome in its CDR
//! (`call::outcome_refine`). The classifier stops at the answer: from
//! then on what the leg hears belongs to the script (and to AMD).

use super::{Output, Registry};
use crate::call::id::LegId;
use crate::call::leg::Direction;
use crate::media::sit::EarlyMedia;

/// What an outbound leg's early media said so far.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct EarlyHeard {
    listening: bool,
    heard: Option<EarlyMedia>,
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

    /// The leg answered: stop classifying (its verdict so far is kept).
    pub(super) fn early_media_answered(&mut self, leg: LegId) {
        if let Some(e) = self.early.get_mut(&leg).filter(|e| e.listening) {
            e.listening = false;
            self.outputs
                .push_back(Output::ClassifyEarlyMedia { leg, on: false });
        }
    }

    /// The classifier on `leg`'s early media heard `heard`; the most
    /// telling thing heard is kept (a SIT over speech over busy over
    /// ringback). Ignored once the leg answered or ended.
    pub fn early_media_heard(&mut self, leg: LegId, heard: EarlyMedia) {
        let Some(e) = self.early.get_mut(&leg).filter(|e| e.listening) else {
            return;
        };
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
