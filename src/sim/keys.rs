//! What the simulated caller presses, from `--digits` (and a test case's
//! `digits`): either `"KEYS"`, pressed one at a time as the flow asks, or
//! `"SECONDS:KEYS,…"`, pressed at those times on the call's clock.

use std::collections::VecDeque;
use std::time::Duration;

/// Keys of one timed group (`"12.5:123#"`) are pressed this far apart.
pub const GROUP_KEY_GAP: Duration = Duration::from_millis(200);
/// An untimed key is pressed this long after the caller last heard a
/// prompt end (or pressed a key), once nothing is playing.
pub const REACTION: Duration = Duration::from_millis(1000);
/// Latest time a key may be given for (a day).
const MAX_SECONDS: f64 = 86_400.0;

/// The caller's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPlan {
    /// Pressed at these times (sorted).
    pub timed: VecDeque<(Duration, char)>,
    /// Pressed one by one when the flow waits for them.
    pub untimed: VecDeque<char>,
}

impl KeyPlan {
    /// Parses `"KEYS"` or `"SECONDS:KEYS,SECONDS:KEYS…"`. Keys are 0-9 * #
    /// A-D; spaces (and commas between untimed keys) are ignored.
    pub fn parse(s: &str) -> Result<KeyPlan, String> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let mut plan = KeyPlan::default();
        if !s.contains(':') {
            for c in s.chars().filter(|&c| c != ',') {
                plan.untimed.push_back(key(c, &s)?);
            }
            return Ok(plan);
        }
        let mut timed = Vec::new();
        for item in s.split(',').filter(|i| !i.is_empty()) {
            let Some((at, keys)) = item.split_once(':') else {
                return Err(format!(
                    "digits {item:?}: expected SECONDS:KEYS (every item is timed once one is)"
                ));
            };
            let secs: f64 = at
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && (0.0..=MAX_SECONDS).contains(v))
                .ok_or_else(|| format!("digits {item:?}: {at:?} is not seconds (0 to 86400)"))?;
            if keys.is_empty() {
                return Err(format!("digits {item:?}: no keys after the colon"));
            }
            let start = Duration::from_millis((secs * 1000.0).round() as u64);
            for (i, c) in keys.chars().enumerate() {
                let at = start + GROUP_KEY_GAP * u32::try_from(i).unwrap_or(u32::MAX);
                timed.push((at, key(c, item)?));
            }
        }
        // Stable: keys given for the same instant keep their order.
        timed.sort_by_key(|(at, _)| *at);
        plan.timed = timed.into();
        Ok(plan)
    }

    pub fn is_empty(&self) -> bool {
        self.timed.is_empty() && self.untimed.is_empty()
    }

    /// The keys not pressed, in order.
    pub fn remaining(&self) -> String {
        self.timed
            .iter()
            .map(|(_, k)| *k)
            .chain(self.untimed.iter().copied())
            .collect()
    }
}

fn key(c: char, item: &str) -> Result<char, String> {
    let c = c.to_ascii_uppercase();
    if c.is_ascii_digit() || "*#ABCD".contains(c) {
        Ok(c)
    } else {
        Err(format!("digits {item:?}: {c:?} is not a key (0-9 * # A-D)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn untimed_and_timed_forms() {
        let p = KeyPlan::parse("2 1,#").unwrap();
        assert_eq!(p.untimed, VecDeque::from(vec!['2', '1', '#']));
        assert!(p.timed.is_empty());
        let p = KeyPlan::parse("5:2, 12.5:1a,3:9").unwrap();
        assert_eq!(
            p.timed,
            VecDeque::from(vec![
                (ms(3000), '9'),
                (ms(5000), '2'),
                (ms(12_500), '1'),
                (ms(12_700), 'A')
            ])
        );
        assert_eq!(p.remaining(), "921A");
        assert!(KeyPlan::parse("").unwrap().is_empty());
    }

    #[test]
    fn bad_input_is_refused_with_the_item() {
        for (s, says) in [
            ("12x", "'X' is not a key"),
            ("5:2,7", "expected SECONDS:KEYS"),
            ("-1:2", "is not seconds"),
            ("nan:2", "is not seconds"),
            ("4:", "no keys"),
        ] {
            let e = KeyPlan::parse(s).unwrap_err();
            assert!(e.contains(says), "{s}: {e}");
        }
    }
}
