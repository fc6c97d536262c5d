//! Admission control and overload against a real rivr process (issue 9
//! §3, §5): the call cap answers 503 + Retry-After while the calls it
//! holds keep their audio; an INVITE flood from one source draws a burst
//! of calls, then 503s, then silence, while another source still gets
//! through; sources outside `[sip] trusted` get one identical 403 (or
//! nothing) whatever the number; TCP connections past the cap are closed
//! and idle ones time out.
//!
//! Figures are printed; run with `--nocapture` to see them.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::audio::{align, to_f32, Heard};
use common::caller::{prompt, Caller, SIGNALLING};
use common::server::{Rivr, RivrConfig};
use common::sip_raw::{RawUa, Response};
use common::sipp::CallSpec;

fn sip_addr(rivr: &Rivr) -> SocketAddr {
    ([127, 0, 0, 1], rivr.sip_port).into()
}

fn limits(lines: &str) -> RivrConfig {
    RivrConfig {
        extra_tables: format!("[limits]\n{lines}"),
        ..RivrConfig::default()
    }
}

fn answered_call(ua: &RawUa, number: &str, tag: &str) -> Duration {
    common::sip_raw::answered_call(ua, number, tag, SIGNALLING)
}

#[test]
fn max_calls_refuses_the_third_call_with_503_while_two_keep_their_audio() {
    require_sipp!();
    let rivr = Rivr::start("adm-max-calls", limits("max_calls = 2\n"));
    let menu = prompt("main_menu");
    let hold_ms = menu.duration_ms() + 3000;
    let spec = || CallSpec {
        scenario: "uac_hangup.xml",
        number: "1000",
        hold_ms,
        ..CallSpec::default()
    };
    let mut callers = [
        Caller::answered(&rivr, "adm-first", spec()),
        Caller::answered(&rivr, "adm-second", spec()),
    ];
    for c in &callers {
        assert!(c.peer.wait_count(25, SIGNALLING), "no RTP from rivr");
    }

    // The third call, while both are up: 100 Trying, then 503 with
    // Retry-After from the INVITE transaction.
    let ua = RawUa::bind("127.0.0.1", sip_addr(&rivr));
    ua.send(&ua.invite("1000", "third@test", "third", 9));
    let refused = ua
        .wait_status(503, SIGNALLING)
        .expect("no 503 for the call over max_calls");
    let retry_after = refused.header("Retry-After").map(str::to_owned);
    ua.send(&ua.in_dialog("ACK", &refused, "third", 1));
    let late = ua.collect(Duration::from_millis(500));
    assert!(
        late.iter().all(|r| r.status() != 200),
        "the refused call was answered anyway: {late:?}"
    );

    let mut ncc = Vec::new();
    for c in &mut callers {
        c.sipp
            .expect_pass(SIGNALLING + Duration::from_millis(hold_ms));
        let packets = c.peer.packets();
        let heard = Heard::decode(&packets, 0);
        let (_, n) = align(&heard.samples, &to_f32(menu.pcm_8k()));
        let max_gap = packets
            .windows(2)
            .map(|w| w[1].arrival.saturating_duration_since(w[0].arrival))
            .max()
            .unwrap_or_default();
        ncc.push((n, max_gap.as_millis()));
    }
    println!(
        "[max_calls=2] third call: {} Retry-After {retry_after:?}; the two calls: (NCC, max RTP gap ms) {ncc:?}",
        refused.status()
    );
    assert_eq!(retry_after.as_deref(), Some("5"), "{}", refused.text);
    for (n, gap) in &ncc {
        assert!(*n >= 0.9, "a call's audio suffered: NCC {n:.4}");
        assert!(*gap < 200, "RTP paused {gap} ms");
    }

    // Once both calls are over (scripts done, CDRs written) the cap has
    // room again.
    for c in &callers {
        rivr.wait_cdr(&c.answer.call_id, SIGNALLING);
    }
    answered_call(&ua, "1000", "fourth");
    let cdrs = rivr.cdrs();
    assert!(
        !cdrs.iter().any(|c| c["transport_id"] == "third@test"),
        "refused calls write no CDR"
    );
}

/// The responses to each flood INVITE, by its index.
fn by_invite(responses: &[Response]) -> HashMap<usize, Vec<u16>> {
    let mut map: HashMap<usize, Vec<u16>> = HashMap::new();
    for r in responses {
        if let Some(i) = r
            .call_id()
            .strip_prefix("flood-")
            .and_then(|s| s.strip_suffix("@test"))
            .and_then(|s| s.parse().ok())
        {
            map.entry(i).or_default().push(r.status());
        }
    }
    map
}

#[test]
fn an_invite_flood_gets_a_burst_then_503s_then_silence_while_another_source_gets_through() {
    const FLOOD: usize = 300;
    let rivr = Rivr::start(
        "adm-flood",
        limits("per_source_cps = 20\nper_source_burst = 20\nflood_refusals = 10\nflood_silence_s = 60\n"),
    );
    let server = sip_addr(&rivr);
    let flooder = RawUa::bind("127.0.0.1", server);
    let listener = RawUa {
        sock: flooder.sock.try_clone().expect("clone the flood socket"),
        local: flooder.local,
        server,
    };
    let collector = std::thread::spawn(move || listener.collect(Duration::from_millis(3500)));
    let legit = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        let ua = RawUa::bind("127.0.0.2", server);
        answered_call(&ua, "1000", "legit")
    });

    // ~300 INVITEs in one second, each a new call to an unrouted number.
    let start = Instant::now();
    for i in 0..FLOOD {
        let invite = flooder.invite("9999", &format!("flood-{i}@test"), &format!("f{i}"), 9);
        flooder.send(&invite);
        let next = start + Duration::from_micros(3333 * (i as u64 + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let flood_s = start.elapsed().as_secs_f64();
    // Silence covers every method once the source is silenced.
    flooder.send(&flooder.options("flood-options@test", "fo"));
    let responses = collector.join().expect("collector");
    let legit_answer = legit.join().expect("the legitimate call");

    let map = by_invite(&responses);
    let tried: Vec<usize> = (0..FLOOD)
        .filter(|i| map.get(i).is_some_and(|s| s.contains(&100)))
        .collect();
    let refused: Vec<usize> = (0..FLOOD)
        .filter(|i| map.get(i).is_some_and(|s| s.contains(&503)))
        .collect();
    let silent = (0..FLOOD).filter(|i| !map.contains_key(i)).count();
    let datagrams_503 = responses.iter().filter(|r| r.status() == 503).count();
    let last_answered = map.keys().max().copied().unwrap_or(0);
    println!(
        "[flood] {FLOOD} INVITEs in {flood_s:.2} s from one source: {} got 100 Trying, {} got 503 \
         ({datagrams_503} datagrams), {silent} got nothing; last INVITE answered: #{last_answered}; \
         a call from 127.0.0.2 meanwhile answered in {} ms",
        tried.len(),
        refused.len(),
        legit_answer.as_millis()
    );
    assert!(
        (20..=25).contains(&tried.len()),
        "the burst of 20 (+ refill) should get through: {}",
        tried.len()
    );
    assert_eq!(refused.len(), 10, "flood_refusals = 10 503s, then silence");
    assert_eq!(datagrams_503, 10, "one stateless 503 per refused INVITE");
    for r in responses.iter().filter(|r| r.status() == 503) {
        let ra: u32 = r
            .header("Retry-After")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("503 without Retry-After: {}", r.text));
        assert!(ra >= 1, "{}", r.text);
    }
    assert!(
        tried.iter().all(|i| !refused.contains(i)),
        "an INVITE got both a Trying and a 503"
    );
    assert_eq!(silent, FLOOD - tried.len() - refused.len());
    assert!(
        last_answered < 60,
        "answers went on until INVITE #{last_answered}"
    );
    assert!(
        !responses
            .iter()
            .any(|r| r.call_id() == "flood-options@test"),
        "a silenced source got an answer to OPTIONS"
    );
    let log = rivr.stderr();
    assert!(
        log.contains("refused at the gate"),
        "no summary of the flood in the log"
    );
}

fn trusted_only(ip: &str, policy: &str) -> RivrConfig {
    RivrConfig {
        sip_table: format!("trusted = [\"{ip}/32\"]\nuntrusted = \"{policy}\"\n"),
        ..RivrConfig::default()
    }
}

/// A response with what differs between two requests taken out: the
/// dialed number, Call-ID, branch and tags.
fn normalised(r: &Response, number: &str, tag: &str) -> String {
    r.text
        .replace(number, "NUMBER")
        .replace(tag, "TAG")
        .split("\r\n")
        .map(|l| l.split(";tag=").next().unwrap_or(l).to_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[test]
fn an_untrusted_source_gets_one_identical_403_for_a_known_and_an_unknown_number() {
    let rivr = Rivr::start("adm-untrusted-reject", trusted_only("127.0.0.2", "reject"));
    let outsider = RawUa::bind("127.0.0.1", sip_addr(&rivr));
    let mut answers = Vec::new();
    for (number, tag) in [("1000", "known"), ("5555", "unknown")] {
        outsider.send(&outsider.invite(number, &format!("{tag}@test"), tag, 9));
        let got = outsider.collect(Duration::from_millis(1500));
        assert_eq!(got.len(), 1, "one answer for {number}, got {got:?}");
        assert_eq!(got[0].status(), 403, "{}", got[0].text);
        answers.push((number, tag, got[0].clone()));
    }
    let (a, b) = (&answers[0], &answers[1]);
    println!(
        "[untrusted reject] INVITE to 1000:\n{}INVITE to 5555 has the same shape: {:?}",
        a.2.text,
        a.2.header_names()
    );
    assert_eq!(a.2.header_names(), b.2.header_names());
    assert_eq!(normalised(&a.2, a.0, a.1), normalised(&b.2, b.0, b.1));
    for hidden in ["Server", "User-Agent", "Allow", "Contact"] {
        assert!(a.2.header(hidden).is_none(), "{hidden} in {}", a.2.text);
    }
    outsider.send(&outsider.options("probe@test", "probe"));
    let got = outsider.collect(Duration::from_millis(1000));
    assert_eq!(
        got.iter().map(Response::status).collect::<Vec<_>>(),
        vec![403],
        "OPTIONS from outside"
    );
    // The trusted address is served.
    let insider = RawUa::bind("127.0.0.2", sip_addr(&rivr));
    answered_call(&insider, "1000", "insider");
}

#[test]
fn an_untrusted_source_gets_nothing_with_drop() {
    let rivr = Rivr::start("adm-untrusted-drop", trusted_only("127.0.0.2", "drop"));
    let outsider = RawUa::bind("127.0.0.1", sip_addr(&rivr));
    for (number, tag) in [("1000", "known"), ("5555", "unknown")] {
        outsider.send(&outsider.invite(number, &format!("{tag}@test"), tag, 9));
    }
    outsider.send(&outsider.options("probe@test", "probe"));
    let got = outsider.collect(Duration::from_millis(1500));
    assert!(got.is_empty(), "answers to an untrusted source: {got:?}");
    // Over TCP the connection is closed at once, unread.
    let mut tcp = TcpStream::connect(sip_addr(&rivr)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = tcp.write_all(&tcp_options(&tcp, 1));
    let mut buf = [0u8; 512];
    match tcp.read(&mut buf) {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!(
            "an untrusted TCP peer got {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
    }
    let insider = RawUa::bind("127.0.0.2", sip_addr(&rivr));
    answered_call(&insider, "1000", "insider");
}

fn tcp_options(stream: &TcpStream, n: u32) -> Vec<u8> {
    let local = stream.local_addr().expect("local address");
    let server = stream.peer_addr().expect("peer address");
    format!(
        "OPTIONS sip:{server};transport=tcp SIP/2.0\r\n\
         Via: SIP/2.0/TCP {local};branch=z9hG4bKtcp{n}-{}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:tester@{}>;tag=tcp{n}\r\n\
         To: <sip:{server}>\r\n\
         Call-ID: tcp-{n}-{}@test\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        local.port(),
        local.ip(),
        local.port(),
    )
    .into_bytes()
}

/// Sends OPTIONS on `stream` and reads the answer's status.
fn options_over_tcp(stream: &mut TcpStream, n: u32) -> Option<u16> {
    stream.write_all(&tcp_options(stream, n)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let k = stream.read(&mut buf).ok().filter(|k| *k > 0)?;
        got.extend_from_slice(&buf[..k]);
    }
    String::from_utf8_lossy(&got)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// How long until the server closes `stream` (EOF or reset), if within `limit`.
fn time_to_close(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 512];
    while start.elapsed() < limit {
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .ok()?;
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

#[test]
fn tcp_connections_past_the_cap_are_closed_and_idle_ones_time_out() {
    let rivr = Rivr::start(
        "adm-tcp",
        limits("tcp_max_connections = 4\ntcp_idle_timeout_s = 3\n"),
    );
    let addr = sip_addr(&rivr);
    let mut open: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    for (i, s) in open.iter_mut().enumerate() {
        assert_eq!(options_over_tcp(s, i as u32), Some(200), "connection {i}");
    }
    let served_at = Instant::now();
    // Past the cap: accepted and closed at once (well before the idle timeout).
    let mut extra_closed = Vec::new();
    for i in 0..3 {
        let mut s = TcpStream::connect(addr).expect("connect past the cap");
        let _ = s.write_all(&tcp_options(&s, 10 + i));
        extra_closed.push(time_to_close(&mut s, Duration::from_secs(2)));
    }
    // Connection 1 sends CRLF keepalives (RFC 5626) every 500 ms; the
    // others stay silent and are closed after ~3 s.
    let mut keepalive = open.remove(1);
    let mut idle = open.remove(0);
    let watcher = std::thread::spawn(move || {
        let t0 = Instant::now();
        time_to_close(&mut idle, Duration::from_secs(10)).map(|d| t0 + d)
    });
    let mut pings = 0;
    while !watcher.is_finished() && served_at.elapsed() < Duration::from_secs(10) {
        keepalive.write_all(b"\r\n\r\n").expect("keepalive");
        pings += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    let idle_closed = watcher
        .join()
        .expect("watcher")
        .map(|at| at.saturating_duration_since(served_at));
    let kept = options_over_tcp(&mut keepalive, 20);
    // The silent ones are gone: there is room for a new connection.
    let mut fresh = TcpStream::connect(addr).expect("connect after the idle close");
    let fresh_status = options_over_tcp(&mut fresh, 21);
    println!(
        "[tcp] 4 served; 3 past the cap closed after {:?}; idle connection closed {:?} after its last \
         message; the one sending {pings} CRLF keepalives answered {kept:?}; a new connection {fresh_status:?}",
        extra_closed,
        idle_closed
    );
    for c in &extra_closed {
        let t = c.expect("a connection past the cap was left open");
        assert!(t < Duration::from_millis(1500), "closed only after {t:?}");
    }
    let t = idle_closed.expect("the idle connection was never closed");
    assert!(
        t >= Duration::from_millis(2500) && t < Duration::from_secs(8),
        "idle connection closed after {t:?} (timeout 3 s)"
    );
    assert_eq!(kept, Some(200), "keepalives must keep a connection open");
    assert_eq!(fresh_status, Some(200));
    assert!(
        rivr.stderr().contains("limits.tcp_max_connections reached"),
        "refused connections are logged"
    );
}

/// CPU time (user + system) rivr has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit(") ").next().expect("stat format");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

fn clock_ticks_per_second() -> u64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf CLK_TCK");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK")
}

#[test]
fn accept_errors_back_off_instead_of_spinning() {
    // 64 descriptors and no way to raise them: the listener runs out
    // (EMFILE) long before tcp_max_connections.
    let rivr = Rivr::start(
        "adm-emfile",
        RivrConfig {
            nofile: Some(64),
            ..limits(
                "tcp_max_connections = 1000
",
            )
        },
    );
    let pid = rivr.pid().expect("rivr pid");
    let addr = sip_addr(&rivr);
    // The kernel completes these handshakes into the listen backlog
    // whether or not rivr can accept them.
    let conns: Vec<TcpStream> = (0..80)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(1000));
    let hz = clock_ticks_per_second();
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    std::thread::sleep(Duration::from_secs(2));
    let busy = (cpu_ticks(pid) - c0) as f64 / hz as f64 / t0.elapsed().as_secs_f64();
    let log = rivr.stderr();
    let error_lines = log.matches("TCP accept failed").count();
    // Room again: the connections go, rivr accepts and serves.
    drop(conns);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = TcpStream::connect(addr)
            .ok()
            .and_then(|mut s| options_over_tcp(&mut s, 99));
        if status.is_some() || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    println!(
        "[emfile] 80 connections on 64 descriptors: rivr used {:.1} % of a core while the backlog \
         waited; {error_lines} log line(s) about accept errors in 3 s; afterwards OPTIONS over a new \
         connection: {status:?}",
        busy * 100.0
    );
    assert!(
        log.contains("EMFILE") || log.contains("Too many open files"),
        "the accept error never happened; the test tests nothing:\n{log}"
    );
    assert!(
        busy < 0.5,
        "the accept loop spins: {:.0} % of a core",
        busy * 100.0
    );
    assert_eq!(error_lines, 1, "accept errors are logged once per 10 s");
    assert_eq!(
        status,
        Some(200),
        "rivr did not recover once descriptors were free"
    );
}
