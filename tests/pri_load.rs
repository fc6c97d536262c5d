//! `make load`'s PRI figures: N simultaneous calls (30 on one E1 span, 60
//! on two) into `rivr serve`, from libpri carriers (tests/pri/libpri_peer.c,
//! network side), each answered by a script that loops the main_menu
//! prompt while the carrier sends its tone: media both ways on every
//! B-channel. Prints what it cost rivr beside the SIP load's figures
//! (tests/load/inbound.sh): CPU while all calls were up, per call, and
//! resident memory per call. Ignored in `make test`; `make load` runs it
//! against the release build with `PRI_LOAD_CALLS=30` and `=60`
//! (`PRI_LOAD_HOLD` seconds each call is held, default 60).

mod common;

use std::time::{Duration, Instant};

use common::libpri::{LibpriPeer, SpanOptions, SpanPaths};
use common::pri_rivr::{span_table, trunk_table};
use common::procfs::status_field;
use common::scratch::Scratch;
use common::server::{Rivr, RivrConfig};

const LINK: Duration = Duration::from_secs(10);

const LOOP: &str = r#"
answer();
loop { play("main_menu"); }
"#;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("rivr's stat");
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|w| w.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 of stat; `rest` starts at field 3.
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

/// Clock ticks a second (`getconf CLK_TCK`; 100 on Linux).
fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

#[test]
#[ignore = "a load: make load"]
fn pri_load() {
    let calls = env_u64("PRI_LOAD_CALLS", 30) as usize;
    let hold = Duration::from_secs(env_u64("PRI_LOAD_HOLD", 60));
    assert!((1..=60).contains(&calls), "PRI_LOAD_CALLS: 1 to 60");
    let spans = calls.div_ceil(30);
    let dir = Scratch::new("pri-load");
    let mut peers = Vec::new();
    let mut tables = String::new();
    let names: Vec<String> = (1..=spans).map(|i| format!("span{i}")).collect();
    for name in &names {
        let paths = SpanPaths::in_dir(dir.path(), name);
        let opts = SpanOptions {
            manual: false,
            max_seconds: (hold.as_secs() + 120) as u32,
            ..SpanOptions::e1()
        };
        peers.push(LibpriPeer::start(dir.path(), name, &paths, &opts));
        tables.push_str(&span_table(name, &paths));
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    tables.push_str(&trunk_table(&refs, ""));
    let mut rivr = Rivr::start(
        "pri-load",
        RivrConfig {
            extra_tables: tables,
            ..RivrConfig::default()
        }
        .script("7100", "loop.rhai", LOOP),
    );
    let pid = rivr.pid().expect("rivr runs");
    for p in &peers {
        p.wait_name("up", LINK);
    }
    std::thread::sleep(Duration::from_secs(2));
    let rss_idle = status_field(pid, "VmRSS").unwrap_or(0);
    let t0 = Instant::now();
    let ticks0 = cpu_ticks(pid);
    let mut placed = Vec::new();
    for i in 0..calls {
        let peer = i / 30;
        let n = peers[peer].call("7100", "5551234", None);
        placed.push((peer, n));
    }
    for (k, p) in peers.iter().enumerate() {
        let mine = placed.iter().filter(|(q, _)| *q == k).count();
        p.wait_count(0, mine, Duration::from_secs(30), "connect", |e| {
            e.name == "connect"
        });
    }
    let ramp = t0.elapsed();
    // The steady window: every call up, after a second to settle.
    std::thread::sleep(Duration::from_secs(1));
    let (s0, w0) = (cpu_ticks(pid), Instant::now());
    let steady_for = hold.saturating_sub(ramp + Duration::from_secs(2));
    std::thread::sleep(steady_for);
    let (s1, w1) = (cpu_ticks(pid), Instant::now());
    let rss_up = status_field(pid, "VmRSS").unwrap_or(0);
    for (peer, n) in &placed {
        peers[*peer].hangup(*n, 16);
    }
    let mut frames = (0i64, 0i64, 0usize);
    for (peer, n) in &placed {
        let end = peers[*peer].wait_end(*n, Duration::from_secs(20));
        let (rx, tx) = (end.num("rx").unwrap_or(0), end.num("tx").unwrap_or(0));
        frames.0 += rx;
        frames.1 += tx;
        let want = (steady_for.as_millis() / 20) as i64;
        if rx >= want && tx >= want {
            frames.2 += 1;
        }
    }
    let ticks1 = cpu_ticks(pid);
    let run = t0.elapsed();
    let hwm = status_field(pid, "VmHWM").unwrap_or(0);
    let tck = clk_tck();
    let steady_cpu = (s1 - s0) as f64 / tck / (w1 - w0).as_secs_f64() * 100.0;
    let run_cpu = (ticks1 - ticks0) as f64 / tck / run.as_secs_f64() * 100.0;
    let deadline = Instant::now() + Duration::from_secs(10);
    let cdrs = loop {
        let c = rivr.cdrs();
        if c.len() >= calls || Instant::now() >= deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let answered = cdrs.iter().filter(|c| c["outcome"] == "answered").count();
    let status = rivr.terminate(Duration::from_secs(10));
    println!();
    println!(
        "== rivr PRI load: {calls} calls x {} s on {spans} E1 span(s) (libpri), main_menu looped, A-law both ways ==",
        hold.as_secs()
    );
    println!(
        "calls: answered {answered} of {calls} (CDRs {}), all up {} ms after the first SETUP; {} calls carried frames both ways for the whole steady window; frames rx {} tx {} (at libpri); rivr exit after SIGTERM {status:?}",
        cdrs.len(),
        ramp.as_millis(),
        frames.2,
        frames.0,
        frames.1
    );
    println!(
        "CPU:   {run_cpu:.1}% of one core over the whole run ({} s)",
        run.as_secs()
    );
    println!(
        "       {steady_cpu:.1}% while all {calls} calls were up ({} s) = {:.3}% per call",
        (w1 - w0).as_secs(),
        steady_cpu / calls as f64
    );
    println!(
        "RSS:   {rss_idle} kB idle, {rss_up} kB with all calls up, peak (VmHWM) {hwm} kB = {:.3} MB per call",
        (hwm.saturating_sub(rss_idle)) as f64 / 1024.0 / calls as f64
    );
    assert_eq!(answered, calls, "every call answered");
    assert_eq!(
        frames.2, calls,
        "every call carried media for the whole window"
    );
}
