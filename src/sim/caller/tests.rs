//! The simulated caller's clock and transcript, alone and under the real
//! verbs (`Session`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::call::control::CallControl;
use crate::media::prompt::PromptStore;
use crate::script::verbs::{GatherOptions, Session};
use crate::sim::call::{lock, SimCall};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn prompt(name: &str, ms: usize) -> Arc<Prompt> {
    Arc::new(Prompt::from_pcm_8k(name, vec![500; ms * 8]))
}

fn core(digits: &str) -> SimCore {
    SimCore::new(KeyPlan::parse(digits).unwrap(), None, "no_answer")
}

fn text(c: &SimCore) -> Vec<String> {
    c.lines
        .iter()
        .map(|l| l.text().trim().to_string())
        .collect()
}

fn key(k: char) -> Option<CallEvent> {
    Some(CallEvent::Digit {
        digit: k,
        source: DigitSource::Simulated,
    })
}

#[test]
fn time_moves_only_to_the_next_event_or_the_timeout() {
    let mut c = core("");
    assert_eq!(c.next_event(Some(ms(500))), None);
    assert_eq!(c.elapsed(), ms(500));
    c.play(1, vec![prompt("a", 1000), prompt("b", 510)], false);
    // 510 ms is 26 frames of 20 ms: played as 520 ms.
    assert_eq!(c.next_event(Some(ms(1000))), None);
    assert_eq!(c.elapsed(), ms(1500));
    assert_eq!(
        c.next_event(None),
        Some(CallEvent::PlayDone {
            id: 1,
            interrupted: false
        })
    );
    assert_eq!(c.elapsed(), ms(2020));
    assert_eq!(
        text(&c),
        vec![
            "0.500  answer",
            "0.500  play a (1.000 s), b (0.520 s)",
            "2.020  heard a (1.000 s), b (0.520 s)",
        ]
    );
}

#[test]
fn a_key_cuts_an_interruptible_play_where_it_lands() {
    let mut c = core("1.5:2,2.5:3");
    c.answer();
    c.play(1, vec![prompt("menu", 2000)], true);
    assert_eq!(c.next_event(Some(ms(10_000))), key('2'));
    assert_eq!(c.elapsed(), ms(1500));
    assert_eq!(
        c.next_event(Some(ms(10_000))),
        Some(CallEvent::PlayDone {
            id: 1,
            interrupted: true
        })
    );
    // Not interruptible: the key is reported, the play goes on.
    c.play(2, vec![prompt("info", 2000)], false);
    assert_eq!(c.next_event(None), key('3'));
    assert_eq!(
        c.next_event(None),
        Some(CallEvent::PlayDone {
            id: 2,
            interrupted: false
        })
    );
    assert_eq!(c.elapsed(), ms(3500));
    assert_eq!(
        text(&c),
        vec![
            "0.000  answer",
            "0.000  play menu (2.000 s) [barge-in]",
            "1.500  key 2",
            "1.500  heard menu (1.500 of 2.000 s) [cut by key]",
            "1.500  play info (2.000 s)",
            "2.500  key 3",
            "3.500  heard info (2.000 s)",
        ]
    );
    assert_eq!(c.heard.len(), 2);
    assert_eq!((c.heard[0].at_ms, c.heard[0].ms), (0, 1500));
    assert_eq!((c.heard[1].at_ms, c.heard[1].ms), (1500, 2000));
}

#[test]
fn untimed_keys_come_a_second_after_each_prompt_ends() {
    let mut c = core("12");
    c.answer();
    c.play(1, vec![prompt("menu", 3000)], true);
    // Not while the prompt plays.
    assert!(matches!(
        c.next_event(None),
        Some(CallEvent::PlayDone { id: 1, .. })
    ));
    assert_eq!(c.elapsed(), ms(3000));
    assert_eq!(c.next_event(Some(ms(5000))), key('1'));
    assert_eq!(c.elapsed(), ms(4000));
    assert_eq!(c.next_event(Some(ms(5000))), key('2'));
    assert_eq!(c.elapsed(), ms(5000));
    assert_eq!(c.next_event(Some(ms(5000))), None);
    assert_eq!(c.elapsed(), ms(10_000));
}

#[test]
fn the_caller_hangs_up_at_its_time_and_stays_gone() {
    let mut c = SimCore::new(KeyPlan::default(), Some(ms(1200)), "no_answer");
    c.play(1, vec![prompt("long", 5000)], false);
    assert_eq!(c.next_event(None), Some(CallEvent::Hangup));
    assert!(c.is_gone());
    assert_eq!(c.next_event(Some(ms(1))), Some(CallEvent::Hangup));
    c.finish("caller_hung_up", None);
    assert_eq!(
        text(&c),
        vec![
            "0.000  answer",
            "0.000  play long (5.000 s)",
            "1.200  heard long (1.200 of 5.000 s) [cut by hangup]",
            "1.200  caller hangs up",
            "1.200  end caller_hung_up",
        ]
    );
}

#[test]
fn sent_keys_dial_sms_and_results() {
    let mut c = core("");
    c.send_digits(7, "12#");
    assert_eq!(
        c.next_event(None),
        Some(CallEvent::DigitsSent {
            id: 7,
            as_events: true
        })
    );
    assert_eq!(c.elapsed(), ms(460), "3 keys of 100 ms, 80 ms apart");
    c.dial(&DialRequest {
        target: "1234".into(),
        timeout: Some(ms(10_000)),
        ..DialRequest::default()
    });
    match c.next_event(None) {
        Some(CallEvent::DialEnded(r)) => {
            assert_eq!(r.outcome, "no_answer");
            assert_eq!(r.ring_ms, 10_000);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.send_sms("+15550100", "hi"), "sim-sms-1");
    c.set_result("menu", "2");
    c.finish("completed", None);
    assert_eq!(
        text(&c)[3..],
        [
            "10.460  send_sms to +15550100 \"hi\" (not sent; id sim-sms-1)",
            "10.460  set_result menu = \"2\"",
            "10.460  end completed",
        ]
    );
    let mut busy = SimCore::new(KeyPlan::default(), None, "busy");
    busy.dial(&DialRequest {
        target: "1234".into(),
        ..DialRequest::default()
    });
    assert!(
        matches!(busy.next_event(None), Some(CallEvent::DialEnded(r)) if r.sip_status == Some(486))
    );
    assert_eq!(busy.elapsed(), ms(1000));
}

#[test]
fn early_media_does_not_answer_and_keys_left_are_listed() {
    let mut c = core("9");
    c.ring(true);
    c.play(1, vec![prompt("ann", 100)], false);
    assert!(!c.is_answered());
    c.hangup();
    c.finish("hung_up", None);
    assert_eq!(
        text(&c),
        vec![
            "0.000  progress (early media)",
            "0.000  play ann (0.100 s)",
            "0.000  heard nothing [cut by hangup]",
            "0.000  hangup",
            "0.000  keys never pressed: 9",
            "0.000  end hung_up",
        ]
    );
}

/// The real gather rules over the simulated call: the prompt is cut at the
/// first key, the inter-digit timeout ends it, on the virtual clock.
#[test]
fn a_gather_runs_on_the_virtual_clock() {
    let core = Arc::new(Mutex::new(core("1:1,1.2:2")));
    let prompts = Arc::new(PromptStore::new("/nonexistent"));
    let call = SimCall::new(core.clone(), prompts);
    let t0 = call.now();
    let mut s = Session::new(Box::new(call));
    let wall = std::time::Instant::now();
    let got = s.gather(&GatherOptions {
        prompt: vec!["tone:beep:440:3000".into()],
        ..GatherOptions::default()
    });
    assert_eq!(got, Ok("12".into()));
    // 1.2 s for the keys, then the 3 s inter-digit timeout.
    assert_eq!(s.control().now() - t0, ms(4200));
    assert!(wall.elapsed() < ms(1000), "virtual time, not slept");
    let c = lock(&core);
    assert_eq!(
        text(&c),
        vec![
            "0.000  answer",
            "0.000  play tone:beep:440:3000 (3.000 s) [barge-in]",
            "1.000  key 1",
            "1.000  heard tone:beep:440:3000 (1.000 of 3.000 s) [cut by key]",
            "1.200  key 2",
        ]
    );
}
