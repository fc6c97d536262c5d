//! ISDN PRI (E1/T1): the D-channel's data link (`q921`, LAPD) and call
//! control (`q931`), both sans-IO — bytes and `now` in, frames, events and
//! timer deadlines out; no socket, task or clock here. Spans, B-channels
//! and their transports (the socket span the tests use, DAHDI) build on
//! them, and a B-channel becomes another kind of call leg beside SIP
//! (docs/pri.md).

pub mod dchannel;
pub mod q921;
pub mod q931;
pub mod socket;
pub mod span;
