//! `[[span]]`: the ISDN PRI spans of the box (issue 12) — each one
//! D-channel and its B-channels, in a Q.931 variant, law and side, over
//! sockets or a DAHDI card. Checked at load (a DAHDI path's form too),
//! every error with its key and line; nothing is opened here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::trunk::Err;
use super::ConfigError;
use crate::codec::Law;
use crate::pri::dahdi::DahdiPath;
use crate::pri::q931::{Side, Variant};

/// How a span's D- and B-channels reach rivr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanTransport {
    /// `SOCK_SEQPACKET` sockets (`pri::socket`): a D-channel socket and one
    /// per B-channel.
    Socket,
    /// A card's DAHDI channels (`pri::dahdi`): the D-channel's device and
    /// one per B-channel (docs/pri.md, "DAHDI").
    Dahdi,
}

/// One PRI span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanConfig {
    pub name: String,
    pub variant: Variant,
    /// The G.711 law SETUPs offer and the B-channels carry.
    pub law: Law,
    pub side: Side,
    pub transport: SpanTransport,
    /// The D-channel (relative paths resolved against the config's dir);
    /// on DAHDI a channel node, or `/dev/dahdi/channel#16`.
    pub dchannel: PathBuf,
    /// The B-channel path pattern as written: `{n}` stands for the
    /// timeslot. Use [`SpanConfig::bchannel_path`].
    pub bchannels: String,
    /// The B-channels in service, ascending (E1 1–15, 17–31; T1 1–23).
    pub channels: Vec<u8>,
    /// The config file's directory, for a relative `bchannels`.
    base_dir: PathBuf,
}

impl SpanConfig {
    /// The path of timeslot `ts`'s B-channel. On DAHDI `{n}` is three
    /// digits wide, as DAHDI names its channel nodes
    /// (`/dev/dahdi/chan/001/{n}` → `/dev/dahdi/chan/001/017`).
    pub fn bchannel_path(&self, ts: u8) -> PathBuf {
        let n = match self.transport {
            SpanTransport::Socket => ts.to_string(),
            SpanTransport::Dahdi => format!("{ts:03}"),
        };
        self.base_dir.join(self.bchannels.replace("{n}", &n))
    }

    /// `bchannels` resolved against the config's dir, `{n}` left in.
    pub fn bchannels_resolved(&self) -> PathBuf {
        self.base_dir.join(&self.bchannels)
    }

    /// `channels` as ranges: `"1-15,17-31"`.
    pub fn channels_text(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut i = 0;
        while i < self.channels.len() {
            let start = self.channels[i];
            let mut end = start;
            while i + 1 < self.channels.len() && self.channels[i + 1] == end + 1 {
                i += 1;
                end = self.channels[i];
            }
            parts.push(if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            });
            i += 1;
        }
        parts.join(",")
    }

    /// The Q.931 call control setup of this span: its side, variant, law
    /// and B-channels, the usual timers and the side's hunting order.
    pub fn q931(&self) -> crate::pri::q931::Config {
        let mut c = crate::pri::q931::Config::new(self.side, self.variant);
        c.law = self.law;
        c.b_channels = self.channels.clone();
        c
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSpan {
    name: Spanned<String>,
    variant: Option<Spanned<String>>,
    law: Option<Spanned<String>>,
    side: Option<Spanned<String>>,
    transport: Option<Spanned<String>>,
    dchannel: Option<Spanned<String>>,
    bchannels: Option<Spanned<String>>,
    channels: Option<Spanned<RawChannels>>,
}

/// `channels = "1-15,17-31"` or `channels = [1, 2, 3]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawChannels {
    Ranges(String),
    List(Vec<i64>),
}

/// A trunk or span name: letters, digits, `-`, `_`, `.`.
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// `"1-15,17-31"` → the numbers, in the order written; `None` if malformed.
fn parse_ranges(s: &str) -> Option<Vec<i64>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (i64, i64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if a > b || b - a > 255 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

fn channels(
    raw: &Option<Spanned<RawChannels>>,
    variant: Variant,
    err: Err<'_>,
) -> Result<Vec<u8>, ConfigError> {
    let all = || (1..=31).filter(|n| variant.is_b_channel(*n)).collect();
    let Some(raw) = raw else {
        return Ok(all());
    };
    let span = Some(raw.span());
    let numbers = match raw.get_ref() {
        RawChannels::List(l) => l.clone(),
        RawChannels::Ranges(s) => parse_ranges(s).ok_or_else(|| {
            err(
                span.clone(),
                format!("span.channels: {s:?} is not a list like \"1-15,17-31\""),
            )
        })?,
    };
    let which = match variant {
        Variant::Etsi => "an E1 (etsi) B-channel: 1-15, 17-31",
        Variant::Ni2 => "a T1 (ni2) B-channel: 1-23",
    };
    let mut set = BTreeSet::new();
    for n in numbers {
        let ok = u8::try_from(n).is_ok_and(|n| variant.is_b_channel(n));
        if !ok {
            return Err(err(
                span.clone(),
                format!("span.channels: {n} is not {which}"),
            ));
        }
        if !set.insert(n as u8) {
            return Err(err(
                span.clone(),
                format!("span.channels: {n} is listed twice"),
            ));
        }
    }
    if set.is_empty() {
        return Err(err(span, "span.channels: the list is empty".into()));
    }
    Ok(set.into_iter().collect())
}

/// A `key = "word"` with a closed set of words.
fn choice<T: Copy>(
    v: &Option<Spanned<String>>,
    key: &str,
    words: &[(&str, T)],
    default: T,
    err: Err<'_>,
) -> Result<T, ConfigError> {
    let Some(v) = v else { return Ok(default) };
    words
        .iter()
        .find(|(w, _)| *w == v.get_ref())
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<String> = words.iter().map(|(w, _)| format!("{w:?}")).collect();
            err(
                Some(v.span()),
                format!(
                    "span.{key}: {:?} is not one of {}",
                    v.get_ref(),
                    names.join(", ")
                ),
            )
        })
}

pub(super) fn parse_spans(
    raw: Vec<RawSpan>,
    base_dir: &Path,
    err: Err<'_>,
) -> Result<Vec<SpanConfig>, ConfigError> {
    let mut out: Vec<SpanConfig> = Vec::new();
    for s in raw {
        let name = s.name.get_ref().trim().to_string();
        if !valid_name(&name) {
            return Err(err(
                Some(s.name.span()),
                format!("span.name: {name:?} must be letters, digits, '-', '_' or '.'"),
            ));
        }
        if out.iter().any(|o| o.name == name) {
            return Err(err(
                Some(s.name.span()),
                format!("span.name: {name:?} is defined twice"),
            ));
        }
        let variant = match &s.variant {
            Some(_) => choice(
                &s.variant,
                "variant",
                &[("etsi", Variant::Etsi), ("ni2", Variant::Ni2)],
                Variant::Etsi,
                err,
            )?,
            None => {
                return Err(err(
                    Some(s.name.span()),
                    format!("span {name:?}: needs `variant` (\"etsi\" for E1, \"ni2\" for T1)"),
                ))
            }
        };
        let law = choice(
            &s.law,
            "law",
            &[("alaw", Law::Alaw), ("ulaw", Law::Ulaw)],
            variant.default_law(),
            err,
        )?;
        let side = choice(
            &s.side,
            "side",
            &[("user", Side::User), ("network", Side::Network)],
            Side::User,
            err,
        )?;
        let transport = choice(
            &s.transport,
            "transport",
            &[
                ("socket", SpanTransport::Socket),
                ("dahdi", SpanTransport::Dahdi),
            ],
            SpanTransport::Socket,
            err,
        )?;
        let dchannel = match &s.dchannel {
            Some(d) if !d.get_ref().trim().is_empty() => {
                let path = base_dir.join(d.get_ref());
                if transport == SpanTransport::Dahdi {
                    if let Err(e) = DahdiPath::parse(&path) {
                        return Err(err(Some(d.span()), format!("span.dchannel: {e}")));
                    }
                }
                path
            }
            Some(d) => return Err(err(Some(d.span()), "span.dchannel: is empty".into())),
            None => {
                return Err(err(
                    Some(s.name.span()),
                    format!("span {name:?}: needs `dchannel`, the D-channel's path"),
                ))
            }
        };
        let bchannels = match &s.bchannels {
            Some(b) if !b.get_ref().contains("{n}") => {
                let like = match transport {
                    SpanTransport::Socket => "/run/pri/e1a/b{n}",
                    SpanTransport::Dahdi => "/dev/dahdi/chan/001/{n}",
                };
                return Err(err(
                    Some(b.span()),
                    format!(
                        "span.bchannels: {:?} has no {{n}} for the timeslot (like {like:?})",
                        b.get_ref()
                    ),
                ));
            }
            Some(b)
                if transport == SpanTransport::Dahdi
                    && DahdiPath::parse(&base_dir.join(b.get_ref().replace("{n}", "001")))
                        .is_err() =>
            {
                return Err(err(
                    Some(b.span()),
                    format!(
                        "span.bchannels: {:?}: after '#' comes {{n}} (like \"/dev/dahdi/channel#{{n}}\")",
                        b.get_ref()
                    ),
                ));
            }
            Some(b) if b.get_ref().trim().is_empty() => {
                return Err(err(Some(b.span()), "span.bchannels: is empty".into()))
            }
            Some(b) => b.get_ref().clone(),
            None => {
                return Err(err(
                    Some(s.name.span()),
                    format!(
                        "span {name:?}: needs `bchannels`, the B-channels' path with {{n}} for the timeslot"
                    ),
                ))
            }
        };
        let channels = channels(&s.channels, variant, err)?;
        out.push(SpanConfig {
            name,
            variant,
            law,
            side,
            transport,
            dchannel,
            bchannels,
            channels,
            base_dir: base_dir.to_path_buf(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_ranges("1-3, 5 ,7-7"), Some(vec![1, 2, 3, 5, 7]));
        for bad in ["", "1-", "3-1", "a", "1,,2", "0-1000"] {
            assert_eq!(parse_ranges(bad), None, "{bad:?}");
        }
    }
}
