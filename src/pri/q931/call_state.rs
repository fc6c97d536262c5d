//! One call's state: where it is in Q.931's state machine, which channel
//! it holds, its timers and retransmission counts, and the cause it ends
//! with.
//!
//! States are kept by role — did this side send the SETUP or receive it —
//! because the procedures are the same on both sides of the interface
//! for a role. Q.931 numbers its states from the user's point of view
//! (§2.1: U1/N1 is "the user sent SETUP" on both sides), so the number a
//! state goes out as in STATUS depends on the side too ([`State::wire`]).

use std::time::Instant;

use super::calls::Side;
use super::events::CallId;
use super::ie::CallStateValue;
use super::message::CallRef;
use super::timers::CallTimers;
use super::ChannelSel;
use crate::call::cause::Cause;

/// Who sent the SETUP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Originator,
    Terminator,
}

/// A call's state (Null is the call not existing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    // Calls this side placed.
    /// SETUP sent (U1 / N6).
    SetupSent,
    /// SETUP ACKNOWLEDGE received (U2 / N25).
    OverlapSending,
    /// CALL PROCEEDING received (U3 / N9).
    OutgoingProceeding,
    /// ALERTING received (U4 / N7).
    Delivered,
    // Calls the peer placed.
    /// SETUP received, not answered yet (U6 / N1).
    SetupReceived,
    /// SETUP ACKNOWLEDGE sent (U25 / N2).
    OverlapReceiving,
    /// CALL PROCEEDING sent (U9 / N3).
    IncomingProceeding,
    /// ALERTING sent (U7 / N4).
    Received,
    /// CONNECT sent, waiting for CONNECT ACKNOWLEDGE (U8; the network
    /// side goes straight to Active when it sends CONNECT).
    ConnectSent,
    // Both.
    Active,
    /// DISCONNECT sent (U11 / N12). A received DISCONNECT is answered at
    /// once with RELEASE, so U12 / N11 are passed through.
    DisconnectSent,
    /// RELEASE sent (U19 / N19).
    ReleaseSent,
}

impl State {
    /// The call state value this side reports in STATUS.
    pub(crate) fn wire(self, side: Side) -> CallStateValue {
        use CallStateValue as V;
        let user = side == Side::User;
        let pick = |u: V, n: V| if user { u } else { n };
        match self {
            State::SetupSent => pick(V::CallInitiated, V::CallPresent),
            State::OverlapSending => pick(V::OverlapSending, V::OverlapReceiving),
            State::OutgoingProceeding => pick(V::OutgoingProceeding, V::IncomingProceeding),
            State::Delivered => pick(V::CallDelivered, V::CallReceived),
            State::SetupReceived => pick(V::CallPresent, V::CallInitiated),
            State::OverlapReceiving => pick(V::OverlapReceiving, V::OverlapSending),
            State::IncomingProceeding => pick(V::IncomingProceeding, V::OutgoingProceeding),
            State::Received => pick(V::CallReceived, V::CallDelivered),
            State::ConnectSent => pick(V::ConnectRequest, V::Active),
            State::Active => V::Active,
            State::DisconnectSent => pick(V::DisconnectRequest, V::DisconnectIndication),
            State::ReleaseSent => V::ReleaseRequest,
        }
    }

    pub(crate) fn is_clearing(self) -> bool {
        matches!(self, State::DisconnectSent | State::ReleaseSent)
    }

    fn is_establishing(self) -> bool {
        !self.is_clearing() && self != State::Active
    }
}

/// A call reference as a key: its value and whether this side allocated
/// it (a received message's flag says the opposite of ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RefKey {
    pub(crate) value: u16,
    pub(crate) ours: bool,
}

impl RefKey {
    /// The call a received message is about.
    pub(crate) fn received(cr: CallRef) -> RefKey {
        RefKey {
            value: cr.value,
            ours: !cr.from_originator,
        }
    }
}

/// One call.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) id: CallId,
    /// The call reference as this side sends it.
    pub(crate) cref: CallRef,
    pub(crate) role: Role,
    pub(crate) state: State,
    /// The channel the call holds, if any (none while a glare left our
    /// SETUP without one, or after the peer named one we cannot use).
    pub(crate) channel: Option<u8>,
    /// For a call we placed: the peer's first answer settled the
    /// channel. Until then our pick is tentative and may be yielded to
    /// the peer's SETUP in a glare. Always true for the peer's calls.
    pub(crate) confirmed: bool,
    /// For a call we placed, the channel our SETUP asked for.
    pub(crate) offered: ChannelSel,
    /// For the peer's calls: the channel went out in our first answer.
    pub(crate) channel_sent: bool,
    /// Our SETUP, for the T303 retransmission (emptied once answered).
    pub(crate) setup: Vec<u8>,
    pub(crate) setup_sends: u8,
    pub(crate) release_sends: u8,
    pub(crate) enquiries: u8,
    /// The first clearing cause, sent or received.
    pub(crate) cause: Option<Cause>,
    /// The cause our RELEASE carries (kept for the T308 retransmission).
    pub(crate) release_cause: Option<Cause>,
    pub(crate) timers: CallTimers,
}

impl Call {
    pub(crate) fn new(id: CallId, cref: CallRef, role: Role, state: State) -> Call {
        Call {
            id,
            cref,
            role,
            state,
            channel: None,
            confirmed: role == Role::Terminator,
            offered: ChannelSel::Any,
            channel_sent: false,
            setup: Vec::new(),
            setup_sends: 0,
            release_sends: 0,
            enquiries: 0,
            cause: None,
            release_cause: None,
            timers: CallTimers::default(),
        }
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Whether the user placed the call (Q.931's state numbers are
    /// user-centred: 1–4 for the user's calls, 6–9 and 25 for the
    /// network's).
    fn user_originated(&self, side: Side) -> bool {
        (self.role == Role::Originator) == (side == Side::User)
    }
}

/// How a peer's reported state compares with ours (§5.8.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compat {
    Compatible,
    /// The peer has no such call.
    PeerNull,
    Incompatible,
}

/// Whether the peer's state `peer` fits ours, allowing for messages in
/// flight: Q.931 leaves the table to the implementation beyond the Null
/// rules. A state from the other direction's numbering is never right;
/// a peer already active while we are not (or the reverse) is right only
/// if the CONNECT or CONNECT ACKNOWLEDGE that moves the laggard can be
/// in flight; clearing on either side fits anything (its DISCONNECT or
/// RELEASE is on the way).
pub(crate) fn compat(side: Side, call: &Call, peer: CallStateValue) -> Compat {
    use CallStateValue as V;
    let user_calls = matches!(
        peer,
        V::CallInitiated | V::OverlapSending | V::OutgoingProceeding | V::CallDelivered
    );
    let network_calls = matches!(
        peer,
        V::CallPresent
            | V::CallReceived
            | V::ConnectRequest
            | V::IncomingProceeding
            | V::OverlapReceiving
    );
    let user_originated = call.user_originated(side);
    match peer {
        V::Null => return Compat::PeerNull,
        V::DisconnectRequest | V::DisconnectIndication | V::ReleaseRequest | V::CallAbort => {
            return Compat::Compatible
        }
        V::Active => {}
        _ if user_calls && user_originated => {}
        _ if network_calls && !user_originated => {}
        _ => return Compat::Incompatible,
    }
    if call.state.is_clearing() {
        return Compat::Compatible;
    }
    let fits = match (call.state == State::Active, peer == V::Active) {
        (true, true) => true,
        // The network is active first: the user learns from CONNECT (its
        // own call) or from CONNECT ACKNOWLEDGE (the network's call).
        (true, false) => side == Side::Network && (user_originated || peer == V::ConnectRequest),
        (false, true) => {
            side == Side::User
                && (call.role == Role::Originator || call.state == State::ConnectSent)
        }
        (false, false) => call.state.is_establishing(),
    };
    if fits {
        Compat::Compatible
    } else {
        Compat::Incompatible
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CallStateValue as V;

    fn call(role: Role, state: State) -> Call {
        Call::new(CallId(1), CallRef::new(1, true), role, state)
    }

    #[test]
    fn wire_numbers_are_user_centred() {
        assert_eq!(State::SetupSent.wire(Side::User), V::CallInitiated);
        assert_eq!(State::SetupSent.wire(Side::Network), V::CallPresent);
        assert_eq!(State::SetupReceived.wire(Side::Network), V::CallInitiated);
        assert_eq!(State::Received.wire(Side::User), V::CallReceived);
        assert_eq!(State::DisconnectSent.wire(Side::User), V::DisconnectRequest);
        assert_eq!(
            State::DisconnectSent.wire(Side::Network),
            V::DisconnectIndication
        );
    }

    #[test]
    fn compatibility_allows_messages_in_flight() {
        let c = |side, role, state, peer| compat(side, &call(role, state), peer);
        use Role::*;
        use Side::*;
        // Our own user call, network says it is proceeding: fine.
        assert_eq!(
            c(User, Originator, State::SetupSent, V::OutgoingProceeding),
            Compat::Compatible
        );
        // ... but a network-call state for it is wrong.
        assert_eq!(
            c(User, Originator, State::Delivered, V::CallReceived),
            Compat::Incompatible
        );
        // Network active, CONNECT on its way to the calling user.
        assert_eq!(
            c(User, Originator, State::Delivered, V::Active),
            Compat::Compatible
        );
        assert_eq!(
            c(Network, Terminator, State::Active, V::CallDelivered),
            Compat::Compatible
        );
        // The user is active on its own call, the network is not: wrong.
        assert_eq!(
            c(User, Originator, State::Active, V::CallDelivered),
            Compat::Incompatible
        );
        // Network's call: user sent CONNECT, network already active.
        assert_eq!(
            c(User, Terminator, State::ConnectSent, V::Active),
            Compat::Compatible
        );
        assert_eq!(
            c(User, Terminator, State::Received, V::Active),
            Compat::Incompatible
        );
        assert_eq!(
            c(Network, Originator, State::Active, V::ConnectRequest),
            Compat::Compatible
        );
        assert_eq!(
            c(User, Terminator, State::Active, V::Null),
            Compat::PeerNull
        );
        assert_eq!(
            c(User, Terminator, State::Active, V::ReleaseRequest),
            Compat::Compatible
        );
        assert_eq!(
            c(User, Terminator, State::Active, V::Other(40)),
            Compat::Incompatible
        );
    }
}
