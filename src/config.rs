//! `rivr.toml`: the server's one configuration file, read and validated at
//! load. Every error names the key and the line it is on.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::media::codec::Codec;

/// A configuration error: what is wrong, with the key and the 1-based line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub sip: SipConfig,
    pub rtp: RtpConfig,
    pub media: MediaConfig,
    pub script: ScriptConfig,
    pub store: StoreConfig,
    pub routes: Vec<Route>,
    pub smpp: Option<crate::sms::config::SmppConfig>,
    /// Where call detail records go: one JSON object per line.
    pub cdr_path: PathBuf,
    /// An HTTP SMS provider, used when there is no `[smpp]` block.
    pub sms_http: Option<crate::sms::config::HttpSmsConfig>,
    /// The directory relative paths in the file are resolved against.
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct SipConfig {
    /// Where SIP listens, on UDP and TCP.
    pub listen: SocketAddr,
    /// The address put in Contact, Via and SDP `c=`; defaults to `listen`'s IP.
    pub public_ip: std::net::IpAddr,
}

#[derive(Debug, Clone)]
pub struct RtpConfig {
    /// First and last port (inclusive) of the RTP range; each call takes one.
    pub port_min: u16,
    pub port_max: u16,
    /// Media worker threads; 0 means one per core.
    pub workers: usize,
    /// How long early media may go to a peer not yet verified (neither
    /// confirmed by the ACK nor heard sending RTP): the reflection guard's
    /// cap, docs/security.md.
    pub early_media_unverified: std::time::Duration,
}

/// `[rtp] early_media_unverified_ms` when not set: one second of early
/// media (50 packets, 8.6 kB of G.711) to an address nobody verified, about
/// what a forged INVITE already draws as retransmitted SIP responses.
pub const DEFAULT_EARLY_MEDIA_UNVERIFIED_MS: u64 = 1000;

#[derive(Debug, Clone)]
pub struct MediaConfig {
    pub prompts: PathBuf,
    /// Codecs rivr accepts, in its order of preference for its own offers
    /// (an offer's order wins when answering, RFC 3264 §6.1).
    pub codecs: Vec<Codec>,
}

#[derive(Debug, Clone)]
pub struct ScriptConfig {
    /// Rhai operations a call's script may run before it is stopped.
    pub max_operations: u64,
    /// Wall-clock budget of a call's script, in milliseconds.
    pub max_duration_ms: u64,
    /// Rhai operations run without any verb between them before the script
    /// is judged stuck (a busy loop) and stopped.
    pub max_operations_between_verbs: u64,
    /// Heap bytes one call's script may hold (its thread's net allocations).
    pub max_memory_bytes: usize,
}

/// The smallest `[script] max_memory_bytes`: an empty script's own state
/// is tens of KiB.
pub const MIN_SCRIPT_MEMORY: u64 = 1 << 20;

impl Default for ScriptConfig {
    fn default() -> Self {
        ScriptConfig {
            max_operations: 50_000_000,
            max_duration_ms: 4 * 3600 * 1000,
            max_operations_between_verbs: 1_000_000,
            max_memory_bytes: 8 << 20,
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub url: String,
}

/// An inbound route: the dialed number (Request-URI user part) to a script.
#[derive(Debug, Clone)]
pub struct Route {
    /// `None` is the default route (`number = "*"` or `default = true`).
    pub number: Option<String>,
    pub script: PathBuf,
}

impl Config {
    /// The script for a dialed number: an exact match, else the default route.
    pub fn route_for(&self, number: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.number.as_deref() == Some(number))
            .or_else(|| self.routes.iter().find(|r| r.number.is_none()))
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.display().to_string(),
            source,
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::parse(&text, &path.display().to_string(), &base)
    }

    /// Parses and validates `text`; `file` names it in errors.
    pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let err = |span: Option<Range<usize>>, message: String| ConfigError::Invalid {
            file: file.to_string(),
            line: span.map(|s| line_of(text, s.start)).unwrap_or(1),
            message,
        };
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| err(e.span(), e.message().trim().replace('\n', " ").to_string()))?;
        let sip_raw = raw.sip.unwrap_or_default();
        let listen_s = sip_raw
            .listen
            .unwrap_or_else(|| Spanned::new(0..0, "127.0.0.1:5060".into()));
        let listen: SocketAddr = listen_s.get_ref().parse().map_err(|_| {
            err(
                Some(listen_s.span()),
                format!(
                    "sip.listen: {:?} is not an address like \"127.0.0.1:5060\"",
                    listen_s.get_ref()
                ),
            )
        })?;
        let public_ip = match sip_raw.public_ip {
            Some(p) => p.get_ref().parse().map_err(|_| {
                err(
                    Some(p.span()),
                    format!("sip.public_ip: {:?} is not an IP address", p.get_ref()),
                )
            })?,
            None => listen.ip(),
        };
        let rtp_raw = raw.rtp.unwrap_or_default();
        let ports = rtp_raw
            .ports
            .unwrap_or_else(|| Spanned::new(0..0, "20000-29999".into()));
        let (port_min, port_max) = parse_port_range(ports.get_ref()).ok_or_else(|| {
            err(
                Some(ports.span()),
                format!(
                    "rtp.ports: {:?} is not a range like \"20000-29999\" (two ports, low first, low even, at least 1024)",
                    ports.get_ref()
                ),
            )
        })?;
        let media_raw = raw.media.unwrap_or_default();
        let prompts = base_dir.join(media_raw.prompts.unwrap_or_else(|| "prompts".into()));
        let codecs = match media_raw.codecs {
            None => Codec::ALL.to_vec(),
            Some(names) => {
                let mut codecs = Vec::with_capacity(names.len());
                for name in &names {
                    let codec = match name.get_ref().to_ascii_lowercase().as_str() {
                        "pcmu" => Codec::Pcmu,
                        "pcma" => Codec::Pcma,
                        "opus" => Codec::Opus,
                        other => {
                            return Err(err(
                                Some(name.span()),
                                format!(
                                    "media.codecs: {other:?} is not a codec rivr speaks (pcmu, pcma, opus)"
                                ),
                            ))
                        }
                    };
                    if !codecs.contains(&codec) {
                        codecs.push(codec);
                    }
                }
                if codecs.is_empty() {
                    return Err(err(None, "media.codecs: the list is empty".into()));
                }
                codecs
            }
        };
        let script_raw = raw.script.unwrap_or_default();
        let max_memory_bytes = match &script_raw.max_memory_bytes {
            None => ScriptConfig::default().max_memory_bytes,
            Some(m) => usize::try_from(*m.get_ref())
                .ok()
                .filter(|&n| n as u64 >= MIN_SCRIPT_MEMORY && n <= isize::MAX as usize)
                .ok_or_else(|| {
                    err(
                        Some(m.span()),
                        format!(
                            "script.max_memory_bytes: {} is out of range (at least {MIN_SCRIPT_MEMORY}, 1 MiB)",
                            m.get_ref()
                        ),
                    )
                })?,
        };
        let store = StoreConfig {
            url: raw
                .store
                .and_then(|s| s.url)
                .unwrap_or_else(|| "sqlite://var/rivr.db".into()),
        };
        let mut routes = Vec::new();
        for r in raw.route.unwrap_or_default() {
            let span = r.script.span();
            let number = match r.number.as_ref().map(|n| n.get_ref().as_str()) {
                None | Some("*") => None,
                Some(n) => Some(n.to_string()),
            };
            if number.is_none() && routes.iter().any(|x: &Route| x.number.is_none()) {
                return Err(err(
                    Some(span),
                    "route: a second default route (only one route may omit `number` or use \"*\")"
                        .into(),
                ));
            }
            if let Some(n) = &number {
                if routes.iter().any(|x: &Route| x.number.as_ref() == Some(n)) {
                    return Err(err(
                        r.number.as_ref().map(|n| n.span()),
                        format!("route.number: {n:?} is routed twice"),
                    ));
                }
            }
            routes.push(Route {
                number,
                script: base_dir.join(r.script.into_inner()),
            });
        }
        Ok(Config {
            sip: SipConfig { listen, public_ip },
            rtp: RtpConfig {
                port_min,
                port_max,
                workers: rtp_raw.workers.unwrap_or(0),
                early_media_unverified: std::time::Duration::from_millis(
                    rtp_raw
                        .early_media_unverified_ms
                        .unwrap_or(DEFAULT_EARLY_MEDIA_UNVERIFIED_MS),
                ),
            },
            media: MediaConfig { prompts, codecs },
            script: {
                let d = ScriptConfig::default();
                ScriptConfig {
                    max_operations: script_raw.max_operations.unwrap_or(d.max_operations),
                    max_duration_ms: script_raw.max_duration_ms.unwrap_or(d.max_duration_ms),
                    max_operations_between_verbs: script_raw
                        .max_operations_between_verbs
                        .unwrap_or(d.max_operations_between_verbs),
                    max_memory_bytes,
                }
            },
            store,
            routes,
            smpp: raw.smpp,
            cdr_path: base_dir.join(
                raw.cdr
                    .and_then(|c| c.path)
                    .unwrap_or_else(|| "var/cdr.jsonl".into()),
            ),
            sms_http: raw.sms_http,
            base_dir: base_dir.to_path_buf(),
        })
    }
}

fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-')?;
    let lo: u16 = a.trim().parse().ok()?;
    let hi: u16 = b.trim().parse().ok()?;
    (lo >= 1024 && lo < hi && lo % 2 == 0).then_some((lo, hi))
}

/// 1-based line number of byte offset `pos` in `text`.
pub fn line_of(text: &str, pos: usize) -> usize {
    let pos = pos.min(text.len());
    text.as_bytes()[..pos]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    sip: Option<RawSip>,
    rtp: Option<RawRtp>,
    media: Option<RawMedia>,
    script: Option<RawScript>,
    store: Option<RawStore>,
    route: Option<Vec<RawRoute>>,
    cdr: Option<RawCdr>,
    smpp: Option<crate::sms::config::SmppConfig>,
    sms_http: Option<crate::sms::config::HttpSmsConfig>,
    /// Accepted now so configs written for later features still load.
    #[allow(dead_code)]
    http: Option<toml::Value>,
    #[allow(dead_code)]
    trunk: Option<toml::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSip {
    listen: Option<Spanned<String>>,
    public_ip: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRtp {
    ports: Option<Spanned<String>>,
    workers: Option<usize>,
    early_media_unverified_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMedia {
    prompts: Option<String>,
    codecs: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawScript {
    max_operations: Option<u64>,
    max_duration_ms: Option<u64>,
    max_operations_between_verbs: Option<u64>,
    max_memory_bytes: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCdr {
    path: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    number: Option<Spanned<String>>,
    script: Spanned<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, "rivr.toml", Path::new("/etc/rivr"))
    }

    #[test]
    fn full_config_loads() {
        let c = parse(
            "[sip]\nlisten = \"127.0.0.1:5070\"\n[rtp]\nports = \"30000-30100\"\n[media]\nprompts = \"p\"\n\
             [[route]]\nnumber = \"1000\"\nscript = \"scripts/a.rhai\"\n[[route]]\nscript = \"scripts/d.rhai\"\n",
        )
        .unwrap();
        assert_eq!(c.sip.listen.port(), 5070);
        assert_eq!((c.rtp.port_min, c.rtp.port_max), (30000, 30100));
        assert_eq!(c.media.prompts, Path::new("/etc/rivr/p"));
        assert_eq!(
            c.route_for("1000").unwrap().script,
            Path::new("/etc/rivr/scripts/a.rhai")
        );
        assert_eq!(
            c.route_for("999").unwrap().script,
            Path::new("/etc/rivr/scripts/d.rhai")
        );
    }

    #[test]
    fn media_codecs_are_listed_by_name_in_preference_order() {
        let c = parse("[media]\ncodecs = [\"opus\", \"PCMA\", \"opus\"]\n").unwrap();
        assert_eq!(c.media.codecs, vec![Codec::Opus, Codec::Pcma]);
        assert_eq!(parse("").unwrap().media.codecs, Codec::ALL.to_vec());
        let e = parse("[media]\n\ncodecs = [\"pcmu\", \"g729\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("rivr.toml:3: media.codecs: \"g729\""), "{e}");
    }

    #[test]
    fn errors_name_key_and_line() {
        let e = parse("[sip]\nlisten = \"nowhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("rivr.toml:2: sip.listen"), "{e}");
        let e = parse("[sip]\n\n[rtp]\nports = \"5-3\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("rivr.toml:4: rtp.ports"), "{e}");
        let e = parse("[sip]\nlisten = \"127.0.0.1:5060\"\nlisen = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("rivr.toml:3:") && e.contains("lisen"), "{e}");
        let e = parse("[[route]]\nnumber = \"1\"\nscript = \"a\"\n[[route]]\nnumber = \"1\"\nscript = \"b\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("rivr.toml:5: route.number"), "{e}");
    }

    #[test]
    fn script_memory_limit_is_a_key_with_a_floor() {
        assert_eq!(parse("").unwrap().script.max_memory_bytes, 8 << 20);
        let c = parse("[script]\nmax_memory_bytes = 33554432\n").unwrap();
        assert_eq!(c.script.max_memory_bytes, 32 << 20);
        let e = parse("[script]\nmax_duration_ms = 1000\nmax_memory_bytes = 4096\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("rivr.toml:3: script.max_memory_bytes: 4096 is out of range"),
            "{e}"
        );
    }
}
