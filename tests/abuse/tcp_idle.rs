//! 5,000 TCP connections opened to a real rivr and left idle (issue 9,
//! "How it is shown"), while legitimate calls go on: a SIPp caller over UDP
//! on another address, and a call over a trunk's TCP connection that was
//! open before the attack (and sends an OPTIONS now and then, as trunks
//! do). The test raises its own descriptor limit; rivr raises its own.
//!
//! In two waves. First 2,500 from one address: rivr holds
//! `tcp_max_per_source` of them, closes the rest as it accepts them, and a
//! newcomer from another address is still served. Then 2,500 from 25
//! addresses, 100 each: together they reach `tcp_max_connections`, rivr
//! closes everything past it as accepted — and now a newcomer is closed at
//! once too: against many sources only the idle timeout frees the slots.
//! Throughout, the UDP calls and the trunk's TCP call succeed with the menu
//! prompt heard, and RSS, threads and descriptors stay bounded; rivr closes
//! the held connections after `tcp_idle_timeout_s` and then serves new TCP
//! connections again.
//!
//! The figures are printed; run with `--nocapture` to see them.

#[path = "../common/mod.rs"]
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::audio::{align, to_f32, Heard};
use common::caller::{prompt, EVENT_PT};
use common::procfs::{self, Sampler};
use common::rtp::RtpPeer;
use common::server::{Rivr, RivrConfig};
use common::sip_raw::Response;
use common::sipp_load::{LoadSpec, SippLoad};

/// Connections per wave: one source, then `SPREAD` sources.
const WAVE: usize = 2500;
const SPREAD: usize = 25;
const ATTACKER: &str = "127.0.0.5";
const LATECOMER: &str = "127.0.0.3";
const LEGIT_UDP: &str = "127.0.0.2";
const TCP_MAX: usize = 1024;
const PER_SOURCE: usize = 100;
const IDLE_TIMEOUT_S: u64 = 10;

fn config() -> RivrConfig {
    RivrConfig {
        rtp_ports: 200,
        extra_tables: format!(
            "[limits]\ntcp_max_connections = {TCP_MAX}\ntcp_max_per_source = {PER_SOURCE}\n\
             tcp_idle_timeout_s = {IDLE_TIMEOUT_S}\n"
        ),
        ..RivrConfig::default()
    }
}

/// Splits `conns` into those rivr holds open and how many it has closed.
fn held_and_closed(conns: Vec<TcpStream>) -> (Vec<TcpStream>, usize) {
    let mut held = Vec::new();
    let mut closed = 0;
    for mut s in conns {
        if closed_by_server(&mut s) {
            closed += 1;
        } else {
            held.push(s);
        }
    }
    (held, closed)
}

fn span(times: &[Duration]) -> (Duration, Duration) {
    (
        times.iter().min().copied().unwrap_or_default(),
        times.iter().max().copied().unwrap_or_default(),
    )
}

/// Opens `n` connections from `ip` to `server` at once (the kernel
/// completes them into rivr's backlog whether or not it has accepted them
/// yet); returns those that connected, as blocking std streams.
fn open_idle(ip: &str, server: SocketAddr, n: usize) -> (Vec<TcpStream>, usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let ip: std::net::IpAddr = ip.parse().expect("an address");
    rt.block_on(async move {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                tokio::spawn(async move {
                    let sock = tokio::net::TcpSocket::new_v4()?;
                    sock.bind(SocketAddr::new(ip, 0))?;
                    let stream =
                        tokio::time::timeout(Duration::from_secs(20), sock.connect(server))
                            .await
                            .map_err(|_| std::io::Error::from(ErrorKind::TimedOut))??;
                    stream.into_std()
                })
            })
            .collect();
        let mut open = Vec::with_capacity(n);
        let mut failed = 0;
        for t in tasks {
            match t.await {
                Ok(Ok(s)) => {
                    s.set_nonblocking(true).expect("nonblocking");
                    open.push(s);
                }
                _ => failed += 1,
            }
        }
        (open, failed)
    })
}

/// True when the server has closed `s` (EOF or reset); `s` is nonblocking.
fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// A SIP peer on one blocking TCP connection: requests out, whole messages in.
struct TcpPeer {
    stream: TcpStream,
    buf: Vec<u8>,
    local: SocketAddr,
    server: SocketAddr,
}

impl TcpPeer {
    fn connect(server: SocketAddr) -> TcpPeer {
        Self::connect_from("127.0.0.1", server)
    }

    /// Connects from `ip` (any 127.0.0.x).
    fn connect_from(ip: &str, server: SocketAddr) -> TcpPeer {
        let (mut conns, _) = open_idle(ip, server, 1);
        let stream = conns.pop().expect("connect");
        stream.set_nonblocking(false).expect("blocking");
        let local = stream.local_addr().expect("local address");
        TcpPeer {
            stream,
            buf: Vec::new(),
            local,
            server,
        }
    }

    fn send(&mut self, msg: &str) {
        self.stream
            .write_all(msg.as_bytes())
            .expect("write on the trunk");
    }

    /// The next whole message (head and Content-Length body).
    fn next(&mut self, timeout: Duration) -> Option<Response> {
        let deadline = Instant::now() + timeout;
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(head_end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
                let body_len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.trim()
                            .eq_ignore_ascii_case("Content-Length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                let total = head_end + 4 + body_len;
                if self.buf.len() >= total {
                    let msg: Vec<u8> = self.buf.drain(..total).collect();
                    return Some(Response {
                        text: String::from_utf8_lossy(&msg).into_owned(),
                        at: Instant::now(),
                    });
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).ok()?;
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return None,
            }
        }
    }

    /// Waits for a response with `status` to `cseq_method` (others skipped).
    fn wait(&mut self, status: u16, cseq_method: &str, timeout: Duration) -> Option<Response> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let r = self.next(left)?;
            if r.status() == status && r.header("CSeq").is_some_and(|c| c.ends_with(cseq_method)) {
                return Some(r);
            }
        }
    }

    fn head(&self, method: &str, uri: &str, branch: &str) -> String {
        format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/TCP {};branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n",
            self.local
        )
    }

    /// OPTIONS → status.
    fn options(&mut self, n: u32) -> Option<u16> {
        let msg = format!(
            "{}From: <sip:trunk@{}>;tag=o{n}\r\nTo: <sip:{}>\r\nCall-ID: trunk-options-{n}@test\r\n\
             CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            self.head("OPTIONS", &format!("sip:{};transport=tcp", self.server), &format!("o{n}")),
            self.local.ip(),
            self.server
        );
        self.send(&msg);
        self.wait(200, "OPTIONS", Duration::from_secs(10))
            .map(|r| r.status())
    }

    /// A call to the menu over this connection, with the test's RTP;
    /// returns (NCC of what was heard against the prompt's first 2 s,
    /// packets heard, BYE answered).
    fn call(&mut self, hold: Duration) -> (f64, usize, bool) {
        let mut peer = RtpPeer::bind();
        let sdp = format!(
            "v=0\r\no=trunk 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 0 {EVENT_PT}\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:{EVENT_PT} telephone-event/8000\r\na=ptime:20\r\n",
            peer.port
        );
        let (local, server) = (self.local, self.server);
        let invite = format!(
            "{}From: <sip:trunk@{}>;tag=call\r\nTo: <sip:1000@{server}>\r\nCall-ID: trunk-call@test\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:trunk@{local};transport=tcp>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            self.head("INVITE", &format!("sip:1000@{server};transport=tcp"), "call"),
            local.ip(),
            sdp.len()
        );
        self.send(&invite);
        let ok = self
            .wait(200, "INVITE", Duration::from_secs(30))
            .expect("the trunk's TCP call was not answered");
        let body = ok.text.split("\r\n\r\n").nth(1).unwrap_or_default();
        let port: u16 = body
            .lines()
            .find_map(|l| l.strip_prefix("m=audio ")?.split(' ').next()?.parse().ok())
            .expect("rivr's RTP port in the 200");
        let contact = ok
            .header("Contact")
            .and_then(|c| Some(c.split('<').nth(1)?.split('>').next()?.to_owned()))
            .unwrap_or_else(|| format!("sip:{server}"));
        let dialog = |method: &str, cseq: u32, branch: &str, me: &TcpPeer| {
            format!(
                "{}From: {}\r\nTo: {}\r\nCall-ID: trunk-call@test\r\nCSeq: {cseq} {method}\r\n\
                 Content-Length: 0\r\n\r\n",
                me.head(method, &contact, branch),
                ok.header("From").unwrap_or_default(),
                ok.header("To").unwrap_or_default(),
            )
        };
        let ack = dialog("ACK", 1, "callack", self);
        self.send(&ack);
        peer.start_sending(([127, 0, 0, 1], port).into(), 0, EVENT_PT);
        std::thread::sleep(hold);
        let bye = dialog("BYE", 2, "callbye", self);
        self.send(&bye);
        let bye_ok = self.wait(200, "BYE", Duration::from_secs(10)).is_some();
        let packets = peer.packets();
        let heard = Heard::decode(&packets, 0);
        let menu = prompt("main_menu");
        let (_, ncc) = align(&heard.samples, &to_f32(&menu.pcm_8k()[..2 * 8000]));
        peer.close();
        (ncc, packets.len(), bye_ok)
    }
}

/// How long from connecting until the server closes a new connection from
/// `ip`, if it does within `limit`.
fn new_connection_closed_within(ip: &str, server: SocketAddr, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let (mut conns, _) = open_idle(ip, server, 1);
    let mut s = conns.pop()?;
    while start.elapsed() < limit {
        if closed_by_server(&mut s) {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[test]
fn five_thousand_idle_tcp_connections_are_capped_timed_out_and_leave_calls_alone() {
    require_sipp!();
    let nofile = rlimit::increase_nofile_limit(u64::MAX).expect("raise RLIMIT_NOFILE");
    assert!(
        nofile >= (2 * WAVE) as u64 + 1000,
        "this test needs {} descriptors; the hard limit allows {nofile}",
        2 * WAVE + 1000
    );
    let mut rivr = Rivr::start("abuse-tcp", config());
    let server: SocketAddr = ([127, 0, 0, 1], rivr.sip_port).into();
    let pid = rivr.pid().expect("rivr pid");
    let sampler = Sampler::start(pid, Duration::from_millis(200));
    std::thread::sleep(Duration::from_millis(500));
    let idle = procfs::sample(pid).expect("rivr in /proc");

    // The trunk's connection, open before the attack.
    let mut trunk = TcpPeer::connect(server);
    assert_eq!(trunk.options(0), Some(200), "the trunk before the attack");

    // Wave 1: one source.
    let t1 = Instant::now();
    let (conns, failed1) = open_idle(ATTACKER, server, WAVE);
    let connected1 = t1.elapsed();
    std::thread::sleep(Duration::from_millis(1000));
    let (held1, closed1) = held_and_closed(conns);
    let mut newcomer1 = TcpPeer::connect_from(LATECOMER, server);
    let newcomer1_status = newcomer1.options(10);
    drop(newcomer1);
    println!(
        "[tcp] wave 1: {WAVE} connections from {ATTACKER} in {connected1:?} ({failed1} failed): \
         {} held by rivr, {closed1} closed as accepted; a newcomer from {LATECOMER}: OPTIONS \
         {newcomer1_status:?}",
        held1.len()
    );

    // Wave 2: many sources, together past tcp_max_connections.
    let t2 = Instant::now();
    let mut conns = Vec::new();
    let mut failed2 = 0;
    for i in 0..SPREAD {
        let (c, f) = open_idle(&format!("127.0.1.{}", i + 1), server, WAVE / SPREAD);
        conns.extend(c);
        failed2 += f;
    }
    let connected2 = t2.elapsed();
    std::thread::sleep(Duration::from_millis(1000));
    let (held2, closed2) = held_and_closed(conns);
    let during = procfs::sample(pid).expect("rivr in /proc");
    let newcomer2 = new_connection_closed_within(LATECOMER, server, Duration::from_secs(2));
    println!(
        "[tcp] wave 2: {WAVE} connections from {SPREAD} addresses in {connected2:?} ({failed2} \
         failed): {} held by rivr, {closed2} closed as accepted; a newcomer from {LATECOMER} \
         closed after {newcomer2:?}",
        held2.len()
    );

    // Watch the held ones from now on, so each close is seen when it
    // happens (rivr's idle timeout), whatever the test does meanwhile.
    let deadline = Instant::now() + Duration::from_secs(IDLE_TIMEOUT_S + 10);
    let watcher = std::thread::spawn(move || {
        let mut held = [(held1, t1, Vec::new()), (held2, t2, Vec::new())];
        while held.iter().any(|(h, _, _)| !h.is_empty()) && Instant::now() < deadline {
            for (h, t0, times) in held.iter_mut() {
                h.retain_mut(|s| {
                    if closed_by_server(s) {
                        times.push(t0.elapsed());
                        false
                    } else {
                        true
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        held.map(|(h, _, times)| (times, h.len()))
    });

    // While every slot is taken: UDP callers, and the trunk's call.
    let mut udp = SippLoad::start(
        rivr.dir.path(),
        "legit-udp",
        rivr.sip_port,
        &LoadSpec {
            ip: LEGIT_UDP,
            number: "1000",
            calls: 60,
            rate: 10,
            hold_ms: 2000,
            transport: "u1",
        },
    );
    assert_eq!(trunk.options(1), Some(200), "the trunk during the attack");
    let (ncc, packets, bye_ok) = trunk.call(Duration::from_secs(3));
    let udp_result = udp.wait(Duration::from_secs(60));
    println!(
        "[tcp] meanwhile: UDP SIPp from {LEGIT_UDP}: {} placed, {} successful, {} failed; \
         the trunk's TCP call: NCC {ncc:.4} over {packets} packets, BYE answered {bye_ok}",
        udp_result.created, udp_result.successful, udp_result.failed
    );

    // The idle timeout closes the held ones; the trunk pinged in time.
    let [(times1, open1), (times2, open2)] = watcher.join().expect("the watcher");
    let trunk_after = trunk.options(2);
    let mut fresh = TcpPeer::connect_from(LATECOMER, server);
    let fresh_status = fresh.options(3);
    let samples = sampler.finish();
    let (peak_rss, peak_threads, peak_fds) = procfs::peaks(&samples);
    let ((first1, last1), (first2, last2)) = (span(&times1), span(&times2));
    println!(
        "[tcp] idle timeout {IDLE_TIMEOUT_S} s: wave 1's {} closed {first1:?}-{last1:?} after it \
         began ({open1} left open), wave 2's {} closed {first2:?}-{last2:?} ({open2} left open); \
         the trunk: OPTIONS {trunk_after:?}; a newcomer afterwards: OPTIONS {fresh_status:?}",
        times1.len(),
        times2.len()
    );
    println!(
        "[rivr] idle: {} kB RSS, {} threads, {} fds; holding {} connections: {} kB, {} threads, \
         {} fds; peak: {peak_rss} kB, {peak_threads} threads, {peak_fds} fds",
        idle.rss_kb,
        idle.threads,
        idle.fds,
        times1.len() + times2.len() + 1,
        during.rss_kb,
        during.threads,
        during.fds
    );

    assert!(rivr.is_running(), "rivr exited:\n{}", rivr.stderr());
    assert_eq!(
        (failed1, failed2),
        (0, 0),
        "connections that did not connect"
    );
    assert_eq!(times1.len(), PER_SOURCE, "wave 1 held: one source's share");
    assert_eq!(closed1, WAVE - PER_SOURCE);
    assert_eq!(newcomer1_status, Some(200), "one source locked others out");
    // The trunk and wave 1 hold their slots; wave 2 gets the rest.
    assert_eq!(times2.len(), TCP_MAX - 1 - PER_SOURCE, "wave 2 held");
    assert_eq!(closed2, WAVE - times2.len());
    assert_eq!((open1, open2), (0, 0), "idle connections rivr never closed");
    let newcomer2 = newcomer2.expect("a connection past the cap was left hanging");
    assert!(
        newcomer2 < Duration::from_secs(1),
        "closed only after {newcomer2:?}"
    );
    let timeout = Duration::from_secs(IDLE_TIMEOUT_S);
    for (first, last, connected) in [(first1, last1, connected1), (first2, last2, connected2)] {
        assert!(
            first >= timeout - Duration::from_millis(500)
                && last <= connected + timeout + Duration::from_secs(5),
            "idle connections closed between {first:?} and {last:?} (timeout {timeout:?})"
        );
    }
    assert!(
        udp_result.created == 60 && udp_result.successful * 1000 >= udp_result.created * 999,
        "UDP calls failed during the attack: {udp_result:?}\n{}",
        udp.errors()
    );
    assert!(
        ncc >= 0.9,
        "the trunk's TCP call heard the menu badly: NCC {ncc:.4}"
    );
    assert!(bye_ok, "the trunk's BYE was not answered");
    assert_eq!(trunk_after, Some(200), "the trunk's connection was closed");
    assert_eq!(fresh_status, Some(200), "rivr does not serve TCP again");
    // A connection is a task, not a thread: 1,024 of them add none (the
    // peak is the UDP calls' script threads). Their buffers (8 KiB read
    // chunk, 4 KiB message buffer, queue) fit in 32 MB.
    assert!(
        peak_threads <= idle.threads + 50,
        "rivr ran {peak_threads} threads (idle {})",
        idle.threads
    );
    assert!(
        peak_fds <= idle.fds + TCP_MAX as u64 + 200,
        "rivr held {peak_fds} descriptors"
    );
    assert!(
        peak_rss <= idle.rss_kb + 32 * 1024,
        "rivr's RSS peaked at {peak_rss} kB (idle {} kB)",
        idle.rss_kb
    );
    let log = rivr.stderr();
    assert!(log.contains("limits.tcp_max_per_source reached"), "logged");
    assert!(log.contains("limits.tcp_max_connections reached"), "logged");
    assert!(!log.contains("panicked"), "{log}");
}
