//! Gather/play timing on a virtual clock: a fake call whose caller presses
//! keys at fixed times and whose prompts last a fixed time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::call::control::{CallControl, CallEnded, CallEvent, DigitSource};
use crate::media::prompt::Prompt;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Every prompt in the fake lasts this long.
const PROMPT_MS: u64 = 2000;

type Log = Arc<Mutex<Vec<String>>>;

struct FakeCall {
    t0: Instant,
    now: Instant,
    /// Caller actions: (time since t0, event). 'H' is a hangup.
    script: VecDeque<(Duration, CallEvent)>,
    /// (id, ends at, interruptible)
    playing: Option<(u64, Instant, bool)>,
    log: Log,
}

impl FakeCall {
    fn new(keys: &[(u64, char)]) -> (Self, Log) {
        let t0 = Instant::now();
        let log: Log = Arc::new(Mutex::new(Vec::new()));
        let script = keys
            .iter()
            .map(|&(at, d)| {
                let ev = if d == 'H' {
                    CallEvent::Hangup
                } else {
                    CallEvent::Digit {
                        digit: d,
                        source: DigitSource::Simulated,
                    }
                };
                (ms(at), ev)
            })
            .collect();
        let fake = FakeCall {
            t0,
            now: t0,
            script,
            playing: None,
            log: log.clone(),
        };
        (fake, log)
    }

    fn note(&self, what: String) {
        let t = (self.now - self.t0).as_millis();
        self.log.lock().unwrap().push(format!("{t} {what}"));
    }
}

impl CallControl for FakeCall {
    fn now(&self) -> Instant {
        self.now
    }
    fn answer(&mut self) -> Result<(), CallEnded> {
        Ok(())
    }
    fn ring(&mut self, _: bool) -> Result<(), CallEnded> {
        Ok(())
    }
    fn reject(&mut self, _: u16) -> Result<(), CallEnded> {
        Ok(())
    }
    fn hangup(&mut self) {}
    fn play(
        &mut self,
        id: u64,
        prompts: Vec<Arc<Prompt>>,
        interruptible: bool,
    ) -> Result<(), CallEnded> {
        let len = PROMPT_MS * prompts.len() as u64;
        self.playing = Some((id, self.now + ms(len), interruptible));
        self.note(format!("play {id}"));
        Ok(())
    }
    fn send_digits(&mut self, id: u64, keys: &str) -> Result<(), CallEnded> {
        // Sent as events, as long as the keys take (100 ms on, 80 ms off).
        let len = 180 * keys.len() as u64;
        self.note(format!("send_digits {id} {keys}"));
        let at = self.now - self.t0 + ms(len);
        let pos = self
            .script
            .iter()
            .position(|(t, _)| *t > at)
            .unwrap_or(self.script.len());
        self.script.insert(
            pos,
            (
                at,
                CallEvent::DigitsSent {
                    id,
                    as_events: true,
                },
            ),
        );
        Ok(())
    }
    fn stop_play(&mut self, id: u64) {
        if self.playing.is_some_and(|p| p.0 == id) {
            self.playing = None;
            self.note(format!("stop {id}"));
        }
    }
    fn next_event(&mut self, timeout: Option<Duration>) -> Option<CallEvent> {
        let limit = timeout.map(|t| self.now + t);
        let next_key = self.script.front().map(|(at, _)| self.t0 + *at);
        let play_end = self.playing.map(|p| p.1);
        let first = [next_key, play_end].into_iter().flatten().min();
        match (first, limit) {
            (Some(t), l) if l.is_none_or(|l| t <= l) => {
                self.now = self.now.max(t);
                if Some(t) == play_end && next_key.is_none_or(|k| k > t) {
                    let (id, _, _) = self.playing.take().unwrap();
                    self.note(format!("done {id}"));
                    return Some(CallEvent::PlayDone {
                        id,
                        interrupted: false,
                    });
                }
                let (_, ev) = self.script.pop_front().unwrap();
                if let CallEvent::Digit { digit, .. } = &ev {
                    self.note(format!("key {digit}"));
                    if let Some((id, _, true)) = self.playing {
                        // the media path stops an interruptible play by itself
                        self.playing = None;
                        let at = self.now - self.t0;
                        self.script.push_front((
                            at,
                            CallEvent::PlayDone {
                                id,
                                interrupted: true,
                            },
                        ));
                    }
                }
                Some(ev)
            }
            (_, Some(l)) => {
                self.now = l;
                None
            }
            (_, None) => Some(CallEvent::Hangup),
        }
    }
    fn prompt(&self, name: &str) -> Result<Arc<Prompt>, String> {
        Ok(Arc::new(Prompt::from_pcm_8k(
            name,
            vec![0; 8 * PROMPT_MS as usize],
        )))
    }
    fn set_result(&mut self, _: &str, _: &str) {}
    fn is_answered(&self) -> bool {
        true
    }
    fn is_gone(&self) -> bool {
        false
    }
    fn send_sms(&mut self, to: &str, _: &str) -> Result<String, String> {
        Ok(format!("sms-to-{to}"))
    }
}

fn gather(
    keys: &[(u64, char)],
    opts: GatherOptions,
) -> (Result<String, VerbError>, u64, Vec<String>) {
    let (fake, log) = FakeCall::new(keys);
    let t0 = fake.t0;
    let mut s = Session::new(Box::new(fake));
    let r = s.gather(&opts);
    let elapsed = (s.control().now() - t0).as_millis() as u64;
    let log = log.lock().unwrap().clone();
    (r, elapsed, log)
}

fn opts(max_digits: usize) -> GatherOptions {
    GatherOptions {
        prompt: vec!["menu".into()],
        max_digits,
        timeout: ms(5000),
        inter_digit_timeout: ms(3000),
        finish_on: "#".into(),
    }
}

#[test]
fn no_key_times_out_after_prompt_plus_timeout() {
    let (r, t, _) = gather(&[], opts(1));
    assert_eq!(r.unwrap(), "");
    assert_eq!(
        t,
        PROMPT_MS + 5000,
        "timeout counts from the end of the prompt"
    );
}

#[test]
fn key_during_prompt_stops_it_and_returns_at_max_digits() {
    let (r, t, log) = gather(&[(700, '2')], opts(1));
    assert_eq!(r.unwrap(), "2");
    assert_eq!(t, 700);
    assert!(log.contains(&"700 key 2".to_string()), "{log:?}");
    assert!(
        !log.iter().any(|l| l.contains("done")),
        "the prompt never played to its end: {log:?}"
    );
}

#[test]
fn inter_digit_timeout_ends_a_partial_entry() {
    let (r, t, _) = gather(&[(2500, '1'), (4000, '2')], opts(4));
    assert_eq!(r.unwrap(), "12");
    assert_eq!(t, 4000 + 3000);
}

#[test]
fn finish_key_ends_and_is_not_returned() {
    let (r, t, _) = gather(&[(2100, '4'), (2200, '2'), (2300, '#')], opts(10));
    assert_eq!(r.unwrap(), "42");
    assert_eq!(t, 2300);
    let (r, _, _) = gather(&[(2100, '#')], opts(10));
    assert_eq!(r.unwrap(), "", "a finish key alone gives an empty entry");
}

#[test]
fn first_key_after_the_prompt_must_come_within_timeout() {
    // the prompt ends at 2000; a first key at 6900 (< 2000 + 5000) is taken
    let (r, t, _) = gather(&[(6900, '7')], opts(2));
    assert_eq!(r.unwrap(), "7");
    assert_eq!(t, 6900 + 3000);
    // a first key at 7100 comes after the timeout: not taken
    let (r, t, _) = gather(&[(7100, '7')], opts(2));
    assert_eq!(r.unwrap(), "");
    assert_eq!(t, 7000);
}

#[test]
fn hangup_during_gather_is_an_error() {
    let (r, _, _) = gather(&[(1000, '1'), (1500, 'H')], opts(4));
    assert_eq!(r, Err(VerbError::CallEnded));
}

#[test]
fn typeahead_from_a_plain_play_feeds_the_next_gather_and_skips_its_prompt() {
    let (fake, log) = FakeCall::new(&[(500, '3')]);
    let mut s = Session::new(Box::new(fake));
    assert_eq!(
        s.play(&["intro".into()], false).unwrap(),
        None,
        "a plain play runs to its end"
    );
    assert_eq!(s.gather(&opts(1)).unwrap(), "3");
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log.iter().filter(|l| l.contains("play")).count(),
        1,
        "{log:?}"
    );
}

#[test]
fn interruptible_play_returns_the_key() {
    let (fake, _) = FakeCall::new(&[(300, '9')]);
    let mut s = Session::new(Box::new(fake));
    assert_eq!(s.play(&["a".into(), "b".into()], true).unwrap(), Some('9'));
    // the interrupted play's late PlayDone does not confuse the next verb
    let (fake, _) = FakeCall::new(&[(300, '9'), (2600, '5')]);
    let mut s = Session::new(Box::new(fake));
    assert_eq!(s.play(&["a".into()], true).unwrap(), Some('9'));
    assert_eq!(s.gather(&opts(1)).unwrap(), "5");
}

#[test]
fn sleep_keeps_keys_for_later() {
    let (fake, _) = FakeCall::new(&[(100, '1'), (200, '2')]);
    let t0 = fake.t0;
    let mut s = Session::new(Box::new(fake));
    s.sleep(ms(1000)).unwrap();
    assert_eq!(s.control().now() - t0, ms(1000));
    assert_eq!(s.gather(&opts(2)).unwrap(), "12");
}

#[test]
fn send_dtmf_waits_for_the_keys_and_keeps_keys_typed_meanwhile() {
    let (fake, log) = FakeCall::new(&[(300, '7')]);
    let t0 = fake.t0;
    let mut s = Session::new(Box::new(fake));
    s.send_dtmf("12#a").unwrap();
    let t = (s.control().now() - t0).as_millis() as u64;
    assert_eq!(t, 4 * 180, "returns when the last key is out");
    assert!(
        log.lock()
            .unwrap()
            .contains(&"0 send_digits 1 12#A".to_string()),
        "{:?}",
        log.lock().unwrap()
    );
    // The key the caller pressed while rivr was sending is type-ahead.
    assert_eq!(s.gather(&opts(1)).unwrap(), "7");
}

#[test]
fn send_dtmf_refuses_what_is_not_a_key() {
    for keys in ["", "12x", "1 2", &"1".repeat(33)] {
        let (fake, _) = FakeCall::new(&[]);
        let mut s = Session::new(Box::new(fake));
        let err = s.send_dtmf(keys).unwrap_err();
        assert!(
            matches!(&err, VerbError::BadArgument(m) if m.contains("send_dtmf")),
            "{keys:?}: {err:?}"
        );
    }
}

/// A session whose script may run `budget_ms` of virtual time.
fn limited(keys: &[(u64, char)], budget_ms: u64) -> (Session, Instant, Log) {
    let (fake, log) = FakeCall::new(keys);
    let t0 = fake.t0;
    (
        Session::with_time_limit(Box::new(fake), ms(budget_ms)),
        t0,
        log,
    )
}

fn elapsed(s: &mut Session, t0: Instant) -> u64 {
    (s.control().now() - t0).as_millis() as u64
}

#[test]
fn a_sleep_loop_stops_at_the_deadline() {
    // loop { sleep(1000); } with 3.5 s to live
    let (mut s, t0, _) = limited(&[], 3500);
    let mut slept = 0;
    let err = loop {
        match s.sleep(ms(1000)) {
            Ok(()) => slept += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err, VerbError::TimeLimit);
    assert_eq!(slept, 3);
    assert_eq!(
        elapsed(&mut s, t0),
        3500,
        "the fourth sleep ends at the deadline"
    );
}

#[test]
fn a_gather_loop_stops_at_the_deadline_and_silences_its_prompt() {
    // loop { gather(#{ prompt: "menu", max_digits: 1 }) } with 10 s to live:
    // the first gather times out at 7 s (2 s prompt + 5 s), the second
    // plays its prompt until 9 s and waits for a key until the deadline.
    let (mut s, t0, _) = limited(&[], 10_000);
    assert_eq!(s.gather(&opts(1)).unwrap(), "");
    assert_eq!(elapsed(&mut s, t0), 7000);
    assert_eq!(s.gather(&opts(1)), Err(VerbError::TimeLimit));
    assert_eq!(elapsed(&mut s, t0), 10_000);
    // A prompt cut by the deadline is stopped.
    let (mut s, t0, log) = limited(&[], 8000);
    assert_eq!(s.gather(&opts(1)).unwrap(), "");
    assert_eq!(s.gather(&opts(1)), Err(VerbError::TimeLimit));
    assert_eq!(elapsed(&mut s, t0), 8000);
    let log = log.lock().unwrap().clone();
    assert!(log.contains(&"8000 stop 2".to_string()), "{log:?}");
}

#[test]
fn a_play_longer_than_the_time_left_stops_at_the_deadline() {
    let (mut s, t0, log) = limited(&[(500, '1')], 1500);
    let r = s.play(&["a".into(), "b".into()], false);
    assert_eq!(r, Err(VerbError::TimeLimit));
    assert_eq!(elapsed(&mut s, t0), 1500);
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log.last().map(String::as_str),
        Some("1500 stop 1"),
        "{log:?}"
    );
}

#[test]
fn send_dtmf_is_bounded_by_the_deadline() {
    // 32 keys take 5.76 s to send; 1 s is left.
    let (mut s, t0, _) = limited(&[], 1000);
    assert_eq!(s.send_dtmf(&"1".repeat(32)), Err(VerbError::TimeLimit));
    assert_eq!(elapsed(&mut s, t0), 1000);
}

#[test]
fn after_the_deadline_every_verb_fails_when_it_starts() {
    let (mut s, t0, log) = limited(&[(100, '5')], 1000);
    assert_eq!(s.sleep(ms(5000)), Err(VerbError::TimeLimit));
    assert_eq!(s.check_time(), Err(VerbError::TimeLimit));
    // The key typed ahead would complete this gather at once: the time
    // check comes first, and nothing is played.
    assert_eq!(s.gather(&opts(1)), Err(VerbError::TimeLimit));
    assert_eq!(s.play(&["a".into()], true), Err(VerbError::TimeLimit));
    assert_eq!(s.sleep(ms(0)), Err(VerbError::TimeLimit));
    assert_eq!(
        elapsed(&mut s, t0),
        1000,
        "no verb waited past the deadline"
    );
    let log = log.lock().unwrap().clone();
    assert!(!log.iter().any(|l| l.contains("play")), "{log:?}");
}

#[test]
fn without_a_time_limit_waits_are_unchanged() {
    let (fake, _) = FakeCall::new(&[]);
    let t0 = fake.t0;
    let mut s = Session::new(Box::new(fake));
    s.sleep(ms(7_200_000)).unwrap();
    assert_eq!(elapsed(&mut s, t0), 7_200_000);
    assert_eq!(s.check_time(), Ok(()));
}
