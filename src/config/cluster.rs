//! `[cluster]`: who this `rivr serve` is among the nodes sharing a
//! database, and how long its lease lasts (docs/scaling.md, "Several
//! nodes").

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::trunk::Err;
use super::ConfigError;

/// `[cluster]`; every key has a default, so the table is optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// This node's id: unique among the live nodes of a database, and the
    /// same across restarts of one node (a restarted node ends its own
    /// previous process's attempts at once). Default: the host name.
    pub node_id: String,
    /// How long a node counts as alive after its last renewal; renewals
    /// come every second.
    pub lease: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node_id: host_name(),
            lease: DEFAULT_LEASE,
        }
    }
}

const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// The host name (Linux), or `rivr` when it cannot be read.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "rivr".into())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    node_id: Option<Spanned<String>>,
    lease_s: Option<Spanned<u64>>,
}

pub(super) fn parse_cluster(
    raw: Option<RawCluster>,
    err: Err<'_>,
) -> Result<ClusterConfig, ConfigError> {
    let raw = raw.unwrap_or_default();
    let mut c = ClusterConfig::default();
    if let Some(id) = raw.node_id {
        let ok = !id.get_ref().is_empty()
            && id.get_ref().len() <= 64
            && id
                .get_ref()
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.:".contains(ch));
        if !ok {
            return Err(err(
                Some(id.span()),
                format!(
                    "cluster.node_id: {:?} must be 1 to 64 letters, digits, '-', '_', '.' or ':'",
                    id.get_ref()
                ),
            ));
        }
        c.node_id = id.into_inner();
    }
    if let Some(l) = raw.lease_s {
        // Renewals come every second: a lease of 3 s survives two lost ones.
        if !(3..=300).contains(l.get_ref()) {
            return Err(err(
                Some(l.span()),
                format!(
                    "cluster.lease_s: {} is out of range (3 to 300)",
                    l.get_ref()
                ),
            ));
        }
        c.lease = Duration::from_secs(*l.get_ref());
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    fn parse(extra: &str) -> Result<Config, String> {
        let base = "[sip]\nlisten = \"127.0.0.1:5070\"\n[[route]]\nscript = \"a.rhai\"\n";
        Config::parse(
            &format!("{base}{extra}"),
            "rivr.toml",
            Path::new("/etc/rivr"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_to_the_host_name_and_ten_seconds() {
        let c = parse("").unwrap();
        assert_eq!(c.cluster.node_id, super::host_name());
        assert_eq!(c.cluster.lease.as_secs(), 10);
        let c = parse("[cluster]\nnode_id = \"rivr-2\"\nlease_s = 5\n").unwrap();
        assert_eq!(c.cluster.node_id, "rivr-2");
        assert_eq!(c.cluster.lease.as_secs(), 5);
    }

    #[test]
    fn bad_values_name_their_key_and_line() {
        let e = parse("[cluster]\nnode_id = \"a b\"\n").unwrap_err();
        assert!(
            e.contains("rivr.toml:6") && e.contains("cluster.node_id"),
            "{e}"
        );
        let e = parse("[cluster]\nlease_s = 1\n").unwrap_err();
        assert!(e.contains("cluster.lease_s: 1 is out of range"), "{e}");
    }
}
