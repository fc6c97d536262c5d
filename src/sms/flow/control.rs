//! [`SmsControl`]: what an SMS script's verbs reach instead of a call.
//! `send_sms`, `reply`, `set_result`, `log`, `sleep` and the HTTP verbs
//! work; a verb that needs a call (`answer`, `play`, `gather`, `dial`, …)
//! fails the message with an error at its line (`has_call` is false). It runs on the script's own
//! thread; the store and the SMS service are reached by blocking on the
//! runtime, as `send_sms` does from a call.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::call::control::{CallControl, CallEnded, CallEvent, DialRequest, TransferRequest};
use crate::media::prompt::Prompt;
use crate::sms::SmsService;

/// What the script left for its flow: its results, and the call verb it
/// tried, if any.
#[derive(Debug, Default)]
pub struct SmsLeft {
    pub results: Vec<(String, String)>,
    pub call_verb: Option<&'static str>,
    pub replies: usize,
}

pub struct SmsControl {
    pub sms: SmsService,
    /// Whoever sent the message (as the SMSC wrote it).
    pub from: String,
    pub dnc: super::dnc::DncWriter,
    pub left: Arc<Mutex<SmsLeft>>,
}

impl SmsControl {
    fn call_verb(&self, verb: &'static str) -> CallEnded {
        if let Ok(mut l) = self.left.lock() {
            l.call_verb.get_or_insert(verb);
        }
        CallEnded
    }
}

impl CallControl for SmsControl {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn answer(&mut self) -> Result<(), CallEnded> {
        Err(self.call_verb("answer"))
    }
    fn ring(&mut self, _early_media: bool) -> Result<(), CallEnded> {
        Err(self.call_verb("ring/progress"))
    }
    fn reject(&mut self, _code: u16) -> Result<(), CallEnded> {
        Err(self.call_verb("reject"))
    }
    /// `hangup()` ends the script, as it ends a call's.
    fn hangup(&mut self) {}
    fn play(&mut self, _: u64, _: Vec<Arc<Prompt>>, _: bool) -> Result<(), CallEnded> {
        Err(self.call_verb("play/say"))
    }
    fn stop_play(&mut self, _id: u64) {}
    fn send_digits(&mut self, _id: u64, _keys: &str) -> Result<(), CallEnded> {
        Err(self.call_verb("send_dtmf"))
    }
    fn next_event(&mut self, timeout: Option<Duration>) -> Option<CallEvent> {
        match timeout {
            // `sleep()`: nothing happens on a message while it waits.
            Some(t) => {
                std::thread::sleep(t);
                None
            }
            None => {
                self.call_verb("gather");
                Some(CallEvent::Hangup)
            }
        }
    }
    fn prompt(&self, _name: &str) -> Result<Arc<Prompt>, String> {
        Err("prompts need a call; an SMS script has none".into())
    }
    fn set_result(&mut self, key: &str, value: &str) {
        if let Ok(mut l) = self.left.lock() {
            l.results.push((key.to_string(), value.to_string()));
        }
    }
    fn is_answered(&self) -> bool {
        // So that the runner's end of the flow "hangs up" (a no-op) rather
        // than rejecting.
        true
    }
    fn is_gone(&self) -> bool {
        false
    }
    fn has_call(&self) -> bool {
        false
    }
    fn send_sms(&mut self, to: &str, text: &str) -> Result<String, String> {
        self.sms
            .submit_blocking(to, text)
            .map_err(|e| format!("send_sms: {e}"))
    }
    fn reply(&mut self, text: &str) -> Result<String, String> {
        let id = self
            .sms
            .submit_blocking(self.from.trim(), text)
            .map_err(|e| format!("reply: {e}"))?;
        if let Ok(mut l) = self.left.lock() {
            l.replies += 1;
        }
        Ok(id)
    }
    fn opt_out(&mut self, number: Option<&str>) -> Result<bool, String> {
        self.dnc
            .add_blocking(number.unwrap_or(&self.from), "script")
    }
    fn dial(&mut self, _req: DialRequest) -> Result<(), CallEnded> {
        Err(self.call_verb("dial"))
    }
    fn transfer(&mut self, _req: TransferRequest) -> Result<(), CallEnded> {
        Err(self.call_verb("transfer"))
    }
}
