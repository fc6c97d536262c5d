//! Where the SMS link stands, for the API and `/metrics`: bound or not,
//! the window and what is in it, and counters since start. The driver
//! publishes it on a watch channel when it changes; readers never touch
//! the driver.

use serde::Serialize;

/// The SMS link now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LinkStatus {
    /// `smpp` or `http`.
    pub transport: &'static str,
    /// SMPP: bound; HTTP: always true (there is no session).
    pub bound: bool,
    /// Outstanding submit_sm at most (`[smpp] window`).
    pub window: usize,
    /// submit_sm sent and not yet answered.
    pub outstanding: usize,
    /// Parts waiting to be sent, plus the outstanding ones.
    pub pending: usize,
    /// submit_sm written (each retry counts).
    pub submits: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// ESME_RTHROTTLED / ESME_RMSGQFUL answers (the part went again).
    pub throttled: u64,
    pub receipts: u64,
    pub connects: u64,
    /// Bytes from the SMSC that were not a PDU we could read.
    pub malformed: u64,
}
