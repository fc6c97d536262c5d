//! `rivr.toml`: the server's one configuration file, read and validated at
//! load. Every error names the key and the line it is on.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

mod cdr;
pub mod cluster;
mod http;
mod pri_trunk;
mod script_http;
mod sms_flow;
mod sms_http;
mod span;
mod trunk;
mod tts;

pub use cdr::CdrConfig;
pub use http::{HttpConfig, Role, Token};
pub use pri_trunk::{Hunt, PriTrunkConfig};
pub use script_http::{HostPattern, ScriptHttpConfig};
pub use sms_flow::{SmsFlowConfig, SmsRoute};
pub use span::{SpanConfig, SpanTransport};
pub use trunk::{TrunkConfig, TrunkTransport};
pub use tts::TtsConfig;

use crate::codec::Codec;
pub use crate::sip::acl::UntrustedPolicy;
use crate::sip::acl::{Acl, Cidr};

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
    pub limits: LimitsConfig,
    /// `[server]`: how the process stops.
    pub server: ServerConfig,
    pub smpp: Option<crate::sms::config::SmppConfig>,
    /// `[[smsc]]`: more SMPP routes, after `[smpp]` in fallback order.
    pub smsc: Vec<crate::sms::config::SmppConfig>,
    /// Where call detail records go: the JSON-lines file, the store.
    pub cdr: CdrConfig,
    /// An HTTP SMS provider, used when there is no `[smpp]` block.
    pub sms_http: Option<crate::sms::config::HttpSmsConfig>,
    /// `[http]`: the admin API, `/metrics` and the dashboard (off without).
    pub http: Option<HttpConfig>,
    /// `[[trunk]]`: where outbound calls go, in order of preference.
    pub trunks: Vec<TrunkConfig>,
    /// `[[span]]`: the ISDN PRI spans, in the file's order.
    pub spans: Vec<SpanConfig>,
    /// `[[trunk]] kind = "pri"`: trunks made of `spans` (docs/pri.md).
    pub pri_trunks: Vec<PriTrunkConfig>,
    /// `[tts]`: how `say()` speaks (engine, defaults, cache).
    pub tts: TtsConfig,
    /// `[sms]` and `[[sms_route]]`: two-way SMS flows and opt-out.
    pub sms: SmsFlowConfig,
    /// `[cluster]`: this node's id and lease (docs/scaling.md).
    pub cluster: cluster::ClusterConfig,
    /// The directory relative paths in the file are resolved against.
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct SipConfig {
    /// Where SIP listens, on UDP and TCP.
    pub listen: SocketAddr,
    /// The address put in Contact, Via and SDP `c=`; defaults to `listen`'s IP.
    pub public_ip: std::net::IpAddr,
    /// Sources allowed to send requests; `None`: everyone.
    pub trusted: Option<Acl>,
    /// What a request from outside `trusted` gets.
    pub untrusted: UntrustedPolicy,
    /// The DNS server trunk names are looked up on (NAPTR, SRV, A/AAAA);
    /// `None`: the system's (`/etc/resolv.conf`).
    pub dns_server: Option<SocketAddr>,
    /// Session timers (RFC 4028): `sip.session_expires` (the interval
    /// picked for a caller that supports timers but names none) and
    /// `sip.min_se`.
    pub session: crate::sip::session_timer::Policy,
    /// What rivr asks for on the calls it places; `None` when
    /// `sip.session_expires = 0`.
    pub session_ask: Option<u32>,
}

/// `[limits]`: admission control and overload protection. Defaults in
/// [`LimitsConfig::default`]; docs/config.md explains each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Calls in progress at once; `None`: sized from the box at start
    /// (`server::sizing::default_max_calls`).
    pub max_calls: Option<usize>,
    /// New calls per second, whole server.
    pub max_cps: u32,
    /// INVITEs per second per source address (token bucket rate).
    pub per_source_cps: u32,
    /// INVITEs a source may send at once (token bucket depth).
    pub per_source_burst: u32,
    /// 503s a source may draw within `flood_window_s` before it is silenced.
    pub flood_refusals: u32,
    pub flood_window_s: u32,
    /// A silenced source is heard again after this long under its rate.
    pub flood_silence_s: u32,
    /// TCP connections open at once; more are accepted and closed.
    pub tcp_max_connections: usize,
    /// TCP connections one source may hold; more are accepted and closed.
    pub tcp_max_per_source: usize,
    /// A TCP connection that sends nothing (not even a CRLF keepalive) for
    /// this long is closed.
    pub tcp_idle_timeout_s: u32,
    /// Largest SIP message accepted on any transport.
    pub max_message_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_calls: None,
            max_cps: 200,
            per_source_cps: 20,
            per_source_burst: 20,
            flood_refusals: 10,
            flood_window_s: 10,
            flood_silence_s: 60,
            tcp_max_connections: 1024,
            tcp_max_per_source: 128,
            tcp_idle_timeout_s: 300,
            max_message_bytes: crate::sip::wire::MAX_MESSAGE_BYTES,
        }
    }
}

/// `[server]`: the process as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// How long a drain (SIGTERM) lets the calls in progress end on their
    /// own before the rest are ended; zero stops at once.
    pub drain_timeout: std::time::Duration,
}

/// `[server] drain_timeout_s` when not set: a minute, under systemd's
/// default 90 s stop timeout, so the drain ends before a SIGKILL would.
pub const DEFAULT_DRAIN_TIMEOUT_S: u64 = 60;

/// The longest `[server] drain_timeout_s`: a day.
const MAX_DRAIN_TIMEOUT_S: u64 = 86_400;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            drain_timeout: std::time::Duration::from_secs(DEFAULT_DRAIN_TIMEOUT_S),
        }
    }
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
    /// When a leg runs the in-band DTMF detector (`auto`: only without
    /// negotiated telephone-events).
    pub inband_dtmf: crate::media::inband_policy::InbandDtmf,
    /// Where `record()` writes (`ID.wav`) and `play("rec:ID")` reads;
    /// made when first needed.
    pub recordings: PathBuf,
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
    /// `http_get`/`http_post`: allowed hosts, timeout, body size.
    pub http: ScriptHttpConfig,
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
            http: ScriptHttpConfig::default(),
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
    /// The calls' language (`call.lang`): prompts are looked up in its
    /// sub-folder of `[media] prompts` first.
    pub lang: Option<String>,
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
        let (session, session_ask) = parse_session_timers(&sip_raw, &err)?;
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
        let trusted = match &sip_raw.trusted {
            None => None,
            Some(list) => {
                let mut blocks = Vec::with_capacity(list.get_ref().len());
                for item in list.get_ref() {
                    let cidr: Cidr = item
                        .get_ref()
                        .parse()
                        .map_err(|e| err(Some(item.span()), format!("sip.trusted: {e}")))?;
                    blocks.push(cidr);
                }
                if blocks.is_empty() {
                    return Err(err(
                        Some(list.span()),
                        "sip.trusted: the list is empty, so no one could call; leave the key out to trust every source".into(),
                    ));
                }
                Some(Acl::new(blocks))
            }
        };
        let untrusted = match &sip_raw.untrusted {
            None => UntrustedPolicy::default(),
            Some(p) if trusted.is_none() => {
                return Err(err(
                    Some(p.span()),
                    "sip.untrusted: has no effect without sip.trusted".into(),
                ))
            }
            Some(p) => match p.get_ref().as_str() {
                "reject" => UntrustedPolicy::Reject,
                "drop" => UntrustedPolicy::Drop,
                other => {
                    return Err(err(
                        Some(p.span()),
                        format!("sip.untrusted: {other:?} is neither \"reject\" nor \"drop\""),
                    ))
                }
            },
        };
        let dns_server = match &sip_raw.dns_server {
            None => None,
            Some(d) => Some(d.get_ref().parse::<SocketAddr>().map_err(|_| {
                err(
                    Some(d.span()),
                    format!(
                        "sip.dns_server: {:?} is not IP:PORT (e.g. \"192.0.2.53:53\")",
                        d.get_ref()
                    ),
                )
            })?),
        };
        let limits = parse_limits(raw.limits.unwrap_or_default(), &err)?;
        let server = parse_server(raw.server.unwrap_or_default(), &err)?;
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
        let recordings = base_dir.join(
            media_raw
                .recordings
                .clone()
                .unwrap_or_else(|| "recordings".into()),
        );
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
        let inband_dtmf = match &media_raw.inband_dtmf {
            None => crate::media::inband_policy::InbandDtmf::default(),
            Some(w) => {
                crate::media::inband_policy::InbandDtmf::parse(w.get_ref()).ok_or_else(|| {
                    err(
                        Some(w.span()),
                        format!(
                            "media.inband_dtmf: {:?} is not one of \"auto\", \"always\", \"never\"",
                            w.get_ref()
                        ),
                    )
                })?
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
        let script_http = script_http::parse_script_http(
            script_http::RawScriptHttp {
                allow: &script_raw.http_allow,
                timeout_ms: &script_raw.http_timeout_ms,
                max_body_bytes: &script_raw.http_max_body_bytes,
            },
            &err,
        )?;
        let store = StoreConfig {
            url: raw
                .store
                .and_then(|s| s.url)
                .unwrap_or_else(|| "sqlite://var/rivr.db".into()),
        };
        let http = raw.http.map(|h| http::parse_http(h, &err)).transpose()?;
        let cdr = cdr::parse_cdr(raw.cdr, base_dir, &err)?;
        let tts = tts::parse_tts(raw.tts, base_dir, &err)?;
        let cluster = cluster::parse_cluster(raw.cluster, &err)?;
        let sms = sms_flow::parse_sms(raw.sms, raw.sms_route.unwrap_or_default(), base_dir, &err)?;
        let spans = span::parse_spans(raw.span.unwrap_or_default(), base_dir, &err)?;
        let (trunks, pri_trunks) =
            trunk::parse_trunks(raw.trunk.unwrap_or_default(), &codecs, &spans, &err)?;
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
            let lang = match &r.lang {
                Some(l) => {
                    crate::script::lang::check_tag(l.get_ref())
                        .map_err(|e| err(Some(l.span()), format!("route.lang: {e}")))?;
                    Some(l.get_ref().clone()).filter(|l| !l.is_empty())
                }
                None => None,
            };
            routes.push(Route {
                number,
                script: base_dir.join(r.script.into_inner()),
                lang,
            });
        }
        Ok(Config {
            sip: SipConfig {
                listen,
                public_ip,
                trusted,
                untrusted,
                dns_server,
                session,
                session_ask,
            },
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
            media: MediaConfig {
                prompts,
                codecs,
                inband_dtmf,
                recordings,
            },
            script: {
                let d = ScriptConfig::default();
                ScriptConfig {
                    max_operations: script_raw.max_operations.unwrap_or(d.max_operations),
                    max_duration_ms: script_raw.max_duration_ms.unwrap_or(d.max_duration_ms),
                    max_operations_between_verbs: script_raw
                        .max_operations_between_verbs
                        .unwrap_or(d.max_operations_between_verbs),
                    max_memory_bytes,
                    http: script_http,
                }
            },
            store,
            routes,
            limits,
            server,
            smpp: raw.smpp,
            smsc: crate::sms::config::name_routes(raw.smsc.unwrap_or_default()).map_err(
                |(name, m)| {
                    let at = text.find(&format!("\"{name}\"")).map(|a| a..a);
                    err(at, m)
                },
            )?,
            cdr,
            sms_http: raw
                .sms_http
                .map(|r| sms_http::parse_sms_http(r, base_dir, &err))
                .transpose()?,
            http,
            trunks,
            spans,
            pri_trunks,
            tts,
            sms,
            cluster,
            base_dir: base_dir.to_path_buf(),
        })
    }
}

/// `sip.session_expires` (0: rivr asks for no session timer on the calls
/// it places, and still runs one a peer asks for) and `sip.min_se` (at
/// least RFC 4028's 90 s, at most `session_expires`).
fn parse_session_timers(
    raw: &RawSip,
    err: &dyn Fn(Option<Range<usize>>, String) -> ConfigError,
) -> Result<(crate::sip::session_timer::Policy, Option<u32>), ConfigError> {
    use crate::sip::session_timer::{Policy, MIN_SE_FLOOR};
    let d = Policy::default();
    let min_se = match &raw.min_se {
        None => d.min_se,
        Some(v) if (MIN_SE_FLOOR..=86_400).contains(v.get_ref()) => *v.get_ref(),
        Some(v) => {
            return Err(err(
                Some(v.span()),
                format!(
                    "sip.min_se: {} is outside {MIN_SE_FLOOR}..=86400 seconds (RFC 4028 allows no less than 90)",
                    v.get_ref()
                ),
            ))
        }
    };
    let expires = match &raw.session_expires {
        None => d.default_seconds.max(min_se),
        Some(v) if *v.get_ref() == 0 => 0,
        Some(v) if (min_se..=86_400).contains(v.get_ref()) => *v.get_ref(),
        Some(v) => {
            return Err(err(
                Some(v.span()),
                format!(
                    "sip.session_expires: {} is outside sip.min_se ({min_se})..=86400 seconds; 0 turns it off",
                    v.get_ref()
                ),
            ))
        }
    };
    let policy = Policy {
        default_seconds: if expires == 0 {
            d.default_seconds.max(min_se)
        } else {
            expires
        },
        min_se,
    };
    Ok((policy, (expires != 0).then_some(expires)))
}

/// `[limits]`: each key within its range, else an error naming it.
fn parse_limits(
    raw: RawLimits,
    err: &dyn Fn(Option<Range<usize>>, String) -> ConfigError,
) -> Result<LimitsConfig, ConfigError> {
    let d = LimitsConfig::default();
    let ranged = |v: Option<Spanned<u64>>, key: &str, min: u64, max: u64, default: u64| {
        let Some(v) = v else {
            return Ok(default);
        };
        let n = *v.get_ref();
        if (min..=max).contains(&n) {
            Ok(n)
        } else {
            Err(err(
                Some(v.span()),
                format!("limits.{key}: {n} is out of range ({min} to {max})"),
            ))
        }
    };
    let u32_max = u64::from(u32::MAX);
    let max_calls = match raw.max_calls {
        None => None,
        Some(v) => Some(ranged(Some(v), "max_calls", 1, 1_000_000, 0)? as usize),
    };
    let per_source_cps = ranged(
        raw.per_source_cps,
        "per_source_cps",
        1,
        u32_max,
        d.per_source_cps.into(),
    )? as u32;
    Ok(LimitsConfig {
        max_calls,
        max_cps: ranged(raw.max_cps, "max_cps", 1, u32_max, d.max_cps.into())? as u32,
        per_source_cps,
        // The burst follows the rate unless set.
        per_source_burst: ranged(
            raw.per_source_burst,
            "per_source_burst",
            1,
            u32_max,
            per_source_cps.into(),
        )? as u32,
        flood_refusals: ranged(
            raw.flood_refusals,
            "flood_refusals",
            0,
            u32_max,
            d.flood_refusals.into(),
        )? as u32,
        flood_window_s: ranged(
            raw.flood_window_s,
            "flood_window_s",
            1,
            86_400,
            d.flood_window_s.into(),
        )? as u32,
        flood_silence_s: ranged(
            raw.flood_silence_s,
            "flood_silence_s",
            1,
            86_400,
            d.flood_silence_s.into(),
        )? as u32,
        tcp_max_connections: ranged(
            raw.tcp_max_connections,
            "tcp_max_connections",
            0,
            1_000_000,
            d.tcp_max_connections as u64,
        )? as usize,
        tcp_max_per_source: ranged(
            raw.tcp_max_per_source,
            "tcp_max_per_source",
            1,
            1_000_000,
            d.tcp_max_per_source as u64,
        )? as usize,
        tcp_idle_timeout_s: ranged(
            raw.tcp_idle_timeout_s,
            "tcp_idle_timeout_s",
            1,
            86_400,
            d.tcp_idle_timeout_s.into(),
        )? as u32,
        max_message_bytes: ranged(
            raw.max_message_bytes,
            "max_message_bytes",
            MIN_MESSAGE_BYTES as u64,
            crate::sip::wire::MAX_MESSAGE_BYTES as u64,
            d.max_message_bytes as u64,
        )? as usize,
    })
}

/// `[server]`: each key within its range, else an error naming it.
fn parse_server(
    raw: RawServer,
    err: &dyn Fn(Option<Range<usize>>, String) -> ConfigError,
) -> Result<ServerConfig, ConfigError> {
    let drain_timeout_s = match raw.drain_timeout_s {
        None => DEFAULT_DRAIN_TIMEOUT_S,
        Some(v) if *v.get_ref() <= MAX_DRAIN_TIMEOUT_S => *v.get_ref(),
        Some(v) => {
            return Err(err(
                Some(v.span()),
                format!(
                    "server.drain_timeout_s: {} is out of range (0 to {MAX_DRAIN_TIMEOUT_S})",
                    v.get_ref()
                ),
            ))
        }
    };
    Ok(ServerConfig {
        drain_timeout: std::time::Duration::from_secs(drain_timeout_s),
    })
}

/// The smallest `max_message_bytes`: a plain INVITE with SDP needs ~1 kB.
const MIN_MESSAGE_BYTES: usize = 1024;

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
    limits: Option<RawLimits>,
    server: Option<RawServer>,
    cdr: Option<cdr::RawCdr>,
    smpp: Option<crate::sms::config::SmppConfig>,
    smsc: Option<Vec<crate::sms::config::SmppConfig>>,
    sms_http: Option<Spanned<sms_http::RawSmsHttp>>,
    http: Option<Spanned<http::RawHttp>>,
    trunk: Option<Vec<trunk::RawTrunk>>,
    span: Option<Vec<span::RawSpan>>,
    tts: Option<tts::RawTts>,
    sms: Option<sms_flow::RawSms>,
    sms_route: Option<Vec<sms_flow::RawSmsRoute>>,
    cluster: Option<cluster::RawCluster>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSip {
    listen: Option<Spanned<String>>,
    public_ip: Option<Spanned<String>>,
    trusted: Option<Spanned<Vec<Spanned<String>>>>,
    untrusted: Option<Spanned<String>>,
    dns_server: Option<Spanned<String>>,
    session_expires: Option<Spanned<u32>>,
    min_se: Option<Spanned<u32>>,
}

/// One line per key, so keys added in parallel merge cleanly.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_calls: Option<Spanned<u64>>,
    max_cps: Option<Spanned<u64>>,
    per_source_cps: Option<Spanned<u64>>,
    per_source_burst: Option<Spanned<u64>>,
    flood_refusals: Option<Spanned<u64>>,
    flood_window_s: Option<Spanned<u64>>,
    flood_silence_s: Option<Spanned<u64>>,
    tcp_max_connections: Option<Spanned<u64>>,
    tcp_max_per_source: Option<Spanned<u64>>,
    tcp_idle_timeout_s: Option<Spanned<u64>>,
    max_message_bytes: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    drain_timeout_s: Option<Spanned<u64>>,
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
    recordings: Option<String>,
    codecs: Option<Vec<Spanned<String>>>,
    inband_dtmf: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawScript {
    max_operations: Option<u64>,
    max_duration_ms: Option<u64>,
    max_operations_between_verbs: Option<u64>,
    max_memory_bytes: Option<Spanned<u64>>,
    http_allow: Option<Spanned<Vec<Spanned<String>>>>,
    http_timeout_ms: Option<Spanned<u64>>,
    http_max_body_bytes: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    number: Option<Spanned<String>>,
    script: Spanned<String>,
    lang: Option<Spanned<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, "rivr.toml", Path::new("/etc/rivr"))
    }

    #[test]
    fn recordings_default_beside_the_config_and_may_be_set() {
        let base = "[sip]\nlisten = \"127.0.0.1:5070\"\n[[route]]\nscript = \"a.rhai\"\n";
        let c = parse(base).unwrap();
        assert_eq!(c.media.recordings, Path::new("/etc/rivr/recordings"));
        let c = parse(&format!(
            "{base}[media]\nrecordings = \"/var/spool/rivr\"\n"
        ))
        .unwrap();
        assert_eq!(c.media.recordings, Path::new("/var/spool/rivr"));
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
    fn a_routes_language_is_a_tag_and_errors_name_its_line() {
        let c = parse("[[route]]\nnumber = \"1\"\nscript = \"a\"\nlang = \"pt-BR\"\n").unwrap();
        assert_eq!(c.routes[0].lang.as_deref(), Some("pt-BR"));
        let e = parse("[[route]]\nnumber = \"1\"\nscript = \"a\"\nlang = \"../fr\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("rivr.toml:4: route.lang"), "{e}");
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

    #[test]
    fn the_example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rivr.toml");
        let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.limits.per_source_cps, 20);
        assert!(c.route_for("1000").is_some());
    }

    #[test]
    fn limits_default_and_override() {
        let c = parse("").unwrap();
        assert_eq!(c.limits, LimitsConfig::default());
        assert_eq!(c.limits.max_calls, None, "sized from the box at start");
        assert!(c.sip.trusted.is_none());
        let c = parse(
            "[limits]\nmax_calls = 2\nmax_cps = 5\nper_source_cps = 7\nflood_refusals = 3\n\
             flood_window_s = 4\nflood_silence_s = 9\ntcp_max_connections = 10\n\
             tcp_max_per_source = 3\ntcp_idle_timeout_s = 1\nmax_message_bytes = 4096\n",
        )
        .unwrap();
        let l = &c.limits;
        assert_eq!(l.max_calls, Some(2));
        assert_eq!((l.max_cps, l.per_source_cps), (5, 7));
        assert_eq!(l.per_source_burst, 7, "the burst follows the rate");
        assert_eq!(
            (l.flood_refusals, l.flood_window_s, l.flood_silence_s),
            (3, 4, 9)
        );
        assert_eq!((l.tcp_max_connections, l.tcp_idle_timeout_s), (10, 1));
        assert_eq!(l.tcp_max_per_source, 3);
        assert_eq!(l.max_message_bytes, 4096);
        let c = parse("[limits]\nper_source_cps = 7\nper_source_burst = 30\n").unwrap();
        assert_eq!(c.limits.per_source_burst, 30);
    }

    #[test]
    fn limits_errors_name_key_and_line() {
        for (text, line, key) in [
            ("[limits]\n\nmax_calls = 0\n", 3, "limits.max_calls"),
            ("[limits]\nmax_cps = 0\n", 2, "limits.max_cps"),
            ("[limits]\nper_source_cps = 0\n", 2, "limits.per_source_cps"),
            (
                "[limits]\nmax_message_bytes = 70000\n",
                2,
                "limits.max_message_bytes",
            ),
            (
                "[limits]\nmax_message_bytes = 100\n",
                2,
                "limits.max_message_bytes",
            ),
            (
                "[limits]\ntcp_idle_timeout_s = 0\n",
                2,
                "limits.tcp_idle_timeout_s",
            ),
            (
                "[limits]\ntcp_max_per_source = 0\n",
                2,
                "limits.tcp_max_per_source",
            ),
            (
                "[limits]\nflood_silence_s = 0\n",
                2,
                "limits.flood_silence_s",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("rivr.toml:{line}: {key}:")),
                "{text:?}: {e}"
            );
        }
        let e = parse("[limits]\nmax_calls = 2\nmax_call = 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("rivr.toml:3:") && e.contains("max_call"),
            "{e}"
        );
        let e = parse("[limits]\nmax_cps = -1\n").unwrap_err().to_string();
        assert!(e.starts_with("rivr.toml:2:"), "{e}");
        let e = parse("[limits]\nmax_cps = \"fast\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("rivr.toml:2:"), "{e}");
    }

    #[test]
    fn server_drain_timeout_defaults_and_errors_name_key_and_line() {
        let c = parse("").unwrap();
        assert_eq!(c.server.drain_timeout, std::time::Duration::from_secs(60));
        let c = parse("[server]\ndrain_timeout_s = 0\n").unwrap();
        assert_eq!(
            c.server.drain_timeout,
            std::time::Duration::ZERO,
            "zero stops at once"
        );
        let c = parse("[server]\ndrain_timeout_s = 300\n").unwrap();
        assert_eq!(c.server.drain_timeout, std::time::Duration::from_secs(300));
        let e = parse("[server]\n\ndrain_timeout_s = 90000\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("rivr.toml:3: server.drain_timeout_s:"), "{e}");
        let e = parse("[server]\ndrain_timeout_s = \"60s\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("rivr.toml:2:"), "{e}");
        let e = parse("[server]\ndrain_timeout_s = 5\ndrain_timout = 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("rivr.toml:3:") && e.contains("drain_timout"),
            "{e}"
        );
    }

    #[test]
    fn trusted_sources_and_the_untrusted_policy() {
        let c = parse(
            "[sip]\ntrusted = [\"10.0.0.0/8\", \"2001:db8::/32\", \"127.0.0.2\"]\nuntrusted = \"drop\"\n",
        )
        .unwrap();
        let acl = c.sip.trusted.as_ref().unwrap();
        assert_eq!(acl.blocks().len(), 3);
        assert!(acl.allows("10.1.1.1".parse().unwrap()));
        assert!(acl.allows("2001:db8::1".parse().unwrap()));
        assert!(acl.allows("127.0.0.2".parse().unwrap()));
        assert!(!acl.allows("127.0.0.1".parse().unwrap()));
        assert_eq!(c.sip.untrusted, UntrustedPolicy::Drop);
        let c = parse("[sip]\ntrusted = [\"10.0.0.0/8\"]\n").unwrap();
        assert_eq!(c.sip.untrusted, UntrustedPolicy::Reject);
        for (text, line, want) in [
            (
                "[sip]\ntrusted = [\n  \"10.0.0.0/8\",\n  \"10.0.0.1/8\",\n]\n",
                4,
                "sip.trusted: \"10.0.0.1/8\" has bits set past its prefix",
            ),
            (
                "[sip]\ntrusted = [\"nowhere\"]\n",
                2,
                "sip.trusted: \"nowhere\"",
            ),
            (
                "[sip]\ntrusted = [\"::/200\"]\n",
                2,
                "sip.trusted: \"::/200\"",
            ),
            (
                "[sip]\n\ntrusted = []\n",
                3,
                "sip.trusted: the list is empty",
            ),
            (
                "[sip]\ntrusted = [\"10.0.0.0/8\"]\nuntrusted = \"ignore\"\n",
                3,
                "sip.untrusted: \"ignore\"",
            ),
            (
                "[sip]\nuntrusted = \"drop\"\n",
                2,
                "sip.untrusted: has no effect",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("rivr.toml:{line}: {want}")),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn trunks_load_with_defaults_and_errors_name_key_and_line() {
        let c = parse(
            "[[trunk]]\nname = \"carrier\"\nkind = \"sip\"\nuri = \"sip:trunk.example.org:5080;transport=tcp\"\n\
             username = \"acct\"\npassword = \"secret\"\nregister = true\ncaller_id = \"15550100\"\n\
             max_channels = 30\ncps = 10\nring_timeout = 45\ncodecs = [\"pcma\", \"pcmu\"]\n\
             outbound_proxy = \"sip:10.0.0.1:5060\"\n[[trunk]]\nname = \"backup\"\nuri = \"sip:10.1.1.1\"\n",
        )
        .unwrap();
        assert_eq!(c.trunks.len(), 2);
        let t = &c.trunks[0];
        assert_eq!(
            (t.host.as_str(), t.port, t.transport),
            ("trunk.example.org", 5080, TrunkTransport::Tcp)
        );
        assert!(t.register && t.port_given);
        assert_eq!(t.codecs, vec![Codec::Pcma, Codec::Pcmu]);
        assert_eq!(t.outbound_proxy, Some(("10.0.0.1".into(), 5060)));
        let b = &c.trunks[1];
        assert_eq!(
            (
                b.port,
                b.port_given,
                b.max_channels,
                b.cps,
                b.ring_timeout_s
            ),
            (5060, false, 30, 10, 45)
        );
        for (text, line, want) in [
            ("[[trunk]]\nname = \"a\"\nuri = \"http://x\"\n", 3, "trunk.uri"),
            ("[[trunk]]\nname = \"a\"\nuri = \"sip:x\"\ncps = 0\n", 4, "trunk.cps"),
            ("[[trunk]]\nname = \"a\"\nuri = \"sip:x\"\nregister = true\n", 2, "register = true"),
            ("[[trunk]]\nname = \"a\"\nkind = \"pri\"\n", 2, "a PRI trunk needs `spans`"),
            ("[[trunk]]\nname = \"a\"\nuri = \"sip:x\"\nfoo = 1\n", 4, "foo"),
            ("[[trunk]]\nname = \"a\"\nuri = \"sip:x\"\n[[trunk]]\nname = \"a\"\nuri = \"sip:y\"\n", 5, "twice"),
            ("[http]\n", 1, "http: `listen` is missing"),
            ("[http]\nlisten = \"localhost\"\n", 2, "http.listen"),
            ("[http]\nlisten = \"127.0.0.1:8080\"\nport = 1\n", 3, "port"),
            ("[http]\nlisten = \"127.0.0.1:8080\"\n[[http.token]]\ntoken = \"short\"\n", 4, "http.token.token"),
            ("[http]\nlisten = \"127.0.0.1:8080\"\n[[http.token]]\ntoken = \"0123456789abcdef\"\nrole = \"root\"\n", 5, "http.token.role"),
            ("[http]\nlisten = \"127.0.0.1:8080\"\nmax_body_bytes = 10\n", 3, "http.max_body_bytes"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.starts_with(&format!("rivr.toml:{line}:")) && e.contains(want), "{text:?}: {e}");
        }
    }

    const E1: &str = "[[span]]\nname = \"e1a\"\nvariant = \"etsi\"\ndchannel = \"/run/pri/e1a/d\"\nbchannels = \"/run/pri/e1a/b{n}\"\n";
    const T1: &str = "[[span]]\nname = \"t1a\"\nvariant = \"ni2\"\nlaw = \"ulaw\"\nside = \"network\"\ntransport = \"socket\"\ndchannel = \"pri/t1a/d\"\nbchannels = \"pri/t1a/b{n}\"\nchannels = \"1-12, 20\"\n";

    #[test]
    fn spans_load_with_their_defaults() {
        use crate::codec::Law;
        use crate::pri::q931::{Side, Variant};
        let c = parse(&format!("{E1}{T1}")).unwrap();
        assert_eq!(c.spans.len(), 2);
        let e = &c.spans[0];
        assert_eq!(e.name, "e1a");
        assert_eq!(
            (e.variant, e.law, e.side),
            (Variant::Etsi, Law::Alaw, Side::User)
        );
        assert_eq!(e.transport, SpanTransport::Socket);
        assert_eq!(e.dchannel, Path::new("/run/pri/e1a/d"));
        let all_e1: Vec<u8> = (1..=15).chain(17..=31).collect();
        assert_eq!(e.channels, all_e1, "every B-channel: 30, not 16");
        assert_eq!(e.channels_text(), "1-15,17-31");
        assert_eq!(e.bchannel_path(17), Path::new("/run/pri/e1a/b17"));
        let q = e.q931();
        assert_eq!((q.law, q.b_channels.len()), (Law::Alaw, 30));
        let t = &c.spans[1];
        assert_eq!(
            (t.variant, t.law, t.side),
            (Variant::Ni2, Law::Ulaw, Side::Network)
        );
        assert_eq!(
            t.dchannel,
            Path::new("/etc/rivr/pri/t1a/d"),
            "relative to the file"
        );
        assert_eq!(t.bchannel_path(3), Path::new("/etc/rivr/pri/t1a/b3"));
        assert_eq!(t.channels, (1..=12).chain([20]).collect::<Vec<u8>>());
        // A T1 span: 23 B-channels by default, µ-law from the variant;
        // the law can differ from the variant's; a list of numbers works.
        let c = parse(
            "[[span]]\nname = \"t\"\nvariant = \"ni2\"\ndchannel = \"d\"\nbchannels = \"b{n}\"\n\
             [[span]]\nname = \"e\"\nvariant = \"etsi\"\nlaw = \"ulaw\"\ntransport = \"dahdi\"\n\
             dchannel = \"/dev/dahdi/channel#16\"\nbchannels = \"/dev/dahdi/chan/002/{n}\"\nchannels = [1, 2, 31]\n",
        )
        .unwrap();
        assert_eq!(c.spans[0].channels, (1..=23).collect::<Vec<u8>>());
        assert_eq!(c.spans[0].law, Law::Ulaw);
        assert_eq!(c.spans[1].law, Law::Ulaw);
        assert_eq!(c.spans[1].transport, SpanTransport::Dahdi);
        assert_eq!(c.spans[1].channels, vec![1, 2, 31]);
        // DAHDI names its channel nodes with three digits.
        assert_eq!(
            c.spans[1].bchannel_path(2),
            Path::new("/dev/dahdi/chan/002/002")
        );
        assert_eq!(c.spans[1].dchannel, Path::new("/dev/dahdi/channel#16"));
        assert!(parse("").unwrap().spans.is_empty());
    }

    #[test]
    fn pri_trunks_name_their_spans() {
        let e1b = E1.replace("e1a", "e1b");
        let c = parse(&format!(
            "[[trunk]]\nname = \"sip1\"\nuri = \"sip:x\"\n[[trunk]]\nname = \"e1\"\nkind = \"pri\"\n\
             spans = [\"e1a\", \"e1b\"]\nhunt = \"round-robin\"\ncaller_id = \"5551000\"\ncps = 5\n\
             ring_timeout = 30\n{E1}{e1b}"
        ))
        .unwrap();
        assert_eq!(c.trunks.len(), 1, "the SIP trunks are apart");
        assert_eq!(c.pri_trunks.len(), 1);
        let t = &c.pri_trunks[0];
        assert_eq!(t.name, "e1");
        assert_eq!(t.spans, vec!["e1a", "e1b"]);
        assert_eq!(t.hunt, Hunt::RoundRobin);
        assert_eq!(t.caller_id.as_deref(), Some("5551000"));
        assert_eq!((t.max_channels, t.cps, t.ring_timeout_s), (60, 5, 30));
        // Defaults: every B-channel of the spans; a user side hunts from
        // the top, a network side from the bottom.
        let c = parse(&format!(
            "[[trunk]]\nname = \"e1\"\nkind = \"pri\"\nspans = [\"e1a\"]\n\
             [[trunk]]\nname = \"t1\"\nkind = \"pri\"\nspans = [\"t1a\"]\nmax_channels = 4\n{E1}{T1}"
        ))
        .unwrap();
        let (e, t) = (&c.pri_trunks[0], &c.pri_trunks[1]);
        assert_eq!(
            (e.hunt, e.max_channels, e.cps, e.ring_timeout_s),
            (Hunt::Highest, 30, 10, 45)
        );
        assert_eq!((t.hunt, t.max_channels), (Hunt::Lowest, 4));
    }

    #[test]
    fn span_and_pri_trunk_errors_name_key_and_line() {
        let pri = |extra: &str| {
            format!("[[trunk]]\nname = \"e1\"\nkind = \"pri\"\nspans = [\"e1a\"]\n{extra}{E1}")
        };
        let e1_with = |extra: &str| format!("{E1}{extra}");
        let dahdi = |d: &str, b: &str| {
            format!(
                "[[span]]\nname = \"e1a\"\nvariant = \"etsi\"\ntransport = \"dahdi\"\n\
                 dchannel = \"{d}\"\nbchannels = \"{b}\"\n"
            )
        };
        for (text, line, want) in [
            // spans
            (
                E1.replace("\"etsi\"", "\"qsig\""),
                3,
                "span.variant: \"qsig\"",
            ),
            (e1_with("law = \"mulaw\"\n"), 6, "span.law: \"mulaw\""),
            (e1_with("side = \"both\"\n"), 6, "span.side: \"both\""),
            (
                e1_with("transport = \"tcp\"\n"),
                6,
                "span.transport: \"tcp\"",
            ),
            (
                e1_with("channels = \"1-16\"\n"),
                6,
                "span.channels: 16 is not an E1",
            ),
            (
                e1_with("channels = [16]\n"),
                6,
                "span.channels: 16 is not an E1",
            ),
            (
                T1.replace("1-12, 20", "1-12,24"),
                9,
                "span.channels: 24 is not a T1",
            ),
            (
                e1_with("channels = \"1-5,3\"\n"),
                6,
                "span.channels: 3 is listed twice",
            ),
            (
                e1_with("channels = \"1..5\"\n"),
                6,
                "span.channels: \"1..5\"",
            ),
            (e1_with("channels = \"\"\n"), 6, "span.channels"),
            (
                E1.replace("b{n}", "b"),
                5,
                "span.bchannels: \"/run/pri/e1a/b\" has no {n}",
            ),
            (
                dahdi("/dev/dahdi/channel#x", "/dev/dahdi/chan/001/{n}"),
                5,
                "span.dchannel: \"x\" after '#' is not a DAHDI channel number (1-1024)",
            ),
            (
                dahdi("/dev/dahdi/channel#2000", "/dev/dahdi/chan/001/{n}"),
                5,
                "span.dchannel: \"2000\" after '#' is not a DAHDI channel number",
            ),
            (
                dahdi("/dev/dahdi/chan/001/016", "/dev/dahdi/channel"),
                6,
                "span.bchannels: \"/dev/dahdi/channel\" has no {n} for the timeslot (like \"/dev/dahdi/chan/001/{n}\")",
            ),
            (
                dahdi("/dev/dahdi/chan/001/016", "/dev/dahdi/channel#b{n}"),
                6,
                "span.bchannels: \"/dev/dahdi/channel#b{n}\": after '#' comes {n}",
            ),
            (
                format!("{E1}{E1}"),
                7,
                "span.name: \"e1a\" is defined twice",
            ),
            (E1.replace("variant = \"etsi\"\n", ""), 2, "needs `variant`"),
            (
                E1.replace("dchannel = \"/run/pri/e1a/d\"\n", ""),
                2,
                "needs `dchannel`",
            ),
            (e1_with("dchanel = \"x\"\n"), 6, "dchanel"),
            // PRI trunks
            (
                pri("").replace("[\"e1a\"]", "[\"e1x\"]"),
                4,
                "trunk.spans: \"e1x\" is not a [[span]]",
            ),
            (
                format!(
                    "{}[[trunk]]\nname = \"e2\"\nkind = \"pri\"\nspans = [\"e1a\"]\n",
                    pri("")
                ),
                13,
                "trunk.spans: span \"e1a\" is already on trunk \"e1\"",
            ),
            (
                pri("").replace("[\"e1a\"]", "[\"e1a\", \"e1a\"]"),
                4,
                "listed twice",
            ),
            (
                pri("").replace("[\"e1a\"]", "[]"),
                4,
                "trunk.spans: the list is empty",
            ),
            (pri("uri = \"sip:x\"\n"), 5, "trunk.uri: a SIP trunk's key"),
            (
                pri("cps = 2\ncodecs = [\"pcma\"]\n"),
                6,
                "trunk.codecs: a SIP trunk's key",
            ),
            (pri("register = false\n"), 5, "trunk.register"),
            (pri("hunt = \"random\"\n"), 5, "trunk.hunt: \"random\""),
            (
                pri("max_channels = 31\n"),
                5,
                "trunk.max_channels: 31 is more than the 30",
            ),
            (
                pri("max_channels = 0\n"),
                5,
                "trunk.max_channels: 0 is out of range",
            ),
            (pri("caller_id = \"+4930\"\n"), 5, "trunk.caller_id"),
            (pri("cps = 0\n"), 5, "trunk.cps"),
            (
                format!("[[trunk]]\nname = \"s\"\nuri = \"sip:x\"\nspans = [\"e1a\"]\n{E1}"),
                4,
                "trunk.spans: a PRI trunk's key",
            ),
            (
                "[[trunk]]\nname = \"s\"\nuri = \"sip:x\"\nhunt = \"lowest\"\n".into(),
                4,
                "trunk.hunt",
            ),
            (
                format!("{}[[trunk]]\nname = \"e1\"\nuri = \"sip:x\"\n", pri("")),
                11,
                "trunk.name: \"e1\" is defined twice",
            ),
        ] {
            let e = parse(&text).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("rivr.toml:{line}: ")) && e.contains(want),
                "{text:?}: {e}"
            );
        }
    }
}
