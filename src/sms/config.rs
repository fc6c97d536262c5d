//! The `[smpp]` and `[sms_http]` blocks of `rivr.toml`.

use std::time::Duration;

use serde::Deserialize;

use super::pdu::{Bind, BindMode};
use super::session::SessionConfig;

/// Connection and submission settings for the SMPP client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmppConfig {
    pub host: String,
    pub port: u16,
    pub system_id: String,
    pub password: String,
    #[serde(default)]
    pub system_type: String,
    /// `transceiver` (default), `transmitter` or `receiver`.
    #[serde(default = "default_bind")]
    pub bind: BindMode,
    /// Outstanding submit_sm at most.
    #[serde(default = "default_window")]
    pub window: usize,
    /// Messages per second at most; 0 is unlimited.
    #[serde(default)]
    pub tps: f64,
    /// Source address and its TON/NPI.
    #[serde(default)]
    pub source_addr: String,
    #[serde(default)]
    pub source_ton: u8,
    #[serde(default)]
    pub source_npi: u8,
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

fn default_bind() -> BindMode {
    BindMode::Transceiver
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

impl SmppConfig {
    /// The session settings this block describes.
    pub fn session(&self, seed: u64) -> SessionConfig {
        SessionConfig {
            mode: self.bind,
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
            (s.bind, s.window, s.registered_delivery),
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
}
