//! Property tests. One side fed random octets, well-framed messages
//! (real elements, wrong states, stray call references), requests, link
//! failures and clock jumps — through the `q931_calls` fuzz body — never
//! panics, keeps its books, sends only messages that decode and reports
//! `Released` once per call and nothing of the call after it. Two sides
//! under random loss, duplication and reordering, once everybody hangs
//! up and the timers run out, have no call left and every channel free.

use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;

use super::harness::*;
use crate::fuzzing::q931_calls::{self, request};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The `q931_calls` fuzz body (one side, every input structured as
    /// operations) on random octets: it asserts the books, the messages
    /// sent and `Released` once per call after every step.
    #[test]
    fn random_input_never_breaks_one_side(data in vec(any::<u8>(), 0..1500)) {
        q931_calls::run(&data);
    }
}

/// Requests for the two-sided test, weighted so that calls get placed
/// and answered more often than channels get restarted.
fn two_sided_request() -> impl Strategy<Value = u8> {
    use q931_calls::*;
    proptest::sample::select(vec![
        REQ_SETUP,
        REQ_SETUP,
        REQ_SETUP,
        REQ_PROCEEDING,
        REQ_ALERTING,
        REQ_CONNECT,
        REQ_CONNECT,
        REQ_CONNECT,
        REQ_DISCONNECT,
        REQ_REJECT,
        REQ_SETUP_ACK,
        REQ_INFORMATION,
        REQ_RESTART,
        REQ_ENQUIRE,
        REQ_PROGRESS,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn two_sides_under_faults_end_with_no_call(
        seed in any::<u64>(),
        loss in 0u64..25,
        duplicate in 0u64..15,
        reorder in 0u64..25,
        ops in vec((0u8..9, two_sided_request(), 0usize..8, any::<u8>(), 0u32..20_000), 1..50),
    ) {
        let mut p = Pair::e1();
        p.chaos = Some(Chaos { seed: seed | 1, drop: loss, duplicate, reorder });
        for (who, what, call, arg, ms) in ops {
            let now = p.now;
            match who {
                0..=3 => request(&mut p.user, now, what, call, arg),
                4..=7 => request(&mut p.net, now, what, call, arg),
                _ => {
                    p.link_down();
                    p.advance(Duration::from_millis(u64::from(ms) * 10));
                    p.link_up();
                }
            }
            p.advance(Duration::from_millis(u64::from(ms)));
        }
        // Everybody hangs up, again until nothing is left.
        for _ in 0..5 {
            let now = p.now;
            for id in p.user.call_ids() {
                let _ = p.user.disconnect(now, id, crate::call::cause::Cause::NORMAL_CLEARING);
            }
            for id in p.net.call_ids() {
                let _ = p.net.disconnect(now, id, crate::call::cause::Cause::NORMAL_CLEARING);
            }
            p.advance(Duration::from_secs(6 * 3600));
        }
        prop_assert_eq!(p.user.call_count(), 0);
        prop_assert_eq!(p.net.call_count(), 0);
        prop_assert_eq!(p.user.free_channels(), 30);
        prop_assert_eq!(p.net.free_channels(), 30);
        prop_assert_eq!(p.user.poll_timeout(), None);
        prop_assert_eq!(p.net.poll_timeout(), None);
    }
}
