//! The RTP port range: each call takes an even port for RTP and the odd one
//! above it for RTCP (RFC 3550 §11), and gives both back when it ends.
//! Ports held by other programs are skipped, not fatal.
//!
//! A call's port is drawn at random from the older half of the free list,
//! not taken in order: a port nobody can predict is what keeps a forger
//! who cannot read rivr's SDP from sending the RTP that would verify a
//! forged call (docs/security.md, "Reflection and amplification"), while
//! a port just given back still waits behind half the range before it is
//! reused, so a late packet of an old call rarely reaches a new one.

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

    /// Binds a free pair on `ip`, drawn at random from the older half of
    /// the free list; non-blocking sockets.
    pub fn allocate(&self, ip: IpAddr) -> std::io::Result<PortPair> {
        for _ in 0..MAX_TRIES {
            let port = {
                let mut free = self
                    .free
                    .lock()
                    .map_err(|_| std::io::Error::other("port table poisoned"))?;
                let older_half = free.len().div_ceil(2);
                if older_half == 0 {
                    break;
                }
                match free.remove(rand::random::<usize>() % older_half) {
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
        // Three pairs; hold the RTCP ports of two from outside.
        let a = PortAllocator::new(41200, 41206);
        let squatters = [
            UdpSocket::bind((ip, 41201)).unwrap(),
            UdpSocket::bind((ip, 41203)).unwrap(),
        ];
        let p = a.allocate(ip).unwrap();
        assert_eq!(p.port, 41204);
        // The busy pairs went back to the list; none is left to bind.
        assert_eq!(a.available(), 2);
        assert!(a.allocate(ip).is_err());
        drop(squatters);
    }

    #[test]
    fn ports_are_not_handed_out_in_order() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = PortAllocator::new(41300, 41399);
        let ports: Vec<u16> = (0..10).map(|_| a.allocate(ip).unwrap().port).collect();
        // Ten draws from 25+ candidates each: in order by chance with
        // probability far below 1e-12.
        assert!(
            ports.windows(2).any(|w| w[1] != w[0] + 2),
            "sequential: {ports:?}"
        );
        assert!(ports
            .iter()
            .all(|p| p % 2 == 0 && (41300..41399).contains(p)));
    }

    #[test]
    fn a_released_port_waits_behind_the_older_half() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = PortAllocator::new(41400, 41439); // 20 pairs
        let p = a.allocate(ip).unwrap();
        let port = p.port;
        drop(p);
        a.release(port);
        // It is last of 20: the next 9 draws (from the older half) never
        // take it.
        for _ in 0..9 {
            assert_ne!(a.allocate(ip).unwrap().port, port);
        }
    }
}
