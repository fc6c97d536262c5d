//! Legs of one worker joined to each other: which listener hears which
//! source, and the step of the tick that hands each listener its source's
//! audio and keys — between every leg's receiving and every leg's
//! sending, so a listener hears the frame its source heard on the same
//! tick. A join never crosses workers: the worker has no way to reach
//! another's legs without a lock per tick, so it refuses (the owner puts
//! both legs on one worker with `MediaPool::add_near`).

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::media::core::FRESH_KEYS;
use crate::media::events::{DigitSource, MediaEvent, MediaId};

use super::Worker;

/// `listener` hears `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Join {
    pub listener: MediaId,
    pub source: MediaId,
}

impl Worker {
    /// `listener` hears `source` from the next tick on, or the join is
    /// refused with [`MediaEvent::JoinRefused`] to whichever leg is here.
    pub(super) fn join(&mut self, listener: MediaId, source: MediaId) {
        let both_here = self.calls.contains_key(&source) && listener != source;
        let joined = match self.calls.get_mut(&listener).filter(|_| both_here) {
            Some(l) => match l.core.join() {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(listener = %listener, error = %e, "cannot create an Opus encoder for the joined audio");
                    false
                }
            },
            None => false,
        };
        if joined {
            self.joins.retain(|j| j.listener != listener);
            self.joins.push(Join { listener, source });
            tracing::debug!(%listener, %source, "joined");
            return;
        }
        tracing::debug!(%listener, %source, "join refused: not both on this worker");
        let told = self
            .calls
            .get(&listener)
            .or_else(|| self.calls.get(&source));
        if let Some(c) = told {
            c.events.emit(MediaEvent::JoinRefused { listener, source });
        }
    }

    /// `listener` stops hearing its source.
    pub(super) fn unjoin(&mut self, listener: MediaId) {
        self.joins.retain(|j| j.listener != listener);
        if let Some(l) = self.calls.get_mut(&listener) {
            l.core.leave();
        }
    }

    /// A leg is going: no join keeps it, and its listeners hear silence.
    pub(super) fn forget_joins(&mut self, call: MediaId) {
        for j in &self.joins {
            if j.source == call {
                if let Some(l) = self.calls.get_mut(&j.listener) {
                    l.core.leave();
                }
            }
        }
        self.joins
            .retain(|j| j.listener != call && j.source != call);
    }

    /// Hands every listener its source's frame and new keys for this tick.
    /// A panic here ends the listener.
    pub(super) fn mix(&mut self) {
        for j in &self.joins {
            let Some(source) = self.calls.get(&j.source) else {
                continue;
            };
            let pcm = *source.core.heard();
            let mut keys = [('\0', DigitSource::Simulated); FRESH_KEYS];
            let fresh = source.core.fresh_keys();
            let n = fresh.len().min(FRESH_KEYS);
            keys[..n].copy_from_slice(&fresh[..n]);
            let Some(listener) = self.calls.get_mut(&j.listener) else {
                continue;
            };
            let served = catch_unwind(AssertUnwindSafe(|| {
                listener.core.hear_joined(&pcm);
                for &(digit, from) in &keys[..n] {
                    tracing::debug!(%digit, source = %j.source, listener = %j.listener, "key relayed");
                    listener.core.relay_key(digit, from);
                }
            }));
            if let Err(panic) = served {
                super::log_call_panic(
                    self.index,
                    &self.failures,
                    j.listener,
                    "join",
                    panic.as_ref(),
                );
                self.failed.push(j.listener);
            }
        }
    }
}
