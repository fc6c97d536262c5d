//! SMS: the SMPP 3.4 client (sans-IO session + tokio driver), SMS encoding
//! (GSM 03.38 / UCS-2, concatenation), delivery receipts, an SMSC simulator
//! and the HTTP SMS transport. (Being built; see issue 4.)

pub mod config;
pub mod encoding;
pub mod pdu;
pub mod receipt;
pub mod session;
pub mod sim;
