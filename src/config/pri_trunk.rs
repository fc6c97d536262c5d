//! `[[trunk]] kind = "pri"`: a trunk made of `[[span]]`s (issue 12). The
//! table is the SIP trunk's (`trunk::RawTrunk`); this checks the keys a PRI
//! trunk has and refuses the SIP-only ones by name.

use toml::Spanned;

use super::span::SpanConfig;
use super::trunk::{ranged, Err, RawTrunk};
use super::ConfigError;
use crate::pri::q931::Side;

/// The order in which a PRI trunk picks a free B-channel across its spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hunt {
    /// The first span in `spans`, its lowest free timeslot first.
    Lowest,
    /// The last span in `spans`, its highest free timeslot first.
    Highest,
    /// The next free channel after the last one picked, span after span.
    RoundRobin,
}

/// One PRI trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriTrunkConfig {
    pub name: String,
    /// Its spans' names, in hunting order; each is a `[[span]]` of the
    /// file, and no span is on two trunks.
    pub spans: Vec<String>,
    pub hunt: Hunt,
    /// The default calling party number (digits).
    pub caller_id: Option<String>,
    /// Calls up or ringing on the trunk at once; at most its B-channels.
    pub max_channels: u32,
    pub cps: u32,
    pub ring_timeout_s: u32,
}

/// Checks one `kind = "pri"` table; `taken` holds the spans earlier PRI
/// trunks named, and gets this one's.
pub(super) fn parse_pri_trunk(
    t: &RawTrunk,
    name: String,
    spans: &[SpanConfig],
    taken: &mut Vec<(String, String)>,
    err: Err<'_>,
) -> Result<PriTrunkConfig, ConfigError> {
    if let Some((key, span)) = t.sip_only_keys().into_iter().next() {
        return Err(err(
            Some(span),
            format!("trunk.{key}: a SIP trunk's key; trunk {name:?} is kind = \"pri\""),
        ));
    }
    let Some(list) = &t.spans else {
        return Err(err(
            Some(t.name.span()),
            format!("trunk {name:?}: a PRI trunk needs `spans`, the [[span]] names it uses"),
        ));
    };
    if list.get_ref().is_empty() {
        return Err(err(
            Some(list.span()),
            "trunk.spans: the list is empty".into(),
        ));
    }
    let mut names: Vec<String> = Vec::new();
    let mut channel_count = 0u32;
    let mut sides = Vec::new();
    for s in list.get_ref() {
        let sname = s.get_ref().as_str();
        let Some(cfg) = spans.iter().find(|c| c.name == sname) else {
            return Err(err(
                Some(s.span()),
                format!("trunk.spans: {sname:?} is not a [[span]] of this file"),
            ));
        };
        if names.iter().any(|n| n == sname) {
            return Err(err(
                Some(s.span()),
                format!("trunk.spans: {sname:?} is listed twice"),
            ));
        }
        if let Some((_, other)) = taken.iter().find(|(s, _)| s == sname) {
            return Err(err(
                Some(s.span()),
                format!("trunk.spans: span {sname:?} is already on trunk {other:?}"),
            ));
        }
        names.push(sname.to_string());
        channel_count += cfg.channels.len() as u32;
        sides.push(cfg.side);
    }
    taken.extend(names.iter().map(|s| (s.clone(), name.clone())));
    // The side's usual order, as `q931::Hunt::default_for`: a user side
    // hunts from the top, the network from the bottom, so that the two
    // ends' picks meet (glare) only when the trunk is nearly full.
    let default_hunt = if sides.iter().all(|s| *s == Side::User) {
        Hunt::Highest
    } else {
        Hunt::Lowest
    };
    let hunt = match &t.hunt {
        None => default_hunt,
        Some(h) => match h.get_ref().as_str() {
            "lowest" => Hunt::Lowest,
            "highest" => Hunt::Highest,
            "round-robin" => Hunt::RoundRobin,
            other => {
                return Err(err(
                    Some(h.span()),
                    format!(
                    "trunk.hunt: {other:?} is not one of \"lowest\", \"highest\", \"round-robin\""
                ),
                ))
            }
        },
    };
    if let Some(c) = &t.caller_id {
        let ok = (1..=20).contains(&c.get_ref().len())
            && c.get_ref().bytes().all(|b| b.is_ascii_digit());
        if !ok {
            return Err(err(
                Some(c.span()),
                format!(
                    "trunk.caller_id: {:?} must be a number: 1 to 20 digits",
                    c.get_ref()
                ),
            ));
        }
    }
    let num = |v: &Option<Spanned<u64>>, key: &str, min: u64, max: u64, default: u64| {
        ranged(v, key, min, max, default, err)
    };
    let max_channels = match &t.max_channels {
        Some(v) if *v.get_ref() > channel_count.into() => {
            return Err(err(
                Some(v.span()),
                format!(
                    "trunk.max_channels: {} is more than the {channel_count} B-channels of the trunk's spans",
                    v.get_ref()
                ),
            ))
        }
        v => num(v, "max_channels", 1, channel_count.into(), channel_count.into())?,
    };
    Ok(PriTrunkConfig {
        name,
        spans: names,
        hunt,
        caller_id: t.caller_id.as_ref().map(|c| c.get_ref().clone()),
        max_channels,
        cps: num(&t.cps, "cps", 1, 10_000, 10)?,
        ring_timeout_s: num(&t.ring_timeout, "ring_timeout", 1, 600, 45)?,
    })
}
