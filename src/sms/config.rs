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

/// An HTTP SMS provider: where and how to post a message, and where its
/// message id is in the answer. Templates expand `{to}`, `{from}`,
/// `{text}` and `{id}` (URL-encoded in the URL and form bodies).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSmsConfig {
    /// `http://host:port/path?query` (templated).
    pub url: String,
    /// `GET` or `POST` (default).
    #[serde(default = "default_method")]
    pub method: String,
    /// Request body template for POST.
    #[serde(default)]
    pub body: String,
    #[serde(default = "default_content_type")]
    pub content_type: String,
    /// Extra request headers, e.g. `Authorization`.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Where the provider's id is in the response body: `json:KEY` (a
    /// top-level string or number), `after:MARKER` (up to the next quote,
    /// comma, `&`, `}` or whitespace), or `body` (the whole trimmed body).
    #[serde(default = "default_id_from")]
    pub message_id: String,
    #[serde(default)]
    pub from: String,
    #[serde(default = "default_http_timeout")]
    pub timeout_ms: u64,
}

fn default_method() -> String {
    "POST".into()
}
fn default_content_type() -> String {
    "application/x-www-form-urlencoded".into()
}
fn default_id_from() -> String {
    "body".into()
}
fn default_http_timeout() -> u64 {
    10_000
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
        let c = Config::parse(
            "[sms_http]\nurl = \"http://127.0.0.1:1/send?to={to}\"\nmethod = \"GET\"\nmessage_id = \"json:id\"\n",
            "rivr.toml",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(c.sms_http.unwrap().message_id, "json:id");
    }
}
