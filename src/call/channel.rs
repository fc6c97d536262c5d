//! `CallControl` over channels: signalling verbs go to the SIP core task and
//! wait for its reply; media verbs go straight to the call's media worker;
//! events (keys, play ends, hangup) come back on one channel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::call::control::{CallControl, CallEnded, CallEvent, DialRequest, RecordRequest};
use crate::call::id::CallId;
use crate::call::recordings::Recordings;
use crate::call::registry::ScriptCommand;
use crate::media::classify::Classified;
use crate::media::events::{MediaEvent, MediaEventSink};
use crate::media::prompt::{Prompt, PromptStore};
use crate::media::worker::{MediaCommand, MediaHandle};

/// A request from a script (or its media) to the signalling task.
#[derive(Debug)]
pub enum SigCommand {
    /// A signalling verb; the reply says whether the call was still there.
    Script {
        call: CallId,
        cmd: ScriptCommand,
        reply: std::sync::mpsc::SyncSender<Result<(), CallEnded>>,
    },
    /// `hangup()`, or the end of a script: no reply needed.
    Hangup(CallId),
    /// The script thread finished, with its outcome for the CDR.
    ScriptDone { call: CallId, outcome: String },
    /// The call's media failed (a media worker dropped it): end the call.
    MediaFailed(CallId),
    /// `dial()`: bridge the call to a new party.
    Dial { call: CallId, request: DialRequest },
    /// The closed call's CDR rows are in the store (or the store gave
    /// up on them): the call is no longer held.
    CdrStored(CallId),
    /// `transfer()`: hand the caller to another party.
    Transfer {
        call: CallId,
        request: crate::call::control::TransferRequest,
    },
    /// The classifier on an outbound leg's early media heard something
    /// (`Registry::early_media_heard`).
    EarlyMedia {
        call: CallId,
        leg: crate::call::id::LegId,
        heard: crate::media::sit::EarlyMedia,
    },
    /// AMD on a party dialed with `amd` decided
    /// (`Registry::dial_amd_verdict`).
    DialAmd {
        call: CallId,
        leg: crate::call::id::LegId,
        answered_by: &'static str,
    },
}

impl SigCommand {
    pub fn call(&self) -> CallId {
        match self {
            SigCommand::Script { call, .. }
            | SigCommand::Hangup(call)
            | SigCommand::ScriptDone { call, .. }
            | SigCommand::MediaFailed(call)
            | SigCommand::Dial { call, .. }
            | SigCommand::CdrStored(call)
            | SigCommand::Transfer { call, .. }
            | SigCommand::EarlyMedia { call, .. }
            | SigCommand::DialAmd { call, .. } => *call,
        }
    }
}

/// State shared by the call's script, its signalling task and its worker.
#[derive(Debug, Default)]
pub struct CallShared {
    pub answered: AtomicBool,
    /// 183 with early media was sent: media flows before the answer.
    pub early_media: AtomicBool,
    pub gone: AtomicBool,
    /// `set_result` values, in order; written to the CDR at the end.
    pub results: Mutex<Vec<(String, String)>>,
}

impl CallShared {
    /// The results so far (a poisoned lock still yields them).
    pub fn results(&self) -> Vec<(String, String)> {
        match self.results.lock() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

/// The classifier id of an outbound leg's early-media classification
/// (scripts' classifiers count up from 1).
pub const EARLY_MEDIA_CLASSIFIER: u64 = u64::MAX - 2;

/// The classifier id of AMD on a party dialed with `dial(…, #{ amd })`.
pub const DIAL_AMD_CLASSIFIER: u64 = u64::MAX - 3;

/// Where the media of a call's leg sends its events: keys, play and
/// digit-sending ends go to the script as `CallEvent`s; a media failure
/// becomes a request to end the call.
pub struct ScriptSink {
    pub call: CallId,
    /// The leg whose media this is (its early-media verdicts go to the
    /// signalling task, not the script).
    pub leg: crate::call::id::LegId,
    pub events: Sender<CallEvent>,
    pub sig: tokio::sync::mpsc::UnboundedSender<SigCommand>,
    /// False for a leg the script does not talk to (the far party of a
    /// `dial()`): only its failure is reported.
    pub to_script: bool,
}

impl MediaEventSink for ScriptSink {
    fn emit(&self, event: MediaEvent) {
        let ev = match event {
            MediaEvent::Digit { digit, source } => CallEvent::Digit { digit, source },
            MediaEvent::PlayDone { id, interrupted } => CallEvent::PlayDone { id, interrupted },
            MediaEvent::DigitsSent { id, as_events } => CallEvent::DigitsSent { id, as_events },
            MediaEvent::RecordDone { id, ended_by } => CallEvent::RecordDone { id, ended_by },
            MediaEvent::Classified {
                id: EARLY_MEDIA_CLASSIFIER,
                result: Classified::EarlyMedia { heard, .. },
            } => {
                let _ = self.sig.send(SigCommand::EarlyMedia {
                    call: self.call,
                    leg: self.leg,
                    heard,
                });
                return;
            }
            MediaEvent::Classified {
                id: DIAL_AMD_CLASSIFIER,
                result: Classified::Amd(v),
            } => {
                let _ = self.sig.send(SigCommand::DialAmd {
                    call: self.call,
                    leg: self.leg,
                    answered_by: v.answered_by.as_str(),
                });
                return;
            }
            MediaEvent::Classified { id, result } => CallEvent::Classified {
                id,
                result: Box::new(result),
            },
            MediaEvent::Failed => {
                let _ = self.sig.send(SigCommand::MediaFailed(self.call));
                return;
            }
            // No verb joins legs yet; dial() will (issue 10).
            MediaEvent::JoinRefused { listener, source } => {
                tracing::warn!(call = %self.call, %listener, %source, "media join refused");
                return;
            }
        };
        if !self.to_script {
            return;
        }
        let _ = self.events.send(ev);
    }
}

pub struct ChannelControl {
    pub call: CallId,
    pub sig: tokio::sync::mpsc::UnboundedSender<SigCommand>,
    pub media: MediaHandle,
    pub events: Receiver<CallEvent>,
    pub prompts: Arc<PromptStore>,
    pub shared: Arc<CallShared>,
    /// None when neither `[smpp]` nor `[sms_http]` is configured.
    pub sms: Option<crate::sms::SmsService>,
    /// `[media] recordings` and the call's recordings in progress.
    pub recordings: Recordings,
    /// `opt_out()`: the store's do-not-contact list (none without a
    /// store), and the number `opt_out()` with none names: the caller of
    /// an inbound call, the called party of an outbound one.
    pub dnc: Option<crate::sms::flow::dnc::DncWriter>,
    pub party: String,
}

impl ChannelControl {
    fn request(&self, cmd: ScriptCommand) -> Result<(), CallEnded> {
        if self.is_gone() {
            return Err(CallEnded);
        }
        let (reply, rx) = std::sync::mpsc::sync_channel(1);
        self.sig
            .send(SigCommand::Script {
                call: self.call,
                cmd,
                reply,
            })
            .map_err(|_| CallEnded)?;
        rx.recv().map_err(|_| CallEnded)?
    }

    /// Sends something the caller will hear. Like Asterisk's Playback(),
    /// media to an unanswered call answers it, unless early media was
    /// started with progress().
    fn send_media(&mut self, cmd: MediaCommand) -> Result<(), CallEnded> {
        if self.is_gone() {
            return Err(CallEnded);
        }
        if !self.is_answered() && !self.shared.early_media.load(Ordering::Acquire) {
            self.answer()?;
        }
        self.media.send(cmd).map_err(|_| CallEnded)
    }
}

impl CallControl for ChannelControl {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn answer(&mut self) -> Result<(), CallEnded> {
        if self.is_answered() {
            return Ok(());
        }
        self.request(ScriptCommand::Answer)?;
        self.shared.answered.store(true, Ordering::Release);
        Ok(())
    }

    fn ring(&mut self, early_media: bool) -> Result<(), CallEnded> {
        self.request(ScriptCommand::Ring { early_media })?;
        if early_media {
            self.shared.early_media.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn reject(&mut self, code: u16) -> Result<(), CallEnded> {
        self.request(ScriptCommand::Reject { status: code })
    }

    fn hangup(&mut self) {
        if !self.is_gone() {
            let _ = self.sig.send(SigCommand::Hangup(self.call));
        }
    }

    fn play(
        &mut self,
        id: u64,
        prompts: Vec<Arc<Prompt>>,
        interruptible: bool,
    ) -> Result<(), CallEnded> {
        self.send_media(MediaCommand::Play {
            call: self.media.id,
            id,
            prompts,
            interruptible,
        })
    }

    fn send_digits(&mut self, id: u64, keys: &str) -> Result<(), CallEnded> {
        self.send_media(MediaCommand::SendDigits {
            call: self.media.id,
            id,
            keys: keys.to_owned(),
        })
    }

    fn stop_play(&mut self, id: u64) {
        let _ = self.media.send(MediaCommand::StopPlay {
            call: self.media.id,
            id,
        });
    }

    fn next_event(&mut self, timeout: Option<Duration>) -> Option<CallEvent> {
        let r = match timeout {
            Some(t) => self.events.recv_timeout(t),
            None => self
                .events
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
        };
        match r {
            Ok(ev) => Some(ev),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(CallEvent::Hangup),
        }
    }

    fn prompt(&self, name: &str) -> Result<Arc<Prompt>, String> {
        if let Some(id) = name.strip_prefix(crate::call::recordings::PREFIX) {
            return self.recordings.load(id);
        }
        self.prompts.get(name).map_err(|e| e.to_string())
    }

    fn set_result(&mut self, key: &str, value: &str) {
        if let Ok(mut r) = self.shared.results.lock() {
            r.push((key.to_string(), value.to_string()));
        }
    }

    fn is_answered(&self) -> bool {
        self.shared.answered.load(Ordering::Acquire)
    }

    fn is_gone(&self) -> bool {
        self.shared.gone.load(Ordering::Acquire)
    }

    fn send_sms(&mut self, to: &str, text: &str) -> Result<String, String> {
        let sms = self
            .sms
            .as_ref()
            .ok_or("send_sms: no [smpp] or [sms_http] block in the config")?;
        sms.submit_blocking(to, text)
            .map_err(|e| format!("send_sms: {e}"))
    }

    fn opt_out(&mut self, number: Option<&str>) -> Result<bool, String> {
        let dnc = self
            .dnc
            .as_ref()
            .ok_or("opt_out: this server has no store")?;
        dnc.add_blocking(number.unwrap_or(&self.party), "script")
    }

    fn send_sms_with(
        &mut self,
        to: &str,
        text: &str,
        opts: &crate::sms::SendOptions,
    ) -> Result<String, String> {
        let sms = self
            .sms
            .as_ref()
            .ok_or("send_sms: no [smpp] or [sms_http] block in the config")?;
        sms.submit_blocking_with(to, text, opts)
            .map_err(|e| format!("send_sms: {e}"))
    }

    fn record(&mut self, id: u64, req: RecordRequest) -> Result<(), String> {
        // The session tells a call that ended (`is_gone`) from a disk
        // error by asking the call, so the text here is for logs only.
        let ended = CallEnded.to_string();
        if self.is_gone() {
            return Err(ended);
        }
        if !self.is_answered() && !self.shared.early_media.load(Ordering::Acquire) {
            self.answer().map_err(|e| e.to_string())?;
        }
        let (sink, rules) = self.recordings.start(id, req)?;
        self.media
            .send(MediaCommand::Record {
                call: self.media.id,
                id,
                rules,
                sink: Box::new(sink),
            })
            .map_err(|_| ended)
    }

    fn stop_record(&mut self, id: u64, by: crate::media::record::EndedBy) {
        let _ = self.media.send(MediaCommand::StopRecord {
            call: self.media.id,
            id,
            by,
        });
    }

    fn finish_record(&mut self, id: u64) -> Result<crate::media::record::Recorded, String> {
        self.recordings.finish(id)
    }

    fn classify(
        &mut self,
        id: u64,
        kind: crate::media::classify::ClassifyKind,
    ) -> Result<(), CallEnded> {
        if self.is_gone() {
            return Err(CallEnded);
        }
        self.media
            .send(MediaCommand::Classify {
                call: self.media.id,
                id,
                kind,
            })
            .map_err(|_| CallEnded)
    }

    fn stop_classify(&mut self, id: u64) {
        let _ = self.media.send(MediaCommand::StopClassify {
            call: self.media.id,
            id,
        });
    }

    fn dial(&mut self, request: DialRequest) -> Result<(), CallEnded> {
        if self.is_gone() {
            return Err(CallEnded);
        }
        self.sig
            .send(SigCommand::Dial {
                call: self.call,
                request,
            })
            .map_err(|_| CallEnded)
    }

    fn transfer(
        &mut self,
        request: crate::call::control::TransferRequest,
    ) -> Result<(), CallEnded> {
        if self.is_gone() {
            return Err(CallEnded);
        }
        self.sig
            .send(SigCommand::Transfer {
                call: self.call,
                request,
            })
            .map_err(|_| CallEnded)
    }
}

/// On a call rivr placed, the keys queued before its script started came
/// with the far end's early media (a carrier's announcement, a tone taken
/// for a key) before anyone answered: they are not the called party's
/// type-ahead, and a first `gather` must not return them. They are dropped;
/// other events stay queued, in order. Returns how many keys were dropped.
pub fn drop_keys_before_answer(events: &Receiver<CallEvent>, requeue: &Sender<CallEvent>) -> usize {
    let queued: Vec<CallEvent> = events.try_iter().collect();
    let mut dropped = 0;
    for ev in queued {
        match ev {
            CallEvent::Digit { .. } => dropped += 1,
            other => {
                let _ = requeue.send(other);
            }
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::events::DigitSource;

    #[test]
    fn keys_before_the_answer_are_dropped_and_the_rest_kept() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let key = |digit| CallEvent::Digit {
            digit,
            source: DigitSource::Rfc4733,
        };
        tx.send(key('9')).unwrap();
        tx.send(CallEvent::Hangup).unwrap();
        tx.send(key('1')).unwrap();
        assert_eq!(drop_keys_before_answer(&rx, &tx), 2);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![CallEvent::Hangup]);
        // A key after the answer is the called party's.
        tx.send(key('5')).unwrap();
        assert_eq!(rx.try_recv().ok(), Some(key('5')));
    }
}
