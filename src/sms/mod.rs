//! SMS: the SMPP 3.4 client (sans-IO [`session`] + tokio driver), SMS
//! [`encoding`] (GSM 03.38 / UCS-2, concatenation), delivery [`receipt`]s,
//! an SMSC simulator ([`sim`]) and the HTTP SMS transport, all behind
//! [`SmsService`]. It owns the `sms_*` tables through `crate::store`; it
//! must not touch calls or media.

pub mod cli;
pub mod config;
mod driver;
pub mod encoding;
pub mod flow;
pub(crate) mod http;
pub mod link_status;
pub mod options;
pub mod parts;
pub mod pdu;
pub mod receipt;
pub mod route;
pub mod sender;
mod service;
pub mod session;
pub mod sim;
pub mod smpp_time;
mod submit_sm;

pub use crate::store::MessageState;
pub use link_status::LinkStatus;
pub use options::SendOptions;
pub use service::{RouteState, SmsService};

/// What the driver reports to waiters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Bound,
    /// A bind was refused; the text names the status (`ESME_RINVPASWD …`).
    BindFailed(String),
    /// The state of this message may have changed.
    State(String),
    /// An inbound SMS was stored under this id.
    Inbound(String),
}

/// Why an SMS operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("no [smpp], [[smsc]] or [sms_http] block in the configuration")]
    NotConfigured,
    #[error("{0:?} is not a phone number (digits, optional leading +)")]
    BadNumber(String),
    #[error("no message with id {0:?}")]
    NoSuchMessage(String),
    #[error("bind failed: {0}")]
    Bind(String),
    #[error("submit_blocking called on a tokio runtime thread; use submit().await")]
    BlockingInRuntime,
    #[error(transparent)]
    Option(#[from] options::OptionError),
    #[error("{0}")]
    NoRoute(String),
    #[error(transparent)]
    Encode(#[from] encoding::EncodeError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
