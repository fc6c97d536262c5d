//! `[cdr]`: where call detail records go — the JSON-lines file (on by
//! default, as before the store kept them) and the store's `cdrs` table
//! (on by default). Errors name the key and its line.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::trunk::Err;
use super::ConfigError;

/// Where CDRs are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdrConfig {
    /// The JSON-lines file, one object per leg; `None` with `file = false`.
    pub file: Option<PathBuf>,
    /// One row per leg in the store (`rivr cdr list`, the HTTP API).
    pub store: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCdr {
    path: Option<Spanned<String>>,
    file: Option<Spanned<bool>>,
    store: Option<Spanned<bool>>,
}

pub(super) fn parse_cdr(
    raw: Option<RawCdr>,
    base_dir: &Path,
    err: Err<'_>,
) -> Result<CdrConfig, ConfigError> {
    let raw = raw.unwrap_or_default();
    let file_on = raw.file.as_ref().is_none_or(|f| *f.get_ref());
    let store = raw.store.as_ref().is_none_or(|s| *s.get_ref());
    if let (false, Some(p)) = (file_on, &raw.path) {
        return Err(err(
            Some(p.span()),
            "cdr.path: set, but cdr.file = false writes no file (remove one of them)".into(),
        ));
    }
    if let (false, false, Some(s)) = (file_on, store, &raw.store) {
        return Err(err(
            Some(s.span()),
            "cdr.store: false with cdr.file = false would keep no CDR at all".into(),
        ));
    }
    let file = file_on.then(|| {
        base_dir.join(
            raw.path
                .map(Spanned::into_inner)
                .unwrap_or_else(|| "var/cdr.jsonl".into()),
        )
    });
    Ok(CdrConfig { file, store })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::{Path, PathBuf};

    fn parse(s: &str) -> Result<Config, String> {
        Config::parse(s, "rivr.toml", Path::new("/etc/rivr")).map_err(|e| e.to_string())
    }

    #[test]
    fn the_file_and_the_store_are_both_on_by_default() {
        let c = parse("").unwrap().cdr;
        assert_eq!(c.file, Some(PathBuf::from("/etc/rivr/var/cdr.jsonl")));
        assert!(c.store);
        let c = parse("[cdr]\npath = \"cdr/x.jsonl\"\nstore = false\n")
            .unwrap()
            .cdr;
        assert_eq!(c.file, Some(PathBuf::from("/etc/rivr/cdr/x.jsonl")));
        assert!(!c.store);
        let c = parse("[cdr]\nfile = false\n").unwrap().cdr;
        assert_eq!((c.file, c.store), (None, true));
    }

    #[test]
    fn errors_name_the_key_and_line() {
        for (text, want) in [
            (
                "[cdr]\n\nfile = false\npath = \"a\"\n",
                "rivr.toml:4: cdr.path",
            ),
            (
                "[cdr]\nfile = false\nstore = false\n",
                "rivr.toml:3: cdr.store",
            ),
            ("[cdr]\nfile = \"no\"\n", "rivr.toml:2:"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
        let e = parse("[cdr]\npath = \"a\"\nstorre = true\n").unwrap_err();
        assert!(e.starts_with("rivr.toml:3:") && e.contains("storre"), "{e}");
    }
}
