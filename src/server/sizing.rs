//! Sizing the server to its box at start: the file-descriptor limit is
//! raised to what the process may have, and the default `[limits]
//! max_calls` is the smallest of what the RTP ports, the descriptors and
//! the memory can carry (docs/config.md explains the formula).

/// Descriptors a call may hold: its RTP and RTCP sockets, and one file a
/// script may have open (a recording).
pub const FDS_PER_CALL: u64 = 3;

/// Descriptors kept for everything that is not a call: the SIP sockets,
/// the runtime's epoll and event fds, logs, the CDR file, the store, the
/// SMPP connection, prompt files while they load.
pub const FDS_RESERVED: u64 = 256;

/// Memory budgeted per call: about ten times what a call measured in the
/// load test (0.05–0.14 MB of RSS, docs in the README), so the script's
/// own strings and arrays and the thread's 1 MiB stack have room.
pub const MEMORY_PER_CALL: u64 = 2 << 20;

/// The file-descriptor limit after [`raise_nofile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdLimit {
    pub soft: u64,
    pub hard: u64,
    /// The soft limit before, when it was raised.
    pub raised_from: Option<u64>,
    /// Why it could not be read or raised.
    pub error: Option<String>,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (each call holds two
/// sockets; 1024, a common soft default, would cap rivr at ~300 calls).
pub fn raise_nofile() -> FdLimit {
    use rlimit::Resource;
    let (soft, hard) = match Resource::NOFILE.get() {
        Ok(limits) => limits,
        Err(e) => {
            return FdLimit {
                soft: 1024,
                hard: 1024,
                raised_from: None,
                error: Some(format!("getrlimit(RLIMIT_NOFILE): {e}")),
            }
        }
    };
    // An unlimited hard limit cannot be the soft one: Linux caps both at
    // fs.nr_open.
    let target = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or(hard, |nr_open| hard.min(nr_open));
    if soft >= target {
        return FdLimit {
            soft,
            hard,
            raised_from: None,
            error: None,
        };
    }
    match Resource::NOFILE.set(target, hard) {
        Ok(()) => FdLimit {
            soft: target,
            hard,
            raised_from: Some(soft),
            error: None,
        },
        Err(e) => FdLimit {
            soft,
            hard,
            raised_from: None,
            error: Some(format!("setrlimit(RLIMIT_NOFILE, {target}): {e}")),
        },
    }
}

/// What the default call cap is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxFacts {
    /// RTP/RTCP port pairs in `[rtp] ports`, plus the B-channels of the
    /// PRI spans (a call's leg holds one or the other).
    pub rtp_pairs: usize,
    /// The soft descriptor limit after raising it.
    pub nofile: u64,
    /// `[limits] tcp_max_connections`: each holds a descriptor.
    pub tcp_max_connections: usize,
    /// Physical memory, or the cgroup's limit if lower; `None` if unknown.
    pub memory_bytes: Option<u64>,
}

/// Which resource set the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    RtpPorts,
    FileDescriptors,
    Memory,
}

/// `min(rtp pairs, (nofile − 256 − tcp) / 3, memory / 2 / 2 MiB)`, at
/// least 1, where `tcp` is `tcp_max_connections` but at most half of the
/// `nofile − 256` descriptors (so a box stuck at a low limit still takes
/// calls; its TCP accepts then meet EMFILE first, which backs off).
pub fn default_max_calls(f: &BoxFacts) -> (usize, Bound) {
    let by_ports = f.rtp_pairs as u64;
    let usable = f.nofile.saturating_sub(FDS_RESERVED);
    let tcp = (f.tcp_max_connections as u64).min(usable / 2);
    let by_fds = (usable - tcp) / FDS_PER_CALL;
    let by_memory = f.memory_bytes.map_or(u64::MAX, |m| m / 2 / MEMORY_PER_CALL);
    let (n, bound) = [
        (by_ports, Bound::RtpPorts),
        (by_fds, Bound::FileDescriptors),
        (by_memory, Bound::Memory),
    ]
    .into_iter()
    .min_by_key(|(n, _)| *n)
    .unwrap_or((by_ports, Bound::RtpPorts));
    (usize::try_from(n.max(1)).unwrap_or(usize::MAX), bound)
}

/// Physical memory (`/proc/meminfo` MemTotal), or the cgroup's memory
/// limit when it is lower (v2 `memory.max`, v1 `memory.limit_in_bytes`).
pub fn memory_bytes() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| parse_meminfo_total(&m));
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok())
    .find_map(|s| s.trim().parse::<u64>().ok());
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}

fn parse_meminfo_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn the_scarcest_resource_sets_the_default() {
        // The default RTP range (5,000 pairs) on a roomy box.
        let roomy = BoxFacts {
            rtp_pairs: 5000,
            nofile: 1 << 20,
            tcp_max_connections: 1024,
            memory_bytes: Some(24 * GIB),
        };
        assert_eq!(default_max_calls(&roomy), (5000, Bound::RtpPorts));
        // A 1024-descriptor limit that could not be raised: TCP keeps at
        // most half of what is left after the reserve.
        let fds = BoxFacts {
            nofile: 1024,
            ..roomy
        };
        assert_eq!(
            default_max_calls(&fds),
            ((1024 - 256) / 2 / 3, Bound::FileDescriptors)
        );
        let few_tcp = BoxFacts {
            tcp_max_connections: 128,
            ..fds
        };
        assert_eq!(
            default_max_calls(&few_tcp),
            ((1024 - 256 - 128) / 3, Bound::FileDescriptors)
        );
        // This project's machine: 20,000 descriptors, 24 GiB.
        let here = BoxFacts {
            nofile: 20_000,
            memory_bytes: Some(24_683_664 * 1024),
            ..roomy
        };
        assert_eq!(default_max_calls(&here), (5000, Bound::RtpPorts));
        let here_ports = BoxFacts {
            rtp_pairs: 100_000,
            ..here
        };
        assert_eq!(default_max_calls(&here_ports), (6026, Bound::Memory));
        // A 1 GiB VM: 256 calls.
        let small = BoxFacts {
            memory_bytes: Some(GIB),
            ..roomy
        };
        assert_eq!(default_max_calls(&small), (256, Bound::Memory));
        // Unknown memory does not bind; nothing goes below one call.
        let tiny = BoxFacts {
            rtp_pairs: 5000,
            nofile: 10,
            tcp_max_connections: 1024,
            memory_bytes: None,
        };
        assert_eq!(default_max_calls(&tiny), (1, Bound::FileDescriptors));
    }

    #[test]
    fn meminfo_total_in_bytes() {
        let m = "MemTotal:       24683664 kB\nMemFree:         1000 kB\n";
        assert_eq!(parse_meminfo_total(m), Some(24683664 * 1024));
        assert_eq!(parse_meminfo_total("MemFree: 1 kB\n"), None);
        assert_eq!(parse_meminfo_total("MemTotal: lots kB\n"), None);
    }

    #[test]
    fn raising_the_limit_never_lowers_it() {
        let before = rlimit::Resource::NOFILE.get().unwrap();
        let after = raise_nofile();
        assert!(after.soft >= before.0, "{after:?}");
        assert_eq!(after.hard, before.1);
        assert!(after.error.is_none(), "{after:?}");
    }
}
