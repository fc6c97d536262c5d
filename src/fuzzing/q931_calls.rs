//! The `q931_calls` target: Q.931 call control (`pri::q931::CallControl`),
//! one side of a D-channel (user or network, ETSI or NI-2), fed what a
//! peer and the layer above can do: raw octets; messages built from a
//! type, a call reference (small values, so they hit live calls, either
//! flag, one or two octets) and real elements, good and bad; every
//! request the layer above has, on any call; the link failing and
//! returning; time steps on a virtual clock.
//!
//! Checked after every step:
//! - everything call control sends decodes as a Q.931 message;
//! - its books hold (each channel held by one live call that says so,
//!   call references mapped both ways, no channel in use and restarting);
//! - `Released` comes once per call, and no event of the call after it;
//! - after `handle_timeout(now)` no timer is still due at `now`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::input::{Input, Seed};
use crate::call::cause::Cause;
use crate::codec::Law;
use crate::pri::q931::ie::{
    BearerCapability, CallState, CallStateValue, CalledNumber, CauseIe, ChannelId, Location,
    NumberingPlan, Progress, ProgressDescription, RestartClass, RestartIndicator,
    TransferCapability, TypeOfNumber,
};
use crate::pri::q931::{
    CallControl, CallEvent, CallId, CallRef, ChannelSel, Config, Message, MessageType,
    OutgoingCall, RawIe, Side, Variant,
};

const OP_ADVANCE: u8 = 0;
const OP_NEXT_TIMEOUT: u8 = 1;
const OP_LINK_DOWN: u8 = 2;
const OP_LINK_UP: u8 = 3;
const OP_RAW: u8 = 4;
const OP_MESSAGE: u8 = 5;
const OP_REQUEST: u8 = 6;
const OPS: u8 = 7;

const MAX_OPS: usize = 4096;

/// Requests (`request`'s `what`).
pub const REQ_SETUP: u8 = 0;
pub const REQ_PROCEEDING: u8 = 1;
pub const REQ_ALERTING: u8 = 2;
pub const REQ_CONNECT: u8 = 3;
pub const REQ_DISCONNECT: u8 = 4;
pub const REQ_REJECT: u8 = 5;
pub const REQ_SETUP_ACK: u8 = 6;
pub const REQ_INFORMATION: u8 = 7;
pub const REQ_RESTART: u8 = 8;
pub const REQ_RESTART_ALL: u8 = 9;
pub const REQ_ENQUIRE: u8 = 10;
pub const REQ_PROGRESS: u8 = 11;
pub const REQS: u8 = 12;

/// The message types a built message picks from (the known ones, one
/// unknown, one reserved).
const KINDS: [u8; 19] = [
    0x01, 0x02, 0x03, 0x05, 0x07, 0x0D, 0x0F, 0x45, 0x46, 0x4D, 0x4E, 0x5A, 0x62, 0x6E, 0x75, 0x7B,
    0x7D, 0x25, 0x00,
];

fn number(digits: &str) -> CalledNumber {
    CalledNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, digits).unwrap_or_else(|_| {
        CalledNumber {
            ton: TypeOfNumber::Unknown,
            plan: NumberingPlan::Isdn,
            digits: Default::default(),
        }
    })
}

/// The elements a built message is made of: each element call control
/// reads, valid and not, and the channels that matter (E1 and T1
/// edges, the D-channels, one off the span).
pub fn ie_menu() -> Vec<RawIe> {
    let raw = |id, contents: &[u8]| RawIe {
        codeset: 0,
        id,
        contents: contents.to_vec(),
    };
    let mut menu = vec![
        RawIe::from_ie(&BearerCapability::g711(
            TransferCapability::Speech,
            Law::Alaw,
        )),
        RawIe::from_ie(&BearerCapability::g711(
            TransferCapability::Audio3k1,
            Law::Ulaw,
        )),
        raw(0x04, &[0x88, 0x90]),
        raw(0x04, &[0x80]),
        RawIe::from_ie(&ChannelId::from_sel(ChannelSel::Any)),
        raw(0x18, &[]),
        raw(0x18, &[0xA9, 0x93, 0x80, 0x00, 0x01]),
        RawIe::from_ie(&CauseIe::new(Cause::NORMAL_CLEARING, Location::User)),
        RawIe::from_ie(&CauseIe::new(Cause::USER_BUSY, Location::PublicLocal)),
        raw(0x08, &[0x80, 0x80]),
        RawIe::from_ie(&number("123")),
        raw(0x70, &[0x81, 0x1B]),
        RawIe::single(0xA1),
        raw(0x01, &[0]),
        RawIe::from_ie(&Progress::new(
            Location::PublicLocal,
            ProgressDescription::InbandAvailable,
        )),
        RawIe::from_ie(&ChannelId::b_channels(&[1, 2, 3], true)),
    ];
    for ch in [1, 5, 16, 23, 24, 31, 40] {
        menu.push(RawIe::from_ie(&ChannelId::from_sel(ChannelSel::Exclusive(
            ch,
        ))));
        menu.push(RawIe::from_ie(&ChannelId::from_sel(ChannelSel::Preferred(
            ch,
        ))));
    }
    for s in [0u8, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 19, 22, 25, 61, 40] {
        menu.push(RawIe::from_ie(&CallState::new(CallStateValue::from_bits(
            s,
        ))));
    }
    for c in [0u8, 6, 7, 3] {
        menu.push(RawIe::from_ie(&RestartIndicator {
            class: RestartClass::from_bits(c),
        }));
    }
    menu
}

/// Makes request `what` (`REQ_*`) of `cc` on its call number `call`
/// (modulo the live calls), `arg` choosing channels, causes and flags.
/// Refusals are part of the game: the result is dropped.
pub fn request(cc: &mut CallControl, now: Instant, what: u8, call: usize, arg: u8) {
    let ids = cc.call_ids();
    let id = ids.get(call % ids.len().max(1)).copied();
    let ch = arg % 33;
    let cause = Cause::new(arg % 127 + 1).unwrap_or(Cause::NORMAL_CLEARING);
    let mut req = OutgoingCall::new(number("555"));
    req.channel = match arg % 3 {
        0 => ChannelSel::Any,
        1 => ChannelSel::Exclusive(ch),
        _ => ChannelSel::Preferred(ch),
    };
    req.sending_complete = arg % 2 == 0;
    let _ = match (what, id) {
        (REQ_SETUP, _) => cc.setup(now, req).map(|_| ()).map_err(|_| ()),
        (REQ_PROCEEDING, Some(id)) => cc.proceeding(now, id).map_err(|_| ()),
        (REQ_ALERTING, Some(id)) => cc.alerting(now, id, arg % 2 == 0).map_err(|_| ()),
        (REQ_CONNECT, Some(id)) => cc.connect(now, id).map_err(|_| ()),
        (REQ_DISCONNECT, Some(id)) => cc.disconnect(now, id, cause).map_err(|_| ()),
        (REQ_REJECT, Some(id)) => cc.reject(now, id, cause).map_err(|_| ()),
        (REQ_SETUP_ACK, Some(id)) => cc.setup_ack(now, id).map_err(|_| ()),
        (REQ_INFORMATION, Some(id)) => cc
            .information(now, id, &number("9"), arg % 2 == 0)
            .map_err(|_| ()),
        (REQ_RESTART, _) => cc.restart_channel(now, ch).map_err(|_| ()),
        (REQ_RESTART_ALL, _) => {
            cc.restart_all(now);
            Ok(())
        }
        (REQ_ENQUIRE, Some(id)) => cc.enquire(now, id).map_err(|_| ()),
        (REQ_PROGRESS, Some(id)) => cc
            .progress(now, id, ProgressDescription::from_bits(arg))
            .map_err(|_| ()),
        _ => Ok(()),
    };
}

/// What a run reached (for the seed test).
#[derive(Debug, Clone, Default)]
pub struct Reached {
    pub incoming: u64,
    pub connected: u64,
    pub released: u64,
    pub restarted: u64,
}

/// The fuzz entry point.
pub fn run(data: &[u8]) {
    drive(data);
}

/// Runs an input and says what it reached.
pub fn drive(data: &[u8]) -> Reached {
    let mut input = Input::new(data);
    let cfg = input.u8();
    let side = if cfg & 1 == 0 {
        Side::User
    } else {
        Side::Network
    };
    let variant = if cfg & 2 == 0 {
        Variant::Etsi
    } else {
        Variant::Ni2
    };
    let menu = ie_menu();
    let mut now = Instant::now();
    let mut cc = CallControl::new(Config::new(side, variant));
    cc.link_up(now);
    let mut released = HashSet::new();
    let mut reached = Reached::default();
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        match input.u8() % OPS {
            OP_ADVANCE => {
                now += Duration::from_millis(u64::from(input.u16()) * 10);
                cc.handle_timeout(now);
                assert_nothing_due(&cc, now);
            }
            OP_NEXT_TIMEOUT => {
                if let Some(t) = cc.poll_timeout() {
                    now = now.max(t);
                }
                cc.handle_timeout(now);
                assert_nothing_due(&cc, now);
            }
            OP_LINK_DOWN => cc.link_down(now),
            OP_LINK_UP => cc.link_up(now),
            OP_RAW => cc.receive(now, input.bytes8()),
            OP_MESSAGE => {
                let k = input.u8();
                let kind = if k & 0x80 != 0 {
                    k & 0x7F
                } else {
                    KINDS[usize::from(k) % KINDS.len()]
                };
                let cr = input.u8();
                let call_ref = CallRef {
                    value: u16::from(cr % 8),
                    from_originator: cr & 0x80 == 0,
                    len: if cr & 0x40 == 0 { 2 } else { 1 },
                };
                let mut m = Message::new(call_ref, MessageType::from_u8(kind));
                for _ in 0..input.u8() % 6 {
                    let i = usize::from(input.u8()) % menu.len();
                    if let Some(ie) = menu.get(i) {
                        m.ies.push_raw(ie.clone());
                    }
                }
                if let Ok(bytes) = m.to_bytes() {
                    cc.receive(now, &bytes);
                }
            }
            _ => {
                let (what, call, arg) = (input.u8() % REQS, input.u8(), input.u8());
                request(&mut cc, now, what, usize::from(call), arg);
            }
        }
        check(&mut cc, &mut released, &mut reached);
    }
    reached
}

/// After `handle_timeout(now)` nothing may still be due at `now`: the
/// driver would spin.
fn assert_nothing_due(cc: &CallControl, now: Instant) {
    assert!(
        cc.poll_timeout().is_none_or(|t| t > now),
        "a timer is still due after handle_timeout"
    );
}

fn check(cc: &mut CallControl, released: &mut HashSet<CallId>, reached: &mut Reached) {
    while let Some(bytes) = cc.poll_transmit() {
        assert!(
            Message::decode(&bytes).is_ok(),
            "call control sent {bytes:02x?}"
        );
    }
    while let Some(e) = cc.poll_event() {
        if let Some(id) = e.call() {
            assert!(!released.contains(&id), "{e:?} after the call's release");
        }
        match e {
            CallEvent::Released { call, .. } => {
                released.insert(call);
                reached.released += 1;
            }
            CallEvent::Incoming(_) => reached.incoming += 1,
            CallEvent::Connected { .. } => reached.connected += 1,
            CallEvent::ChannelsRestarted { .. } => reached.restarted += 1,
            _ => {}
        }
    }
    if let Err(e) = cc.check_invariants() {
        panic!("call control's books: {e}");
    }
}

/// A message op with elements from the menu picked by value.
fn message(s: &mut Seed, menu: &[RawIe], kind: u8, cr: u8, ies: &[RawIe]) {
    s.u8(OP_MESSAGE).u8(0x80 | kind).u8(cr);
    s.u8(ies.len() as u8);
    for ie in ies {
        let i = menu.iter().position(|m| m == ie).unwrap_or(0);
        s.u8(i as u8);
    }
}

fn req(s: &mut Seed, what: u8, call: u8, arg: u8) {
    s.u8(OP_REQUEST).u8(what).u8(call).u8(arg);
}

/// Seeds: a network side answering a user's call and clearing it; a
/// user side placing a call answered by the network, then a RESTART;
/// a user side whose active call outlives a link failure; overlap
/// receiving running out of T302.
pub fn seeds() -> Vec<Vec<u8>> {
    let menu = ie_menu();
    let speech = RawIe::from_ie(&BearerCapability::g711(
        TransferCapability::Speech,
        Law::Alaw,
    ));
    let excl = |ch| RawIe::from_ie(&ChannelId::from_sel(ChannelSel::Exclusive(ch)));
    let called = RawIe::from_ie(&number("123"));
    let normal = RawIe::from_ie(&CauseIe::new(Cause::NORMAL_CLEARING, Location::User));
    let restart = RawIe::from_ie(&RestartIndicator {
        class: RestartClass::Indicated,
    });
    // Call reference octets: value 1, flag "from the originator" (the
    // peer's call) or not (ours).
    let (theirs, ours) = (0x01, 0x81);
    let mut seeds = Vec::new();

    let mut s = Seed::new();
    s.u8(1);
    message(
        &mut s,
        &menu,
        0x05,
        theirs,
        &[speech.clone(), excl(1), called.clone()],
    );
    req(&mut s, REQ_PROCEEDING, 0, 0);
    req(&mut s, REQ_ALERTING, 0, 0);
    req(&mut s, REQ_CONNECT, 0, 0);
    message(&mut s, &menu, 0x0F, theirs, &[]);
    message(&mut s, &menu, 0x45, theirs, std::slice::from_ref(&normal));
    message(&mut s, &menu, 0x5A, theirs, &[]);
    seeds.push(s.into_bytes());

    let mut s = Seed::new();
    s.u8(0);
    req(&mut s, REQ_SETUP, 0, 1);
    message(&mut s, &menu, 0x02, ours, &[excl(1)]);
    message(&mut s, &menu, 0x01, ours, &[]);
    message(&mut s, &menu, 0x07, ours, &[]);
    s.u8(OP_ADVANCE).u16(1000);
    message(&mut s, &menu, 0x46, 0x00, &[excl(1), restart.clone()]);
    req(&mut s, REQ_SETUP, 0, 0);
    s.u8(OP_NEXT_TIMEOUT).u8(OP_NEXT_TIMEOUT);
    seeds.push(s.into_bytes());

    let mut s = Seed::new();
    s.u8(0);
    message(
        &mut s,
        &menu,
        0x05,
        theirs,
        &[speech.clone(), excl(5), called.clone()],
    );
    req(&mut s, REQ_CONNECT, 0, 0);
    message(&mut s, &menu, 0x0F, theirs, &[]);
    s.u8(OP_LINK_DOWN).u8(OP_ADVANCE).u16(1000).u8(OP_LINK_UP);
    message(
        &mut s,
        &menu,
        0x7D,
        theirs,
        &[
            normal,
            RawIe::from_ie(&CallState::new(CallStateValue::Active)),
        ],
    );
    req(&mut s, REQ_DISCONNECT, 0, 16);
    s.u8(OP_NEXT_TIMEOUT)
        .u8(OP_NEXT_TIMEOUT)
        .u8(OP_NEXT_TIMEOUT);
    seeds.push(s.into_bytes());

    let mut s = Seed::new();
    s.u8(3);
    message(&mut s, &menu, 0x05, theirs, &[speech, excl(23)]);
    req(&mut s, REQ_SETUP_ACK, 0, 0);
    message(&mut s, &menu, 0x7B, theirs, &[called]);
    s.u8(OP_NEXT_TIMEOUT);
    req(&mut s, REQ_REJECT, 0, 28);
    s.u8(OP_RAW).u8(3).raw(&[0x08, 0x02, 0x00]);
    seeds.push(s.into_bytes());
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_reach_answered_calls_releases_and_restarts() {
        let mut total = Reached::default();
        for s in seeds() {
            let r = drive(&s);
            total.incoming += r.incoming;
            total.connected += r.connected;
            total.released += r.released;
            total.restarted += r.restarted;
        }
        assert!(total.incoming >= 3, "{total:?}");
        assert!(total.connected >= 3, "{total:?}");
        assert!(total.released >= 3, "{total:?}");
        assert!(total.restarted >= 1, "{total:?}");
    }
}
