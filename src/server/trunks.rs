//! The configured trunks, made ready to dial: each `[[trunk]]` host (and
//! outbound proxy) located once at start (RFC 3263: an IP as it is; a name
//! with a port by A/AAAA; a name without one by NAPTR, then SRV, then
//! A/AAAA on 5060, on `[sip] dns_server` or the system's resolver), split
//! into what the SIP glue needs and what the call layer paces.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

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

/// A/AAAA of `host`, IPv4 first (most carriers' SBCs listen there).
async fn address(res: &TokioAsyncResolver, host: &str, port: u16) -> Result<SocketAddr, String> {
    let ips = res
        .lookup_ip(fqdn(host))
        .await
        .map_err(|e| format!("{host}: {e}"))?;
    let mut ips: Vec<IpAddr> = ips.iter().collect();
    ips.sort_by_key(|ip| ip.is_ipv6());
    ips.first()
        .map(|ip| SocketAddr::new(*ip, port))
        .ok_or_else(|| format!("{host} has no address"))
}

/// Where to send a trunk's requests (RFC 3263 §4).
async fn locate(
    res: &TokioAsyncResolver,
    name: &str,
    key: &str,
    (host, port, port_given): (&str, u16, bool),
    tcp: bool,
) -> anyhow_like::Result<SocketAddr> {
    let fail = |why: String| anyhow_like::Error(format!("trunk {name:?}: {key} {host}: {why}"));
    if let Ok(ip) = host
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
    {
        return Ok(SocketAddr::new(ip, port));
    }
    if port_given {
        return address(res, host, port).await.map_err(fail);
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
    let srvs: Vec<locate::Srv> = match res.srv_lookup(fqdn(&srv_name)).await {
        Ok(l) => l
            .iter()
            .map(|s| locate::Srv {
                priority: s.priority(),
                weight: s.weight(),
                port: s.port(),
                target: s.target().to_utf8().trim_end_matches('.').to_string(),
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    if srvs.is_empty() {
        let addr = address(res, host, 5060).await.map_err(fail)?;
        tracing::info!(trunk = name, key, host, %addr, naptr = naptrs.len(), "no SRV records: A/AAAA on 5060");
        return Ok(addr);
    }
    let mut rng = rand::thread_rng();
    let order = locate::srv_order(&srvs, |n| rng.gen_range(0..n.max(1)));
    let mut why = Vec::new();
    for s in &order {
        match address(res, &s.target, s.port).await {
            Ok(addr) => {
                tracing::info!(trunk = name, key, host, srv = %srv_name, target = %s.target, %addr, "located by SRV");
                return Ok(addr);
            }
            Err(e) => why.push(e),
        }
    }
    Err(fail(format!(
        "no target of {srv_name} resolves ({})",
        why.join("; ")
    )))
}

/// The trunks for the SIP glue and for the call layer, in config order.
pub async fn resolve(
    config: &Config,
    contact: SocketAddr,
) -> anyhow_like::Result<(Vec<SipTrunk>, Vec<TrunkLimits>)> {
    let mut sip = Vec::new();
    let mut limits = Vec::new();
    let res = if config.trunks.is_empty() {
        None
    } else {
        Some(resolver(config.sip.dns_server)?)
    };
    for t in &config.trunks {
        let Some(res) = res.as_ref() else { break };
        let tcp = t.transport == TrunkTransport::Tcp;
        let (dest, route) = match &t.outbound_proxy {
            Some((h, p)) => (
                locate(res, &t.name, "outbound_proxy", (h, *p, true), tcp).await?,
                vec![format!("<sip:{h}:{p};lr>")],
            ),
            None => (
                locate(res, &t.name, "uri", (&t.host, t.port, t.port_given), tcp).await?,
                Vec::new(),
            ),
        };
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
    Ok((sip, limits))
}
