//! The RTP port range: each call takes an even port for RTP and the odd one
//! above it for RTCP (RFC 3550 §11), and gives both back when it ends.
//! Ports held by other programs are skipped, not fatal.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Mutex;

/// A bound RTP/RTCP socket pair.
#[derive(Debug)]
pub struct PortPair {
    pub port: u16,
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

#[derive(Debug)]
pub struct PortAllocator {
    free: Mutex<VecDeque<u16>>,
}

/// How many busy pairs to skip before giving up on one allocation.
const MAX_TRIES: usize = 64;

impl PortAllocator {
    pub fn new(min: u16, max: u16) -> Self {
        let first = min + (min % 2);
        let free = (first..max).step_by(2).collect();
        PortAllocator {
            free: Mutex::new(free),
        }
    }

    pub fn available(&self) -> usize {
        self.free.lock().map(|f| f.len()).unwrap_or(0)
    }

    /// Binds the next free pair on `ip`; non-blocking sockets.
    pub fn allocate(&self, ip: IpAddr) -> std::io::Result<PortPair> {
        for _ in 0..MAX_TRIES {
            let port = {
                let mut free = self
                    .free
                    .lock()
                    .map_err(|_| std::io::Error::other("port table poisoned"))?;
                match free.pop_front() {
                    Some(p) => p,
                    None => break,
                }
            };
            match bind_pair(ip, port) {
                Ok(pair) => return Ok(pair),
                Err(e) => {
                    tracing::debug!(port, error = %e, "RTP port busy; trying the next");
                    self.release(port);
                }
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "no free RTP port pair in the configured range",
        ))
    }

    /// Returns a pair's port to the back of the queue (least recently used
    /// first, so a late packet of an old call rarely reaches a new one).
    pub fn release(&self, port: u16) {
        if let Ok(mut f) = self.free.lock() {
            f.push_back(port);
        }
    }
}

fn bind_pair(ip: IpAddr, port: u16) -> std::io::Result<PortPair> {
    let rtp = UdpSocket::bind(SocketAddr::new(ip, port))?;
    let rtcp = UdpSocket::bind(SocketAddr::new(ip, port + 1))?;
    rtp.set_nonblocking(true)?;
    rtcp.set_nonblocking(true)?;
    Ok(PortPair { port, rtp, rtcp })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_even_and_released_to_the_back() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = PortAllocator::new(41001, 41100);
        let p = a.allocate(ip).unwrap();
        assert_eq!(p.port % 2, 0);
        assert_eq!(p.rtcp.local_addr().unwrap().port(), p.port + 1);
        let n = a.available();
        let port = p.port;
        drop(p);
        a.release(port);
        assert_eq!(a.available(), n + 1);
    }

    #[test]
    fn busy_ports_are_skipped() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = PortAllocator::new(41200, 41206);
        let first = a.allocate(ip).unwrap();
        // hold the next pair's RTCP port from outside
        let squatter = UdpSocket::bind((ip, first.port + 3)).unwrap();
        let second = a.allocate(ip).unwrap();
        assert_eq!(second.port, first.port + 4);
        drop(squatter);
    }
}
