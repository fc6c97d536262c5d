//! The configured trunks, made ready to dial: each `[[trunk]]` host (and
//! outbound proxy) resolved to an address (A/AAAA through the system
//! resolver; SRV/NAPTR are not looked up yet — name a port to be sure),
//! split into what the SIP glue needs and what the call layer paces.

use std::net::SocketAddr;

use super::anyhow_like;
use super::sip_legs::SipTrunk;
use crate::call::trunks::TrunkLimits;
use crate::config::{Config, TrunkTransport};
use crate::sip::endpoint::Credentials;
use crate::sip::message::Transport;

async fn resolve_one(
    name: &str,
    host: &str,
    port: u16,
    key: &str,
) -> anyhow_like::Result<SocketAddr> {
    let addrs = tokio::net::lookup_host((host, port)).await.map_err(|e| {
        anyhow_like::Error(format!(
            "trunk {name:?}: {key} {host}:{port} does not resolve: {e}"
        ))
    })?;
    let mut addrs: Vec<SocketAddr> = addrs.collect();
    // IPv4 first: most carriers' SBCs listen there.
    addrs.sort_by_key(|a| a.is_ipv6());
    addrs.into_iter().next().ok_or_else(|| {
        anyhow_like::Error(format!(
            "trunk {name:?}: {key} {host}:{port} has no address"
        ))
    })
}

/// The trunks for the SIP glue and for the call layer, in config order.
pub async fn resolve(
    config: &Config,
    contact: SocketAddr,
) -> anyhow_like::Result<(Vec<SipTrunk>, Vec<TrunkLimits>)> {
    let mut sip = Vec::new();
    let mut limits = Vec::new();
    for t in &config.trunks {
        let (dest, route) = match &t.outbound_proxy {
            Some((h, p)) => (
                resolve_one(&t.name, h, *p, "outbound_proxy").await?,
                vec![format!("<sip:{h}:{p};lr>")],
            ),
            None => (
                resolve_one(&t.name, &t.host, t.port, "uri").await?,
                Vec::new(),
            ),
        };
        let tcp = t.transport == TrunkTransport::Tcp;
        let host_port = if t.host.contains(':') {
            format!("[{}]:{}", t.host, t.port)
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
