//! The datagrams waiting on a socket in one system call: `recvmmsg(2)`
//! through nix's safe wrapper, into buffers allocated once per worker
//! thread. Draining a socket with `recv_from` costs a call per datagram
//! plus one more that finds nothing (`EAGAIN`); a batch that comes back
//! short of full has drained the socket, so a tick's usual single RTP
//! packet costs one call instead of two.

use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrIn, SockaddrIn6};
use std::io::IoSliceMut;

/// Datagrams read per call: a tick brings one packet at 20 ms ptime, two
/// at 10 ms, more only after a stall; a full batch is read again.
pub const BATCH: usize = 4;
/// Larger than any RTP or RTCP datagram rivr takes (a longer one is cut,
/// and the RTP parser refuses it).
const DATAGRAM: usize = 2048;

pub struct RecvBatch {
    /// One header set per address family: the kernel writes each
    /// message's address length back into its header, so a set is only
    /// reused for sockets of its family.
    v4: MultiHeaders<SockaddrIn>,
    v6: MultiHeaders<SockaddrIn6>,
    bufs: Box<[[u8; DATAGRAM]; BATCH]>,
    /// What the last call read: each datagram's length and sender.
    got: [(usize, Option<SocketAddr>); BATCH],
    count: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    pub fn new() -> RecvBatch {
        RecvBatch {
            v4: MultiHeaders::preallocate(BATCH, None),
            v6: MultiHeaders::preallocate(BATCH, None),
            bufs: Box::new([[0; DATAGRAM]; BATCH]),
            got: [(0, None); BATCH],
            count: 0,
        }
    }

    /// Reads the datagrams waiting on `socket` (non-blocking), up to
    /// [`BATCH`]; how many. 0 when none waits or on an error (as a
    /// `recv_from` loop stops at its first error).
    pub fn recv(&mut self, socket: &UdpSocket, v6: bool) -> usize {
        let fd = socket.as_raw_fd();
        let [b0, b1, b2, b3] = &mut *self.bufs;
        let mut slices = [
            [IoSliceMut::new(b0)],
            [IoSliceMut::new(b1)],
            [IoSliceMut::new(b2)],
            [IoSliceMut::new(b3)],
        ];
        let got = &mut self.got;
        let mut n = 0;
        if v6 {
            if let Ok(results) = recvmmsg(
                fd,
                &mut self.v6,
                slices.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            ) {
                for (slot, m) in got.iter_mut().zip(results) {
                    let from = m.address.map(|a| {
                        SocketAddr::V6(SocketAddrV6::new(
                            a.ip(),
                            a.port(),
                            a.flowinfo(),
                            a.scope_id(),
                        ))
                    });
                    *slot = (m.bytes, from);
                    n += 1;
                }
            }
        } else if let Ok(results) = recvmmsg(
            fd,
            &mut self.v4,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            for (slot, m) in got.iter_mut().zip(results) {
                let from = m
                    .address
                    .map(|a| SocketAddr::V4(SocketAddrV4::new(a.ip(), a.port())));
                *slot = (m.bytes, from);
                n += 1;
            }
        }
        self.count = n;
        n
    }

    /// The `i`-th datagram of the last [`Self::recv`] and its sender
    /// (`None` past the count, or without a sender address).
    pub fn datagram(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.count {
            return None;
        }
        let (len, from) = self.got.get(i).copied()?;
        let buf = self.bufs.get(i)?;
        Some((buf.get(..len.min(DATAGRAM))?, from?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_reads_what_waits_in_order_with_senders_then_nothing() {
        for local in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(rx) = UdpSocket::bind(local) else {
                assert!(local.starts_with('['), "no IPv4 loopback");
                continue; // a machine without IPv6 loopback
            };
            rx.set_nonblocking(true).expect("nonblocking");
            let tx = UdpSocket::bind(local).expect("sender");
            let to = rx.local_addr().expect("addr");
            let v6 = to.is_ipv6();
            let mut b = RecvBatch::new();
            assert_eq!(b.recv(&rx, v6), 0, "nothing waits yet");
            for k in 0..6u8 {
                tx.send_to(&vec![k; 100 + usize::from(k)], to)
                    .expect("send");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            let mut seen = Vec::new();
            loop {
                let n = b.recv(&rx, v6);
                for i in 0..n {
                    let (d, from) = b.datagram(i).expect("a datagram");
                    assert_eq!(from, tx.local_addr().expect("sender addr"));
                    assert_eq!(d.len(), 100 + usize::from(d[0]));
                    seen.push(d[0]);
                }
                assert!(b.datagram(n).is_none());
                if n < BATCH {
                    break;
                }
            }
            assert_eq!(seen, vec![0, 1, 2, 3, 4, 5], "{local}");
        }
    }
}
