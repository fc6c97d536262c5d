//! Issue 11's crash test: the campaign of tests/campaign_run.rs (1,000
//! contacts, 25 cps, 20 channels, 3 attempts, SMS fallback) while `rivr
//! serve` is SIGKILLed at random moments until the campaign is done (2 to
//! 12 s after each start, at least 5 times, so the retries at the end are
//! hit too) and started again each time in the same dir, on the same
//! config, store and SIP port. The carrier is SIPp
//! (tests/sipp/uas_campaign_crash.xml: the answer is fixed by the number's
//! last digit, and every call it takes ends with a logged cause whatever
//! rivr does) and the SMSC is `rivr smsc-sim`. Their logs are the
//! witnesses, not rivr's store:
//!
//! - no contact lost: every number reached the carrier, and every contact
//!   ends done with an outcome;
//! - no attempt placed twice: an attempt id (the start of the Call-ID, and
//!   `X-Rivr-Attempt`) comes with one Call-ID only, and no number gets
//!   more than `ATTEMPTS` INVITEs;
//! - one outcome per attempt, the one the crash rule allows
//!   (docs/campaigns.md): an attempt rivr saw through ends with its
//!   number's scripted outcome, and the carrier's log agrees; one in
//!   flight at a kill ends `unknown` (or `answered`, if it was answered),
//!   and its contact is called again only as a new, counted attempt;
//! - at most one SMS per number, and exactly one for each contact done
//!   with a final outcome other than `answered` (`unknown` included),
//!   unless the store ended that text `unknown` because its submit_sm was
//!   being written at a kill (then zero or one);
//! - never more than `CPS` INVITEs in any second, nor more than `CHANNELS`
//!   calls up at the carrier, across the restarts;
//! - every call the carrier took has ended by the end (causes printed).
//!
//! Every violation is collected and reported together. The kill schedule
//! comes from a seeded RNG whose seed is printed first; `RIVR_CRASH_SEED`
//! replays it (the schedule, not rivr's timing).

mod common;
#[path = "smpp/harness.rs"]
mod harness;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::campaign::{self, busiest_window, rivr_cli, tightest_span, trace_invites};
use common::carrier::Carrier;
use common::server::{Rivr, RivrConfig};
use common::wire::WireCapture;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rivr::store::{AttemptInfo, AttemptState};
use serde_json::Value;

const CONTACTS: usize = 1000;
const CPS: u32 = 25;
const CHANNELS: u32 = 20;
const ATTEMPTS: u32 = 3;
/// SIGKILLs until the campaign is done, at least `KILLS` and at most
/// `MAX_KILLS`, each this long (ms, uniform) after the previous start was
/// ready, each restart this long (ms) after its kill.
const KILLS: usize = 5;
const MAX_KILLS: usize = 20;
const KILL_AFTER_MS: (u64, u64) = (2_000, 12_000);
const RESTART_AFTER_MS: (u64, u64) = (0, 1_500);
/// From the campaign's start to `done` (about 90 s without kills, here).
/// It leaves room for docs/campaigns.md's fallback, which counts each call
/// a dead process left against the channels until the ring timeout plus
/// the session interval (92 s here) unless the restart ends it: kills
/// during such a hold find nothing in flight, and the carrier's longest
/// wait for an INVITE is printed.
const DONE_WITHIN: Duration = Duration::from_secs(480);
/// After `done`, for the last texts and the carrier's last ends (its
/// longest wait: a 200 retransmitted unACKed for ~32 s).
const SETTLE_WITHIN: Duration = Duration::from_secs(45);

fn number(i: usize) -> String {
    format!("+254712{i:06}")
}

/// What the carrier does with a number, by its last digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Script {
    /// 2: 486.
    Busy,
    /// 3: 180 until cancelled.
    Rings,
    /// 4: 503.
    Unavailable,
    /// 5: 200, then the callee hangs up.
    AnswersHangsUp,
    /// Others: 200, rivr hangs up.
    Answers,
}

fn script(phone: &str) -> Script {
    match phone.chars().last() {
        Some('2') => Script::Busy,
        Some('3') => Script::Rings,
        Some('4') => Script::Unavailable,
        Some('5') => Script::AnswersHangsUp,
        _ => Script::Answers,
    }
}

impl Script {
    /// The outcome of an attempt rivr sees through.
    fn outcome(self) -> &'static str {
        match self {
            Script::Busy => "busy",
            Script::Rings => "no_answer",
            Script::Unavailable => "congestion",
            Script::AnswersHangsUp | Script::Answers => "answered",
        }
    }

    /// How the carrier ends a call rivr sees through.
    fn end(self) -> &'static str {
        match self {
            Script::Busy => "busy",
            Script::Rings => "cancel",
            Script::Unavailable => "unavailable",
            Script::AnswersHangsUp => "far_bye",
            Script::Answers => "bye",
        }
    }

    fn answers(self) -> bool {
        matches!(self, Script::AnswersHangsUp | Script::Answers)
    }
}

/// The carrier's ends of a call it answered (a 200 was sent).
const ANSWERED_ENDS: [&str; 4] = ["bye", "far_bye", "talk_timeout", "noack"];

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn status(config: &Path, id: &str) -> Value {
    serde_json::from_str(&rivr_cli(config, &["status", id, "--json"])).expect("status JSON")
}

/// One call as the carrier's log tells it.
#[derive(Debug, Default)]
struct CarrierCall {
    /// E.164, as dialed.
    number: String,
    invite_ms: u64,
    /// `invite` lines with this Call-ID (a retransmission logs none).
    invites: u32,
    acked: bool,
    /// (ms, why) of each `end` line.
    ends: Vec<(u64, String)>,
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|w| w.strip_prefix(key))
}

/// The calls in the carrier's log, by Call-ID.
fn carrier_calls(log: &str) -> HashMap<String, CarrierCall> {
    let mut calls: HashMap<String, CarrierCall> = HashMap::new();
    for line in log.lines() {
        let (Some(t), Some(id)) = (field(line, "t="), field(line, "call_id=")) else {
            continue;
        };
        let Ok(t) = t.parse::<u64>() else { continue };
        let c = calls.entry(id.to_string()).or_default();
        if line.starts_with("invite ") {
            c.invites += 1;
            if c.invites == 1 {
                c.invite_ms = t;
                // The carrier logs the digits after the `+`.
                c.number = format!("+{}", field(line, "number=").unwrap_or_default());
            }
        } else if line.starts_with("acked ") {
            c.acked = true;
        } else if line.starts_with("end ") {
            c.ends
                .push((t, field(line, "why=").unwrap_or("?").to_string()));
        }
    }
    calls
}

/// The attempt id a campaign Call-ID starts with: `a` and 16 hex digits,
/// then `.`.
fn attempt_of(call_id: &str) -> Option<&str> {
    let (head, _) = call_id.split_once('.')?;
    let hex = head.strip_prefix('a')?;
    (hex.len() == 16 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(head)
}

/// The most calls up at once at the carrier (INVITE to end line; a call
/// with no end line stays up).
fn most_up(calls: &HashMap<String, CarrierCall>) -> (i32, u64) {
    let mut edges: Vec<(u64, i32)> = Vec::new();
    for c in calls.values().filter(|c| c.invites > 0) {
        edges.push((c.invite_ms, 1));
        edges.push((c.ends.first().map_or(u64::MAX, |e| e.0), -1));
    }
    // An end before a start at the same tick.
    edges.sort();
    let (mut up, mut max, mut at) = (0i32, 0i32, 0u64);
    for (t, d) in edges {
        up += d;
        if up > max {
            max = up;
            at = t;
        }
    }
    (max, at)
}

/// One SIGKILL and the restart after it.
struct Kill {
    /// Since the campaign started.
    at: Duration,
    /// Wall clock (ms) once the process was reaped: everything the dead
    /// process wrote is older.
    killed_ms: i64,
    invites_before: usize,
    up_at_carrier: usize,
    restart_after: Duration,
    ready_in: Duration,
}

/// Violations, each kind with a few examples.
#[derive(Default)]
struct Failures(BTreeMap<&'static str, Vec<String>>);

impl Failures {
    fn add(&mut self, kind: &'static str, example: String) {
        self.0.entry(kind).or_default().push(example);
    }

    fn report(&self) -> String {
        self.0
            .iter()
            .map(|(kind, ex)| {
                format!(
                    "- {kind}: {} case(s), e.g.\n    {}",
                    ex.len(),
                    ex.iter()
                        .take(8)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("\n    ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The store opened read-only beside the library, for the test's own
/// queries (the tables are in docs/campaigns.md, "Store tables").
async fn read_only(db: &Path) -> sqlx::SqlitePool {
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(db)
                .read_only(true),
        )
        .await
        .expect("open the store read-only")
}

/// Every attempt of the campaign, from the store (read through the
/// library), by contact phone, in `n` order.
fn stored_attempts(db: &Path, campaign: &str) -> BTreeMap<String, Vec<AttemptInfo>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let url = format!("sqlite://{}", db.display());
        let store = rivr::store::Store::open(&url, Path::new("/"))
            .await
            .expect("open the store");
        // The store has no listing of a campaign's attempts: their ids come
        // from the table (docs/campaigns.md, "Store tables").
        let pool = read_only(db).await;
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM attempts WHERE campaign_id = $1 ORDER BY id")
                .bind(campaign)
                .fetch_all(&pool)
                .await
                .expect("list attempts");
        let mut by_phone: BTreeMap<String, Vec<AttemptInfo>> = BTreeMap::new();
        for id in ids {
            let a = store
                .attempt(&id)
                .await
                .expect("read an attempt")
                .expect("a listed attempt");
            by_phone.entry(a.phone.clone()).or_default().push(a);
        }
        for list in by_phone.values_mut() {
            list.sort_by_key(|a| a.n);
        }
        by_phone
    })
}

/// The numbers whose SMS fallback a restart ended `unknown` because its
/// submit_sm was being written when rivr was killed (docs/sms.md, "Nothing
/// twice"): the SMSC may or may not have it.
fn interrupted_texts(db: &Path, campaign: &str) -> HashSet<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let pool = read_only(db).await;
        sqlx::query_scalar(
            "SELECT DISTINCT c.phone FROM contacts c JOIN sms_parts p ON p.message_id = c.sms_id \
             WHERE c.campaign_id = $1 AND p.state = 'unknown' AND p.error = $2",
        )
        .bind(campaign)
        .bind(rivr::store::INTERRUPTED)
        .fetch_all(&pool)
        .await
        .expect("list interrupted texts")
        .into_iter()
        .collect()
    })
}

#[test]
fn sigkilled_and_restarted_the_campaign_loses_no_contact_and_places_no_attempt_twice() {
    require_sipp!();
    let seed = std::env::var("RIVR_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("[crash] seed {seed} (RIVR_CRASH_SEED={seed} replays the kill schedule)");
    let mut rng = StdRng::seed_from_u64(seed);

    let simdir = harness::temp_dir("campaign-crash-sim");
    let sim = harness::Sim::start(&simdir, &["--receipt-delay-ms", "50"]);
    let carrier_dir = harness::temp_dir("campaign-crash-carrier");
    // `-default_behaviors none`: a message the scenario does not expect
    // is logged and ignored, never a reason to drop the call.
    let carrier = Carrier::start_with(
        &carrier_dir,
        "crash",
        "uas_campaign_crash.xml",
        200,
        &[],
        &[
            "-m",
            "100000",
            "-timeout",
            "900s",
            "-default_behaviors",
            "none",
        ],
    );
    // The pace is judged on the wire (see common::wire).
    let wire = WireCapture::start(&carrier_dir, carrier.port);
    let db = simdir.join("rivr.db");
    let mut cfg = RivrConfig {
        rtp_ports: 200,
        // The shortest session interval rivr may ask for: a call a dead
        // process left is counted as holding its channel for at most the
        // ring timeout plus this (docs/campaigns.md, ghost channels), 92 s
        // rather than 30 min, should the restart not end it.
        sip_table: "session_expires = 90\nmin_se = 90\n".into(),
        ..RivrConfig::default()
    };
    cfg.extra_tables = campaign::tables(&db, sim.port, carrier.port);
    let mut rivr = Rivr::start("campaign-crash", cfg);
    let config = rivr.dir.join("rivr.toml");
    let id = campaign::create(
        &rivr,
        &campaign::Blast {
            contacts: CONTACTS,
            cps: CPS,
            channels: CHANNELS,
            attempts: ATTEMPTS,
        },
        number,
    );
    rivr_cli(&config, &["start", &id]);
    let t0 = Instant::now();
    let mut failures = Failures::default();

    // The kills.
    let mut kills: Vec<Kill> = Vec::new();
    let mut ready = t0;
    for k in 1..=MAX_KILLS {
        let delay = Duration::from_millis(rng.gen_range(KILL_AFTER_MS.0..=KILL_AFTER_MS.1));
        let pause = Duration::from_millis(rng.gen_range(RESTART_AFTER_MS.0..=RESTART_AFTER_MS.1));
        while Instant::now() < ready + delay {
            assert!(
                rivr.is_running(),
                "rivr exited by itself: {}",
                rivr.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        if status(&config, &id)["state"] == "done" {
            break;
        }
        let calls = carrier_calls(&carrier.log());
        let invites_before = calls.values().filter(|c| c.invites > 0).count();
        let up_at_carrier = calls
            .values()
            .filter(|c| c.invites > 0 && c.ends.is_empty())
            .count();
        let at = t0.elapsed();
        rivr.kill9().expect("rivr was running");
        let killed_ms = wall_ms();
        std::thread::sleep(pause);
        let started = Instant::now();
        rivr.restart();
        ready = Instant::now();
        let kill = Kill {
            at,
            killed_ms,
            invites_before,
            up_at_carrier,
            restart_after: pause,
            ready_in: ready - started,
        };
        println!(
            "[crash] kill {k} at {:.1} s: {} INVITEs so far, {} calls up at the carrier; restarted {:.2} s later, ready in {:.2} s",
            kill.at.as_secs_f64(),
            kill.invites_before,
            kill.up_at_carrier,
            kill.restart_after.as_secs_f64(),
            kill.ready_in.as_secs_f64(),
        );
        kills.push(kill);
    }

    // To the end of the campaign.
    let mut last_print = Instant::now();
    let done_status = loop {
        let s = status(&config, &id);
        if s["state"] == "done" {
            break s;
        }
        if t0.elapsed() > DONE_WITHIN {
            failures.add(
                "the campaign was not done in time",
                format!("not done {DONE_WITHIN:?} after its start: {s}"),
            );
            break s;
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            println!("[crash] {:.0} s: {s}", t0.elapsed().as_secs_f64());
            last_print = Instant::now();
        }
        assert!(
            rivr.is_running(),
            "rivr exited by itself: {}",
            rivr.stderr()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let done = done_status["state"] == "done";
    let took = t0.elapsed();
    let since_restart = took.saturating_sub(kills.last().map_or(Duration::ZERO, |k| k.at));
    println!(
        "[crash] {} after {:.1} s ({:.1} s after the last kill): {done_status}",
        done_status["state"],
        took.as_secs_f64(),
        since_restart.as_secs_f64()
    );
    if kills.len() < KILLS {
        failures.add(
            "the campaign was done before the kills asked",
            format!("done after {} kills, not {KILLS}", kills.len()),
        );
    }

    // Give the last texts time to arrive, and the carrier time to end
    // every call it still holds; then stop rivr, so the report and the
    // store are read as one snapshot.
    let settle = Instant::now() + SETTLE_WITHIN;
    loop {
        let texted: HashSet<String> = sim.accepted().into_iter().map(|a| a.dest).collect();
        let want = status(&config, &id)["texted"].as_u64().unwrap_or(0) as usize;
        let open = carrier_calls(&carrier.log())
            .values()
            .filter(|c| c.invites > 0 && c.ends.is_empty())
            .count();
        if (texted.len() >= want && open == 0) || Instant::now() > settle {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // A stop is one more moment when attempts may be in flight (a
    // shutdown ends them `unknown`); there are none once the campaign is
    // done.
    let stopped_ms = wall_ms();
    rivr.terminate(Duration::from_secs(10));
    let stops: Vec<i64> = kills
        .iter()
        .map(|k| k.killed_ms)
        .chain([stopped_ms])
        .collect();

    // The report: every contact done, with an outcome.
    let final_status = status(&config, &id);
    let report: Value =
        serde_json::from_str(&rivr_cli(&config, &["report", &id, "--format", "json"])).unwrap();
    let rows = report.as_array().cloned().unwrap_or_default();
    if rows.len() != CONTACTS {
        failures.add(
            "report rows",
            format!("{} rows, not {CONTACTS}", rows.len()),
        );
    }
    if done && (final_status["done"] != CONTACTS || final_status["remaining"] != 0) {
        failures.add(
            "contacts not done in a done campaign",
            format!(
                "done {} remaining {} in progress {}",
                final_status["done"], final_status["remaining"], final_status["in_progress"]
            ),
        );
    }
    let mut final_outcome: HashMap<String, String> = HashMap::new();
    for r in &rows {
        let phone = r["phone"].as_str().unwrap_or_default().to_string();
        match r["outcome"].as_str() {
            Some(o) => {
                final_outcome.insert(phone, o.to_string());
            }
            None if done => failures.add("a contact without an outcome", format!("{phone}: {r}")),
            None => {}
        }
    }

    // The carrier's witness.
    let calls = carrier_calls(&carrier.log());
    let trace = trace_invites(&carrier.messages());
    let invites = calls.values().filter(|c| c.invites > 0).count();
    if trace.len() != invites {
        failures.add(
            "the trace and the log disagree",
            format!("{} INVITEs in the trace, {invites} in the log", trace.len()),
        );
    }
    let mut call_ids_of: HashMap<String, HashSet<String>> = HashMap::new();
    for t in &trace {
        let Some(attempt) = attempt_of(&t.call_id) else {
            failures.add(
                "a Call-ID that does not start with an attempt id",
                t.call_id.clone(),
            );
            continue;
        };
        if t.attempt_header.as_deref() != Some(attempt) {
            failures.add(
                "X-Rivr-Attempt is not the Call-ID's attempt id",
                format!("{}: X-Rivr-Attempt {:?}", t.call_id, t.attempt_header),
            );
        }
        call_ids_of
            .entry(attempt.to_string())
            .or_default()
            .insert(t.call_id.clone());
    }
    for (attempt, ids) in &call_ids_of {
        if ids.len() > 1 {
            failures.add(
                "an attempt placed twice (two Call-IDs)",
                format!("{attempt}: {ids:?}"),
            );
        }
    }
    let mut per_number: HashMap<&str, u32> = HashMap::new();
    let mut ends_tally: BTreeMap<String, u32> = BTreeMap::new();
    for (call_id, c) in &calls {
        if c.invites == 0 {
            failures.add(
                "an end line with no INVITE",
                format!("{call_id}: {:?}", c.ends),
            );
            continue;
        }
        *per_number.entry(c.number.as_str()).or_default() += 1;
        if c.invites > 1 {
            failures.add(
                "one Call-ID INVITEd as two calls",
                format!("{call_id}: {} invite lines", c.invites),
            );
        }
        match c.ends.as_slice() {
            [] => failures.add(
                "a call the carrier took never ended",
                format!("{call_id} ({}), INVITE at {} ms", c.number, c.invite_ms),
            ),
            [(_, why)] => *ends_tally.entry(why.clone()).or_default() += 1,
            more => failures.add(
                "a call with more than one end line",
                format!("{call_id}: {more:?}"),
            ),
        }
    }
    for i in 0..CONTACTS {
        let n = number(i);
        match per_number.get(n.as_str()).copied().unwrap_or(0) {
            0 if done => failures.add("a number the carrier never saw", n),
            k if k > ATTEMPTS => failures.add(
                "a number with more INVITEs than attempts allowed",
                format!("{n}: {k} INVITEs"),
            ),
            _ => {}
        }
    }
    // The pace on the carrier's interface (the kernel's clock); SIPp's
    // trace, stamped when its thread read each INVITE, beside it.
    let on_wire = wire.stop();
    if on_wire.len() != trace.len() {
        failures.add(
            "the wire and the trace disagree",
            format!(
                "{} INVITEs on the wire, {} in the trace",
                on_wire.len(),
                trace.len()
            ),
        );
    }
    let read_times: Vec<i64> = trace.iter().map(|t| t.us).collect();
    println!(
        "[crash] as SIPp read them: at most {} in any 1 s, the closest {} took {:.1} ms",
        busiest_window(&read_times, 1_000_000).0,
        CPS + 1,
        tightest_span(&read_times, CPS as usize + 1).unwrap_or(i64::MAX) as f64 / 1e3
    );
    let times: Vec<i64> = on_wire.iter().map(|t| t.us).collect();
    let (max_in_second, busiest_at) = busiest_window(&times, 1_000_000);
    let tightest_ms = tightest_span(&times, CPS as usize + 1).unwrap_or(i64::MAX) as f64 / 1e3;
    if max_in_second > CPS as usize {
        let near: Vec<String> = kills
            .iter()
            .map(|k| format!("{:+.2} s", (busiest_at / 1000 - k.killed_ms) as f64 / 1e3))
            .collect();
        failures.add(
            "more INVITEs in one second than cps",
            format!(
                "{max_in_second} in the second from {:.2} s after the first INVITE (cps {CPS}; the closest {} took {tightest_ms:.1} ms); that second starts, from each kill: {}",
                (busiest_at - times.first().copied().unwrap_or(0)) as f64 / 1e6,
                CPS + 1,
                near.join(", ")
            ),
        );
    }
    // The longest the carrier waited for an INVITE (a stalled dialer).
    let (gap_us, gap_from) = times
        .windows(2)
        .map(|w| (w[1] - w[0], w[0]))
        .max()
        .unwrap_or((0, 0));
    let gap_after_kill = kills
        .iter()
        .rev()
        .find(|k| k.killed_ms <= gap_from / 1000)
        .map(|k| (gap_from / 1000 - k.killed_ms) as f64 / 1e3);
    let (max_up, up_at) = most_up(&calls);
    if max_up > CHANNELS as i32 {
        failures.add(
            "more calls up at the carrier than max_channels",
            format!("{max_up} up at once at {up_at} ms of the carrier's clock (max_channels {CHANNELS})"),
        );
    }

    // The store, against the crash rule and the carrier.
    let by_call_id_attempt: HashMap<&str, (&str, &CarrierCall)> = calls
        .iter()
        .filter_map(|(id, c)| Some((attempt_of(id)?, (id.as_str(), c))))
        .collect();
    let stored = stored_attempts(&db, &id);
    let stored_ids: HashSet<&str> = stored.values().flatten().map(|a| a.id.as_str()).collect();
    for (attempt, (call_id, c)) in &by_call_id_attempt {
        if !stored_ids.contains(attempt) {
            failures.add(
                "an attempt at the carrier that the store does not have",
                format!("{call_id} ({})", c.number),
            );
        }
    }
    let spans_stop = |a: &AttemptInfo| {
        stops
            .iter()
            .any(|&t| a.claimed_at <= t && a.ended_at.is_none_or(|e| e > t))
    };
    let mut outcomes_tally: BTreeMap<String, u32> = BTreeMap::new();
    let report_attempts: HashMap<&str, u64> = rows
        .iter()
        .filter_map(|r| Some((r["phone"].as_str()?, r["attempts"].as_u64()?)))
        .collect();
    for (phone, list) in &stored {
        let s = script(phone);
        if report_attempts.get(phone.as_str()).copied() != Some(list.len() as u64) {
            failures.add(
                "the report's attempt count is not the store's",
                format!(
                    "{phone}: report {:?}, store {}",
                    report_attempts.get(phone.as_str()),
                    list.len()
                ),
            );
        }
        if list.iter().map(|a| a.n).ne(1..=list.len() as u32) {
            failures.add(
                "attempt numbers are not 1, 2, …",
                format!(
                    "{phone}: {:?}",
                    list.iter().map(|a| a.n).collect::<Vec<_>>()
                ),
            );
        }
        if list.len() as u32 > ATTEMPTS {
            failures.add(
                "more attempts than allowed",
                format!("{phone}: {}", list.len()),
            );
        }
        for (i, a) in list.iter().enumerate() {
            let last = i + 1 == list.len();
            let Some(outcome) = a.outcome.map(|o| o.as_str()) else {
                failures.add(
                    "an attempt without an outcome",
                    format!("{phone} #{} {} {:?}", a.n, a.id, a.state),
                );
                continue;
            };
            *outcomes_tally.entry(outcome.to_string()).or_default() += 1;
            if a.state != AttemptState::Done {
                failures.add(
                    "an attempt not done",
                    format!("{phone} #{} {} {:?}", a.n, a.id, a.state),
                );
            }
            let at_carrier = by_call_id_attempt.get(a.id.as_str());
            let desc = format!(
                "{phone} #{} {} {outcome}, carrier: {}",
                a.n,
                a.id,
                at_carrier.map_or("never saw it".to_string(), |(id, c)| format!(
                    "{id} end {:?}{}",
                    c.ends,
                    if c.acked { " (acked)" } else { "" }
                ))
            );
            if spans_stop(a) {
                // In flight at a kill (or the final stop): the restart (or
                // the shutdown) resolved it.
                let allowed = outcome == "unknown" || (outcome == "answered" && s.answers());
                if !allowed {
                    failures.add(
                        "an attempt in flight at a kill with an outcome the crash rule does not give",
                        desc.clone(),
                    );
                }
                if outcome == "answered"
                    && !at_carrier.is_some_and(|(_, c)| {
                        c.ends
                            .first()
                            .is_some_and(|e| ANSWERED_ENDS.contains(&e.1.as_str()))
                    })
                {
                    failures.add(
                        "answered in the store, never answered at the carrier",
                        desc.clone(),
                    );
                }
            } else {
                // Seen through by the process that placed it: its number's
                // outcome, as the carrier ended it.
                if outcome != s.outcome() {
                    failures.add(
                        "an attempt seen through with another outcome than its number's",
                        desc.clone(),
                    );
                }
                let carrier_agrees = at_carrier.is_some_and(|(_, c)| {
                    c.ends.first().is_some_and(|e| e.1 == s.end()) && (!s.answers() || c.acked)
                });
                if !carrier_agrees {
                    failures.add(
                        "the carrier's log does not show the attempt's outcome",
                        desc.clone(),
                    );
                }
            }
            // What follows for the contact: the outcomes `--retry` names,
            // and `unknown` (always), are retried while attempts remain.
            let retryable = matches!(outcome, "busy" | "no_answer" | "congestion" | "unknown");
            let retried = retryable && a.n < ATTEMPTS;
            if last && retried && done {
                failures.add(
                    "a contact left after a retryable outcome with attempts to spare",
                    desc.clone(),
                );
            }
            if !last && !retried {
                failures.add("an attempt after a final outcome", desc.clone());
            }
        }
        let last = list.last().and_then(|a| a.outcome).map(|o| o.as_str());
        if final_outcome.get(phone).map(String::as_str) != last {
            failures.add(
                "the report's outcome is not the last attempt's",
                format!(
                    "{phone}: report {:?}, last attempt {last:?}",
                    final_outcome.get(phone)
                ),
            );
        }
    }
    for i in 0..CONTACTS {
        if done && !stored.contains_key(&number(i)) {
            failures.add("a contact with no attempt", number(i));
        }
    }
    // The contacts whose last attempt is final, with its outcome.
    let finals_stored: HashMap<&str, &str> = stored
        .iter()
        .filter_map(|(phone, list)| {
            let a = list.last()?;
            let o = a.outcome?.as_str();
            let retried =
                matches!(o, "busy" | "no_answer" | "congestion" | "unknown") && a.n < ATTEMPTS;
            (!retried).then_some((phone.as_str(), o))
        })
        .collect();

    // The SMSC's witness: one text for each contact done and not
    // answered, none for the others; a text being sent at a kill may be
    // missing (it is never sent twice), and the store must say so.
    let interrupted = interrupted_texts(&db, &id);
    let accepted = sim.accepted();
    let mut texts: HashMap<String, Vec<String>> = HashMap::new();
    for a in &accepted {
        let dest = if a.dest.starts_with('+') {
            a.dest.clone()
        } else {
            format!("+{}", a.dest)
        };
        texts.entry(dest).or_default().push(a.key.clone());
    }
    for i in 0..CONTACTS {
        let n = number(i);
        let got = texts.get(&n).map_or(0, Vec::len);
        let outcome = finals_stored
            .get(n.as_str())
            .copied()
            .unwrap_or("not final");
        let want = usize::from(
            finals_stored
                .get(n.as_str())
                .is_some_and(|o| *o != "answered"),
        );
        if got > 1 {
            failures.add(
                "a number texted more than once",
                format!("{n} ({outcome}): {got} texts, keys {:?}", texts[&n]),
            );
        } else if got == 0 && want == 1 && interrupted.contains(&n) {
            // At most once: the kill came between storing the part as being
            // sent and the SMSC reading it.
        } else if got != want {
            failures.add(
                "a contact texted though answered (or not done), or not texted though done and not answered",
                format!(
                    "{n}: final outcome {outcome}, {got} texts; attempts {:?}",
                    stored.get(&n).map(|l| l
                        .iter()
                        .map(|a| a.outcome.map_or("-", |o| o.as_str()))
                        .collect::<Vec<_>>())
                ),
            );
        }
    }

    let finals: BTreeMap<&str, u32> = final_outcome.values().fold(BTreeMap::new(), |mut m, o| {
        *m.entry(o.as_str()).or_default() += 1;
        m
    });
    let errors = carrier.errors();
    let unexpected: Vec<&str> = errors
        .lines()
        .filter(|l| l.contains("unexpected"))
        .collect();
    let span_s = (times.last().unwrap_or(&0) - times.first().unwrap_or(&0)) as f64 / 1e6;
    println!(
        "[crash] {} kills, {} runs of rivr, campaign {} after {:.1} s",
        kills.len(),
        rivr.runs(),
        final_status["state"],
        took.as_secs_f64()
    );
    println!(
        "[crash] carrier: {invites} INVITEs over {span_s:.1} s, at most {max_in_second} in any 1 s on the wire (cps {CPS}; the closest {} took {tightest_ms:.1} ms), at most {max_up} calls up at once (max_channels {CHANNELS})",
        CPS + 1
    );
    println!(
        "[crash] carrier: longest wait for an INVITE {:.1} s{}",
        gap_us as f64 / 1e6,
        gap_after_kill.map_or(String::new(), |s| format!(
            ", from {s:.1} s after the kill before it"
        ))
    );
    let by_timer: u32 = ["timeout", "talk_timeout", "noack"]
        .iter()
        .filter_map(|w| ends_tally.get(*w))
        .sum();
    println!(
        "[crash] carrier's ends: {ends_tally:?}; {by_timer} of them by the carrier's own timers (calls nobody ended)"
    );
    println!(
        "[crash] carrier: {} unexpected messages (ignored){}",
        unexpected.len(),
        unexpected
            .iter()
            .take(3)
            .map(|l| format!("\n    {}", l.chars().take(240).collect::<String>()))
            .collect::<String>()
    );
    println!("[crash] attempts by outcome: {outcomes_tally:?}");
    println!("[crash] contacts by the report's outcome: {finals:?}");
    println!(
        "[crash] SMSC: {} texts to {} numbers ({} contacts done and not answered; {} texts being sent at a kill, ended unknown)",
        accepted.len(),
        texts.len(),
        finals_stored.values().filter(|o| **o != "answered").count(),
        interrupted.len()
    );
    assert!(
        failures.0.is_empty(),
        "seed {seed}: the crash test found:\n{}\n(carrier's logs in {}, store and SMSC log in {})",
        failures.report(),
        carrier_dir.display(),
        simdir.display()
    );
}
