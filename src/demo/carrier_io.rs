//! The carrier's tokio glue: two UDP sockets on 127.0.0.1 (SIP and RTP,
//! free ports), one task that feeds the core their datagrams and its
//! timeouts and sends what it gives back. RTP that arrives is read and
//! dropped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use super::carrier::{Carrier, CarrierConfig, CarrierStats, Socket};

/// A running carrier; the task ends when this is dropped.
pub struct CarrierHandle {
    pub sip: SocketAddr,
    stats: Arc<Mutex<CarrierStats>>,
    task: tokio::task::JoinHandle<()>,
}

impl CarrierHandle {
    pub fn stats(&self) -> CarrierStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for CarrierHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds the sockets and starts the task.
pub async fn start(hangup_after: Duration) -> std::io::Result<CarrierHandle> {
    let sip = UdpSocket::bind("127.0.0.1:0").await?;
    let rtp = UdpSocket::bind("127.0.0.1:0").await?;
    let cfg = CarrierConfig {
        sip: sip.local_addr()?,
        rtp: rtp.local_addr()?,
        hangup_after,
    };
    let addr = cfg.sip;
    let stats = Arc::new(Mutex::new(CarrierStats::default()));
    let shared = stats.clone();
    let task = tokio::spawn(async move {
        let mut core = Carrier::new(cfg);
        let mut sip_buf = vec![0u8; 65_535];
        let mut rtp_buf = vec![0u8; 2048];
        loop {
            let wake = core
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                r = sip.recv_from(&mut sip_buf) => {
                    if let Ok((n, from)) = r {
                        core.handle_sip(Instant::now(), from, sip_buf.get(..n).unwrap_or_default());
                    }
                }
                _ = rtp.recv_from(&mut rtp_buf) => {}
                _ = tokio::time::sleep_until(wake) => core.handle_timeout(Instant::now()),
            }
            while let Some(t) = core.poll_transmit() {
                let socket = match t.socket {
                    Socket::Sip => &sip,
                    Socket::Rtp => &rtp,
                };
                // A datagram that cannot go out is lost, as on a network.
                let _ = socket.send_to(&t.bytes, t.dest).await;
            }
            if let Ok(mut s) = shared.lock() {
                s.clone_from(core.stats());
            }
        }
    });
    Ok(CarrierHandle {
        sip: addr,
        stats,
        task,
    })
}
