//! A call: one signalling leg, its media, and the control channel its script
//! drives. `control` is the interface a script sees (verbs in, events out);
//! `channel` is its implementation over the SIP core task and a media worker;
//! `admission` decides whether the server takes one more call; `recordings`
//! holds a call's `record()` files on the script's side.

pub mod admission;
pub mod cause;
pub mod channel;
pub mod control;
pub mod id;
pub mod leg;
pub mod outcome;
pub mod outcome_refine;
pub mod recordings;
pub mod registry;
pub mod trunks;
