//! ISDN PRI (E1/T1): the D-channel's data link (`q921`, LAPD) and call
//! control (`q931`), both sans-IO — bytes and `now` in, frames, events and
//! timer deadlines out; no socket, task or clock there. Spans, B-channels
//! and their transports (`socket`, the socket span the tests use; `dahdi`,
//! a card's DAHDI channels) build on them, and a B-channel becomes another
//! kind of call leg beside SIP (docs/pri.md).

pub mod dahdi;
pub mod dchannel;
pub mod q921;
pub mod q931;
pub mod socket;
pub mod span;
