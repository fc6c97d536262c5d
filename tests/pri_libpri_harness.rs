//! The libpri peer that rivr's PRI tests drive (tests/pri/libpri_peer.c,
//! issue 12) proves itself without rivr: two peers back to back on one
//! socket span, the network side listening as the carrier will, the user
//! side connecting as rivr will. The link comes up; an answered call
//! carries audio both ways (each side's tone measured on the other with a
//! Goertzel filter, and in-band DTMF detected); each cause of the
//! last-digit behaviour table reaches the caller; RESTART is acknowledged
//! and clears the channel; a D-channel outage keeps or clears calls as
//! Q.931/T309 say; hostile D-channel packets leave the peer standing; and
//! the C file's G.711 agrees with rivr's (G.191-exact) on every value.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::audio::tone_fraction;
use common::libpri::{peer_binary, read_recording, LibpriPeer, SpanOptions, SpanPaths};
use common::scratch::Scratch;
use rivr::media::g711::{alaw_to_linear, linear_to_alaw, linear_to_ulaw, ulaw_to_linear, Law};

/// A Q.931 exchange between two local processes.
const T: Duration = Duration::from_secs(5);
/// Q.921 link establishment: libpri retries SABME every T200 (1 s).
const LINK: Duration = Duration::from_secs(10);

/// Two peers on one span; the fields drop in order, so the peers are
/// killed before the temp dir goes.
struct Pair {
    net: LibpriPeer,
    user: LibpriPeer,
    dir: Scratch,
}

/// Starts the network side with `net` (sending 1000 Hz on the calls it
/// answers, recording every call to `net-rec/`), then the user side (same
/// switch, law and timeslots, connecting), and waits until both see the
/// link up and every B-channel connected.
fn pair(label: &str, mut net: SpanOptions) -> Pair {
    let dir = Scratch::new(label);
    let span = SpanPaths::in_dir(dir.path(), "span1");
    let rec = dir.join("net-rec");
    std::fs::create_dir_all(&rec).expect("create net-rec");
    net.record_dir = Some(rec);
    net.tone_hz = Some(1000);
    let user_opts = SpanOptions {
        record_dir: None,
        tone_hz: None,
        ..net.clone()
    }
    .user_connecting();
    let net = LibpriPeer::start(dir.path(), "network", &span, &net);
    let user = LibpriPeer::start(dir.path(), "user", &span, &user_opts);
    net.wait_name("up", LINK);
    user.wait_name("up", LINK);
    let last = if net.law == Law::Alaw { "31" } else { "23" };
    for p in [&net, &user] {
        p.wait_from(0, T, "b-connected (last timeslot)", |e| {
            e.name == "b-connected" && e.get("channel") == Some(last)
        });
    }
    Pair { net, user, dir }
}

/// The samples of `x` after the first `skip_ms`, up to `len_ms` of them.
fn window(x: &[f32], skip_ms: usize, len_ms: usize) -> &[f32] {
    let from = (skip_ms * 8).min(x.len());
    let to = (from + len_ms * 8).min(x.len());
    &x[from..to]
}

/// The user calls the network (rivr's outbound direction); the network
/// answers (last digit 0) with its 1000 Hz tone; the user sends DTMF and
/// then a 440 Hz tone. Each side's recording holds the other's tone.
fn answered_call_carries_audio_both_ways(label: &str, opts: SpanOptions) {
    let p = pair(label, opts);
    let n = p.user.call("5550100", "2000", None);
    p.user.wait_call(n, "proceeding", T);
    p.user.wait_call(n, "alerting", T);
    let connect = p.user.wait_call(n, "connect", T);
    let setup = p.net.wait_name("setup", T);
    assert_eq!(setup.get("called"), Some("5550100"), "{}", setup.line);
    assert_eq!(setup.get("calling"), Some("2000"), "{}", setup.line);
    assert_eq!(
        setup.get("channel"),
        connect.get("channel"),
        "both ends use the same timeslot"
    );
    let m = setup.call().expect("setup has call=");
    p.net.wait_call(m, "answered", T);

    let user_rec = p.dir.join("user-heard.raw");
    p.user.send(&format!("record {n} {}", user_rec.display()));
    p.user.send(&format!("tone {n} 440"));
    p.user.send(&format!("dtmf {n} 2580#"));
    // Five digits of 100 ms + 100 ms gap, then the tone runs on.
    let digits: String = p
        .net
        .wait_count(0, 5, T, "five dtmf events", |e| {
            e.name == "dtmf" && e.call() == Some(m)
        })
        .iter()
        .filter_map(|e| e.get("digit"))
        .collect();
    assert_eq!(digits, "2580#", "the network's in-band DTMF detector");
    // 1.2 s of the 440 Hz tone after the digits.
    p.net.wait_rx_more(m, 60, Duration::from_secs(10));
    p.user.hangup(n, 16);
    let disc = p.net.wait_call(m, "disconnect", T);
    assert_eq!(disc.cause(), Some(16), "{}", disc.line);
    let user_end = p.user.wait_end(n, T);
    let net_end = p.net.wait_end(m, T);
    for e in [&user_end, &net_end] {
        let (rx, tx) = (e.num("rx").unwrap(), e.num("tx").unwrap());
        assert!(rx >= 90 && tx >= 90, "frames both ways: {}", e.line);
        assert!((rx - tx).abs() <= 5, "as many frames in as out: {}", e.line);
        assert_eq!(e.num("bad"), Some(0), "every frame 160 bytes: {}", e.line);
    }

    // What the user heard: the network's 1000 Hz tone, nothing at 440.
    let law = p.net.law;
    let heard = read_recording(&user_rec, law);
    let w = window(&heard, 100, 1500);
    let (f1000, f440) = (tone_fraction(w, 1000.0), tone_fraction(w, 440.0));
    eprintln!(
        "{label}: user heard {} ms, 1000 Hz {f1000:.4}, 440 Hz {f440:.6}",
        heard.len() / 8
    );
    assert!(
        w.len() >= 8 * 1000,
        "a second of audio reached the user: {}",
        w.len()
    );
    assert!(
        f1000 > 0.9 && f440 < 0.01,
        "user heard 1000 Hz {f1000}, 440 Hz {f440}"
    );

    // What the network heard (recorded from the answer on): the digits,
    // then the user's 440 Hz tone for the last second.
    let ext = if law == Law::Alaw { "alaw" } else { "ulaw" };
    let net_rec = p.dir.join(&format!("net-rec/call-{m}.{ext}"));
    let heard = read_recording(&net_rec, law);
    let tail = &heard[heard.len().saturating_sub(8 * 800)..];
    let (f440, f1000) = (tone_fraction(tail, 440.0), tone_fraction(tail, 1000.0));
    eprintln!(
        "{label}: network heard {} ms, last 800 ms: 440 Hz {f440:.4}, 1000 Hz {f1000:.6}",
        heard.len() / 8
    );
    assert!(
        f440 > 0.9 && f1000 < 0.01,
        "network heard 440 Hz {f440}, 1000 Hz {f1000}"
    );
}

#[test]
fn e1_link_comes_up_and_an_answered_call_carries_audio_both_ways() {
    answered_call_carries_audio_both_ways("pri-e1-audio", SpanOptions::e1());
}

#[test]
fn t1_ni2_ulaw_link_comes_up_and_an_answered_call_carries_audio_both_ways() {
    answered_call_carries_audio_both_ways("pri-t1-audio", SpanOptions::t1());
}

/// Every row of the behaviour table, placed at once from the user side:
/// the cause each number's last digit stands for reaches the caller.
#[test]
fn each_last_digit_gives_its_cause_to_the_caller() {
    let mut opts = SpanOptions::e1();
    opts.answer_ms = Some(50);
    opts.clear_after_ms = Some(300);
    opts.no_answer_ms = Some(300);
    let p = pair("pri-causes", opts);
    let busy = p.user.call("5550102", "2000", None);
    let congestion = p.user.call("5550104", "2000", None);
    let unallocated = p.user.call("5550101", "2000", None);
    let no_answer = p.user.call("5550106", "2000", None);
    let answer_then_clear = p.user.call("5550105", "2000", None);
    let ringing = p.user.call("5550103", "2000", None);

    // DISCONNECT with the cause, after CALL PROCEEDING and no CONNECT.
    for (n, cause) in [(busy, 17), (congestion, 34)] {
        let d = p.user.wait_call(n, "disconnect", T);
        assert_eq!(d.cause(), Some(cause), "{}", d.line);
        assert!(p.user.saw(n, "proceeding") && !p.user.saw(n, "connect"));
    }
    // Cause 1 comes at once in a RELEASE COMPLETE, nothing before it.
    let r = p.user.wait_call(unallocated, "release", T);
    assert_eq!(r.cause(), Some(1), "{}", r.line);
    assert!(!p.user.saw(unallocated, "proceeding"));
    // Alerting, then the network gives up: 19.
    p.user.wait_call(no_answer, "alerting", T);
    let d = p.user.wait_call(no_answer, "disconnect", T);
    assert_eq!(d.cause(), Some(19), "{}", d.line);
    assert!(!p.user.saw(no_answer, "connect"));
    // Answered, then the far end clears: 16.
    p.user.wait_call(answer_then_clear, "connect", T);
    let d = p.user.wait_call(answer_then_clear, "disconnect", T);
    assert_eq!(d.cause(), Some(16), "{}", d.line);
    // Rings until the caller gives up.
    p.user.wait_call(ringing, "alerting", T);
    p.user.hangup(ringing, 16);
    let cancelled = p.net.wait_from(0, T, "disconnect from the caller", |e| {
        e.name == "disconnect" && e.cause() == Some(16)
    });
    eprintln!("pri-causes: network saw the caller's {}", cancelled.line);

    for n in [
        busy,
        congestion,
        unallocated,
        no_answer,
        answer_then_clear,
        ringing,
    ] {
        p.user.wait_end(n, T);
    }
    // Six SETUPs reached the network and all six calls are gone there too.
    let net_calls: Vec<u32> = p
        .net
        .events()
        .iter()
        .filter(|e| e.name == "setup")
        .filter_map(|e| e.call())
        .collect();
    assert_eq!(net_calls.len(), 6);
    for m in net_calls {
        p.net.wait_end(m, T);
    }
}

/// Thirty calls at once fill an E1: every one connects on its own
/// timeslot, carries frames both ways, and clears.
#[test]
fn thirty_simultaneous_calls_fill_an_e1() {
    let p = pair("pri-thirty", SpanOptions::e1());
    let calls: Vec<u32> = (0..30)
        .map(|i| p.user.call(&format!("555{i:02}0"), "2000", None))
        .collect();
    let mut channels = Vec::new();
    for &n in &calls {
        let c = p.user.wait_call(n, "connect", T);
        channels.push(c.num("channel").unwrap());
    }
    channels.sort_unstable();
    let e1: Vec<i64> = (1..=15).chain(17..=31).collect();
    assert_eq!(channels, e1, "one call per timeslot");
    // Half a second of media on every call.
    p.user.wait_rx_more(calls[29], 25, T);
    for &n in &calls {
        p.user.hangup(n, 16);
    }
    let mut frames = Vec::new();
    for &n in &calls {
        let e = p.user.wait_end(n, T);
        assert_eq!(e.num("bad"), Some(0), "{}", e.line);
        frames.push(e.num("rx").unwrap());
    }
    let net_ends = p.net.wait_count(0, 30, T, "end", |e| e.name == "end");
    assert!(net_ends.iter().all(|e| e.num("bad") == Some(0)));
    let least = frames.iter().min().copied().unwrap_or(0);
    eprintln!("pri-thirty: 30 calls up, each received at least {least} frames");
    assert!(least >= 25, "every call carried media: {frames:?}");
}

/// The network calls the user (rivr's inbound direction), the user answers,
/// then the network RESTARTs that timeslot: acknowledged, and the call is
/// gone at both ends. A RESTART of every timeslot is acknowledged 30 times.
#[test]
fn restart_from_the_network_is_acknowledged_and_clears_the_channel() {
    let p = pair("pri-restart", SpanOptions::e1());
    let n = p.net.call("7000", "5551234", None);
    let c = p.net.wait_call(n, "connect", T);
    let ch = c.get("channel").expect("connect has channel=").to_owned();
    assert_eq!(ch, "31", "the network takes the highest free timeslot");
    let setup = p.user.wait_name("setup", T);
    let m = setup.call().unwrap();
    p.user.wait_call(m, "answered", T);

    p.net.send(&format!("restart {ch}"));
    let ack = p.net.wait_name("restart-ack", T);
    assert_eq!(ack.get("channel"), Some(ch.as_str()), "{}", ack.line);
    let r = p.user.wait_name("restart", T);
    assert_eq!(r.get("channel"), Some(ch.as_str()), "{}", r.line);
    assert_eq!(p.user.wait_end(m, T).get("reason"), Some("restart"));
    assert_eq!(p.net.wait_end(n, T).get("reason"), Some("restart"));

    let from = p.net.mark();
    p.net.send("restart all");
    let acks = p
        .net
        .wait_count(from, 30, T, "restart-ack", |e| e.name == "restart-ack");
    let mut channels: Vec<u32> = acks
        .iter()
        .filter_map(|e| e.get("channel")?.parse().ok())
        .collect();
    channels.sort_unstable();
    let e1: Vec<u32> = (1..=15).chain(17..=31).collect();
    assert_eq!(channels, e1, "one RESTART ACKNOWLEDGE per E1 timeslot");
    let restarts = p
        .user
        .wait_count(0, 31, T, "restart", |e| e.name == "restart");
    assert_eq!(
        restarts.len(),
        31,
        "the user saw the first RESTART and these 30"
    );
}

/// With short Q.921 timers: a 100 ms D-channel outage (the user side
/// reconnects at once) loses nothing; a long one brings the link down,
/// clears the call still ringing at once and the answered one when T309
/// runs out (cause 27 both), and the link comes back when the path does.
#[test]
fn dchannel_outage_keeps_or_clears_calls_as_t309_says() {
    let mut opts = SpanOptions::e1();
    opts.timers = vec![("T200", 300), ("T203", 500), ("T309", 1500)];
    let p = pair("pri-outage", opts);
    let answered = p.user.call("5550100", "2000", None);
    let ringing = p.user.call("5550103", "2000", None);
    p.user.wait_call(answered, "connect", T);
    p.user.wait_call(ringing, "alerting", T);

    // A glitch: closed and reopened at once.
    let from = p.user.mark();
    p.net.send("close-d");
    p.user
        .wait_from(from, T, "d-connected", |e| e.name == "d-connected");
    let third = p.user.call("5550100", "2000", None);
    p.user.wait_call(third, "connect", T);
    assert!(
        !p.user.saw(answered, "end") && !p.user.saw(ringing, "end"),
        "a 100 ms outage cleared a call:\n{}",
        p.user.diagnostics()
    );
    p.user.hangup(third, 16);
    p.user.wait_end(third, T);

    // An outage past N200 x T200 and T309: the path is gone for 4.5 s.
    let from = p.user.mark();
    p.net.send("close-d 4500");
    let down = p.user.wait_from(from, T, "down", |e| e.name == "down");
    let rel_ringing = p.user.wait_call(ringing, "release", T);
    let rel_answered = p.user.wait_call(answered, "release", T);
    assert_eq!(rel_ringing.cause(), Some(27), "{}", rel_ringing.line);
    assert_eq!(rel_answered.cause(), Some(27), "{}", rel_answered.line);
    // The answered call outlives the ringing one by T309.
    let kept = rel_answered.ms - rel_ringing.ms;
    eprintln!(
        "pri-outage: down at +{} ms, ringing call cleared at +{} ms, answered at +{} ms (T309 kept it {kept} ms)",
        down.ms, rel_ringing.ms, rel_answered.ms
    );
    assert!(
        (1300..=2500).contains(&kept),
        "T309 1500 ms, measured {kept} ms"
    );
    let up = p.user.wait_from(from, LINK, "up again", |e| e.name == "up");
    assert!(up.ms > rel_answered.ms);
    let after = p.user.call("5550100", "2000", None);
    p.user.wait_call(after, "connect", T);
}

/// Garbage on the D-channel — empty, short, oversized and random frames,
/// some with a valid address and control field — leaves the listening peer
/// answering commands and the link able to carry a call.
#[test]
fn hostile_dchannel_packets_leave_the_peer_standing() {
    let p = pair("pri-hostile", SpanOptions::e1());
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut packets: Vec<String> = vec![
        String::new(),
        "00".into(),
        "0001".into(),
        "000102".into(),
        "00010203".into(),
        "ab".repeat(2000),
    ];
    for i in 0..300 {
        let len = [3usize, 4, 5, 6, 8, 12, 20, 40, 100, 260][i % 10];
        let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if i % 3 != 0 {
            // SAPI 0, TEI 0: past the address check, into Q.921/Q.931.
            b[0] = 0x00;
            b[1] = 0x01;
        }
        packets.push(b.iter().map(|x| format!("{x:02x}")).collect());
    }
    for hex in &packets {
        p.user.send(&format!("raw-d {hex}"));
    }
    // The garbage may reset the link, or hit the first call's reference
    // and clear it: the calls go out after it on the same socket, so once
    // one connects, the network has read every packet.
    let mut connected = None;
    for attempt in 0..5 {
        let n = p.user.call("5550100", "2000", None);
        let e = p.user.wait_from(0, LINK, "connect or end", |e| {
            e.call() == Some(n) && (e.name == "connect" || e.name == "end")
        });
        if e.name == "connect" {
            connected = Some((attempt, n));
            break;
        }
    }
    let (attempt, n) = connected.unwrap_or_else(|| {
        panic!(
            "no call connected after the garbage\n{}",
            p.net.diagnostics()
        )
    });
    let errors: Vec<String> = p
        .user
        .events()
        .into_iter()
        .filter(|e| e.name == "error")
        .map(|e| e.line)
        .collect();
    assert!(
        errors.is_empty(),
        "the user side failed to send: {errors:?}"
    );
    let from = p.net.mark();
    p.net.send("ping");
    p.net.wait_from(from, T, "pong", |e| e.name == "pong");
    let stderr = p.net.stderr();
    let dropped = stderr.matches("dchan: dropped").count();
    eprintln!(
        "pri-hostile: {} packets; the network peer dropped {dropped} before libpri; \
         call {n} connected on attempt {}",
        packets.len(),
        attempt + 1
    );
    // Empty, 1-4 bytes, 4000 bytes, and the 60 random ones of 3-4 bytes.
    assert_eq!(
        dropped, 66,
        "every packet under 5 or over 1024 bytes:\n{stderr}"
    );
}

/// The C file's G.711 (written from G.191's algorithm) agrees with rivr's
/// on all 65,536 samples and 256 codes, both laws.
#[test]
fn the_peers_g711_matches_rivrs() {
    let dir = Scratch::new("pri-g711");
    let table = dir.join("g711.bin");
    let status = Command::new(peer_binary())
        .arg("--g711-table")
        .arg(&table)
        .status()
        .expect("run the peer");
    assert!(status.success());
    check_g711_table(&table);
}

fn check_g711_table(path: &Path) {
    let t = std::fs::read(path).expect("read the table");
    assert_eq!(t.len(), 65536 * 2 + 256 * 4);
    let mut bad = Vec::new();
    for (i, pair) in t[..65536 * 2].chunks(2).enumerate() {
        let s = (i as i32 - 32768) as i16;
        if pair[0] != linear_to_alaw(s) || pair[1] != linear_to_ulaw(s) {
            bad.push(format!("encode {s}: peer {:02x}/{:02x}", pair[0], pair[1]));
        }
    }
    for (b, dec) in t[65536 * 2..].chunks(4).enumerate() {
        let a = i16::from_le_bytes([dec[0], dec[1]]);
        let u = i16::from_le_bytes([dec[2], dec[3]]);
        if a != alaw_to_linear(b as u8) || u != ulaw_to_linear(b as u8) {
            bad.push(format!("decode {b:02x}: peer {a}/{u}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches, first: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
}
