//! `[script] http_allow`, `http_timeout_ms`, `http_max_body_bytes`: which
//! hosts a call flow's `http_get`/`http_post` may reach, and how long and
//! how much. The allow-list's patterns are parsed here and matched against
//! each request's URL (src/script/verbs/http.rs). Errors name key and line.
//!
//! A pattern is `host`, `host:port`, `*.domain` or `*.domain:port`:
//! - a host is a DNS name or an IP address (IPv6 in brackets: `[::1]:8080`),
//!   compared without regard to case;
//! - without a port, only the scheme's own port matches (80 for http, 443
//!   for https), so allowing a host does not open its other services;
//! - `*.example.net` matches every name under example.net (`a.example.net`,
//!   `a.b.example.net`), not example.net itself; a `*` anywhere else, or
//!   alone, is refused.

use std::net::IpAddr;

use toml::Spanned;

use super::trunk::Err;
use super::ConfigError;

/// Default `[script] http_timeout_ms`: the longest a request may take.
pub const DEFAULT_HTTP_TIMEOUT_MS: u64 = 10_000;
/// The largest response body a script can be handed: Rhai's string limit
/// (src/script/engine.rs), since the body comes back as one string.
pub const MAX_HTTP_BODY_BYTES: u64 = 64 * 1024;

/// The web-request settings of `[script]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptHttpConfig {
    /// Empty: `http_get`/`http_post` are refused.
    pub allow: Vec<HostPattern>,
    /// Default and upper bound of a request's time, in milliseconds.
    pub timeout_ms: u64,
    /// Largest response body read; a larger one fails the verb.
    pub max_body_bytes: u64,
}

impl Default for ScriptHttpConfig {
    fn default() -> Self {
        ScriptHttpConfig {
            allow: Vec::new(),
            timeout_ms: DEFAULT_HTTP_TIMEOUT_MS,
            max_body_bytes: MAX_HTTP_BODY_BYTES,
        }
    }
}

/// One `http_allow` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// Lower case; IPv6 without brackets. For a wildcard, the domain after `*.`.
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl HostPattern {
    /// Parses one pattern; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim().to_ascii_lowercase();
        if t.contains("://") || t.contains('/') {
            return Err("write the host alone, without scheme or path".into());
        }
        let (wildcard, rest) = match t.strip_prefix("*.") {
            Some(r) => (true, r),
            None => (false, t.as_str()),
        };
        let (host, port) = split_host_port(rest)?;
        if host.is_empty() {
            return Err("no host".into());
        }
        if host.contains('*') {
            return Err("a `*` may only start the pattern, as in \"*.example.net\"".into());
        }
        let is_ip = host.parse::<IpAddr>().is_ok();
        if wildcard && is_ip {
            return Err("a wildcard needs a domain name, not an address".into());
        }
        if !is_ip && !valid_name(host) {
            return Err(format!("{host:?} is not a host name"));
        }
        Ok(HostPattern {
            host: host.to_string(),
            wildcard,
            port,
        })
    }

    /// Whether a URL's host (IPv6 with or without brackets) and port match;
    /// `default_port` is its scheme's (80 or 443).
    pub fn allows(&self, host: &str, port: u16, default_port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        let host_ok = if self.wildcard {
            host.len() > self.host.len() + 1
                && host.ends_with(&self.host)
                && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
        } else {
            host == self.host
        };
        host_ok && port == self.port.unwrap_or(default_port)
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(s: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or("an IPv6 address needs its closing `]`")?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("[{h}] is not an IPv6 address"));
        }
        match after {
            "" => (h, None),
            p => (
                h,
                Some(p.strip_prefix(':').ok_or("expected `:port` after `]`")?),
            ),
        }
    } else {
        match s.split_once(':') {
            None => (s, None),
            Some((h, p)) if !p.contains(':') => (h, Some(p)),
            Some(_) => return Err("write an IPv6 address in brackets: \"[::1]:8080\"".into()),
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{p:?} is not a port (1-65535)"))?,
        ),
    };
    Ok((host, port))
}

fn valid_name(h: &str) -> bool {
    h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The raw keys, as `RawScript` holds them.
pub(super) struct RawScriptHttp<'a> {
    pub allow: &'a Option<Spanned<Vec<Spanned<String>>>>,
    pub timeout_ms: &'a Option<Spanned<u64>>,
    pub max_body_bytes: &'a Option<Spanned<u64>>,
}

pub(super) fn parse_script_http(
    raw: RawScriptHttp<'_>,
    err: Err<'_>,
) -> Result<ScriptHttpConfig, ConfigError> {
    let d = ScriptHttpConfig::default();
    let mut allow = Vec::new();
    for p in raw.allow.iter().flat_map(|l| l.get_ref()) {
        let pattern = HostPattern::parse(p.get_ref()).map_err(|why| {
            err(
                Some(p.span()),
                format!(
                    "script.http_allow: {:?}: {why} (write host, host:port or *.domain)",
                    p.get_ref()
                ),
            )
        })?;
        allow.push(pattern);
    }
    let ranged = |v: &Option<Spanned<u64>>, key: &str, lo: u64, hi: u64, default: u64| match v {
        None => Ok(default),
        Some(n) if (lo..=hi).contains(n.get_ref()) => Ok(*n.get_ref()),
        Some(n) => Err(err(
            Some(n.span()),
            format!(
                "script.{key}: {} is out of range ({lo} to {hi})",
                n.get_ref()
            ),
        )),
    };
    Ok(ScriptHttpConfig {
        allow,
        timeout_ms: ranged(
            raw.timeout_ms,
            "http_timeout_ms",
            1,
            3_600_000,
            d.timeout_ms,
        )?,
        max_body_bytes: ranged(
            raw.max_body_bytes,
            "http_max_body_bytes",
            1,
            MAX_HTTP_BODY_BYTES,
            d.max_body_bytes,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn p(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_host_alone_matches_only_its_schemes_port() {
        let a = p("API.example.org");
        assert!(a.allows("api.example.org", 443, 443));
        assert!(a.allows("Api.Example.Org.", 80, 80));
        assert!(!a.allows("api.example.org", 8443, 443), "another port");
        assert!(
            !a.allows("api.example.org", 443, 80),
            "https port over http"
        );
        assert!(!a.allows("example.org", 443, 443));
        assert!(!a.allows("xapi.example.org", 443, 443));
        assert!(!a.allows("api.example.org.evil.com", 443, 443));
    }

    #[test]
    fn a_port_pins_the_port() {
        let a = p("127.0.0.1:8080");
        assert!(a.allows("127.0.0.1", 8080, 80));
        assert!(!a.allows("127.0.0.1", 80, 80));
        assert!(!a.allows("127.0.0.2", 8080, 80));
        let v6 = p("[::1]:8080");
        assert!(v6.allows("[::1]", 8080, 80));
        assert!(v6.allows("::1", 8080, 80));
        assert!(!v6.allows("[::1]", 8081, 80));
        assert!(p("[2001:db8::1]").allows("[2001:DB8::1]", 443, 443));
    }

    #[test]
    fn a_wildcard_matches_names_under_the_domain_only() {
        let w = p("*.example.net");
        assert!(w.allows("a.example.net", 443, 443));
        assert!(w.allows("a.b.example.net", 80, 80));
        assert!(!w.allows("example.net", 443, 443), "not the domain itself");
        assert!(!w.allows("aexample.net", 443, 443));
        assert!(!w.allows(".example.net", 443, 443));
        assert!(!w.allows("a.example.net.evil", 443, 443));
        let wp = p("*.example.net:8443");
        assert!(wp.allows("x.example.net", 8443, 443));
        assert!(!wp.allows("x.example.net", 443, 443));
    }

    #[test]
    fn bad_patterns_say_why() {
        for (bad, why) in [
            ("*", "may only start"),
            ("", "no host"),
            ("*.*.example.net", "may only start"),
            ("api.*.net", "may only start"),
            ("*.10.0.0.1", "needs a domain name"),
            ("host:0", "not a port"),
            ("host:http", "not a port"),
            ("::1", "brackets"),
            ("[::1", "closing"),
            ("[nothex]:80", "not an IPv6"),
            ("a b", "not a host name"),
            ("http://api.example.org", "without scheme"),
        ] {
            let e = HostPattern::parse(bad).expect_err(bad);
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    fn parse(s: &str) -> Result<Config, String> {
        Config::parse(s, "rivr.toml", Path::new("/etc/rivr")).map_err(|e| e.to_string())
    }

    #[test]
    fn keys_parse_with_defaults_and_errors_name_key_and_line() {
        let c = parse("").unwrap().script.http;
        assert_eq!(c, ScriptHttpConfig::default());
        assert!(c.allow.is_empty(), "refused unless configured");
        let c = parse(
            "[script]\nhttp_allow = [\"api.example.org\", \"*.example.net\"]\nhttp_timeout_ms = 2500\nhttp_max_body_bytes = 4096\n",
        )
        .unwrap()
        .script
        .http;
        assert_eq!(c.allow.len(), 2);
        assert_eq!((c.timeout_ms, c.max_body_bytes), (2500, 4096));
        for (text, want) in [
            (
                "[script]\nhttp_allow = [\n  \"ok.org\",\n  \"bad:port\",\n]\n",
                "rivr.toml:4: script.http_allow: \"bad:port\"",
            ),
            (
                "[script]\n\nhttp_timeout_ms = 0\n",
                "rivr.toml:3: script.http_timeout_ms: 0 is out of range",
            ),
            (
                "[script]\nhttp_max_body_bytes = 1048576\n",
                "rivr.toml:2: script.http_max_body_bytes: 1048576 is out of range (1 to 65536)",
            ),
            ("[script]\nhttp_allow = \"one.org\"\n", "rivr.toml:2:"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
        let e = parse("[script]\nhttp_alow = []\n").unwrap_err();
        assert!(
            e.starts_with("rivr.toml:2:") && e.contains("http_alow"),
            "{e}"
        );
    }
}
