//! The simulated caller: a `CallControl` on a virtual clock, so a script
//! runs through the real runner, verbs and limits with no network and no
//! waiting. Time moves only in `next_event`: to the next thing due — a key
//! the caller presses, a play's end after its prompts' real length (20 ms
//! frames, as the media worker plays them), keys sent, a `dial()` ending,
//! the caller's hang-up — or to the verb's timeout. An interruptible play
//! stops at a key, as the media core does (the key first, then the play's
//! end). Everything is written to the transcript as it happens.
//!
//! `SimCore` is the sans-IO state (unit-tested in `caller/tests.rs`);
//! `sim::call::SimCall` is the `CallControl` over it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::call::control::{CallEvent, DialRequest, DialResult, DigitSource};
use crate::media::prompt::{Prompt, FRAME_SAMPLES, PROMPT_RATE_HZ};
use crate::sim::keys::{KeyPlan, REACTION};
use crate::sim::transcript::{Event, Line, PlayEnd, PromptSpan};

/// A key sent as telephone-events takes 100 ms, with 80 ms between keys
/// (`media::core::keys_out`).
const SENT_KEY_MS: u64 = 100;
const SENT_KEY_GAP_MS: u64 = 80;
/// A dial without a `timeout` rings this long before `no_answer` (the
/// trunks' default `ring_timeout`).
const DEFAULT_RING: Duration = Duration::from_secs(45);

/// A prompt's length as the media worker plays it: whole 20 ms frames.
pub fn played_ms(p: &Prompt) -> u64 {
    p.frame_count() as u64 * (FRAME_SAMPLES as u64 * 1000 / u64::from(PROMPT_RATE_HZ))
}

/// What the caller heard of one prompt, placed on the call's timeline.
#[derive(Debug, Clone)]
pub struct HeardAudio {
    pub at_ms: u64,
    pub prompt: Arc<Prompt>,
    pub ms: u64,
}

struct Playing {
    id: u64,
    start: Duration,
    prompts: Vec<(Arc<Prompt>, u64)>,
    interruptible: bool,
}

impl Playing {
    fn end(&self) -> Duration {
        self.start + Duration::from_millis(self.prompts.iter().map(|(_, ms)| ms).sum())
    }
}

/// What comes next on the timeline, in the order things due at the same
/// instant happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    TimedKey,
    UntimedKey,
    PlayEnd,
    DigitsSent,
    DialEnd,
    CallerHangup,
}

/// The simulated call's state and its transcript.
pub struct SimCore {
    now: Duration,
    keys: KeyPlan,
    /// When the caller last heard a prompt end or pressed a key: an
    /// untimed key comes `REACTION` after it.
    quiet_since: Duration,
    hangup_at: Option<Duration>,
    dial_outcome: String,
    answered: bool,
    early_media: bool,
    gone: bool,
    playing: Option<Playing>,
    pending: VecDeque<CallEvent>,
    digits_sent: Option<(Duration, u64)>,
    dial_end: Option<(Duration, DialResult)>,
    sms_count: u64,
    pub lines: Vec<Line>,
    pub heard: Vec<HeardAudio>,
    pub results: Vec<(String, String)>,
}

impl SimCore {
    /// A call whose caller presses `keys`, hangs up at `hangup_after` (if
    /// the flow has not ended it), and whose `dial()`s end with
    /// `dial_outcome` (`no_answer`, `answered`, `busy`, …).
    pub fn new(keys: KeyPlan, hangup_after: Option<Duration>, dial_outcome: &str) -> SimCore {
        SimCore {
            now: Duration::ZERO,
            keys,
            quiet_since: Duration::ZERO,
            hangup_at: hangup_after,
            dial_outcome: dial_outcome.to_string(),
            answered: false,
            early_media: false,
            gone: false,
            playing: None,
            pending: VecDeque::new(),
            digits_sent: None,
            dial_end: None,
            sms_count: 0,
            lines: Vec::new(),
            heard: Vec::new(),
            results: Vec::new(),
        }
    }

    /// Time since the call started.
    pub fn elapsed(&self) -> Duration {
        self.now
    }

    pub fn note(&mut self, event: Event) {
        self.lines.push(Line {
            t_ms: ms(self.now),
            event,
        });
    }

    fn media_answers(&mut self) {
        if !self.answered && !self.early_media {
            self.answer();
        }
    }

    pub fn answer(&mut self) {
        if !self.answered {
            self.answered = true;
            self.note(Event::Answer);
        }
    }

    pub fn ring(&mut self, early_media: bool) {
        if early_media {
            self.early_media = true;
            self.note(Event::Progress);
        } else {
            self.note(Event::Ring);
        }
    }

    pub fn reject(&mut self, code: u16) {
        self.note(Event::Reject { code });
        self.gone = true;
    }

    pub fn hangup(&mut self) {
        if self.gone {
            return;
        }
        self.end_play(PlayEnd::Hangup);
        self.note(Event::Hangup);
        self.gone = true;
    }

    pub fn is_gone(&self) -> bool {
        self.gone
    }

    pub fn is_answered(&self) -> bool {
        self.answered
    }

    /// Starts a play; one still playing ends as stopped (as a newer play
    /// ends the older in the media core).
    pub fn play(&mut self, id: u64, prompts: Vec<Arc<Prompt>>, interruptible: bool) {
        self.media_answers();
        self.stop_play_any();
        let prompts: Vec<(Arc<Prompt>, u64)> = prompts
            .into_iter()
            .map(|p| {
                let ms = played_ms(&p);
                (p, ms)
            })
            .collect();
        self.note(Event::Play {
            id,
            prompts: prompts
                .iter()
                .map(|(p, ms)| PromptSpan {
                    name: p.name().to_string(),
                    ms: *ms,
                    of_ms: *ms,
                })
                .collect(),
            interruptible,
        });
        self.playing = Some(Playing {
            id,
            start: self.now,
            prompts,
            interruptible,
        });
    }

    pub fn stop_play(&mut self, id: u64) {
        if self.playing.as_ref().is_some_and(|p| p.id == id) {
            self.stop_play_any();
        }
    }

    fn stop_play_any(&mut self) {
        if let Some(id) = self.end_play(PlayEnd::Stopped) {
            self.pending.push_back(CallEvent::PlayDone {
                id,
                interrupted: true,
            });
        }
    }

    /// Ends the play running now, noting what was heard of it; its id.
    fn end_play(&mut self, how: PlayEnd) -> Option<u64> {
        let p = self.playing.take()?;
        let mut left = ms(self.now.saturating_sub(p.start));
        let mut at = ms(p.start);
        let mut spans = Vec::new();
        for (prompt, len) in &p.prompts {
            let heard = left.min(*len);
            if heard == 0 {
                break;
            }
            spans.push(PromptSpan {
                name: prompt.name().to_string(),
                ms: heard,
                of_ms: *len,
            });
            self.heard.push(HeardAudio {
                at_ms: at,
                prompt: prompt.clone(),
                ms: heard,
            });
            left -= heard;
            at += heard;
        }
        self.note(Event::Heard {
            id: p.id,
            prompts: spans,
            ended: how,
        });
        self.quiet_since = self.now;
        Some(p.id)
    }

    /// Keys sent as telephone-events (the simulated caller negotiated
    /// them), done after their real sending time.
    pub fn send_digits(&mut self, id: u64, keys: &str) {
        self.media_answers();
        self.note(Event::SendDigits {
            keys: keys.to_string(),
        });
        let n = keys.chars().count() as u64;
        let took = n * SENT_KEY_MS + n.saturating_sub(1) * SENT_KEY_GAP_MS;
        self.digits_sent = Some((self.now + Duration::from_millis(took), id));
    }

    pub fn set_result(&mut self, key: &str, value: &str) {
        self.note(Event::SetResult {
            key: key.to_string(),
            value: value.to_string(),
        });
        self.results.push((key.to_string(), value.to_string()));
    }

    /// Recorded, never sent; the id is the sim's own.
    pub fn send_sms(&mut self, to: &str, text: &str) -> String {
        self.sms_count += 1;
        let id = format!("sim-sms-{}", self.sms_count);
        self.note(Event::Sms {
            to: to.to_string(),
            text: text.to_string(),
            id: id.clone(),
        });
        id
    }

    /// Recorded; the do-not-contact list is not written.
    pub fn opt_out(&mut self, number: &str) {
        self.note(Event::OptOut {
            number: number.to_string(),
        });
    }

    /// The far party of a `dial()` is simulated: it ends as the call's
    /// dial outcome says, after ringing (the request's timeout for
    /// `no_answer`).
    pub fn dial(&mut self, req: &DialRequest) {
        let timeout = req.timeout.unwrap_or(DEFAULT_RING);
        let (status, q850, ring) = match self.dial_outcome.as_str() {
            "answered" => (Some(200), Some(16), Duration::from_secs(2).min(timeout)),
            "busy" => (Some(486), Some(17), Duration::from_secs(1)),
            "rejected" => (Some(603), Some(21), Duration::from_secs(1)),
            "unreachable" => (Some(404), Some(3), Duration::ZERO),
            "congestion" => (Some(503), Some(34), Duration::ZERO),
            "failed" => (Some(500), Some(41), Duration::ZERO),
            _ => (None, Some(19), timeout),
        };
        let result = DialResult {
            outcome: self.dial_outcome.clone(),
            sip_status: status,
            q850,
            ring_ms: ms(ring),
            talk_ms: 0,
            refined_outcome: self.dial_outcome.clone(),
            answered_by: None,
        };
        self.note(Event::Dial {
            target: req.target.clone(),
            outcome: result.outcome.clone(),
            ring_ms: result.ring_ms,
        });
        self.dial_end = Some((self.now + ring, result));
    }

    /// When an untimed key is due: `REACTION` after the caller last heard
    /// something end, once nothing plays and no `dial()` is up.
    fn untimed_at(&self) -> Option<Duration> {
        if self.keys.untimed.is_empty() || self.playing.is_some() || self.dial_end.is_some() {
            return None;
        }
        Some((self.quiet_since + REACTION).max(self.now))
    }

    fn next_due(&self) -> Option<(Duration, Due)> {
        [
            self.keys.timed.front().map(|(t, _)| (*t, Due::TimedKey)),
            self.untimed_at().map(|t| (t, Due::UntimedKey)),
            self.playing.as_ref().map(|p| (p.end(), Due::PlayEnd)),
            self.digits_sent
                .as_ref()
                .map(|(t, _)| (*t, Due::DigitsSent)),
            self.dial_end.as_ref().map(|(t, _)| (*t, Due::DialEnd)),
            self.hangup_at.map(|t| (t, Due::CallerHangup)),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next event, moving the clock to it; `None` when `timeout` passes
    /// first (the clock then stands at the timeout).
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Option<CallEvent> {
        if let Some(ev) = self.pending.pop_front() {
            return Some(ev);
        }
        if self.gone {
            return Some(CallEvent::Hangup);
        }
        let limit = timeout.map(|t| self.now.saturating_add(t));
        match (self.next_due(), limit) {
            (Some((at, _)), Some(l)) if at > l => {
                self.now = l;
                None
            }
            (Some((at, due)), _) => {
                self.now = self.now.max(at);
                Some(self.fire(due))
            }
            (None, Some(l)) => {
                self.now = l;
                None
            }
            // Nothing will ever happen again and the flow waits forever:
            // the caller gives up.
            (None, None) => Some(self.fire(Due::CallerHangup)),
        }
    }

    fn fire(&mut self, due: Due) -> CallEvent {
        match due {
            Due::TimedKey | Due::UntimedKey => {
                let key = match due {
                    Due::TimedKey => self.keys.timed.pop_front().map(|(_, k)| k),
                    _ => self.keys.untimed.pop_front(),
                };
                let key = key.unwrap_or('#');
                self.note(Event::Key { key });
                self.quiet_since = self.now;
                if self.playing.as_ref().is_some_and(|p| p.interruptible) {
                    if let Some(id) = self.end_play(PlayEnd::Key) {
                        self.pending.push_back(CallEvent::PlayDone {
                            id,
                            interrupted: true,
                        });
                    }
                }
                CallEvent::Digit {
                    digit: key,
                    source: DigitSource::Simulated,
                }
            }
            Due::PlayEnd => match self.end_play(PlayEnd::End) {
                Some(id) => CallEvent::PlayDone {
                    id,
                    interrupted: false,
                },
                None => CallEvent::Hangup,
            },
            Due::DigitsSent => match self.digits_sent.take() {
                Some((_, id)) => CallEvent::DigitsSent {
                    id,
                    as_events: true,
                },
                None => CallEvent::Hangup,
            },
            Due::DialEnd => match self.dial_end.take() {
                Some((_, r)) => CallEvent::DialEnded(Box::new(r)),
                None => CallEvent::Hangup,
            },
            Due::CallerHangup => {
                self.hangup_at = None;
                self.end_play(PlayEnd::Hangup);
                self.note(Event::CallerHangup);
                self.gone = true;
                CallEvent::Hangup
            }
        }
    }

    /// Closes the transcript: keys never pressed, then how the script ended.
    pub fn finish(&mut self, outcome: &str, error: Option<String>) {
        self.end_play(PlayEnd::Hangup);
        if !self.keys.is_empty() {
            let keys = self.keys.remaining();
            self.note(Event::Unpressed { keys });
        }
        self.note(Event::End {
            outcome: outcome.to_string(),
            error,
        });
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
