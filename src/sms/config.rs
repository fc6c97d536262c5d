//! The `[smpp]` block of `rivr.toml`.

use serde::Deserialize;

/// Connection and submission settings for the SMPP client.
#[derive(Debug, Clone, Deserialize)]
pub struct SmppConfig {
    pub host: String,
    pub port: u16,
    pub system_id: String,
    pub password: String,
}
