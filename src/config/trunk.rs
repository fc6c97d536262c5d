//! `[[trunk]]`: the carriers rivr places calls through. Checked at load,
//! every error with its key and line; the trunk's host is resolved by the
//! server when it starts, not here.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::pri_trunk::{parse_pri_trunk, PriTrunkConfig};
use super::span::{valid_name, SpanConfig};
use super::ConfigError;
use crate::codec::Codec;
use crate::sip::message::split_host_port;

/// How a trunk's calls travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkTransport {
    Udp,
    Tcp,
}

/// One SIP trunk.
#[derive(Debug, Clone, PartialEq)]
pub struct TrunkConfig {
    pub name: String,
    /// Host (name or IP literal) and port of the trunk (`uri`).
    pub host: String,
    pub port: u16,
    /// Whether `uri` named a port (a host without one may have SRV records).
    pub port_given: bool,
    pub transport: TrunkTransport,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Answer challenges of this realm only.
    pub realm: Option<String>,
    pub register: bool,
    /// `host[:port]` every request goes through (a Route with `lr`).
    pub outbound_proxy: Option<(String, u16)>,
    /// The default caller id (From user).
    pub caller_id: Option<String>,
    /// The From display name.
    pub caller_name: Option<String>,
    /// Send `P-Asserted-Identity` with the caller id.
    pub send_pai: bool,
    /// Send `Privacy: id` (with PAI: a withheld number).
    pub privacy: bool,
    pub max_channels: u32,
    pub cps: u32,
    pub ring_timeout_s: u32,
    /// Offer order.
    pub codecs: Vec<Codec>,
    /// Seconds between OPTIONS keepalives (0: none).
    pub options_interval_s: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrunk {
    pub(super) name: Spanned<String>,
    kind: Option<Spanned<String>>,
    uri: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    realm: Option<Spanned<String>>,
    register: Option<Spanned<bool>>,
    outbound_proxy: Option<Spanned<String>>,
    pub(super) caller_id: Option<Spanned<String>>,
    caller_name: Option<Spanned<String>>,
    send_pai: Option<Spanned<bool>>,
    privacy: Option<Spanned<bool>>,
    pub(super) max_channels: Option<Spanned<u64>>,
    pub(super) cps: Option<Spanned<u64>>,
    pub(super) ring_timeout: Option<Spanned<u64>>,
    codecs: Option<Spanned<Vec<Spanned<String>>>>,
    options_interval: Option<Spanned<u64>>,
    /// PRI trunks: the `[[span]]`s, in hunting order.
    pub(super) spans: Option<Spanned<Vec<Spanned<String>>>>,
    /// PRI trunks: `lowest`, `highest`, `round-robin`.
    pub(super) hunt: Option<Spanned<String>>,
}

impl RawTrunk {
    /// The keys only a SIP trunk has that this table sets, with their
    /// places, first in the file first.
    pub(super) fn sip_only_keys(&self) -> Vec<(&'static str, Range<usize>)> {
        fn at<T>(v: &Option<Spanned<T>>) -> Option<Range<usize>> {
            v.as_ref().map(|v| v.span())
        }
        let mut keys: Vec<(&'static str, Range<usize>)> = [
            ("uri", at(&self.uri)),
            ("username", at(&self.username)),
            ("password", at(&self.password)),
            ("realm", at(&self.realm)),
            ("register", at(&self.register)),
            ("outbound_proxy", at(&self.outbound_proxy)),
            ("caller_name", at(&self.caller_name)),
            ("send_pai", at(&self.send_pai)),
            ("privacy", at(&self.privacy)),
            ("codecs", at(&self.codecs)),
            ("options_interval", at(&self.options_interval)),
        ]
        .into_iter()
        .filter_map(|(k, s)| Some((k, s?)))
        .collect();
        keys.sort_by_key(|(_, s)| s.start);
        keys
    }
}

pub(super) type Err<'a> = &'a dyn Fn(Option<Range<usize>>, String) -> ConfigError;

/// A trunk's number `key` (`trunk.KEY`), `default` when absent, else
/// within `min..=max`; an error names the key and its place.
pub(super) fn ranged(
    v: &Option<Spanned<u64>>,
    key: &str,
    min: u64,
    max: u64,
    default: u64,
    err: Err<'_>,
) -> Result<u32, ConfigError> {
    match v {
        None => Ok(u32::try_from(default).unwrap_or(u32::MAX)),
        Some(v) if (min..=max).contains(v.get_ref()) => {
            Ok(u32::try_from(*v.get_ref()).unwrap_or(u32::MAX))
        }
        Some(v) => Err(err(
            Some(v.span()),
            format!(
                "trunk.{key}: {} is out of range ({min} to {max})",
                v.get_ref()
            ),
        )),
    }
}

/// `sip:host[:port][;transport=tcp]` → (host, port, port given, transport).
fn parse_uri(uri: &str) -> Option<(String, u16, bool, TrunkTransport)> {
    let rest = uri.strip_prefix("sip:")?;
    let (hostport, params) = match rest.split_once(';') {
        Some((h, p)) => (h, p),
        None => (rest, ""),
    };
    // A user part in a trunk URI is not used.
    let hostport = hostport.rsplit('@').next()?;
    let (host, port) = split_host_port(hostport)?;
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let mut transport = TrunkTransport::Udp;
    for p in params.split(';').filter(|p| !p.is_empty()) {
        match p.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("transport") => {
                transport = match v.to_ascii_lowercase().as_str() {
                    "udp" => TrunkTransport::Udp,
                    "tcp" => TrunkTransport::Tcp,
                    _ => return None,
                }
            }
            _ => {}
        }
    }
    Some((host, port.unwrap_or(5060), port.is_some(), transport))
}

fn codec_list(names: &[Spanned<String>], err: Err<'_>) -> Result<Vec<Codec>, ConfigError> {
    let mut codecs = Vec::new();
    for n in names {
        let c = match n.get_ref().to_ascii_lowercase().as_str() {
            "pcmu" => Codec::Pcmu,
            "pcma" => Codec::Pcma,
            "opus" => Codec::Opus,
            other => {
                return Err(err(
                    Some(n.span()),
                    format!(
                        "trunk.codecs: {other:?} is not a codec rivr speaks (pcmu, pcma, opus)"
                    ),
                ))
            }
        };
        if !codecs.contains(&c) {
            codecs.push(c);
        }
    }
    if codecs.is_empty() {
        return Err(err(None, "trunk.codecs: the list is empty".into()));
    }
    Ok(codecs)
}

/// The SIP trunks and the PRI trunks, in the file's order within each
/// kind; names are unique across both.
pub(super) fn parse_trunks(
    raw: Vec<RawTrunk>,
    default_codecs: &[Codec],
    spans: &[SpanConfig],
    err: Err<'_>,
) -> Result<(Vec<TrunkConfig>, Vec<PriTrunkConfig>), ConfigError> {
    let mut out: Vec<TrunkConfig> = Vec::new();
    let mut pri: Vec<PriTrunkConfig> = Vec::new();
    // (span, trunk) of the spans PRI trunks have taken.
    let mut taken: Vec<(String, String)> = Vec::new();
    for t in raw {
        let name = t.name.get_ref().trim().to_string();
        if !valid_name(&name) {
            return Err(err(
                Some(t.name.span()),
                format!("trunk.name: {name:?} must be letters, digits, '-', '_' or '.'"),
            ));
        }
        if out.iter().any(|o| o.name == name) || pri.iter().any(|o| o.name == name) {
            return Err(err(
                Some(t.name.span()),
                format!("trunk.name: {name:?} is defined twice"),
            ));
        }
        let kind = t
            .kind
            .as_ref()
            .map(|k| k.get_ref().as_str())
            .unwrap_or("sip");
        match kind {
            "sip" => {}
            "pri" => {
                pri.push(parse_pri_trunk(&t, name, spans, &mut taken, err)?);
                continue;
            }
            other => {
                return Err(err(
                    t.kind.as_ref().map(|k| k.span()),
                    format!("trunk.kind: {other:?} is not \"sip\" or \"pri\""),
                ))
            }
        }
        for (key, v) in [
            ("spans", t.spans.as_ref().map(|s| s.span())),
            ("hunt", t.hunt.as_ref().map(|h| h.span())),
        ] {
            if let Some(at) = v {
                return Err(err(
                    Some(at),
                    format!("trunk.{key}: a PRI trunk's key; trunk {name:?} is kind = \"sip\" (set kind = \"pri\")"),
                ));
            }
        }
        let uri = t.uri.as_ref().ok_or_else(|| {
            err(
                Some(t.name.span()),
                format!("trunk {name:?}: a SIP trunk needs `uri`"),
            )
        })?;
        let (host, port, port_given, transport) = parse_uri(uri.get_ref()).ok_or_else(|| {
            err(
                Some(uri.span()),
                format!(
                    "trunk.uri: {:?} is not like \"sip:trunk.example.org:5060\" (optionally ;transport=tcp)",
                    uri.get_ref()
                ),
            )
        })?;
        let outbound_proxy = match &t.outbound_proxy {
            None => None,
            Some(p) => {
                let (h, port, _, _) = parse_uri(p.get_ref()).ok_or_else(|| {
                    err(
                        Some(p.span()),
                        format!(
                            "trunk.outbound_proxy: {:?} is not like \"sip:10.0.0.1:5060\"",
                            p.get_ref()
                        ),
                    )
                })?;
                Some((h, port))
            }
        };
        if t.username.is_some() != t.password.is_some() {
            return Err(err(
                Some(t.name.span()),
                format!("trunk {name:?}: `username` and `password` go together"),
            ));
        }
        let register = t.register.as_ref().is_some_and(|r| *r.get_ref());
        if register && t.username.is_none() {
            return Err(err(
                Some(t.name.span()),
                format!("trunk {name:?}: `register = true` needs `username` and `password`"),
            ));
        }
        if let Some(c) = &t.caller_id {
            let ok = !c.get_ref().is_empty()
                && c.get_ref()
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "+-_.".contains(ch));
            if !ok {
                return Err(err(
                    Some(c.span()),
                    format!(
                        "trunk.caller_id: {:?} must be a number or a SIP user name",
                        c.get_ref()
                    ),
                ));
            }
        }
        let num = |v: &Option<Spanned<u64>>, key: &str, min: u64, max: u64, default: u64| {
            ranged(v, key, min, max, default, err)
        };
        out.push(TrunkConfig {
            name,
            host,
            port,
            port_given,
            transport,
            username: t.username.map(Spanned::into_inner),
            password: t.password.map(Spanned::into_inner),
            realm: t.realm.map(Spanned::into_inner),
            register,
            outbound_proxy,
            caller_id: t.caller_id.map(|c| c.into_inner()),
            caller_name: t.caller_name.map(Spanned::into_inner),
            send_pai: t.send_pai.is_some_and(Spanned::into_inner),
            privacy: t.privacy.is_some_and(Spanned::into_inner),
            max_channels: num(&t.max_channels, "max_channels", 1, 100_000, 30)?,
            cps: num(&t.cps, "cps", 1, 10_000, 10)?,
            ring_timeout_s: num(&t.ring_timeout, "ring_timeout", 1, 600, 45)?,
            codecs: match &t.codecs {
                Some(c) => codec_list(c.get_ref(), err)?,
                None => default_codecs.to_vec(),
            },
            options_interval_s: num(&t.options_interval, "options_interval", 0, 3600, 30)?,
        });
    }
    Ok((out, pri))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunk_uris() {
        assert_eq!(
            parse_uri("sip:trunk.example.org"),
            Some(("trunk.example.org".into(), 5060, false, TrunkTransport::Udp))
        );
        assert_eq!(
            parse_uri("sip:10.0.0.1:5080;transport=TCP"),
            Some(("10.0.0.1".into(), 5080, true, TrunkTransport::Tcp))
        );
        assert_eq!(
            parse_uri("sip:acct@[2001:db8::1]:5070"),
            Some(("2001:db8::1".into(), 5070, true, TrunkTransport::Udp))
        );
        for bad in [
            "",
            "sips:x",
            "sip:",
            "sip:a b",
            "sip:x;transport=sctp",
            "http://x",
        ] {
            assert_eq!(parse_uri(bad), None, "{bad:?}");
        }
    }
}
