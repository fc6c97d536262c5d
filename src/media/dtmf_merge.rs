//! One key press, one digit: a phone may send the same press as RFC 4733
//! events *and* as in-band tones (or a carrier may regenerate one from the
//! other). This merges the two sources of one call: a digit from one source
//! is dropped when the same digit came from the other source shortly
//! before. Sans-IO: time is passed in.

use std::time::{Duration, Instant};

use crate::media::events::DigitSource;

/// How far apart the two reports of one press may arrive. In-band detection
/// confirms a tone 40–60 ms after its onset, and RFC 4733's first packet
/// leaves with the first 20 ms frame; 300 ms covers both plus network jitter
/// while staying below the ~250 ms press-to-press gap of a fast caller only
/// for presses of the *same* source, which are never merged.
pub const MERGE_WINDOW: Duration = Duration::from_millis(300);

#[derive(Debug, Default)]
pub struct DigitMerge {
    /// The last digit reported, its source and when.
    last: Option<(char, DigitSource, Instant)>,
}

impl DigitMerge {
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns true when this report is a new key press to pass on.
    pub fn accept(&mut self, now: Instant, digit: char, source: DigitSource) -> bool {
        if let Some((d, s, at)) = self.last {
            let recent = now.saturating_duration_since(at) <= MERGE_WINDOW;
            if d == digit && s != source && recent {
                // The other source's copy of a press already reported; keep
                // `last` as it was, so a third copy is not let through either.
                return false;
            }
        }
        self.last = Some((digit, source, now));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn one_press_from_both_sources_is_reported_once() {
        let t0 = Instant::now();
        let mut m = DigitMerge::new();
        assert!(m.accept(t0, '5', DigitSource::Rfc4733));
        assert!(!m.accept(t0 + ms(45), '5', DigitSource::InBand));
        // in-band first (RFC 4733 delayed or regenerated)
        assert!(m.accept(t0 + ms(1000), '7', DigitSource::InBand));
        assert!(!m.accept(t0 + ms(1100), '7', DigitSource::Rfc4733));
    }

    #[test]
    fn repeated_presses_are_all_reported() {
        let t0 = Instant::now();
        let mut m = DigitMerge::new();
        // "11" pressed 200 ms apart, each seen by both sources
        assert!(m.accept(t0, '1', DigitSource::Rfc4733));
        assert!(!m.accept(t0 + ms(50), '1', DigitSource::InBand));
        assert!(m.accept(t0 + ms(200), '1', DigitSource::Rfc4733));
        assert!(!m.accept(t0 + ms(250), '1', DigitSource::InBand));
        // a different digit from the other source is a new press
        assert!(m.accept(t0 + ms(260), '2', DigitSource::InBand));
        // the same digit from the other source long after is a new press
        assert!(m.accept(t0 + ms(900), '2', DigitSource::Rfc4733));
    }
}
