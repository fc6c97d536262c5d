//! An SMSC simulator for tests and demos (`rivr smsc-sim`): a sans-IO core
//! ([`Smsc`]) and a tokio TCP server around it.

mod core;

pub use self::core::{AcceptedMsg, ConnId, SimConfig, SimOutput, SimStats, Smsc};
mod server;

pub use server::{run, serve_on, SimArgs};
