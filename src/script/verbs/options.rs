//! A verb's options map (`#{ timeout: 5000, trunk: "a" }`), read the same
//! way by every verb: an unknown key or a value of the wrong type is an
//! error naming the verb, the key and what was expected.

use std::time::Duration;

use rhai::{Dynamic, Map};

use super::VerbError;

/// Longest duration any option takes, in ms (one hour).
pub const MAX_MS: i64 = 3_600_000;

/// The options of one call to `verb`, checked against the keys it knows.
pub struct VerbOptions<'a> {
    verb: &'static str,
    map: &'a Map,
}

impl<'a> VerbOptions<'a> {
    /// Refuses a key not in `known`.
    pub fn new(verb: &'static str, map: &'a Map, known: &[&str]) -> Result<Self, VerbError> {
        if let Some(k) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(VerbError::BadArgument(format!(
                "{verb}: unknown option {k:?} ({})",
                known.join(", ")
            )));
        }
        Ok(VerbOptions { verb, map })
    }

    /// The error for `key`: `"{verb}: {key}: {what}"`.
    pub fn bad(&self, key: &str, what: &str) -> VerbError {
        VerbError::BadArgument(format!("{}: {key}: {what}", self.verb))
    }

    pub fn get(&self, key: &str) -> Option<&'a Dynamic> {
        self.map.get(key)
    }

    /// A string option.
    pub fn text(&self, key: &str) -> Result<Option<String>, VerbError> {
        self.get(key)
            .map(|v| {
                v.clone()
                    .try_cast::<rhai::ImmutableString>()
                    .map(|s| s.to_string())
                    .ok_or_else(|| self.bad(key, "must be a string"))
            })
            .transpose()
    }

    /// A true/false option.
    pub fn flag(&self, key: &str) -> Result<Option<bool>, VerbError> {
        self.get(key)
            .map(|v| {
                v.as_bool()
                    .map_err(|_| self.bad(key, "must be true or false"))
            })
            .transpose()
    }

    /// A whole number in `range`.
    pub fn int(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, VerbError> {
        self.get(key)
            .map(|v| {
                v.as_int()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        self.bad(
                            key,
                            &format!("expected {} to {}", range.start(), range.end()),
                        )
                    })
            })
            .transpose()
    }

    /// Milliseconds in `range` (at most an hour).
    pub fn ms(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<Duration>, VerbError> {
        self.get(key)
            .map(|v| {
                v.as_int()
                    .ok()
                    .filter(|n| range.contains(n))
                    .and_then(|n| u64::try_from(n).ok())
                    .map(Duration::from_millis)
                    .ok_or_else(|| {
                        self.bad(
                            key,
                            &format!(
                                "expected milliseconds ({} to {})",
                                range.start(),
                                range.end()
                            ),
                        )
                    })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Dynamic)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect()
    }

    fn err<T>(r: Result<T, VerbError>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_verb_and_key() {
        let m = map(&[("speed", 1.into())]);
        assert_eq!(
            err(VerbOptions::new("say", &m, &["rate", "voice"])),
            "say: unknown option \"speed\" (rate, voice)"
        );
        let m = map(&[
            ("trunk", 5.into()),
            ("beep", "yes".into()),
            ("max_digits", 500.into()),
            ("timeout", (-1).into()),
        ]);
        let o = VerbOptions::new("x", &m, &["trunk", "beep", "max_digits", "timeout"]).unwrap();
        assert_eq!(err(o.text("trunk")), "x: trunk: must be a string");
        assert_eq!(err(o.flag("beep")), "x: beep: must be true or false");
        assert_eq!(
            err(o.int("max_digits", 1..=128)),
            "x: max_digits: expected 1 to 128"
        );
        assert_eq!(
            err(o.ms("timeout", 0..=MAX_MS)),
            "x: timeout: expected milliseconds (0 to 3600000)"
        );
    }

    #[test]
    fn present_values_are_read_and_absent_ones_are_none() {
        let m = map(&[
            ("trunk", "a".into()),
            ("beep", true.into()),
            ("timeout", 250.into()),
        ]);
        let o = VerbOptions::new("x", &m, &["trunk", "beep", "timeout", "name"]).unwrap();
        assert_eq!(o.text("trunk").unwrap().as_deref(), Some("a"));
        assert_eq!(o.flag("beep").unwrap(), Some(true));
        assert_eq!(
            o.ms("timeout", 0..=MAX_MS).unwrap(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(o.text("name").unwrap(), None);
    }
}
