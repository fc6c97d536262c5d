//! [`CallControl`]: the Q.931 calls of one D-channel, user side or
//! network side. This file owns the struct, its configuration, the
//! sans-IO surface (poll for messages, events and the next deadline;
//! feed link indications and timeouts) and the helpers the other parts
//! share. The procedures live beside it: `api.rs` (requests from the
//! layer above), `inbound.rs` (messages establishing a call),
//! `clearing.rs` (clearing and STATUS), `expiry.rs` (timers),
//! `restart.rs` (RESTART).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use super::call_state::{Call, RefKey, State};
use super::channels::{Channels, Hunt};
use super::events::{CallEvent, CallId};
use super::ie::{CallStateValue, CauseIe, Location};
use super::restart::Restarts;
use super::timers::{CallTimer, Timers};
use super::{CallRef, Message, Variant};
use crate::call::cause::Cause;
use crate::codec::Law;

/// Which side of the user-network interface this end plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Terminal equipment (rivr behind a carrier's PRI: the usual case).
    User,
    /// The switch (rivr feeding a PBX, or the far end in tests).
    Network,
}

/// How a D-channel's call control is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub side: Side,
    pub variant: Variant,
    /// The G.711 law SETUPs offer.
    pub law: Law,
    /// The in-service B-channels (E1 timeslots 1–15, 17–31; T1 1–23).
    /// Numbers that are not B-channels of the variant are dropped.
    pub b_channels: Vec<u8>,
    pub timers: Timers,
    pub hunt: Hunt,
}

impl Config {
    /// Every B-channel of the variant's span in service, its usual law,
    /// Q.931's timers and the side's usual hunting order.
    pub fn new(side: Side, variant: Variant) -> Config {
        Config {
            side,
            variant,
            law: variant.default_law(),
            b_channels: (1..=31).filter(|n| variant.is_b_channel(*n)).collect(),
            timers: Timers::defaults(side),
            hunt: Hunt::default_for(side),
        }
    }
}

/// The call control of one D-channel (see the module docs for the run
/// loop and the rules).
#[derive(Debug)]
pub struct CallControl {
    pub(super) side: Side,
    pub(super) variant: Variant,
    pub(super) law: Law,
    pub(super) timers: Timers,
    pub(super) channels: Channels,
    pub(super) calls: BTreeMap<CallId, Call>,
    pub(super) refs: HashMap<RefKey, CallId>,
    pub(super) link_up: bool,
    pub(super) restart: Restarts,
    next_id: u64,
    next_ref: u16,
    tx: VecDeque<Vec<u8>>,
    events: VecDeque<CallEvent>,
}

impl CallControl {
    /// Call control with no calls and the data link down (call
    /// [`CallControl::link_up`] once LAPD is established).
    pub fn new(cfg: Config) -> CallControl {
        let variant = cfg.variant;
        let channels = cfg
            .b_channels
            .iter()
            .copied()
            .filter(|n| variant.is_b_channel(*n));
        CallControl {
            side: cfg.side,
            variant,
            law: cfg.law,
            channels: Channels::new(channels, cfg.hunt),
            timers: cfg.timers,
            calls: BTreeMap::new(),
            refs: HashMap::new(),
            link_up: false,
            restart: Restarts::default(),
            next_id: 1,
            next_ref: 1,
            tx: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The next layer 3 message for LAPD to send (an I-frame's contents).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.tx.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    /// When [`CallControl::handle_timeout`] is next due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let calls = self.calls.values().filter_map(Call::next_timeout);
        calls.chain(self.restart.t316).min()
    }

    /// Runs every timer due at `now`; a spurious call does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<CallId> = self
            .calls
            .values()
            .filter(|c| c.next_timeout().is_some_and(|t| t <= now))
            .map(|c| c.id)
            .collect();
        for id in due {
            // A handler may end the call; then its other timers go too.
            while let Some(t) = self
                .calls
                .get_mut(&id)
                .and_then(|c| c.timers.take_expired(now))
            {
                self.on_call_timer(now, id, t);
            }
        }
        self.restart_timeout(now);
    }

    /// LAPD is established (or re-established, §5.8.9): the active calls
    /// that survived the outage are checked with STATUS ENQUIRY.
    pub fn link_up(&mut self, now: Instant) {
        self.link_up = true;
        let waiting: Vec<CallId> = self
            .calls
            .values()
            .filter(|c| c.timers.is_running(CallTimer::T309))
            .map(|c| c.id)
            .collect();
        for id in waiting {
            if let Some(c) = self.calls.get_mut(&id) {
                c.timers.stop(CallTimer::T309);
                c.enquiries = 0;
            }
            self.enquire_call(now, id);
        }
    }

    /// LAPD is released or failed (§5.8.9): calls not active are cleared
    /// at once, active ones wait T309 for the link to return — their
    /// B-channels still carry the media.
    pub fn link_down(&mut self, now: Instant) {
        self.link_up = false;
        let ids: Vec<CallId> = self.calls.keys().copied().collect();
        for id in ids {
            let Some(c) = self.calls.get_mut(&id) else {
                continue;
            };
            if c.state == State::Active {
                if !c.timers.is_running(CallTimer::T309) {
                    c.timers.set(CallTimer::T309, now + self.timers.t309);
                }
                // An enquiry cannot be answered now; the one sent when the
                // link returns replaces it.
                c.timers.stop(CallTimer::T322);
            } else {
                c.cause.get_or_insert(Cause::DESTINATION_OUT_OF_ORDER);
                self.finish(id);
            }
        }
    }

    /// Whether the data link is up (as last told).
    pub fn is_link_up(&self) -> bool {
        self.link_up
    }

    /// A call's state as Q.931 numbers it for this side; `None` once
    /// released.
    pub fn call_state(&self, call: CallId) -> Option<CallStateValue> {
        self.calls.get(&call).map(|c| c.state.wire(self.side))
    }

    /// The channel a call holds.
    pub fn channel(&self, call: CallId) -> Option<u8> {
        self.calls.get(&call).and_then(|c| c.channel)
    }

    /// The call holding a channel.
    pub fn channel_holder(&self, channel: u8) -> Option<CallId> {
        self.channels.holder(channel)
    }

    /// How many calls exist (in any state).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// How many channels a new call could take now.
    pub fn free_channels(&self) -> usize {
        self.channels.free_count()
    }

    // Helpers shared by the procedures.

    pub(super) fn send(&mut self, msg: &Message) {
        // Our messages are built from checked parts; the one way to fail
        // (an element over 255 octets) is caught by the requests that
        // take text from the layer above, so nothing is lost here.
        if let Ok(bytes) = msg.to_bytes() {
            self.tx.push_back(bytes);
        }
    }

    pub(super) fn send_bytes(&mut self, bytes: Vec<u8>) {
        self.tx.push_back(bytes);
    }

    pub(super) fn event(&mut self, e: CallEvent) {
        self.events.push_back(e);
    }

    /// Where the causes and progress we send come from: the user, or the private
    /// network rivr is when it plays the network side.
    pub(super) fn location(&self) -> Location {
        match self.side {
            Side::User => Location::User,
            Side::Network => Location::PrivateLocal,
        }
    }

    pub(super) fn cause_ie(&self, cause: Cause) -> CauseIe {
        CauseIe::new(cause, self.location())
    }

    /// STATUS about a call, with our state for it.
    pub(super) fn status_for(&mut self, id: CallId, cause: CauseIe) {
        if let Some(c) = self.calls.get(&id) {
            let msg = Message::status(c.cref, cause, c.state.wire(self.side));
            self.send(&msg);
        }
    }

    pub(super) fn new_call_id(&mut self) -> CallId {
        let id = CallId(self.next_id);
        self.next_id += 1;
        id
    }

    /// A call reference value not used by any call we placed (1–32767).
    pub(super) fn new_call_ref(&mut self) -> Option<u16> {
        for _ in 0..0x7FFF {
            let v = self.next_ref;
            self.next_ref = if v >= 0x7FFF { 1 } else { v + 1 };
            if !self.refs.contains_key(&RefKey {
                value: v,
                ours: true,
            }) {
                return Some(v);
            }
        }
        None
    }

    pub(super) fn insert_call(&mut self, call: Call) {
        self.refs
            .insert(RefKey::received(call.cref.reply()), call.id);
        self.calls.insert(call.id, call);
    }

    /// Ends a call: frees its channel and call reference and reports
    /// `Released` (the only place that does, so exactly once).
    pub(super) fn finish(&mut self, id: CallId) {
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        self.refs.remove(&RefKey::received(call.cref.reply()));
        if let Some(ch) = call.channel {
            self.channels.release(ch, id);
        }
        let cause = call.cause.unwrap_or(Cause::NORMAL_UNSPECIFIED);
        self.event(CallEvent::Released { call: id, cause });
    }

    /// Moves a call to another channel (or none), keeping the books.
    pub(super) fn set_channel(&mut self, id: CallId, ch: Option<u8>) -> bool {
        let Some(old) = self.calls.get(&id).map(|c| c.channel) else {
            return false;
        };
        if old == ch {
            return true;
        }
        if let Some(new) = ch {
            if !self.channels.claim(new, id) {
                return false;
            }
        }
        if let Some(o) = old {
            self.channels.release(o, id);
        }
        if let Some(c) = self.calls.get_mut(&id) {
            c.channel = ch;
        }
        true
    }

    pub(super) fn send_call_ref(&self, id: CallId) -> Option<CallRef> {
        self.calls.get(&id).map(|c| c.cref)
    }

    /// The books agree with themselves: every held channel is held by a
    /// live call that says so, every call's channel is booked to it, no
    /// channel is both held and restarting, call references map both
    /// ways. For tests and fuzzing; describes the first problem found.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        for (ch, id) in self.channels.held() {
            let Some(c) = self.calls.get(&id) else {
                return Err(format!("channel {ch} held by released {id}"));
            };
            if c.channel != Some(ch) {
                return Err(format!(
                    "channel {ch} booked to {id}, which has {:?}",
                    c.channel
                ));
            }
            if self.channels.is_restarting(ch) {
                return Err(format!("channel {ch} in use and restarting"));
            }
            if !self.channels.exists(ch) {
                return Err(format!("channel {ch} not in service"));
            }
        }
        for c in self.calls.values() {
            if let Some(ch) = c.channel {
                if self.channels.holder(ch) != Some(c.id) {
                    return Err(format!("{} has channel {ch} not booked to it", c.id));
                }
            }
            if self.refs.get(&RefKey::received(c.cref.reply())) != Some(&c.id) {
                return Err(format!("{} missing from the call references", c.id));
            }
        }
        if self.refs.len() != self.calls.len() {
            return Err("stale call references".into());
        }
        Ok(())
    }

    /// Every call, for tests and fuzzing that act on calls at random.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn call_ids(&self) -> Vec<CallId> {
        self.calls.keys().copied().collect()
    }

    /// The call reference (value, placed by this side) of the active
    /// call on `channel`, for checks across the interface in tests.
    #[cfg(test)]
    pub(crate) fn active_on(&self, channel: u8) -> Option<(u16, bool)> {
        let c = self.calls.get(&self.channels.holder(channel)?)?;
        (c.state == State::Active).then_some((c.cref.value, c.cref.from_originator))
    }
}
