//! The control interface between a running script and its call: the verbs a
//! script issues and the events it waits on. The script runner and the verb
//! logic only see this trait, so they run the same against a real call, the
//! `rivr sim` caller, or a test double with a virtual clock.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::media::prompt::Prompt;
use crate::media::record::{EndRules, EndedBy, Recorded};

pub use crate::media::events::DigitSource;

/// Something that happened on the call, for its script. The rare, large
/// results are boxed: every call's event channel allocates its slots for
/// the largest variant (a block of 31 of them on the first event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    Digit {
        digit: char,
        source: DigitSource,
    },
    /// A play started by `CallControl::play` with this id ended; `interrupted`
    /// when a key stopped it.
    PlayDone {
        id: u64,
        interrupted: bool,
    },
    /// Keys sent by `CallControl::send_digits` with this id are out;
    /// `as_events` is false when the call has no telephone-event and
    /// nothing was sent (the caller then plays them in-band).
    DigitsSent {
        id: u64,
        as_events: bool,
    },
    /// The recording started by `CallControl::record` with this id ended
    /// (its file is closed by `CallControl::finish_record`).
    RecordDone {
        id: u64,
        ended_by: EndedBy,
    },
    /// A classifier started by `CallControl::classify` with this id found
    /// something (who answered, a beep, a tone before answer).
    Classified {
        id: u64,
        result: Box<crate::media::classify::Classified>,
    },
    /// The party a `dial()` reached (or tried) is gone: how it went.
    DialEnded(Box<DialResult>),
    /// The caller hung up, or the call ended underneath the script.
    Hangup,
    /// A `transfer()` is over: the far end took the caller, or not.
    TransferEnded(Box<TransferResult>),
}

/// What a script's `transfer()` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    /// A `sip:` URI, or a number (a URI in the caller's domain).
    pub target: String,
    /// How long to wait for the final NOTIFY.
    pub timeout: Duration,
}

/// How a `transfer()` ended, for the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferResult {
    /// The target answered the caller: rivr's leg is ending.
    pub ok: bool,
    /// The final SIP status (the sipfrag's, the REFER's error, 408 for no
    /// answer in time, 501 when the call's transport cannot transfer).
    pub status: u16,
    pub reason: String,
}

/// How a `dial()` ended, for the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialResult {
    /// `answered`, `busy`, `no_answer`, … (docs/outcomes.md).
    pub outcome: String,
    pub sip_status: Option<u16>,
    pub q850: Option<u8>,
    pub ring_ms: u64,
    pub talk_ms: u64,
    /// `outcome` refined by the party's early media
    /// (`unreachable:sit-vc`, `no_answer:announcement`; else `outcome`).
    pub refined_outcome: String,
    /// `human`, `machine` or `unsure` when dialed with `amd`.
    pub answered_by: Option<String>,
}

/// What a script's `dial()` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialRequest {
    /// A number (dialed on a trunk) or a `sip:` URI.
    pub target: String,
    pub trunk: Option<String>,
    pub caller_id: Option<String>,
    pub timeout: Option<Duration>,
    /// Answering-machine detection on the party's answer, before the
    /// join (`answered_by` in the result).
    pub amd: bool,
}

/// What a script's `record()` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRequest {
    /// The recording's id: its file is `ID.wav` in `[media] recordings`.
    pub name: String,
    pub rules: EndRules,
}

/// The call is over; the verb cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the call has ended")]
pub struct CallEnded;

/// Fixed facts about a call, shown to scripts as the `call` map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    pub id: String,
    pub from: String,
    pub to: String,
    pub direction: &'static str,
    pub started_at: SystemTime,
    /// The trunk an outbound call went through.
    pub trunk: Option<String>,
    /// Campaign contact fields, `rivr call --var`s (`call.vars`).
    pub vars: Vec<(String, String)>,
    /// The caller's signalling headers (`call.headers`).
    pub headers: Vec<(String, String)>,
    /// The language tag prompts are looked up in first (`call.lang`): the
    /// route's `lang`, or an outbound call's `lang` var; "" for none.
    pub lang: String,
    /// Run answering-machine detection before the script
    /// (`call.answered_by`): an outbound call placed with `amd`.
    pub amd: bool,
}

/// What a script can ask of its call.
pub trait CallControl: Send {
    fn now(&self) -> Instant;
    fn answer(&mut self) -> Result<(), CallEnded>;
    /// 180, or 183 with early media when `early_media`.
    fn ring(&mut self, early_media: bool) -> Result<(), CallEnded>;
    fn reject(&mut self, code: u16) -> Result<(), CallEnded>;
    fn hangup(&mut self);
    /// Starts playing `prompts` back to back; `interruptible` makes the media
    /// path stop at the first key (within one 20 ms frame) on its own.
    fn play(
        &mut self,
        id: u64,
        prompts: Vec<Arc<Prompt>>,
        interruptible: bool,
    ) -> Result<(), CallEnded>;
    fn stop_play(&mut self, id: u64);
    /// Sends `keys` (already checked to be DTMF keys) as RFC 4733
    /// telephone-events, if the call negotiated them; ends with
    /// `CallEvent::DigitsSent`.
    fn send_digits(&mut self, id: u64, keys: &str) -> Result<(), CallEnded>;
    /// The next event, waiting at most `timeout` (None: forever). `None` on
    /// timeout.
    fn next_event(&mut self, timeout: Option<Duration>) -> Option<CallEvent>;
    /// Looks up a prompt by name.
    fn prompt(&self, name: &str) -> Result<Arc<Prompt>, String>;
    /// A result the script stores with the call.
    fn set_result(&mut self, key: &str, value: &str);
    fn is_answered(&self) -> bool;
    /// True once the call has ended; cheap, polled while a script computes.
    fn is_gone(&self) -> bool;
    /// Queues an SMS (stored before it returns; sent by the SMS driver);
    /// returns rivr's message id. Never waits on the network.
    fn send_sms(&mut self, to: &str, text: &str) -> Result<String, String>;
    /// [`Self::send_sms`] with a sender ID, schedule, validity or route. A
    /// control that cannot send with options (a test double) refuses them.
    fn send_sms_with(
        &mut self,
        to: &str,
        text: &str,
        opts: &crate::sms::SendOptions,
    ) -> Result<String, String> {
        if *opts == crate::sms::SendOptions::default() {
            return self.send_sms(to, text);
        }
        Err("send_sms: options are not supported here".into())
    }
    /// Starts bridging the call to a new party; ends with
    /// `CallEvent::DialEnded` when that party is gone. (A control with no
    /// way to place calls — a test double — refuses.)
    fn dial(&mut self, _req: DialRequest) -> Result<(), CallEnded> {
        Err(CallEnded)
    }
    /// Starts recording what the caller says; ends with
    /// `CallEvent::RecordDone`. An error (the folder, the file) is the
    /// script's to see. (A control with no recordings — a test double —
    /// refuses.)
    fn record(&mut self, _id: u64, _req: RecordRequest) -> Result<(), String> {
        Err("record() is not available on this call".into())
    }
    /// Ends the recording `id` if it still runs.
    fn stop_record(&mut self, _id: u64, _by: EndedBy) {}
    /// Waits until the recording's file is closed (after its
    /// `RecordDone`, a hangup or `stop_record`): what was kept, or why
    /// nothing was.
    fn finish_record(&mut self, _id: u64) -> Result<Recorded, String> {
        Err("record() is not available on this call".into())
    }
    /// False for a flow with no call under it (an SMS): a verb that needs
    /// the call then fails the script with an error at its line, rather
    /// than ending it as a caller's hangup would.
    fn has_call(&self) -> bool {
        true
    }
    /// `reply(text)`: an SMS back to whoever sent the message the script
    /// answers; rivr's message id. (Only an SMS flow has one.)
    fn reply(&mut self, _text: &str) -> Result<String, String> {
        Err("reply: only an SMS script has a message to reply to (use send_sms)".into())
    }
    /// `opt_out(number)`: puts `number` (`None`: the other party) on the
    /// do-not-contact list; true when it was not on it yet. (A control
    /// with no store refuses.)
    fn opt_out(&mut self, _number: Option<&str>) -> Result<bool, String> {
        Err("opt_out: there is no store on this call".into())
    }
    /// Runs a classifier on what the caller says (`detect_machine`,
    /// `wait_for_beep`); each finding comes as `CallEvent::Classified`.
    /// (A control without media — a test double — refuses.)
    fn classify(
        &mut self,
        _id: u64,
        _kind: crate::media::classify::ClassifyKind,
    ) -> Result<(), CallEnded> {
        Err(CallEnded)
    }
    /// Stops the classifier `id` if it still runs.
    fn stop_classify(&mut self, _id: u64) {}
    /// Starts a blind transfer of the answered caller; ends with
    /// `CallEvent::TransferEnded`. (A control that cannot transfer
    /// refuses.)
    fn transfer(&mut self, _req: TransferRequest) -> Result<(), CallEnded> {
        Err(CallEnded)
    }
}

#[cfg(test)]
mod size_tests {
    /// Every call's event channel allocates a block of 31 slots of the
    /// largest variant on its first event: the large, rare results stay
    /// boxed (96 bytes a slot, 3.2 kB a call, before they were).
    #[test]
    fn a_call_event_stays_small() {
        assert!(std::mem::size_of::<super::CallEvent>() <= 32);
    }
}
