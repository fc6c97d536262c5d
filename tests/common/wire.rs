//! What a peer's network interface saw, as the witness for pacing: tcpdump
//! (Debian `tcpdump`) captures the UDP datagrams sent to a port on
//! loopback, and the INVITEs are read back from the pcap file with the
//! kernel's timestamps. SIPp stamps a message when its single thread gets
//! to read it; on a loaded 2-core machine that lags by up to ~100 ms, so
//! its trace can show `cps + 1` arrivals in a second that the wire never
//! carried. A carrier's SBC counts at its interface, as this does.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One INVITE on the wire: when (µs since the epoch) and its Call-ID.
#[derive(Debug, Clone)]
pub struct WireInvite {
    pub us: i64,
    pub call_id: String,
}

/// A running capture of the UDP datagrams to `port` on `lo`.
pub struct WireCapture {
    child: Option<Child>,
    file: PathBuf,
}

impl WireCapture {
    /// Starts tcpdump and waits until it listens. Missing or refused
    /// (not root, no capability), the test fails.
    pub fn start(dir: &Path, port: u16) -> WireCapture {
        let file = dir.join(format!("wire-{port}.pcap"));
        let mut child = Command::new("tcpdump")
            .args(["-i", "lo", "-n", "-U", "-s", "0", "-w"])
            .arg(&file)
            .arg(format!("udp and dst port {port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tcpdump (make deps installs Debian tcpdump)");
        let stderr = child.stderr.take().expect("tcpdump's stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut said = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("listening on") => break,
                Ok(line) => said.push(line),
                Err(_) => {
                    let _ = child.kill();
                    panic!("tcpdump did not start listening on lo: {said:?}");
                }
            }
        }
        WireCapture {
            child: Some(child),
            file,
        }
    }

    /// Stops the capture (its last packets flushed) and reads the
    /// INVITEs, each Call-ID once (a retransmission is the same request),
    /// in time order.
    pub fn stop(mut self) -> Vec<WireInvite> {
        if let Some(mut child) = self.child.take() {
            // SIGINT: tcpdump flushes and closes the file.
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
        let bytes = std::fs::read(&self.file).expect("read the capture");
        invites(&bytes).unwrap_or_else(|e| panic!("{}: {e}", self.file.display()))
    }
}

impl Drop for WireCapture {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn u32_at(b: &[u8], at: usize, little: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if little {
        u32::from_le_bytes(s)
    } else {
        u32::from_be_bytes(s)
    })
}

/// The INVITEs of a pcap file (µs or ns timestamps, Ethernet or raw IP
/// link; IPv4 UDP).
pub fn invites(pcap: &[u8]) -> Result<Vec<WireInvite>, String> {
    let magic = u32_at(pcap, 0, true).ok_or("no pcap header")?;
    let (little, nanos) = match magic {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        0xd4c3_b2a1 => (false, false),
        0x4d3c_b2a1 => (false, true),
        m => return Err(format!("not a pcap file (magic {m:#x})")),
    };
    let link = u32_at(pcap, 20, little).ok_or("short pcap header")?;
    let ip_at = match link {
        1 => 14,   // Ethernet (lo on Linux)
        101 => 0,  // raw IP
        113 => 16, // Linux cooked
        l => return Err(format!("link type {l} not read here")),
    };
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let sec = u32_at(pcap, at, little).ok_or("record")? as i64;
        let frac = u32_at(pcap, at + 4, little).ok_or("record")? as i64;
        let len = u32_at(pcap, at + 8, little).ok_or("record")? as usize;
        let frame = pcap.get(at + 16..at + 16 + len).ok_or("a cut record")?;
        at += 16 + len;
        let us = sec * 1_000_000 + if nanos { frac / 1000 } else { frac };
        let Some(ip) = frame.get(ip_at..) else {
            continue;
        };
        let ihl = usize::from(ip.first().copied().unwrap_or(0) & 0x0f) * 4;
        if ip.first().map(|v| v >> 4) != Some(4) || ip.get(9) != Some(&17) {
            continue;
        }
        let Some(payload) = ip.get(ihl + 8..) else {
            continue;
        };
        if !payload.starts_with(b"INVITE ") {
            continue;
        }
        let text = String::from_utf8_lossy(payload);
        let call_id = text
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                let k = k.trim();
                (k.eq_ignore_ascii_case("call-id") || k.eq_ignore_ascii_case("i"))
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_default();
        if seen.insert(call_id.clone()) {
            out.push(WireInvite { us, call_id });
        }
    }
    out.sort_by_key(|i| i.us);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(us: u32, payload: &[u8]) -> Vec<u8> {
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
        ];
        ip.extend_from_slice(&[0x13, 0xc4, 0x13, 0xc4, 0, 0, 0, 0]);
        ip.extend_from_slice(payload);
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&ip);
        let mut r = Vec::new();
        for v in [7u32, us, frame.len() as u32, frame.len() as u32] {
            r.extend_from_slice(&v.to_le_bytes());
        }
        r.extend_from_slice(&frame);
        r
    }

    #[test]
    fn invites_are_read_once_each_with_their_time() {
        let mut pcap = Vec::new();
        for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
            pcap.extend_from_slice(&v.to_le_bytes());
        }
        pcap.extend(record(5, b"INVITE sip:a SIP/2.0\r\nCall-ID: one\r\n\r\n"));
        pcap.extend(record(9, b"ACK sip:a SIP/2.0\r\nCall-ID: one\r\n\r\n"));
        pcap.extend(record(11, b"INVITE sip:a SIP/2.0\r\ni: one\r\n\r\n"));
        pcap.extend(record(20, b"INVITE sip:b SIP/2.0\r\nCall-ID: two\r\n\r\n"));
        pcap.extend_from_slice(&[1, 2, 3]);
        let got = invites(&pcap).expect("a pcap");
        let got: Vec<(i64, &str)> = got.iter().map(|i| (i.us, i.call_id.as_str())).collect();
        assert_eq!(got, vec![(7_000_005, "one"), (7_000_020, "two")]);
        assert!(invites(b"nonsense").is_err());
    }
}
