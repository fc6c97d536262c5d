//! Benchmark, not a timed assertion: messages per second over one bind on
//! loopback against `rivr smsc-sim` (no added latency, no receipts), with
//! windows 1, 10 and 50. Each message is stored before it is sent and its
//! acceptance is stored too, so the figure includes the SQLite writes.
//! Run with `make smpp-bench` (or `cargo test --release --test smpp_bench
//! -- --ignored --nocapture`).

#[path = "smpp/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::*;
use rivr::sms::{MessageState, SmsService};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored"]
async fn messages_per_second_over_one_bind() {
    let n: usize = std::env::var("SMPP_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    for window in [1usize, 10, 50] {
        let dir = temp_dir(&format!("bench{window}"));
        let sim = Sim::start(&dir, &["--no-receipts"]);
        let cfg = load_config(&write_config(
            &dir,
            sim.port,
            &format!("window = {window}\n"),
        ));
        let svc = SmsService::start(&cfg).await.unwrap();
        // Bind first so the figure is the steady state.
        let warm = svc.submit("15550001", "warm-up").await.unwrap();
        svc.wait_for(&warm, Duration::from_secs(10), |s| {
            s != MessageState::Queued
        })
        .await
        .unwrap();
        let t0 = Instant::now();
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            ids.push(svc.submit("15550001", &format!("bench {i}")).await.unwrap());
        }
        let queued = t0.elapsed();
        for id in ids.iter().rev() {
            let s = svc
                .wait_for(id, Duration::from_secs(120), |s| s != MessageState::Queued)
                .await
                .unwrap();
            assert_eq!(s, MessageState::Submitted);
        }
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "window {window:>2}: {n} messages in {secs:.2} s = {:.0} msg/s (storing alone took {:.2} s); max outstanding {}",
            n as f64 / secs,
            queued.as_secs_f64(),
            sim.stat("max_outstanding")
        );
        assert_eq!(sim.accepted().len(), n + 1);
        svc.shutdown(Duration::from_secs(5)).await;
    }
}

/// The same over a backlog: N messages stored while the SMSC is down, then
/// one bind sends them all, so the window is the only limit besides the
/// store updates. `SMPP_BENCH_LATENCY_MS` adds simulator latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored"]
async fn backlog_messages_per_second_over_one_bind() {
    let n: usize = std::env::var("SMPP_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let latency = std::env::var("SMPP_BENCH_LATENCY_MS").unwrap_or_else(|_| "0".into());
    for window in [1usize, 10, 50] {
        let dir = temp_dir(&format!("backlog{window}"));
        let down = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let extra = format!("window = {window}\nreconnect_min_ms = 5000\n");
        let svc = SmsService::start(&load_config(&write_config(&dir, down, &extra)))
            .await
            .unwrap();
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            ids.push(
                svc.submit("15550001", &format!("backlog {i}"))
                    .await
                    .unwrap(),
            );
        }
        svc.shutdown(Duration::from_secs(1)).await;
        drop(svc);
        let sim = Sim::start(&dir, &["--no-receipts", "--latency-ms", &latency]);
        let t0 = Instant::now();
        let svc = SmsService::start(&load_config(&write_config(&dir, sim.port, &extra)))
            .await
            .unwrap();
        for id in ids.iter().rev() {
            let s = svc
                .wait_for(id, Duration::from_secs(300), |s| s != MessageState::Queued)
                .await
                .unwrap();
            assert_eq!(s, MessageState::Submitted);
        }
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "backlog, window {window:>2}, sim latency {latency} ms: {n} messages in {secs:.2} s = {:.0} msg/s; max outstanding {}",
            n as f64 / secs,
            sim.stat("max_outstanding")
        );
        assert_eq!(sim.accepted().len(), n);
        svc.shutdown(Duration::from_secs(5)).await;
    }
}
