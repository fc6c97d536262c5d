//! `dial(target, #{ amd: true })`: when the dialed party answers, its
//! audio goes through answering-machine detection before the two are
//! joined (the caller keeps hearing ringback meanwhile), and the verdict
//! comes back in the dial's result (`answered_by`), so a script can
//! leave a voicemail or connect a person. The detector's time is bounded
//! by its own total analysis time (`media::amd`), so the join always
//! comes; a party that hangs up first simply ends the dial.

use std::time::Instant;

use super::{Output, Registry};
use crate::call::id::LegId;

impl Registry {
    /// The dialed `leg` is to be analysed when it answers.
    pub(super) fn dial_amd_wanted(&mut self, leg: LegId) {
        self.dial_amd.insert(leg, None);
    }

    /// The dialed `leg` answered: true when AMD runs first (the join
    /// waits for its verdict).
    pub(super) fn dial_amd_started(&mut self, leg: LegId) -> bool {
        if !matches!(self.dial_amd.get(&leg), Some(None)) {
            return false;
        }
        self.outputs.push_back(Output::DetectMachine { leg });
        true
    }

    /// AMD on a dialed party decided: `answered_by` goes in the dial's
    /// result and the caller and the party are joined.
    pub fn dial_amd_verdict(&mut self, now: Instant, leg: LegId, answered_by: &str) {
        let Some(slot) = self.dial_amd.get_mut(&leg).filter(|v| v.is_none()) else {
            return;
        };
        *slot = Some(answered_by.to_string());
        if self.leg_live(leg) {
            self.dialed_join(now, leg);
        }
    }

    /// The verdict for the dial's result, forgotten with the leg.
    pub(super) fn dial_amd_result(&mut self, leg: LegId) -> Option<String> {
        self.dial_amd.remove(&leg).flatten()
    }
}
