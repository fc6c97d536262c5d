//! The meaning of the call-flow verbs that wait: `play`, `gather`, `sleep`
//! (and `record`, in its own file).
//! Written over `CallControl`, so the timing rules are tested with a virtual
//! clock. The rules are in `docs/scripts.md` ("gather timing").
//!
//! A session may carry the script's wall-clock deadline
//! (`[script] max_duration_ms`): it is checked when each verb starts, and
//! every wait inside a verb ends at it, so a script that loops over
//! blocking verbs stops at its deadline like one that loops over
//! arithmetic.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::call::control::{CallControl, CallEnded, CallEvent, DialRequest, DialResult};
use crate::media::prompt::Prompt;

pub mod http;
pub mod options;
pub mod sms_options;

/// Most keys one `send_dtmf` sends.
const MAX_SENT_KEYS: usize = 32;
/// Keys kept for the next `gather`/interruptible `play` (type-ahead).
pub const TYPEAHEAD_MAX: usize = 32;

/// Why a verb did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerbError {
    #[error("the caller hung up")]
    CallEnded,
    /// The script asked to hang up; the flow ends here.
    #[error("hangup")]
    HungUp,
    #[error("{0}")]
    BadArgument(String),
    /// The verb could not do its work (a disk error in `record`); the
    /// script may catch it and go on.
    #[error("{0}")]
    Failed(String),
    /// The script's wall-clock budget is spent.
    #[error("the script ran past its time limit")]
    TimeLimit,
    /// The script holds more memory than its budget.
    #[error("the script used more memory than its limit")]
    MemoryLimit,
}

impl From<CallEnded> for VerbError {
    fn from(_: CallEnded) -> Self {
        VerbError::CallEnded
    }
}

/// `gather` options, with their defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatherOptions {
    pub prompt: Vec<String>,
    pub max_digits: usize,
    /// Wait for the first key after the prompt ends.
    pub timeout: Duration,
    /// Wait for each further key after a key.
    pub inter_digit_timeout: Duration,
    pub finish_on: String,
}

impl Default for GatherOptions {
    fn default() -> Self {
        GatherOptions {
            prompt: Vec::new(),
            max_digits: 20,
            timeout: Duration::from_millis(5000),
            inter_digit_timeout: Duration::from_millis(3000),
            finish_on: "#".into(),
        }
    }
}

/// A script's view of its call: the control channel plus the type-ahead
/// buffer and play ids.
pub struct Session {
    ctl: Box<dyn CallControl>,
    typeahead: VecDeque<char>,
    next_play_id: u64,
    ended: bool,
    /// When the script's time is up, on the call's clock.
    deadline: Option<Instant>,
    /// The call's language tag ("" for none): prompts are looked up in its
    /// folder first (`lang::candidates`).
    lang: String,
    /// Ids of the call's recordings so far (`record`).
    recordings: Vec<String>,
}

impl Session {
    /// A session with no time limit.
    pub fn new(ctl: Box<dyn CallControl>) -> Self {
        Session {
            ctl,
            typeahead: VecDeque::with_capacity(TYPEAHEAD_MAX),
            next_play_id: 1,
            ended: false,
            deadline: None,
            lang: String::new(),
            recordings: Vec::new(),
        }
    }

    /// A session whose verbs fail with `TimeLimit` once `budget` has passed
    /// on the call's clock (from now).
    pub fn with_time_limit(ctl: Box<dyn CallControl>, budget: Duration) -> Self {
        let mut s = Session::new(ctl);
        s.deadline = s.ctl.now().checked_add(budget);
        s
    }

    /// `Err(TimeLimit)` once the deadline has passed; checked when each verb
    /// starts (and by the runner while the script computes).
    pub fn check_time(&self) -> Result<(), VerbError> {
        match self.deadline {
            Some(d) if self.ctl.now() >= d => Err(VerbError::TimeLimit),
            _ => Ok(()),
        }
    }

    /// What is left of the script's time, on the call's clock (`None`: no
    /// limit); bounds a verb that cannot wait through `wait`.
    pub fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(self.ctl.now()))
    }

    pub fn control(&mut self) -> &mut dyn CallControl {
        self.ctl.as_mut()
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    fn check(&self) -> Result<(), VerbError> {
        if self.ended {
            return Err(VerbError::CallEnded);
        }
        self.check_time()
    }

    fn buffer(&mut self, d: char) {
        if self.typeahead.len() < TYPEAHEAD_MAX {
            self.typeahead.push_back(d);
        }
    }

    /// Waits for the next event until `until`, and never past the script's
    /// deadline (then `TimeLimit`); a hangup ends the session.
    fn wait(&mut self, until: Option<Instant>) -> Result<Option<CallEvent>, VerbError> {
        self.check_time()?;
        let limit = match (until, self.deadline) {
            (Some(u), Some(d)) => Some(u.min(d)),
            (u, d) => u.or(d),
        };
        let timeout = limit.map(|l| l.saturating_duration_since(self.ctl.now()));
        match self.ctl.next_event(timeout) {
            Some(CallEvent::Hangup) => {
                self.ended = true;
                Err(VerbError::CallEnded)
            }
            None => {
                self.check_time()?;
                Ok(None)
            }
            other => Ok(other),
        }
    }

    /// `wait`, stopping the play `playing` if the script's time runs out.
    fn wait_or_stop(
        &mut self,
        until: Option<Instant>,
        playing: Option<u64>,
    ) -> Result<Option<CallEvent>, VerbError> {
        let r = self.wait(until);
        if let (Err(VerbError::TimeLimit), Some(id)) = (&r, playing) {
            self.ctl.stop_play(id);
        }
        r
    }

    /// The call's language tag, "" when it has none.
    pub fn lang(&self) -> &str {
        &self.lang
    }

    /// Sets the language later prompts are looked up in ("" for none).
    pub fn set_lang(&mut self, tag: &str) -> Result<(), VerbError> {
        crate::script::lang::check_tag(tag).map_err(VerbError::BadArgument)?;
        self.lang = tag.to_owned();
        Ok(())
    }

    /// The prompt `name` in the call's language, else the base one; the
    /// error is the base prompt's.
    fn find_prompt(
        &self,
        name: &str,
    ) -> Result<std::sync::Arc<crate::media::prompt::Prompt>, String> {
        let tried = crate::script::lang::candidates(&self.lang, name);
        // A prompt's first use loads it into the process-wide cache: that
        // memory is not this script's.
        crate::script::memory::uncharged(|| {
            let Some((base, localized)) = tried.split_last() else {
                return self.ctl.prompt(name);
            };
            localized
                .iter()
                .find_map(|n| self.ctl.prompt(n).ok())
                .map_or_else(|| self.ctl.prompt(base), Ok)
        })
    }

    fn start_play(&mut self, names: &[String], interruptible: bool) -> Result<u64, VerbError> {
        let mut prompts = Vec::with_capacity(names.len());
        for n in names {
            prompts.push(self.find_prompt(n).map_err(VerbError::BadArgument)?);
        }
        self.start_prompts(prompts, interruptible)
    }

    fn start_prompts(
        &mut self,
        prompts: Vec<Arc<Prompt>>,
        interruptible: bool,
    ) -> Result<u64, VerbError> {
        let id = self.next_play_id;
        self.next_play_id += 1;
        self.ctl.play(id, prompts, interruptible)?;
        Ok(id)
    }

    /// Plays prompts to the end. With `interrupt`, the first key (or one
    /// already typed ahead) stops it and is returned.
    pub fn play(&mut self, names: &[String], interrupt: bool) -> Result<Option<char>, VerbError> {
        self.check()?;
        if interrupt {
            if let Some(d) = self.typeahead.pop_front() {
                return Ok(Some(d));
            }
        }
        let id = self.start_play(names, interrupt)?;
        self.play_until_done(id, interrupt)
    }

    /// `play` for prompts made elsewhere (`say`'s speech), same rules.
    pub fn play_prompts(
        &mut self,
        prompts: Vec<Arc<Prompt>>,
        interrupt: bool,
    ) -> Result<Option<char>, VerbError> {
        self.check()?;
        if interrupt {
            if let Some(d) = self.typeahead.pop_front() {
                return Ok(Some(d));
            }
        }
        let id = self.start_prompts(prompts, interrupt)?;
        self.play_until_done(id, interrupt)
    }

    fn play_until_done(&mut self, id: u64, interrupt: bool) -> Result<Option<char>, VerbError> {
        loop {
            match self.wait_or_stop(None, Some(id))? {
                Some(CallEvent::Digit { digit, .. }) if interrupt => {
                    self.ctl.stop_play(id);
                    return Ok(Some(digit));
                }
                Some(CallEvent::Digit { digit, .. }) => self.buffer(digit),
                Some(CallEvent::PlayDone { id: done, .. }) if done == id => return Ok(None),
                _ => {}
            }
        }
    }

    /// Sends DTMF keys to the caller: as RFC 4733 telephone-events when the
    /// call negotiated them, else in-band (the `tone:dtmf:` prompt). Keys
    /// the caller presses meanwhile are kept for the next gather.
    pub fn send_dtmf(&mut self, keys: &str) -> Result<(), VerbError> {
        self.check()?;
        let count = keys.chars().count();
        let valid = |c: char| c.is_ascii_digit() || "*#ABCDabcd".contains(c);
        if count == 0 || count > MAX_SENT_KEYS || !keys.chars().all(valid) {
            return Err(VerbError::BadArgument(format!(
                "send_dtmf: {keys:?} is not 1-{MAX_SENT_KEYS} of 0-9 * # A-D"
            )));
        }
        let keys = keys.to_ascii_uppercase();
        let id = self.next_play_id;
        self.next_play_id += 1;
        self.ctl.send_digits(id, &keys)?;
        loop {
            match self.wait(None)? {
                Some(CallEvent::Digit { digit, .. }) => self.buffer(digit),
                Some(CallEvent::DigitsSent {
                    id: done,
                    as_events,
                }) if done == id => {
                    if as_events {
                        return Ok(());
                    }
                    return self.play(&[format!("tone:dtmf:{keys}")], false).map(|_| ());
                }
                _ => {}
            }
        }
    }

    /// Bridges the caller to `req.target` until that party is gone; the
    /// outcome of the attempt comes back. The script goes on afterwards if
    /// the caller is still there.
    pub fn dial(&mut self, req: DialRequest) -> Result<DialResult, VerbError> {
        self.check()?;
        if req.target.is_empty() {
            return Err(VerbError::BadArgument("dial: the target is empty".into()));
        }
        self.ctl.dial(req)?;
        // Keys are relayed to the other party while bridged; the script
        // does not keep them.
        loop {
            if let Some(CallEvent::DialEnded(r)) = self.wait(None)? {
                return Ok(*r);
            }
        }
    }

    /// Silence for `ms`; keys pressed meanwhile are kept for the next gather.
    pub fn sleep(&mut self, ms: Duration) -> Result<(), VerbError> {
        self.check()?;
        let deadline = self.ctl.now() + ms;
        while self.ctl.now() < deadline {
            if let Some(CallEvent::Digit { digit, .. }) = self.wait(Some(deadline))? {
                self.buffer(digit);
            }
        }
        Ok(())
    }

    /// Collects keys; see `docs/scripts.md` for the timing rules.
    pub fn gather(&mut self, opts: &GatherOptions) -> Result<String, VerbError> {
        self.check()?;
        if opts.max_digits == 0 {
            return Err(VerbError::BadArgument(
                "gather: max_digits must be at least 1".into(),
            ));
        }
        let mut digits = String::new();
        // Returns true when the gather is complete.
        let take = |digits: &mut String, d: char| -> bool {
            if opts.finish_on.contains(d) {
                return true;
            }
            digits.push(d);
            digits.len() >= opts.max_digits
        };
        while let Some(d) = self.typeahead.pop_front() {
            if take(&mut digits, d) {
                return Ok(digits);
            }
        }
        let mut playing = None;
        if digits.is_empty() && !opts.prompt.is_empty() {
            playing = Some(self.start_play(&opts.prompt, true)?);
        }
        let mut deadline = match (playing, digits.is_empty()) {
            (Some(_), _) => None,
            (None, true) => Some(self.ctl.now() + opts.timeout),
            (None, false) => Some(self.ctl.now() + opts.inter_digit_timeout),
        };
        loop {
            match self.wait_or_stop(deadline, playing)? {
                None => {
                    if deadline.is_some_and(|d| self.ctl.now() >= d) {
                        return Ok(digits);
                    }
                }
                Some(CallEvent::Digit { digit, .. }) => {
                    if let Some(id) = playing.take() {
                        self.ctl.stop_play(id);
                    }
                    if take(&mut digits, digit) {
                        return Ok(digits);
                    }
                    deadline = Some(self.ctl.now() + opts.inter_digit_timeout);
                }
                Some(CallEvent::PlayDone { id, .. }) if Some(id) == playing => {
                    playing = None;
                    let wait = if digits.is_empty() {
                        opts.timeout
                    } else {
                        opts.inter_digit_timeout
                    };
                    deadline = Some(self.ctl.now() + wait);
                }
                Some(_) => {}
            }
        }
    }
}

pub mod amd;
pub mod record;
pub mod transfer;

#[cfg(test)]
mod tests;
