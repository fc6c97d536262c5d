//! The UDP receive loop: one datagram, one `Inbound` (oversized datagrams
//! and CRLF keepalives are dropped here).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::supervise::{is_transient, LoopEnd};
use super::{Inbound, TransportLimits, TransportStats, Up};
use crate::sip::message::Transport;
use crate::sip::wire;

pub(super) async fn udp_loop(
    udp: Arc<UdpSocket>,
    up: mpsc::Sender<Up>,
    limits: Arc<TransportLimits>,
    stats: Arc<TransportStats>,
) -> LoopEnd {
    let mut buf = vec![0u8; wire::MAX_MESSAGE_BYTES + 1];
    loop {
        match udp.recv_from(&mut buf).await {
            Ok((n, source)) => {
                if n == 0 {
                    continue;
                }
                if n > limits.max_message_bytes {
                    stats.udp_oversize_dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let Some(bytes) = buf.get(..n) else { continue };
                // keep-alive CRLFs (RFC 5626 §3.5.1) carry no message
                if bytes.iter().all(|b| *b == b'\r' || *b == b'\n') {
                    continue;
                }
                let msg = Inbound {
                    transport: Transport::Udp,
                    source,
                    bytes: bytes.to_vec(),
                };
                if up.send(Up::Message(msg)).await.is_err() {
                    return LoopEnd::Closed;
                }
            }
            Err(e) if is_transient(&e) => {
                tracing::debug!(error = %e, "UDP receive error");
            }
            Err(e) => return LoopEnd::Failed(e),
        }
    }
}
