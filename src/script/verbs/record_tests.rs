//! `record()` over a fake call: what it asks of the call, how it ends,
//! what it leaves in the results and the type-ahead, and how a disk
//! error reaches the script.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::call::control::{CallControl, CallEnded, CallEvent, DigitSource};
use crate::media::prompt::Prompt;
use crate::media::record::Recorded;

#[derive(Default)]
struct Seen {
    log: Vec<String>,
    results: Vec<(String, String)>,
}

struct Fake {
    now: Instant,
    events: VecDeque<CallEvent>,
    /// What `record` answers: Ok, or the error.
    start: Result<(), String>,
    /// What `finish_record` answers (the id and path are filled in).
    finish: Result<(u64, EndedBy), String>,
    name: String,
    gone: bool,
    seen: Arc<Mutex<Seen>>,
}

impl Fake {
    fn new(events: Vec<CallEvent>) -> (Fake, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let f = Fake {
            now: Instant::now(),
            events: events.into(),
            start: Ok(()),
            finish: Ok((1500, EndedBy::Silence)),
            name: String::new(),
            gone: false,
            seen: seen.clone(),
        };
        (f, seen)
    }
    fn note(&self, s: String) {
        self.seen.lock().unwrap().log.push(s);
    }
}

fn key(d: char) -> CallEvent {
    CallEvent::Digit {
        digit: d,
        source: DigitSource::Rfc4733,
    }
}

impl CallControl for Fake {
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
    fn play(&mut self, id: u64, prompts: Vec<Arc<Prompt>>, _: bool) -> Result<(), CallEnded> {
        let names: Vec<&str> = prompts.iter().map(|p| p.name()).collect();
        self.note(format!("play {}", names.join(",")));
        self.events.push_front(CallEvent::PlayDone {
            id,
            interrupted: false,
        });
        Ok(())
    }
    fn stop_play(&mut self, _: u64) {}
    fn send_digits(&mut self, _: u64, _: &str) -> Result<(), CallEnded> {
        Ok(())
    }
    fn next_event(&mut self, timeout: Option<Duration>) -> Option<CallEvent> {
        match self.events.pop_front() {
            Some(CallEvent::Hangup) => {
                self.gone = true;
                Some(CallEvent::Hangup)
            }
            Some(e) => Some(e),
            None => {
                self.now += timeout.unwrap_or(Duration::from_secs(3600));
                None
            }
        }
    }
    fn prompt(&self, name: &str) -> Result<Arc<Prompt>, String> {
        Ok(Arc::new(Prompt::from_pcm_8k(name, vec![0; 160])))
    }
    fn set_result(&mut self, key: &str, value: &str) {
        self.seen
            .lock()
            .unwrap()
            .results
            .push((key.into(), value.into()));
    }
    fn is_answered(&self) -> bool {
        true
    }
    fn is_gone(&self) -> bool {
        self.gone
    }
    fn send_sms(&mut self, _: &str, _: &str) -> Result<String, String> {
        Err("no".into())
    }
    fn record(&mut self, id: u64, req: RecordRequest) -> Result<(), String> {
        self.note(format!(
            "record {id} {} max={:?} silence={:?} finish={:?}",
            req.name, req.rules.max, req.rules.silence, req.rules.finish_on
        ));
        self.name = req.name;
        self.start.clone()
    }
    fn stop_record(&mut self, id: u64, by: EndedBy) {
        self.note(format!("stop {id} {}", by.as_str()));
    }
    fn finish_record(&mut self, id: u64) -> Result<Recorded, String> {
        self.note(format!("finish {id}"));
        self.finish.clone().map(|(ms, by)| Recorded {
            id: self.name.clone(),
            path: PathBuf::from(format!("/rec/{}.wav", self.name)),
            duration_ms: ms,
            ended_by: by,
            lost_frames: 0,
        })
    }
}

fn opts(src: &[(&str, Dynamic)]) -> Result<RecordOptions, VerbError> {
    let mut m = Map::new();
    for (k, v) in src {
        m.insert((*k).into(), v.clone());
    }
    options(&m)
}

#[test]
fn defaults_and_bad_options() {
    let d = opts(&[]).unwrap();
    assert_eq!(d.max, Duration::from_millis(DEFAULT_MAX_MS as u64));
    assert_eq!(
        d.silence,
        Some(Duration::from_millis(DEFAULT_SILENCE_MS as u64))
    );
    assert_eq!(
        (d.beep, d.finish_on.clone(), d.name.clone()),
        (false, vec!['#'], None)
    );
    let o = opts(&[
        ("silence_ms", Dynamic::from(0_i64)),
        ("finish_on", Dynamic::from("")),
        ("name", Dynamic::from("greeting_1")),
        ("beep", Dynamic::from(true)),
    ])
    .unwrap();
    assert_eq!(
        (o.silence, o.finish_on.is_empty(), o.beep),
        (None, true, true)
    );
    for (k, v) in [
        ("max_ms", Dynamic::from(0_i64)),
        ("max_ms", Dynamic::from(3_600_001_i64)),
        ("silence_ms", Dynamic::from(-1_i64)),
        ("finish_on", Dynamic::from("#x")),
        ("name", Dynamic::from("../etc/passwd")),
        ("beep", Dynamic::from("yes")),
        ("loud", Dynamic::from(true)),
    ] {
        let e = opts(&[(k, v)]).expect_err(k);
        assert!(e.to_string().starts_with("record: "), "{e}");
    }
}

#[test]
fn a_finish_key_ends_it_and_other_keys_stay_type_ahead() {
    let (fake, seen) = Fake::new(vec![
        key('5'),
        key('#'),
        CallEvent::RecordDone {
            id: 1,
            ended_by: EndedBy::Key('#'),
        },
    ]);
    let mut fake = fake;
    fake.finish = Ok((2000, EndedBy::Key('#')));
    let mut s = Session::new(Box::new(fake));
    let r = s.record("node-7", &opts(&[]).unwrap()).unwrap();
    assert_eq!(r.id, "node-7-1");
    assert_eq!(r.ended_by, EndedBy::Key('#'));
    assert_eq!(r.duration_ms, 2000);
    assert_eq!(s.typeahead.iter().collect::<String>(), "5");
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.log,
        vec![
            "record 1 node-7-1 max=120s silence=Some(5s) finish=['#']",
            "finish 1"
        ]
    );
    assert_eq!(seen.results, vec![("recordings".into(), "node-7-1".into())]);
}

#[test]
fn a_beep_comes_first_and_a_second_recording_is_listed_with_the_first() {
    let done = |id| CallEvent::RecordDone {
        id,
        ended_by: EndedBy::Silence,
    };
    // play ids 1 and 3 are the beeps; the recordings are 2 and 4.
    let (fake, seen) = Fake::new(vec![done(2), done(4)]);
    let mut s = Session::new(Box::new(fake));
    let o = opts(&[("beep", Dynamic::from(true))]).unwrap();
    s.record("c 1", &o).unwrap();
    let second = s.record("c 1", &o).unwrap();
    assert_eq!(second.id, "c_1-2", "an id is made safe for a file name");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.log[0], "play tone:beep");
    assert!(seen.log[1].starts_with("record 2 c_1-1 "), "{:?}", seen.log);
    assert_eq!(
        seen.results.last(),
        Some(&("recordings".into(), "c_1-1,c_1-2".into()))
    );
}

#[test]
fn a_hangup_keeps_the_file_lists_it_and_ends_the_script() {
    let (mut fake, seen) = Fake::new(vec![key('1'), CallEvent::Hangup]);
    fake.finish = Ok((700, EndedBy::Hangup));
    let mut s = Session::new(Box::new(fake));
    let e = s.record("c", &opts(&[]).unwrap()).unwrap_err();
    assert_eq!(e, VerbError::CallEnded);
    assert!(s.is_ended());
    let seen = seen.lock().unwrap();
    assert_eq!(seen.log[1..], ["stop 1 hangup", "finish 1"]);
    assert_eq!(seen.results, vec![("recordings".into(), "c-1".into())]);
}

#[test]
fn the_time_limit_stops_the_recording() {
    let (fake, seen) = Fake::new(vec![]);
    let mut s = Session::with_time_limit(Box::new(fake), Duration::from_secs(10));
    let e = s.record("c", &opts(&[]).unwrap()).unwrap_err();
    assert_eq!(e, VerbError::TimeLimit);
    assert_eq!(
        seen.lock().unwrap().log[1..],
        ["stop 1 stopped", "finish 1"]
    );
}

#[test]
fn disk_errors_fail_the_verb_not_the_call() {
    let (mut fake, seen) = Fake::new(vec![]);
    fake.start =
        Err("the recordings folder /x cannot be used ([media] recordings): Not a directory".into());
    let mut s = Session::new(Box::new(fake));
    let e = s.record("c", &opts(&[]).unwrap()).unwrap_err();
    assert!(
        matches!(&e, VerbError::Failed(m) if m.contains("Not a directory")),
        "{e:?}"
    );
    assert!(!s.is_ended(), "the call goes on");
    assert!(seen.lock().unwrap().results.is_empty());

    let done = CallEvent::RecordDone {
        id: 1,
        ended_by: EndedBy::Silence,
    };
    let (mut fake, seen) = Fake::new(vec![done]);
    fake.finish = Err("writing /x/c-1.wav.part: No space left on device (os error 28)".into());
    let mut s = Session::new(Box::new(fake));
    let e = s.record("c", &opts(&[]).unwrap()).unwrap_err();
    assert!(
        matches!(&e, VerbError::Failed(m) if m.contains("No space left")),
        "{e:?}"
    );
    assert!(!s.is_ended());
    assert!(
        seen.lock().unwrap().results.is_empty(),
        "nothing kept, nothing listed"
    );
}

#[test]
fn a_control_that_cannot_record_refuses() {
    struct Bare;
    impl CallControl for Bare {
        fn now(&self) -> Instant {
            Instant::now()
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
        fn play(&mut self, _: u64, _: Vec<Arc<Prompt>>, _: bool) -> Result<(), CallEnded> {
            Ok(())
        }
        fn stop_play(&mut self, _: u64) {}
        fn send_digits(&mut self, _: u64, _: &str) -> Result<(), CallEnded> {
            Ok(())
        }
        fn next_event(&mut self, _: Option<Duration>) -> Option<CallEvent> {
            None
        }
        fn prompt(&self, _: &str) -> Result<Arc<Prompt>, String> {
            Err("none".into())
        }
        fn set_result(&mut self, _: &str, _: &str) {}
        fn is_answered(&self) -> bool {
            true
        }
        fn is_gone(&self) -> bool {
            false
        }
        fn send_sms(&mut self, _: &str, _: &str) -> Result<String, String> {
            Err("none".into())
        }
    }
    let mut s = Session::new(Box::new(Bare));
    let e = s.record("c", &opts(&[]).unwrap()).unwrap_err();
    assert!(matches!(e, VerbError::Failed(m) if m.contains("not available")));
}
