//! The one tokio layer of SIP: a UDP socket and a TCP listener on the same
//! address. It moves bytes only: datagrams and stream-framed messages go
//! up as `Inbound`, and `send` puts bytes on the wire (TCP responses go back
//! on the connection the request came in on, RFC 3261 §18.2.2).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use crate::sip::message::Transport;
use crate::sip::wire;

/// A message as it arrived.
#[derive(Debug)]
pub struct Inbound {
    pub transport: Transport,
    pub source: SocketAddr,
    pub bytes: Vec<u8>,
}

/// Outgoing bytes queued per TCP connection.
const TCP_QUEUE: usize = 256;

#[derive(Clone)]
pub struct Transports {
    udp: Arc<UdpSocket>,
    tcp: Arc<DashMap<u64, mpsc::Sender<Vec<u8>>>>,
    local: SocketAddr,
}

impl Transports {
    /// Binds UDP and TCP on `addr` (port 0 picks one free port for both)
    /// and starts the receive loops.
    pub async fn bind(addr: SocketAddr, up: mpsc::Sender<Inbound>) -> std::io::Result<Transports> {
        let (udp, listener) = bind_both(addr).await?;
        let local = udp.local_addr()?;
        let udp = Arc::new(udp);
        let tcp = Arc::new(DashMap::new());
        tokio::spawn(udp_loop(udp.clone(), up.clone()));
        tokio::spawn(accept_loop(listener, tcp.clone(), up));
        Ok(Transports { udp, tcp, local })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub async fn send(&self, transport: Transport, dest: SocketAddr, bytes: Vec<u8>) {
        match transport {
            Transport::Udp => {
                if let Err(e) = self.udp.send_to(&bytes, dest).await {
                    tracing::debug!(%dest, error = %e, "UDP send failed");
                }
            }
            Transport::Tcp(id) => {
                let tx = self.tcp.get(&id).map(|t| t.clone());
                match tx {
                    Some(tx) => {
                        if tx.try_send(bytes).is_err() {
                            tracing::debug!(
                                conn = id,
                                "TCP connection gone or full; message dropped"
                            );
                        }
                    }
                    None => {
                        tracing::debug!(conn = id, %dest, "TCP connection closed; message dropped")
                    }
                }
            }
        }
    }
}

async fn bind_both(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    if addr.port() != 0 {
        let udp = UdpSocket::bind(addr).await?;
        let tcp = TcpListener::bind(addr).await?;
        return Ok((udp, tcp));
    }
    // Port 0: find one port free on both transports.
    let mut last = None;
    for _ in 0..32 {
        let udp = UdpSocket::bind(addr).await?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no port free on both UDP and TCP")))
}

async fn udp_loop(udp: Arc<UdpSocket>, up: mpsc::Sender<Inbound>) {
    let mut buf = vec![0u8; wire::MAX_MESSAGE_BYTES + 1];
    loop {
        match udp.recv_from(&mut buf).await {
            Ok((n, source)) => {
                if n == 0 || n > wire::MAX_MESSAGE_BYTES {
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
                if up.send(msg).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // ICMP errors surface here on some systems; keep serving.
                tracing::debug!(error = %e, "UDP receive error");
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    conns: Arc<DashMap<u64, mpsc::Sender<Vec<u8>>>>,
    up: mpsc::Sender<Inbound>,
) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    loop {
        let Ok((stream, source)) = listener.accept().await else {
            continue;
        };
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(TCP_QUEUE);
        conns.insert(id, tx);
        let conns = conns.clone();
        let up = up.clone();
        tokio::spawn(async move {
            serve_connection(id, stream, source, rx, up).await;
            conns.remove(&id);
        });
    }
}

async fn serve_connection(
    id: u64,
    stream: TcpStream,
    source: SocketAddr,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
    up: mpsc::Sender<Inbound>,
) {
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(b) = outgoing.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    });
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 8192];
    'read: loop {
        let n = match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        loop {
            match wire::frame_stream(&buf) {
                Ok(Some(len)) => {
                    let msg: Vec<u8> = buf.drain(..len.min(buf.len())).collect();
                    let trimmed = msg.iter().position(|b| *b != b'\r' && *b != b'\n');
                    if trimmed.is_none() {
                        continue;
                    }
                    let inbound = Inbound {
                        transport: Transport::Tcp(id),
                        source,
                        bytes: msg,
                    };
                    if up.send(inbound).await.is_err() {
                        break 'read;
                    }
                }
                Ok(None) => {
                    if buf.len() > 2 * wire::MAX_MESSAGE_BYTES {
                        tracing::debug!(conn = id, "TCP message too large; closing");
                        break 'read;
                    }
                    break;
                }
                Err(e) => {
                    tracing::debug!(conn = id, error = %e, "TCP framing error; closing");
                    break 'read;
                }
            }
        }
    }
    writer.abort();
}
