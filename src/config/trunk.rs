//! `[[trunk]]`: the carriers rivr places calls through. Checked at load,
//! every error with its key and line; the trunk's host is resolved by the
//! server when it starts, not here.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

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
    name: Spanned<String>,
    kind: Option<Spanned<String>>,
    uri: Option<Spanned<String>>,
    username: Option<String>,
    password: Option<String>,
    realm: Option<String>,
    register: Option<bool>,
    outbound_proxy: Option<Spanned<String>>,
    caller_id: Option<Spanned<String>>,
    caller_name: Option<String>,
    send_pai: Option<bool>,
    privacy: Option<bool>,
    max_channels: Option<Spanned<u64>>,
    cps: Option<Spanned<u64>>,
    ring_timeout: Option<Spanned<u64>>,
    codecs: Option<Vec<Spanned<String>>>,
    options_interval: Option<Spanned<u64>>,
    /// PRI trunks (issue 12) name spans.
    #[allow(dead_code)]
    spans: Option<Vec<String>>,
}

type Err<'a> = &'a dyn Fn(Option<Range<usize>>, String) -> ConfigError;

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

pub(super) fn parse_trunks(
    raw: Vec<RawTrunk>,
    default_codecs: &[Codec],
    err: Err<'_>,
) -> Result<Vec<TrunkConfig>, ConfigError> {
    let mut out: Vec<TrunkConfig> = Vec::new();
    for t in raw {
        let name = t.name.get_ref().trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(err(
                Some(t.name.span()),
                format!("trunk.name: {name:?} must be letters, digits, '-', '_' or '.'"),
            ));
        }
        if out.iter().any(|o| o.name == name) {
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
                return Err(err(
                    t.kind.as_ref().map(|k| k.span()),
                    format!("trunk {name:?}: kind = \"pri\" needs the ISDN PRI bridge, which this rivr does not have yet"),
                ))
            }
            other => {
                return Err(err(
                    t.kind.as_ref().map(|k| k.span()),
                    format!("trunk.kind: {other:?} is not \"sip\" or \"pri\""),
                ))
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
        let register = t.register.unwrap_or(false);
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
        let num = |v: &Option<Spanned<u64>>,
                   key: &str,
                   min: u64,
                   max: u64,
                   default: u64|
         -> Result<u32, ConfigError> {
            match v {
                None => Ok(default as u32),
                Some(v) if (min..=max).contains(v.get_ref()) => Ok(*v.get_ref() as u32),
                Some(v) => Err(err(
                    Some(v.span()),
                    format!(
                        "trunk.{key}: {} is out of range ({min} to {max})",
                        v.get_ref()
                    ),
                )),
            }
        };
        out.push(TrunkConfig {
            name,
            host,
            port,
            port_given,
            transport,
            username: t.username,
            password: t.password,
            realm: t.realm,
            register,
            outbound_proxy,
            caller_id: t.caller_id.map(|c| c.into_inner()),
            caller_name: t.caller_name,
            send_pai: t.send_pai.unwrap_or(false),
            privacy: t.privacy.unwrap_or(false),
            max_channels: num(&t.max_channels, "max_channels", 1, 100_000, 30)?,
            cps: num(&t.cps, "cps", 1, 10_000, 10)?,
            ring_timeout_s: num(&t.ring_timeout, "ring_timeout", 1, 600, 45)?,
            codecs: match &t.codecs {
                Some(c) => codec_list(c, err)?,
                None => default_codecs.to_vec(),
            },
            options_interval_s: num(&t.options_interval, "options_interval", 0, 3600, 30)?,
        });
    }
    Ok(out)
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
