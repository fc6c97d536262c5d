//! The `[smpp]`, `[[smsc]]` and `[sms_http]` blocks of `rivr.toml`: SMS
//! routes (an SMPP account or an HTTP provider each).

use std::time::Duration;

use serde::Deserialize;

use super::pdu::{Bind, BindMode};
use super::session::SessionConfig;

/// Connection and submission settings for the SMPP client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmppConfig {
    /// The route's name (`--via`, `rivr sms status`); `[smpp]` is "smpp",
    /// an unnamed `[[smsc]]` "smsc-N".
    #[serde(default)]
    pub name: String,
    /// Destination prefixes this route serves (digits, no `+`); none: all.
    /// The longest matching prefix wins; routes that match equally are
    /// tried in file order, and the next one takes over when one is down.
    #[serde(default, deserialize_with = "prefixes")]
    pub prefixes: Vec<String>,
    /// Who holds a scheduled message: the SMSC (`schedule_delivery_time`)
    /// or rivr (in the store, sent when due).
    #[serde(default)]
    pub schedule: ScheduleMode,
    /// How long a route may stay unbound (connect or bind failing, link
    /// lost) before its messages go to the next route.
    #[serde(default = "default_failover_ms")]
    pub failover_after_ms: u64,
    /// This many ESME_RTHROTTLED / ESME_RMSGQFUL within 10 s with no
    /// acceptance between them hand the route's queue to the next route
    /// for `throttle_hold_secs`. 0 never fails over on throttling.
    #[serde(default = "default_throttle_failover")]
    pub throttle_failover: u32,
    #[serde(default = "default_throttle_hold")]
    pub throttle_hold_secs: u64,
    pub host: String,
    pub port: u16,
    pub system_id: String,
    pub password: String,
    #[serde(default)]
    pub system_type: String,
    /// `transceiver` (default), `transmitter`, `receiver`, or
    /// `transmitter+receiver` (two binds: one sends, one takes receipts
    /// and inbound SMS).
    #[serde(default, deserialize_with = "bind_config")]
    pub bind: BindConfig,
    /// Outstanding submit_sm at most.
    #[serde(default = "default_window")]
    pub window: usize,
    /// Messages per second at most; 0 is unlimited.
    #[serde(default)]
    pub tps: f64,
    /// The default sender ID; its TON/NPI follow from its form
    /// (`super::sender`) unless `source_ton` / `source_npi` are set.
    #[serde(default, deserialize_with = "sender_id")]
    pub source_addr: String,
    #[serde(default)]
    pub source_ton: Option<u8>,
    #[serde(default)]
    pub source_npi: Option<u8>,
    #[serde(default = "one")]
    pub dest_ton: u8,
    #[serde(default = "one")]
    pub dest_npi: u8,
    /// `registered_delivery`: 1 asks for a receipt on final outcome.
    #[serde(default = "one")]
    pub registered_delivery: u8,
    /// Send long text whole in `message_payload` instead of UDH parts.
    #[serde(default)]
    pub use_message_payload: bool,
    #[serde(default = "default_enquire")]
    pub enquire_link_secs: u64,
    #[serde(default = "default_response")]
    pub response_timeout_ms: u64,
    #[serde(default = "default_reconnect_min")]
    pub reconnect_min_ms: u64,
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_ms: u64,
    /// A message with no final receipt after this long is `unknown`.
    #[serde(default = "default_receipt_timeout")]
    pub receipt_timeout_secs: u64,
}

/// `bind`: the binds of one route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum BindConfig {
    #[default]
    #[serde(rename = "transceiver")]
    Transceiver,
    #[serde(rename = "transmitter")]
    Transmitter,
    #[serde(rename = "receiver")]
    Receiver,
    #[serde(rename = "transmitter+receiver")]
    TransmitterReceiver,
}

impl BindConfig {
    /// The mode of the session that submits.
    pub fn mode(self) -> BindMode {
        match self {
            BindConfig::Transceiver => BindMode::Transceiver,
            BindConfig::Transmitter | BindConfig::TransmitterReceiver => BindMode::Transmitter,
            BindConfig::Receiver => BindMode::Receiver,
        }
    }

    /// True when a second, receiver, bind takes receipts and inbound SMS.
    pub fn separate_receiver(self) -> bool {
        self == BindConfig::TransmitterReceiver
    }
}

/// `schedule`: where a message with a future `at` waits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleMode {
    /// Submitted at once with `schedule_delivery_time`.
    #[default]
    Smsc,
    /// Kept in rivr's store and submitted when due.
    Local,
}

fn default_failover_ms() -> u64 {
    3000
}
fn default_throttle_failover() -> u32 {
    5
}
fn default_throttle_hold() -> u64 {
    30
}

fn sender_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    super::sender::classify(&s)
        .map_err(|e| serde::de::Error::custom(format!("source_addr: {e}")))?;
    Ok(s)
}

fn bind_config<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BindConfig, D::Error> {
    let s = String::deserialize(d)?;
    Ok(match s.as_str() {
        "transceiver" => BindConfig::Transceiver,
        "transmitter" => BindConfig::Transmitter,
        "receiver" => BindConfig::Receiver,
        "transmitter+receiver" => BindConfig::TransmitterReceiver,
        _ => {
            return Err(serde::de::Error::custom(format!(
                "bind: {s:?} is not \"transceiver\", \"transmitter\", \"receiver\" or \"transmitter+receiver\""
            )))
        }
    })
}

pub(crate) fn prefixes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.into_iter()
        .map(|p| {
            let digits = p.strip_prefix('+').unwrap_or(&p);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(serde::de::Error::custom(format!(
                    "prefixes: {p:?} is not a number prefix (digits, optional +)"
                )));
            }
            Ok(digits.to_string())
        })
        .collect()
}
fn default_window() -> usize {
    10
}
fn one() -> u8 {
    1
}
fn default_enquire() -> u64 {
    30
}
fn default_response() -> u64 {
    10_000
}
fn default_reconnect_min() -> u64 {
    500
}
fn default_reconnect_max() -> u64 {
    60_000
}
fn default_receipt_timeout() -> u64 {
    48 * 3600
}

/// Names the unnamed `[[smsc]]` blocks `smsc-N` and refuses a name used
/// twice (or "smpp", the name of `[smpp]`): `Err((name, message))`.
pub fn name_routes(mut v: Vec<SmppConfig>) -> Result<Vec<SmppConfig>, (String, String)> {
    let mut seen: Vec<String> = Vec::new();
    for (i, r) in v.iter_mut().enumerate() {
        if r.name.is_empty() {
            r.name = format!("smsc-{}", i + 1);
        }
        let ok = r
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err((
                r.name.clone(),
                format!("smsc.name: {:?}: use letters, digits, - and _", r.name),
            ));
        }
        if seen.contains(&r.name) || r.name == "smpp" || r.name == "http" {
            return Err((
                r.name.clone(),
                format!(
                    "smsc.name: {:?} names two routes (\"smpp\" and \"http\" are taken by [smpp] and [sms_http])",
                    r.name
                ),
            ));
        }
        seen.push(r.name.clone());
    }
    Ok(v)
}

impl SmppConfig {
    /// The session settings this block describes.
    pub fn session(&self, seed: u64) -> SessionConfig {
        SessionConfig {
            mode: self.bind.mode(),
            bind: Bind {
                system_id: self.system_id.clone(),
                password: self.password.clone(),
                system_type: self.system_type.clone(),
                interface_version: 0x34,
                addr_ton: 0,
                addr_npi: 0,
                address_range: String::new(),
            },
            window: self.window.max(1),
            tps: if self.tps.is_finite() && self.tps > 0.0 {
                self.tps
            } else {
                0.0
            },
            enquire_link_interval: Duration::from_secs(self.enquire_link_secs.max(1)),
            response_timeout: Duration::from_millis(self.response_timeout_ms.max(1)),
            reconnect_min: Duration::from_millis(self.reconnect_min_ms.max(1)),
            reconnect_max: Duration::from_millis(self.reconnect_max_ms.max(self.reconnect_min_ms)),
            seed,
            ..SessionConfig::default()
        }
    }
}

/// Which HTTP API `[sms_http]` speaks (docs/sms.md, "HTTP providers").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Infobip's SMS API: `POST /sms/2/text/advanced`, `App` key auth.
    Infobip,
    /// Vonage's (Nexmo's) SMS API: `POST /sms/json` with key and secret.
    Vonage,
    /// A templated request for any other provider.
    Template,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Infobip => "infobip",
            Provider::Vonage => "vonage",
            Provider::Template => "template",
        }
    }
}

/// How Vonage signs its webhooks (dashboard: "signature method").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureMethod {
    Md5Hash,
    Md5Hmac,
    Sha1Hmac,
    Sha256Hmac,
    Sha512Hmac,
}

/// A secret from the config: kept out of `Debug` output.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "…" })
    }
}

/// An HTTP SMS provider (`[sms_http]`, parsed by `crate::config`): a
/// preset (Infobip, Vonage) or the generic template, whose fields expand
/// `{to}`, `{from}`, `{text}` and `{id}` (URL-encoded in the URL and form
/// bodies).
#[derive(Debug, Clone)]
pub struct HttpSmsConfig {
    pub provider: Provider,
    /// Presets: the API's root, e.g. `https://xxxx.api.infobip.com`.
    pub base_url: String,
    /// Infobip: the API key (`Authorization: App …`); Vonage: `api_key`.
    pub api_key: Secret,
    /// Vonage: `api_secret`.
    pub api_secret: Secret,
    /// Extra CA certificates (PEM) trusted besides the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// The public URL given to the provider for delivery reports
    /// (Infobip `notifyUrl`, Vonage `callback`); empty: none given.
    pub webhook_url: String,
    /// Required as `?secret=` (or header `X-Webhook-Secret`) on webhooks
    /// that carry no provider signature.
    pub webhook_secret: Secret,
    /// Vonage: the signature secret its signed webhooks use.
    pub signature_secret: Secret,
    pub signature_method: SignatureMethod,
    /// Infobip without `webhook_url`: how often delivery reports are
    /// pulled (`GET /sms/1/reports`), in seconds.
    pub reports_poll_secs: u64,
    /// Template: `http(s)://host:port/path?query` (templated).
    pub url: String,
    /// Template: `GET` or `POST` (default).
    pub method: String,
    /// Template: request body for POST.
    pub body: String,
    pub content_type: String,
    /// Template: extra request headers, e.g. `Authorization`.
    pub headers: std::collections::BTreeMap<String, String>,
    /// Template: where the provider's id is in the response body:
    /// `json:KEY` (a top-level string or number), `after:MARKER` (up to
    /// the next quote, comma, `&`, `}` or whitespace), or `body` (the
    /// whole trimmed body).
    pub message_id: String,
    pub from: String,
    pub timeout_ms: u64,
    /// Destination prefixes the provider serves (digits, no `+`); none:
    /// all. It comes after the SMPP routes in the fallback order.
    pub prefixes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::sms::pdu::BindMode;
    use std::path::Path;

    #[test]
    fn smpp_block_parses_with_defaults_and_names_bad_keys() {
        let c = Config::parse(
            "[smpp]\nhost = \"h\"\nport = 2775\nsystem_id = \"s\"\npassword = \"p\"\nbind = \"transmitter\"\ntps = 25.0\n",
            "rivr.toml",
            Path::new("/"),
        )
        .unwrap();
        let s = c.smpp.unwrap();
        assert_eq!(
            (s.bind.mode(), s.window, s.registered_delivery),
            (BindMode::Transmitter, 10, 1)
        );
        let sc = s.session(1);
        assert_eq!(sc.tps, 25.0);
        assert_eq!(sc.bind.interface_version, 0x34);
        let e = Config::parse(
            "[smpp]\nhost = \"h\"\nport = 1\nsystem_id = \"s\"\npassword = \"p\"\nwindwo = 3\n",
            "rivr.toml",
            Path::new("/"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("windwo"), "{e}");
    }

    const ACCOUNT: &str = "host = \"h\"\nport = 1\nsystem_id = \"s\"\npassword = \"p\"\n";

    #[test]
    fn smsc_routes_parse_and_bad_ones_are_named_with_their_line() {
        use super::{BindConfig, ScheduleMode};
        let c = Config::parse(
            &format!(
                "[[smsc]]\nname = \"ke\"\nprefixes = [\"+254\", \"255\"]\n{ACCOUNT}\
                 bind = \"transmitter+receiver\"\nschedule = \"local\"\nsource_addr = \"55555\"\n\
                 [[smsc]]\n{ACCOUNT}"
            ),
            "rivr.toml",
            Path::new("/"),
        )
        .unwrap();
        let (a, b) = (&c.smsc[0], &c.smsc[1]);
        assert_eq!((a.name.as_str(), b.name.as_str()), ("ke", "smsc-2"));
        assert_eq!(a.prefixes, ["254", "255"]);
        assert_eq!(a.bind, BindConfig::TransmitterReceiver);
        assert!(a.bind.separate_receiver() && a.bind.mode() == BindMode::Transmitter);
        assert_eq!(
            (a.schedule, b.schedule),
            (ScheduleMode::Local, ScheduleMode::Smsc)
        );
        assert_eq!(
            (a.source_ton, a.failover_after_ms, a.throttle_failover),
            (None, 3000, 5)
        );
        let err = |text: &str| {
            Config::parse(text, "rivr.toml", Path::new("/"))
                .unwrap_err()
                .to_string()
        };
        let e = err(&format!(
            "[smpp]\n{ACCOUNT}source_addr = \"TOOLONGSENDERID\"\n"
        ));
        assert!(
            e.contains("rivr.toml:6") && e.contains("source_addr") && e.contains("11 GSM"),
            "{e}"
        );
        let e = err(&format!("[[smsc]]\n{ACCOUNT}prefixes = [\"25x\"]\n"));
        assert!(e.contains("rivr.toml:6") && e.contains("prefixes"), "{e}");
        let e = err(&format!(
            "[[smsc]]\nname = \"a\"\n{ACCOUNT}[[smsc]]\nname = \"a\"\n{ACCOUNT}"
        ));
        assert!(e.contains("smsc.name") && e.contains("\"a\""), "{e}");
        let e = err(&format!("[[smsc]]\n{ACCOUNT}bind = \"both\"\n"));
        assert!(e.contains("rivr.toml:6") && e.contains("bind"), "{e}");
    }
}
