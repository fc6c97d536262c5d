//! What the server core needs from the world outside the signalling task:
//! RTP ports, media workers, script threads, the CDR file and rows. [`Env`] is the
//! seam: [`RealEnv`] does it for `rivr serve`; tests and the whole-server
//! fuzz target give the core an environment that only records, so the
//! path from a datagram to a started script runs on a virtual clock.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::sip_legs::DialogNote;
use super::Shared;
use crate::call::channel::{
    drop_keys_before_answer, CallShared, ChannelControl, ScriptSink, SigCommand,
    DIAL_AMD_CLASSIFIER, EARLY_MEDIA_CLASSIFIER,
};
use crate::call::control::{CallEvent, DialResult};
use crate::call::id::{CallId, LegId};
use crate::call::leg::Direction;
use crate::call::registry::{CdrRecord, ScriptStart};
use crate::codec::Codec;
use crate::media::events::{MediaEventSink, MediaId};
use crate::media::ports::PortPair;
use crate::media::rtp_session::RtpSessionConfig;
use crate::media::worker::{
    BChannelKind, BChannelSetup, MediaCallSetup, MediaCommand, MediaHandle,
};
use crate::script::runner::{self, Outcome};

/// The media of one leg, as the SIP glue negotiated it.
#[derive(Debug, Clone)]
pub struct MediaSpec {
    pub id: MediaId,
    pub session: RtpSessionConfig,
    pub codec: Codec,
    /// False until the remote address is known (an answer in the ACK).
    pub configured: bool,
    pub early_media_unverified: Duration,
}

/// The server core's effects. Every method is cheap and never blocks.
pub trait Env {
    /// Binds an RTP/RTCP port pair; returns its RTP port.
    fn reserve_rtp(&mut self) -> Result<u16, String>;
    /// Gives back a pair reserved but never handed to media.
    fn release_rtp(&mut self, port: u16);
    /// Hands a leg's media (on the pair reserved at `port`) to a worker.
    fn media_add(
        &mut self,
        call: CallId,
        leg: LegId,
        port: u16,
        spec: MediaSpec,
    ) -> Result<(), String>;
    /// Hands a PRI B-channel leg's media to a worker: the timeslot's
    /// channel at `path` (a socket or a DAHDI device, by `kind`, the
    /// span's transport), G.711 `codec` (the span's law).
    fn media_add_bchannel(
        &mut self,
        call: CallId,
        leg: LegId,
        path: std::path::PathBuf,
        kind: BChannelKind,
        codec: Codec,
    ) -> Result<(), String>;
    /// A command for a leg's media (ignored when the leg has none).
    fn media(&mut self, leg: LegId, cmd: MediaCommand);
    /// The leg is over: its media stops and its ports go back.
    fn media_remove(&mut self, leg: LegId);
    /// Starts the call's script on its own thread.
    fn start_script(&mut self, start: &ScriptStart) -> Result<(), String>;
    /// The call's signalling ended under its script: wake the script.
    fn call_gone(&mut self, call: CallId);
    /// What the call's script stored with `set_result`.
    fn results(&mut self, call: CallId) -> Vec<(String, String)>;
    /// One leg's record; the call's [`Env::call_closed`] follows its
    /// records.
    fn write_cdr(&mut self, record: &CdrRecord);
    /// The call is closed: forget whatever is kept for it, once its CDR
    /// records are stored ([`Env::cdr_stored`]).
    fn call_closed(&mut self, call: CallId);
    /// The store has the call's CDR rows (or gave up on them).
    fn cdr_stored(&mut self, call: CallId);
    /// Closed calls whose CDR rows are not yet stored.
    fn cdrs_pending(&self) -> usize;
    /// Generated ringback to a leg, on or off.
    fn ringback(&mut self, leg: LegId, on: bool);
    /// `listener` hears `source`'s audio (and keys).
    fn join(&mut self, listener: LegId, source: LegId);
    fn unjoin(&mut self, listener: LegId);
    /// The script's `dial()` is over.
    fn dial_ended(&mut self, call: CallId, result: DialResult);
    /// Where the dialog of a tagged call stands (for its campaign).
    fn dialog_note(&mut self, note: DialogNote);
    /// The script's `transfer()` is over.
    fn transfer_ended(&mut self, _call: CallId, _result: crate::call::control::TransferResult) {}
    /// Classify an outbound leg's early media (`on`), or stop.
    fn classify_early_media(&mut self, _leg: LegId, _on: bool) {}
    /// Answering-machine detection on a dialed party that answered.
    fn detect_machine(&mut self, _leg: LegId) {}
}

/// The play id ringback uses on a caller's media (scripts count up from 1).
pub const RINGBACK_PLAY_ID: u64 = u64::MAX - 1;

struct CallIo {
    shared: Arc<CallShared>,
    events_tx: Sender<CallEvent>,
    /// Taken by the script when it starts.
    events_rx: Option<Receiver<CallEvent>>,
}

/// The environment of `rivr serve`: real sockets, workers and threads.
pub struct RealEnv {
    shared: Arc<Shared>,
    reserved: HashMap<u16, PortPair>,
    legs: HashMap<LegId, (CallId, MediaHandle)>,
    calls: HashMap<CallId, CallIo>,
    /// The records of the call being closed, for the store.
    unsent: Vec<CdrRecord>,
    /// Closed calls still counted (`ServerCore::tracked`) until the store
    /// has their CDR rows.
    storing: HashSet<CallId>,
}

impl RealEnv {
    /// The media of a leg now (codec, jitter, loss), while it has media.
    pub fn live_media(&self, leg: LegId) -> Option<crate::media::worker::live::LiveMedia> {
        let (_, h) = self.legs.get(&leg)?;
        self.shared.media.live(h.id)
    }

    pub fn new(shared: Arc<Shared>) -> Self {
        RealEnv {
            shared,
            reserved: HashMap::new(),
            legs: HashMap::new(),
            calls: HashMap::new(),
            unsent: Vec::new(),
            storing: HashSet::new(),
        }
    }

    /// Where a new leg of `call` reports its media events, and a leg of
    /// the call already on a worker. The call's first leg talks to the
    /// script; a leg dialed later goes on the same worker as the first, so
    /// the two can be joined there, and only its failure is reported.
    fn leg_sink(
        &mut self,
        call: CallId,
        leg: LegId,
    ) -> (Box<dyn MediaEventSink>, Option<MediaHandle>) {
        let sig = self.shared.sig_tx.clone();
        let events = self.call_io(call).events_tx.clone();
        let near = self
            .legs
            .values()
            .find(|(c, _)| *c == call)
            .map(|(_, h)| h.clone());
        let sink = Box::new(ScriptSink {
            call,
            leg,
            events,
            sig,
            to_script: near.is_none(),
        });
        (sink, near)
    }

    fn call_io(&mut self, call: CallId) -> &mut CallIo {
        self.calls.entry(call).or_insert_with(|| {
            let (events_tx, events_rx) = crossbeam_channel::unbounded();
            CallIo {
                shared: Arc::new(CallShared::default()),
                events_tx,
                events_rx: Some(events_rx),
            }
        })
    }
}

impl Env for RealEnv {
    fn reserve_rtp(&mut self) -> Result<u16, String> {
        let ip = self.shared.config.sip.listen.ip();
        let pair = self.shared.ports.allocate(ip).map_err(|e| e.to_string())?;
        let port = pair.port;
        self.reserved.insert(port, pair);
        Ok(port)
    }

    fn release_rtp(&mut self, port: u16) {
        if self.reserved.remove(&port).is_some() {
            self.shared.ports.release(port);
        }
    }

    fn media_add(
        &mut self,
        call: CallId,
        leg: LegId,
        port: u16,
        spec: MediaSpec,
    ) -> Result<(), String> {
        let ports = self
            .reserved
            .remove(&port)
            .ok_or_else(|| format!("RTP port {port} was not reserved"))?;
        let (events, near) = self.leg_sink(call, leg);
        let setup = MediaCallSetup {
            call: spec.id,
            ports,
            session: spec.session,
            codec: spec.codec,
            configured: spec.configured,
            events,
            allocator: self.shared.ports.clone(),
            early_media_unverified: spec.early_media_unverified,
            inband_dtmf: self.shared.config.media.inband_dtmf,
        };
        let added = match &near {
            Some(n) => self.shared.media.add_near(setup, n),
            None => self.shared.media.add(setup),
        };
        match added {
            Some(h) => {
                self.legs.insert(leg, (call, h));
                Ok(())
            }
            None => {
                // The setup (and its sockets) is gone with the failed send.
                self.shared.ports.release(port);
                Err("no media worker".into())
            }
        }
    }

    fn media_add_bchannel(
        &mut self,
        call: CallId,
        leg: LegId,
        path: std::path::PathBuf,
        kind: BChannelKind,
        codec: Codec,
    ) -> Result<(), String> {
        let (events, near) = self.leg_sink(call, leg);
        let setup = BChannelSetup {
            call: MediaId(leg.0),
            path,
            kind,
            codec,
            events,
        };
        let h = self
            .shared
            .media
            .add_bchannel(setup, near.as_ref())
            .ok_or("no media worker")?;
        self.legs.insert(leg, (call, h));
        Ok(())
    }

    fn media(&mut self, leg: LegId, cmd: MediaCommand) {
        if let Some((_, h)) = self.legs.get(&leg) {
            let _ = h.send(cmd);
        }
    }

    fn media_remove(&mut self, leg: LegId) {
        if let Some((_, h)) = self.legs.remove(&leg) {
            let _ = h.send(MediaCommand::Remove { call: h.id });
        }
    }

    fn start_script(&mut self, start: &ScriptStart) -> Result<(), String> {
        let media = self
            .legs
            .get(&start.leg)
            .map(|(_, h)| h.clone())
            .ok_or("the call has no media")?;
        let io = self.call_io(start.call);
        let events = io.events_rx.take().ok_or("the script already started")?;
        if start.info.direction == Direction::Outbound.as_str() {
            let dropped = drop_keys_before_answer(&events, &io.events_tx);
            if dropped > 0 {
                tracing::info!(call = %start.call, dropped, "keys heard before the answer are not type-ahead");
            }
        }
        let call_shared = io.shared.clone();
        let ctl = ChannelControl {
            call: start.call,
            sig: self.shared.sig_tx.clone(),
            media,
            events,
            prompts: self.shared.prompts.clone(),
            shared: call_shared,
            sms: self.shared.sms.clone(),
            recordings: crate::call::recordings::Recordings::new(
                self.shared.config.media.recordings.clone(),
            ),
            dnc: self
                .shared
                .store
                .as_ref()
                .map(|store| crate::sms::flow::dnc::DncWriter {
                    store: store.clone(),
                    runtime: tokio::runtime::Handle::current(),
                    country: self.shared.config.sms.country,
                }),
            party: if start.info.direction == Direction::Outbound.as_str() {
                start.info.to.clone()
            } else {
                start.info.from.clone()
            },
        };
        let done_tx = self.shared.sig_tx.clone();
        let call = start.call;
        runner::spawn(
            self.shared.scripts.clone(),
            start.script.clone(),
            start.info.clone(),
            Box::new(ctl),
            move |outcome: &Outcome| {
                let outcome = match outcome {
                    Outcome::Completed => "completed".to_string(),
                    Outcome::HungUp => "hangup".to_string(),
                    Outcome::CallerHungUp => "caller-hung-up".to_string(),
                    Outcome::Failed(m) => format!("failed: {m}"),
                };
                let _ = done_tx.send(SigCommand::ScriptDone { call, outcome });
            },
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    fn call_gone(&mut self, call: CallId) {
        if let Some(io) = self.calls.get(&call) {
            io.shared.gone.store(true, Ordering::Release);
            let _ = io.events_tx.send(CallEvent::Hangup);
        }
    }

    fn results(&mut self, call: CallId) -> Vec<(String, String)> {
        self.calls
            .get(&call)
            .map(|io| io.shared.results())
            .unwrap_or_default()
    }

    fn dialog_note(&mut self, note: DialogNote) {
        if let Some(tap) = &self.shared.dialog_tap {
            let _ = tap.send(note);
        }
    }

    fn write_cdr(&mut self, record: &CdrRecord) {
        self.shared.call_counts.record(record);
        // The file first: whatever the store does, the line is written.
        if let Some(file) = &self.shared.cdr {
            file.write(record);
        }
        if self.shared.cdr_store.is_some() {
            self.unsent.push(record.clone());
        }
        if let Some(tap) = &self.shared.cdr_tap {
            let _ = tap.send(record.clone());
        }
    }

    fn call_closed(&mut self, call: CallId) {
        if let Some(io) = self.calls.remove(&call) {
            io.shared.gone.store(true, Ordering::Release);
        }
        let records = std::mem::take(&mut self.unsent);
        let (Some(queue), Some(first)) = (&self.shared.cdr_store, records.first()) else {
            return;
        };
        let id = first.call_id.clone();
        if queue.send(call, records) {
            self.storing.insert(call);
        } else {
            tracing::error!(call = %id, "CDR rows not stored: the store writer is gone");
        }
    }

    fn cdr_stored(&mut self, call: CallId) {
        self.storing.remove(&call);
    }

    fn cdrs_pending(&self) -> usize {
        self.storing.len()
    }

    fn detect_machine(&mut self, leg: LegId) {
        if let Some((_, h)) = self.legs.get(&leg) {
            let _ = h.send(MediaCommand::Classify {
                call: h.id,
                id: DIAL_AMD_CLASSIFIER,
                kind: crate::media::classify::ClassifyKind::Amd(
                    crate::media::amd::AmdConfig::rivr(),
                ),
            });
        }
    }

    fn classify_early_media(&mut self, leg: LegId, on: bool) {
        let Some((_, h)) = self.legs.get(&leg) else {
            return;
        };
        let cmd = if on {
            MediaCommand::Classify {
                call: h.id,
                id: EARLY_MEDIA_CLASSIFIER,
                kind: crate::media::classify::ClassifyKind::EarlyMedia,
            }
        } else {
            MediaCommand::StopClassify {
                call: h.id,
                id: EARLY_MEDIA_CLASSIFIER,
            }
        };
        let _ = h.send(cmd);
    }

    fn ringback(&mut self, leg: LegId, on: bool) {
        let Some((_, h)) = self.legs.get(&leg) else {
            return;
        };
        let cmd = if on {
            match self.shared.prompts.get("tone:ringback") {
                Ok(p) => MediaCommand::Play {
                    call: h.id,
                    id: RINGBACK_PLAY_ID,
                    prompts: vec![p],
                    interruptible: false,
                },
                Err(e) => {
                    tracing::warn!(error = %e, "no ringback tone");
                    return;
                }
            }
        } else {
            MediaCommand::StopPlay {
                call: h.id,
                id: RINGBACK_PLAY_ID,
            }
        };
        let _ = h.send(cmd);
    }

    fn join(&mut self, listener: LegId, source: LegId) {
        let (Some((_, l)), Some((_, s))) = (self.legs.get(&listener), self.legs.get(&source))
        else {
            return;
        };
        let _ = l.send(MediaCommand::Join {
            listener: l.id,
            source: s.id,
        });
    }

    fn unjoin(&mut self, listener: LegId) {
        if let Some((_, l)) = self.legs.get(&listener) {
            let _ = l.send(MediaCommand::Unjoin { listener: l.id });
        }
    }

    fn dial_ended(&mut self, call: CallId, result: DialResult) {
        if let Some(io) = self.calls.get(&call) {
            let _ = io.events_tx.send(CallEvent::DialEnded(Box::new(result)));
        }
    }

    fn transfer_ended(&mut self, call: CallId, result: crate::call::control::TransferResult) {
        if let Some(io) = self.calls.get(&call) {
            let _ = io
                .events_tx
                .send(CallEvent::TransferEnded(Box::new(result)));
        }
    }
}
