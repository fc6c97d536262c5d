//! Acceptance tests of the SMPP client against `rivr smsc-sim` (the real
//! binary on 127.0.0.1, port 0). Loss and duplicates are judged from the
//! simulator's own log of accepted messages.

#[path = "smpp/harness.rs"]
mod harness;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::*;
use rivr::sms::{MessageState, SmsService};

async fn service(dir: &std::path::Path, port: u16, extra: &str) -> SmsService {
    let cfg = load_config(&write_config(dir, port, extra));
    SmsService::start(&cfg).await.unwrap()
}

async fn wait_all(
    svc: &SmsService,
    ids: &[String],
    limit: Duration,
    done: impl Fn(MessageState) -> bool + Copy,
) {
    let end = Instant::now() + limit;
    for id in ids {
        let left = end.saturating_duration_since(Instant::now());
        let s = svc.wait_for(id, left, done).await.unwrap();
        assert!(done(s), "{id} is {s}");
    }
}

/// Every key accepted exactly once; returns keys in acceptance order.
fn once_each(sim: &Sim, want: usize) -> Vec<String> {
    let acc = sim.accepted();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for a in &acc {
        *count.entry(a.key.as_str()).or_default() += 1;
    }
    let dups: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "duplicates: {dups:?}");
    assert_eq!(count.len(), want, "accepted parts");
    acc.into_iter().map(|a| a.key).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_10_with_500ms_acks_stays_at_10_outstanding_and_20_per_second() {
    let dir = temp_dir("window");
    let sim = Sim::start(&dir, &["--latency-ms", "500", "--no-receipts"]);
    let svc = service(&dir, sim.port, "window = 10\n").await;
    let t0 = Instant::now();
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(svc.submit("15550001", &format!("w{i}")).await.unwrap());
    }
    wait_all(&svc, &ids, Duration::from_secs(30), |s| {
        s == MessageState::Submitted
    })
    .await;
    let rate = 100.0 / t0.elapsed().as_secs_f64();
    let max = sim.stat("max_outstanding");
    println!("window 10 / 500 ms latency: {rate:.1} msg/s, max outstanding {max}");
    assert_eq!(max, 10);
    assert!(rate <= 20.5 && rate > 12.0, "{rate}");
    once_each(&sim, 100);
    svc.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_throttled_all_accepted_once_in_order() {
    let dir = temp_dir("throttle");
    let sim = Sim::start(
        &dir,
        &[
            "--throttle-pct",
            "10",
            "--latency-ms",
            "5",
            "--receipt-delay-ms",
            "10",
        ],
    );
    let svc = service(&dir, sim.port, "window = 10\n").await;
    let mut ids = Vec::new();
    for i in 0..300 {
        ids.push(svc.submit("15550001", &format!("t{i}")).await.unwrap());
    }
    wait_all(&svc, &ids, Duration::from_secs(120), |s| {
        s == MessageState::Delivered
    })
    .await;
    let keys = once_each(&sim, 300);
    let pos: HashMap<String, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (format!("{id}.1"), i))
        .collect();
    let mut max_shift = 0;
    for (at, k) in keys.iter().enumerate() {
        max_shift = max_shift.max(pos[k].abs_diff(at));
    }
    let throttled = sim.stat("throttled");
    println!("throttled {throttled} times; largest displacement {max_shift} (window 10)");
    assert!(throttled >= 10);
    assert!(max_shift < 10, "order kept up to the window: {max_shift}");
    svc.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_dropped_connections_lose_and_duplicate_nothing() {
    let dir = temp_dir("drops");
    let sim = Sim::start(
        &dir,
        &[
            "--drop-every",
            "7",
            "--max-drops",
            "100",
            "--latency-ms",
            "20",
            "--no-receipts",
        ],
    );
    let svc = service(
        &dir,
        sim.port,
        "window = 10\nreconnect_min_ms = 20\nreconnect_max_ms = 200\n",
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..1000 {
        ids.push(svc.submit("15550001", &format!("d{i}")).await.unwrap());
    }
    wait_all(&svc, &ids, Duration::from_secs(180), |s| {
        s == MessageState::Submitted
    })
    .await;
    let drops = sim.stat("drops");
    println!("drops {drops}, binds {}", sim.stat("binds"));
    assert_eq!(drops, 100);
    once_each(&sim, 1000);
    svc.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_all_match_including_three_parts_early_receipts_and_hex_ids() {
    let dir = temp_dir("receipts");
    let sim = Sim::start(
        &dir,
        &["--receipt-before-resp", "--hex-ids", "--latency-ms", "30"],
    );
    let svc = service(&dir, sim.port, "window = 10\n").await;
    let long = "Three parts please. ".repeat(20); // 400 GSM characters
    let ucs2_long = "Привет, мир! ".repeat(14); // 182 UCS-2 characters
    let mut ids = Vec::new();
    for i in 0..20 {
        let text = match i % 3 {
            0 => format!("short {i}"),
            1 => long.clone(),
            _ => ucs2_long.clone(),
        };
        ids.push(svc.submit("15550001", &text).await.unwrap());
    }
    wait_all(&svc, &ids, Duration::from_secs(30), |s| s.is_final()).await;
    let mut parts = 0;
    for id in &ids {
        assert_eq!(
            svc.status(id).await.unwrap(),
            MessageState::Delivered,
            "{id}"
        );
        parts += svc.store().part_states(id).await.unwrap().len();
    }
    let acc = sim.accepted();
    assert_eq!(acc.len(), parts);
    assert!(acc
        .iter()
        .any(|a| a.esm & 0x40 != 0 && a.sm_hex.starts_with("050003")));
    assert!(acc.iter().any(|a| a.dc == 8));
    println!(
        "{} messages, {parts} parts, every receipt matched",
        ids.len()
    );
    svc.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_enquire_link_resp_rebinds() {
    let dir = temp_dir("enquire");
    let sim = Sim::start(&dir, &["--mute-enquire-link"]);
    let svc = service(
        &dir,
        sim.port,
        "enquire_link_secs = 1\nresponse_timeout_ms = 500\n",
    )
    .await;
    assert!(
        wait_until(Duration::from_secs(10), || sim.stat("binds") >= 2),
        "rebound"
    );
    let id = svc.submit("15550001", "after rebind").await.unwrap();
    let s = svc
        .wait_for(&id, Duration::from_secs(10), |s| s.is_final())
        .await
        .unwrap();
    assert_eq!(s, MessageState::Delivered);
    svc.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_stored_while_the_smsc_is_down_go_out_after_restart() {
    let dir = temp_dir("restart");
    // Nothing listens on this port yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let svc = service(&dir, port, "").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(svc.submit("15550001", &format!("r{i}")).await.unwrap());
    }
    svc.shutdown(Duration::from_secs(1)).await;
    drop(svc);
    let sim = Sim::start(&dir, &[]);
    let svc = service(&dir, sim.port, "").await;
    wait_all(&svc, &ids, Duration::from_secs(20), |s| {
        s == MessageState::Delivered
    })
    .await;
    once_each(&sim, 5);
    svc.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_written_before_an_abrupt_stop_is_not_sent_again() {
    let dir = temp_dir("abrupt");
    // The first SMSC holds its answers for 30 s; the process stops (its
    // driver aborted, as by a crash) while the submit_sm is unanswered.
    let slow = Sim::start(&dir, &["--latency-ms", "30000", "--no-receipts"]);
    let svc = service(&dir, slow.port, "").await;
    let written = svc.submit("15550001", "written").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sending(&dir, &written).await && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        sending(&dir, &written).await,
        "the part was never stored as sending"
    );
    // Time for the bytes to reach the SMSC, which will never answer them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    svc.shutdown(Duration::from_millis(1)).await;
    drop(svc);
    drop(slow);
    // A message stored while nothing is connected was never written.
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let svc = service(&dir, down, "").await;
    let unwritten = svc.submit("15550002", "unwritten").await.unwrap();
    assert_eq!(svc.status(&written).await.unwrap(), MessageState::Unknown);
    svc.shutdown(Duration::from_millis(1)).await;
    drop(svc);

    let sim = Sim::start(&dir, &[]);
    let svc = service(&dir, sim.port, "").await;
    wait_all(
        &svc,
        std::slice::from_ref(&unwritten),
        Duration::from_secs(20),
        |s| s == MessageState::Delivered,
    )
    .await;
    let keys = once_each(&sim, 1);
    assert_eq!(keys, [format!("{unwritten}.1")]);
    assert_eq!(svc.status(&written).await.unwrap(), MessageState::Unknown);
    assert_eq!(
        svc.store().part_errors(&written).await.unwrap(),
        [Some(rivr::store::INTERRUPTED.to_string())]
    );
    svc.shutdown(Duration::from_secs(5)).await;
}

/// True once the store has the message's part 1 as being sent (read
/// beside the service, as an operator's query would).
async fn sending(dir: &std::path::Path, id: &str) -> bool {
    let Ok(mut c) = sqlx::ConnectOptions::connect(
        &sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.join("rivr.db"))
            .read_only(true),
    )
    .await
    else {
        return false;
    };
    sqlx::query_scalar::<_, bool>(
        "SELECT sending_ms IS NOT NULL FROM sms_parts WHERE message_id = $1 AND part = 1",
    )
    .bind(id)
    .fetch_optional(&mut c)
    .await
    .ok()
    .flatten()
    .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_sms_becomes_an_event_and_is_stored() {
    let dir = temp_dir("mo");
    let mo = "Ответ: да, перезвоните мне завтра после обеда. ".repeat(4); // 3 UCS-2 parts
    let sim = Sim::start(&dir, &["--mo-text", &mo]);
    let svc = service(&dir, sim.port, "").await;
    let mut rx = svc.notices();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(rivr::sms::Notice::Inbound(id)) = rx.recv().await {
                return id;
            }
        }
    })
    .await
    .unwrap();
    let inbound = svc.store().inbound_since(0).await.unwrap();
    assert_eq!(inbound.len(), 1);
    assert_eq!(
        (inbound[0].id.as_str(), inbound[0].body.as_str()),
        (got.as_str(), mo.as_str()),
        "the three parts are joined into one inbound SMS"
    );
    svc.shutdown(Duration::from_secs(5)).await;
}

#[test]
fn cli_send_waits_for_the_receipt_and_status_reads_it() {
    let dir = temp_dir("cli");
    let sim = Sim::start(&dir, &["--receipt-delay-ms", "200"]);
    let cfg = write_config(&dir, sim.port, "");
    let out = Command::new(rivr_bin())
        .args(["sms", "send", "--config"])
        .arg(&cfg)
        .args([
            "--to",
            "+15550001",
            "--text",
            &"long text ".repeat(40),
            "--wait-receipt",
            "10",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    assert!(id.starts_with("sms-"), "{stdout}");
    assert!(stdout.contains("state delivered"), "{stdout}");
    assert_eq!(sim.accepted().len(), 3, "400 characters are 3 parts");
    let out = Command::new(rivr_bin())
        .args(["sms", "status", "--config"])
        .arg(&cfg)
        .arg(&id)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "delivered");
    let out = Command::new(rivr_bin())
        .args(["sms", "status", "--config"])
        .arg(&cfg)
        .arg("sms-nope")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn cli_reports_a_refused_bind_by_status_name() {
    let dir = temp_dir("bindfail");
    let sim = Sim::start(&dir, &["--password", "secret"]);
    let cfg = write_config(&dir, sim.port, "");
    let out = Command::new(rivr_bin())
        .args(["sms", "send", "--config"])
        .arg(&cfg)
        .args(["--to", "15550001", "--text", "hi"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("ESME_RINVPASWD"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_states_come_from_receipt_words_and_the_receipt_timeout() {
    for (args, extra, want) in [
        (vec!["--receipt-stat", "UNDELIV"], "", MessageState::Failed),
        (vec!["--receipt-stat", "EXPIRED"], "", MessageState::Expired),
        (vec!["--receipt-stat", "UNKNOWN"], "", MessageState::Unknown),
        (
            vec!["--no-receipts"],
            "receipt_timeout_secs = 1\n",
            MessageState::Unknown,
        ),
    ] {
        let dir = temp_dir("finals");
        let sim = Sim::start(&dir, &args);
        let svc = service(&dir, sim.port, extra).await;
        let id = svc.submit("15550001", "final?").await.unwrap();
        let s = svc
            .wait_for(&id, Duration::from_secs(15), |s| s.is_final())
            .await
            .unwrap();
        assert_eq!(s, want, "{args:?}");
        svc.shutdown(Duration::from_secs(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_payload_carries_long_text_in_one_submit() {
    let dir = temp_dir("payload");
    let sim = Sim::start(&dir, &[]);
    let svc = service(&dir, sim.port, "use_message_payload = true\n").await;
    let text = "p".repeat(500);
    let id = svc.submit("15550001", &text).await.unwrap();
    let s = svc
        .wait_for(&id, Duration::from_secs(10), |s| s.is_final())
        .await
        .unwrap();
    assert_eq!(s, MessageState::Delivered);
    let acc = sim.accepted();
    assert_eq!(acc.len(), 1);
    assert_eq!(
        acc[0].sm_hex,
        "70".repeat(500),
        "the payload is logged whole"
    );
    assert_eq!(acc[0].esm & 0x40, 0, "no UDH");
    svc.shutdown(Duration::from_secs(5)).await;
}
