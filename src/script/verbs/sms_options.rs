//! `send_sms(to, text, #{ from, at, valid_for, via })`: the options map of
//! a script's SMS, read into [`SendOptions`] (errors name the key).

use rhai::Map;

use super::options::VerbOptions;
use super::VerbError;
use crate::sms::options::{self, SendOptions};

/// Reads `#{ from: "CLINIC", at: "2026-12-05T09:00:00+01:00",
/// valid_for: "2h" (or seconds), via: "route" }`.
pub fn read(map: &Map) -> Result<SendOptions, VerbError> {
    let o = VerbOptions::new("send_sms", map, &["from", "at", "valid_for", "via"])?;
    let bad = |e: options::OptionError| o.bad(e.name, &e.why);
    let at_ms = o
        .text("at")?
        .map(|t| options::parse_at(&t))
        .transpose()
        .map_err(bad)?;
    let valid_for = match o.get("valid_for") {
        None => None,
        Some(v) => {
            let text = if let Ok(n) = v.as_int() {
                n.to_string()
            } else {
                o.text("valid_for")?.unwrap_or_default()
            };
            Some(options::parse_duration("valid_for", &text).map_err(bad)?)
        }
    };
    Ok(SendOptions {
        from: o.text("from")?,
        at_ms,
        valid_for,
        via: o.text("via")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhai::Dynamic;

    fn map(pairs: &[(&str, Dynamic)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect()
    }

    #[test]
    fn options_are_read_and_bad_ones_named() {
        let o = read(&map(&[
            ("from", "CLINIC".into()),
            ("at", "2026-12-05T09:00:00Z".into()),
            ("valid_for", Dynamic::from_int(600)),
        ]))
        .unwrap();
        assert_eq!(o.from.as_deref(), Some("CLINIC"));
        assert_eq!(o.at_ms, Some(1_796_461_200_000));
        assert_eq!(o.valid_for, Some(std::time::Duration::from_secs(600)));
        let e = read(&map(&[("valid_for", "forever".into())])).unwrap_err();
        assert!(format!("{e}").contains("send_sms: valid_for:"), "{e}");
        let e = read(&map(&[("at", "soon".into())])).unwrap_err();
        assert!(format!("{e}").contains("send_sms: at:"), "{e}");
        let e = read(&map(&[("sender", "X".into())])).unwrap_err();
        assert!(format!("{e}").contains("unknown option \"sender\""), "{e}");
    }
}
