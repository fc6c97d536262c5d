//! The configured trunks, made ready to dial: each `[[trunk]]` host (and
//! outbound proxy) located at start (RFC 3263: an IP as it is; a name
//! with a port by A/AAAA; a name without one by NAPTR, then SRV, then
//! A/AAAA on 5060, on `[sip] dns_server` or the system's resolver), split
//! into what the SIP glue needs and what the call layer paces. Every
//! address found is kept, in order (SRV priority and weight, then each
//! target's records, IPv4 first), for the SIP core to fail over along
//! (`sip::endpoint::targets`); a name is looked up again when its records'
//! TTL runs out ([`Watch`]), and the new list replaces the old.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use hickory_resolver::config::{NameServerConfig, Protocol, ResolverConfig, ResolverOpts};
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioAsyncResolver;
use rand::Rng;

use super::anyhow_like;
use super::sip_legs::SipTrunk;
use crate::call::trunks::TrunkLimits;
use crate::config::{Config, TrunkTransport};
use crate::sip::endpoint::Credentials;
use crate::sip::locate;
use crate::sip::message::Transport;

/// The resolver trunk names are looked up on.
fn resolver(dns_server: Option<SocketAddr>) -> anyhow_like::Result<TokioAsyncResolver> {
    let mut opts = ResolverOpts::default();
    opts.timeout = Duration::from_secs(2);
    opts.attempts = 2;
    match dns_server {
        Some(addr) => {
            let mut cfg = ResolverConfig::new();
            cfg.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
            Ok(TokioAsyncResolver::tokio(cfg, opts))
        }
        None => {
            let (cfg, mut sys) = hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| anyhow_like::Error(format!("the system's DNS configuration: {e}")))?;
            sys.timeout = opts.timeout;
            sys.attempts = opts.attempts;
            Ok(TokioAsyncResolver::tokio(cfg, sys))
        }
    }
}

/// `host` as an absolute name, so no search domain is tried.
fn fqdn(host: &str) -> String {
    if host.ends_with('.') {
        host.to_string()
    } else {
        format!("{host}.")
    }
}

/// The soonest and the latest a name is looked up again, whatever its TTL
/// says (a TTL of 0 must not turn into a query loop), and the wait after
/// a lookup that failed (the old addresses stay in use meanwhile).
const TTL_BOUNDS: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(3600));
const RETRY_FAILED_LOOKUP: Duration = Duration::from_secs(30);

/// A trunk's addresses, in the order to try them, and until when DNS
/// vouches for them (`None`: an IP in the config, for ever).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub addrs: Vec<SocketAddr>,
    pub valid_until: Option<Instant>,
}

impl Located {
    fn fixed(addr: SocketAddr) -> Located {
        Located {
            addrs: vec![addr],
            valid_until: None,
        }
    }

    /// The earlier expiry of the two.
    fn until(&mut self, t: Instant) {
        self.valid_until = Some(self.valid_until.map_or(t, |v| v.min(t)));
    }
}

/// A/AAAA of `host` on `port`, IPv4 first (most carriers' SBCs listen
/// there), and until when they are valid.
async fn address(res: &TokioAsyncResolver, host: &str, port: u16) -> Result<Located, String> {
    let lookup = res
        .lookup_ip(fqdn(host))
        .await
        .map_err(|e| format!("{host}: {e}"))?;
    let mut ips: Vec<IpAddr> = lookup.iter().collect();
    ips.sort_by_key(|ip| ip.is_ipv6());
    if ips.is_empty() {
        return Err(format!("{host} has no address"));
    }
    Ok(Located {
        addrs: ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect(),
        valid_until: Some(lookup.valid_until()),
    })
}

/// What to look up for one trunk: its name, which key named the host,
/// the host, its port and whether the config gave one, the transport.
#[derive(Debug, Clone)]
struct Target {
    trunk: String,
    key: &'static str,
    host: String,
    port: u16,
    port_given: bool,
    tcp: bool,
}

/// Where to send a trunk's requests (RFC 3263 §4).
async fn locate(res: &TokioAsyncResolver, t: &Target) -> anyhow_like::Result<Located> {
    let (name, key, host, tcp) = (&t.trunk, t.key, t.host.as_str(), t.tcp);
    let fail = |why: String| anyhow_like::Error(format!("trunk {name:?}: {key} {host}: {why}"));
    if let Ok(ip) = host
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
    {
        return Ok(Located::fixed(SocketAddr::new(ip, t.port)));
    }
    if t.port_given {
        return address(res, host, t.port).await.map_err(fail);
    }
    // NAPTR names the SRV set for the trunk's transport; without one, the
    // usual _sip._udp / _sip._tcp name. The trunk's transport is kept:
    // a NAPTR offering only the other one is not followed.
    let naptrs: Vec<locate::Naptr> = match res.lookup(fqdn(host), RecordType::NAPTR).await {
        Ok(l) => l
            .iter()
            .filter_map(|r| match r {
                RData::NAPTR(n) => Some(locate::Naptr {
                    order: n.order(),
                    preference: n.preference(),
                    flags: String::from_utf8_lossy(n.flags()).to_ascii_lowercase(),
                    service: String::from_utf8_lossy(n.services()).to_ascii_lowercase(),
                    replacement: n.replacement().to_utf8(),
                }),
                _ => None,
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let srv_name = locate::srv_name_from_naptr(&naptrs, tcp)
        .unwrap_or_else(|| locate::default_srv_name(host, tcp));
    let (srvs, srv_until): (Vec<locate::Srv>, Option<Instant>) =
        match res.srv_lookup(fqdn(&srv_name)).await {
            Ok(l) => (
                l.iter()
                    .map(|s| locate::Srv {
                        priority: s.priority(),
                        weight: s.weight(),
                        port: s.port(),
                        target: s.target().to_utf8().trim_end_matches('.').to_string(),
                    })
                    .collect(),
                Some(l.as_lookup().valid_until()),
            ),
            Err(_) => (Vec::new(), None),
        };
    if srvs.is_empty() {
        let found = address(res, host, 5060).await.map_err(fail)?;
        tracing::info!(trunk = %name, key, host, addrs = ?found.addrs, naptr = naptrs.len(), "no SRV records: A/AAAA on 5060");
        return Ok(found);
    }
    let order = {
        let mut rng = rand::thread_rng();
        locate::srv_order(&srvs, |n| rng.gen_range(0..n.max(1)))
    };
    let mut found = Located {
        addrs: Vec::new(),
        valid_until: srv_until,
    };
    let mut why = Vec::new();
    for s in &order {
        match address(res, &s.target, s.port).await {
            Ok(l) => {
                for a in l.addrs {
                    if !found.addrs.contains(&a) {
                        found.addrs.push(a);
                    }
                }
                if let Some(t) = l.valid_until {
                    found.until(t);
                }
            }
            Err(e) => why.push(e),
        }
    }
    if found.addrs.is_empty() {
        return Err(fail(format!(
            "no target of {srv_name} resolves ({})",
            why.join("; ")
        )));
    }
    tracing::info!(trunk = %name, key, host, srv = %srv_name, addrs = ?found.addrs, "located by SRV");
    Ok(found)
}

/// The trunks whose names DNS resolved, looked up again as their TTLs
/// run out; each new list goes to the signalling loop as (trunk number,
/// addresses).
pub struct Watch {
    res: Option<TokioAsyncResolver>,
    due: Vec<(usize, Target, Instant)>,
}

impl Watch {
    /// Runs the lookups on a task of its own until `tx` is closed.
    pub fn spawn(self, tx: mpsc::UnboundedSender<(usize, Vec<SocketAddr>)>) {
        let (Some(res), mut due) = (self.res, self.due) else {
            return;
        };
        if due.is_empty() {
            return;
        }
        tokio::spawn(async move {
            loop {
                let Some(next) = due.iter().map(|d| d.2).min() else {
                    return;
                };
                tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
                let now = Instant::now();
                for (trunk, target, at) in due.iter_mut().filter(|d| d.2 <= now) {
                    match locate(&res, target).await {
                        Ok(l) => {
                            *at = next_lookup(now, l.valid_until);
                            tracing::debug!(trunk = %target.trunk, addrs = ?l.addrs, "trunk looked up again");
                            if tx.send((*trunk, l.addrs)).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            *at = now + RETRY_FAILED_LOOKUP;
                            tracing::warn!(error = %e, "trunk lookup failed; its addresses stay as they were");
                        }
                    }
                }
            }
        });
    }
}

/// When to look a name up again, from the TTL its records had.
fn next_lookup(now: Instant, valid_until: Option<Instant>) -> Instant {
    let ttl = valid_until.map_or(TTL_BOUNDS.1, |t| t.saturating_duration_since(now));
    now + ttl.clamp(TTL_BOUNDS.0, TTL_BOUNDS.1)
}

/// The trunks for the SIP glue and for the call layer, in config order.
pub async fn resolve(
    config: &Config,
    contact: SocketAddr,
) -> anyhow_like::Result<(Vec<SipTrunk>, Vec<TrunkLimits>, Watch)> {
    let mut sip = Vec::new();
    let mut limits = Vec::new();
    let res = if config.trunks.is_empty() {
        None
    } else {
        Some(resolver(config.sip.dns_server)?)
    };
    let mut due = Vec::new();
    for (i, t) in config.trunks.iter().enumerate() {
        let Some(res) = res.as_ref() else { break };
        let tcp = t.transport == TrunkTransport::Tcp;
        let (target, route) = match &t.outbound_proxy {
            Some((h, p)) => (
                Target {
                    trunk: t.name.clone(),
                    key: "outbound_proxy",
                    host: h.clone(),
                    port: *p,
                    port_given: true,
                    tcp,
                },
                vec![format!("<sip:{h}:{p};lr>")],
            ),
            None => (
                Target {
                    trunk: t.name.clone(),
                    key: "uri",
                    host: t.host.clone(),
                    port: t.port,
                    port_given: t.port_given,
                    tcp,
                },
                Vec::new(),
            ),
        };
        let located = locate(res, &target).await?;
        let Some(&dest) = located.addrs.first() else {
            return Err(anyhow_like::Error(format!(
                "trunk {:?}: no address",
                t.name
            )));
        };
        if located.valid_until.is_some() {
            due.push((i, target, next_lookup(Instant::now(), located.valid_until)));
        }
        // A name located by NAPTR/SRV stays a bare domain in the
        // Request-URI and To, as the carrier published it.
        let host_port = if t.host.contains(':') {
            format!("[{}]:{}", t.host, t.port)
        } else if !t.port_given && t.host.parse::<IpAddr>().is_err() {
            t.host.clone()
        } else {
            format!("{}:{}", t.host, t.port)
        };
        sip.push(SipTrunk {
            name: t.name.clone(),
            dest,
            targets: located.addrs,
            // One connection per trunk address, opened by the transport
            // layer on the first request and reused (`Transport::TcpTo`).
            transport: if tcp {
                Transport::TcpTo
            } else {
                Transport::Udp
            },
            host_port,
            tcp,
            credentials: t
                .username
                .clone()
                .zip(t.password.clone())
                .map(|(username, password)| Credentials {
                    username,
                    password,
                    realm: t.realm.clone(),
                }),
            route,
            from_host: contact.ip().to_string(),
            caller_name: t.caller_name.clone(),
            send_pai: t.send_pai,
            privacy: t.privacy,
            codecs: t.codecs.clone(),
            options_every: (t.options_interval_s > 0)
                .then(|| std::time::Duration::from_secs(t.options_interval_s.into())),
            register: t.register,
        });
        limits.push(TrunkLimits {
            name: t.name.clone(),
            max_channels: t.max_channels,
            cps: t.cps,
            ring_timeout: std::time::Duration::from_secs(t.ring_timeout_s.into()),
            caller_id: t.caller_id.clone(),
        });
    }
    Ok((sip, limits, Watch { res, due }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_follow_the_ttl_within_bounds() {
        let now = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(next_lookup(now, Some(now + s(300))), now + s(300));
        assert_eq!(next_lookup(now, Some(now)), now + TTL_BOUNDS.0);
        assert_eq!(next_lookup(now, Some(now + s(86_400))), now + TTL_BOUNDS.1);
        assert_eq!(next_lookup(now, None), now + TTL_BOUNDS.1);
    }
}
