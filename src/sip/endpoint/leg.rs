//! One inbound call leg as the UAS core sees it: its INVITE, its tags, and the
//! dialog that forms when rivr answers (RFC 3261 §12.1.1).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::sip::message::{Request, Transport};

/// Identifies a call across the core and the layers above it.
pub type CallRef = u64;

/// Key of a server transaction: the top Via's branch and sent-by (§17.2.3).
pub type TxKey = (String, String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LegState {
    /// INVITE received, no final response yet.
    Early,
    /// 2xx sent, waiting for the ACK; the core retransmits the 2xx (§13.3.1.4).
    Accepted {
        response: Vec<u8>,
        next_retransmit: Option<Instant>,
        interval: Duration,
        deadline: Instant,
    },
    /// ACK received: the dialog is confirmed.
    Confirmed,
    /// rivr sent BYE; waiting for its transaction.
    Terminating,
}

#[derive(Debug)]
pub(crate) struct Leg {
    pub invite: Box<Request>,
    pub invite_key: TxKey,
    pub transport: Transport,
    /// Where the INVITE came from (used for in-dialog requests, see `in_dialog_dest`).
    pub source: SocketAddr,
    /// Where responses go.
    pub response_dest: SocketAddr,
    /// The stamped top Via of the INVITE.
    pub top_via: String,
    pub local_tag: String,
    pub state: LegState,
    /// rivr's next CSeq for requests it sends in the dialog.
    pub local_cseq: u32,
    /// The highest CSeq seen from the peer in the dialog.
    pub remote_cseq: u32,
    /// The SDP rivr sent (answer or offer), reused for re-INVITEs.
    pub local_sdp: Option<String>,
    /// hangup() came before the ACK: send BYE when it arrives (§15).
    pub bye_after_ack: bool,
    /// The session timer the 2xx will run (RFC 4028 §9): interval,
    /// refresher, `Require: timer`.
    pub session: Option<(u32, crate::sip::session_timer::Refresher, bool)>,
    /// The INVITE's Allow lists UPDATE.
    pub peer_allows_update: bool,
}

impl Leg {
    /// When a leg waiting for its ACK next retransmits its 2xx or gives up.
    pub fn accepted_deadline(&self) -> Option<Instant> {
        match &self.state {
            LegState::Accepted {
                next_retransmit,
                deadline,
                ..
            } => Some(next_retransmit.map_or(*deadline, |n| n.min(*deadline))),
            _ => None,
        }
    }

    pub fn dialog_key(&self) -> (String, String, String) {
        (
            self.invite.call_id.clone(),
            self.local_tag.clone(),
            self.invite.from_tag.clone().unwrap_or_default(),
        )
    }

    /// Where requests inside the dialog go. The Contact is honoured only when
    /// it names the address the INVITE came from; otherwise (NAT, a phone
    /// that writes a private address, a host name rivr would have to resolve)
    /// the request follows the INVITE's own flow back, as Asterisk's
    /// `force_rport`/`comedia` and RFC 5626 flows do.
    pub fn in_dialog_dest(&self) -> SocketAddr {
        if self.transport.is_reliable() {
            return self.source;
        }
        let contact = self.invite.contact.as_deref().and_then(uri_socket_addr);
        match contact {
            Some(addr) if addr.ip() == self.source.ip() => addr,
            _ => self.source,
        }
    }
}

/// `sip:user@1.2.3.4:5060;params` → 1.2.3.4:5060 when the host is an IP literal.
pub(crate) fn uri_socket_addr(uri: &str) -> Option<SocketAddr> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))?;
    let hostport = rest.rsplit('@').next()?;
    let hostport = hostport.split([';', '?']).next()?;
    let (host, port) = crate::sip::message::split_host_port(hostport)?;
    let ip: std::net::IpAddr = host.parse().ok()?;
    Some(SocketAddr::new(ip, port.unwrap_or(5060)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_addresses() {
        assert_eq!(
            uri_socket_addr("sip:a@10.1.2.3:5070;transport=udp"),
            Some("10.1.2.3:5070".parse().unwrap())
        );
        assert_eq!(
            uri_socket_addr("sip:[::1]:5090"),
            Some("[::1]:5090".parse().unwrap())
        );
        assert_eq!(uri_socket_addr("sip:a@host.example"), None);
        assert_eq!(uri_socket_addr("tel:+123"), None);
    }
}
