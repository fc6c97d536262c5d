//! The socket span's wire: Unix `SOCK_SEQPACKET` sockets, one packet per
//! message, the way libpri and DAHDI hand frames around. The D-channel
//! carries one Q.921 frame per packet followed by two FCS octets: rivr
//! appends two zero octets on write and strips the last two, unchecked,
//! on read (the HDLC layer below owns the real FCS). A B-channel carries
//! 160-octet G.711 frames, one per 20 ms. rivr connects; the peer
//! listens (docs/pri.md).
//!
//! This is the tokio side only: it owns sockets, never protocol state.

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

/// The FCS octets after each D-channel frame on the wire.
pub const FCS_LEN: usize = 2;

/// A received frame without its FCS octets; `None` for a packet too short
/// to hold a frame and its FCS. Shared with the DAHDI D-channel, which
/// frames alike.
pub(super) fn strip_fcs(packet: &[u8]) -> Option<&[u8]> {
    let frame = packet.get(..packet.len().checked_sub(FCS_LEN)?)?;
    (!frame.is_empty()).then_some(frame)
}

/// The largest packet read: a Q.921 frame (N201 = 260 octets of
/// information, 4 of header) with its FCS, with room to spare.
const MAX_PACKET: usize = 512;

/// One connected `SOCK_SEQPACKET` socket.
#[derive(Debug)]
pub struct SeqPacket {
    fd: AsyncFd<Socket>,
}

impl SeqPacket {
    /// Connects to the listening socket at `path`.
    pub async fn connect(path: &Path) -> io::Result<SeqPacket> {
        let socket = Socket::new(Domain::UNIX, Type::SEQPACKET, None)?;
        let addr = SockAddr::unix(path)?;
        // A local connect completes at once or fails (no EINPROGRESS for
        // AF_UNIX), so it is made blocking and the socket made
        // non-blocking after.
        socket.connect(&addr)?;
        SeqPacket::from_socket(socket)
    }

    /// Wraps a connected socket (a listener's accept, a socketpair).
    pub fn from_socket(socket: Socket) -> io::Result<SeqPacket> {
        socket.set_nonblocking(true)?;
        // `AsyncFd::new` is deprecated for types whose descriptor could
        // change or close under it; a `Socket` owns its descriptor for its
        // whole life, which is the invariant `register` asks for, and this
        // crate forbids the `unsafe` that calling `register` needs.
        #[allow(deprecated)]
        let fd = AsyncFd::new(socket)?;
        Ok(SeqPacket { fd })
    }

    /// Receives one packet into `buf`; `Ok(0)` is the peer gone (an empty
    /// packet is not something either side sends). A packet longer than
    /// `buf` is cut to it.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            // socket2's `recv` takes `MaybeUninit`; `Read` on `&Socket`
            // reads one packet into an initialised buffer without unsafe.
            let r = guard.try_io(|fd| {
                use std::io::Read as _;
                fd.get_ref().read(buf)
            });
            match r {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends one packet.
    pub async fn send(&self, packet: &[u8]) -> io::Result<()> {
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| fd.get_ref().send(packet)) {
                Ok(Ok(n)) if n == packet.len() => return Ok(()),
                Ok(Ok(n)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("seqpacket sent {n} of {} octets", packet.len()),
                    ))
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.get_ref().as_raw_fd()
    }
}

/// A span's D-channel: Q.921 frames in and out, the FCS octets handled.
#[derive(Debug)]
pub struct DChannel {
    sock: SeqPacket,
    out: Vec<u8>,
}

impl DChannel {
    pub async fn connect(path: &Path) -> io::Result<DChannel> {
        Ok(DChannel::new(SeqPacket::connect(path).await?))
    }

    pub fn new(sock: SeqPacket) -> DChannel {
        DChannel {
            sock,
            out: Vec::with_capacity(MAX_PACKET),
        }
    }

    /// The next frame without its FCS octets; `None` when the peer closed
    /// the socket. Packets too short to hold an FCS are skipped.
    pub async fn recv_frame(&self) -> io::Result<Option<Vec<u8>>> {
        let mut buf = [0u8; MAX_PACKET];
        loop {
            let n = self.sock.recv(&mut buf).await?;
            if n == 0 {
                return Ok(None);
            }
            if let Some(frame) = buf.get(..n).and_then(strip_fcs) {
                return Ok(Some(frame.to_vec()));
            }
        }
    }

    /// Sends a frame with two FCS octets after it.
    pub async fn send_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        self.out.clear();
        self.out.extend_from_slice(frame);
        self.out.extend_from_slice(&[0; FCS_LEN]);
        self.sock.send(&self.out).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(dir: &Path, name: &str) -> (Socket, std::path::PathBuf) {
        let path = dir.join(name);
        let l = Socket::new(Domain::UNIX, Type::SEQPACKET, None).unwrap();
        l.bind(&SockAddr::unix(&path).unwrap()).unwrap();
        l.listen(4).unwrap();
        (l, path)
    }

    fn temp_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "rivr-pri-socket-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[tokio::test]
    async fn d_channel_frames_carry_two_fcs_octets_on_the_wire() {
        let dir = temp_dir();
        let (l, path) = listener(&dir, "d");
        let mut d = DChannel::connect(&path).await.unwrap();
        let (peer, _) = l.accept().unwrap();
        let peer = SeqPacket::from_socket(peer).unwrap();

        d.send_frame(&[0x00, 0x01, 0x7f]).await.unwrap();
        let mut buf = [0u8; 64];
        let n = peer.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], &[0x00, 0x01, 0x7f, 0, 0]);

        // The peer's FCS octets are stripped unchecked; a packet too short
        // to hold a frame and its FCS is skipped; packet bounds are kept.
        peer.send(&[0x02]).await.unwrap();
        peer.send(&[0x02, 0x01, 0x73, 0xab, 0xcd]).await.unwrap();
        peer.send(&[0x02, 0x01, 0x01, 0x01, 0xff, 0xff])
            .await
            .unwrap();
        assert_eq!(d.recv_frame().await.unwrap(), Some(vec![0x02, 0x01, 0x73]));
        assert_eq!(
            d.recv_frame().await.unwrap(),
            Some(vec![0x02, 0x01, 0x01, 0x01])
        );
        drop(peer);
        assert_eq!(d.recv_frame().await.unwrap(), None);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_b_channel_keeps_160_octet_frames_whole() {
        let dir = temp_dir();
        let (l, path) = listener(&dir, "b1");
        let b = SeqPacket::connect(&path).await.unwrap();
        let (peer, _) = l.accept().unwrap();
        let peer = SeqPacket::from_socket(peer).unwrap();
        for i in 0..10u8 {
            peer.send(&[i; 160]).await.unwrap();
        }
        let mut buf = [0u8; 512];
        for i in 0..10u8 {
            let n = b.recv(&mut buf).await.unwrap();
            assert_eq!(n, 160);
            assert!(buf[..n].iter().all(|x| *x == i));
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn nobody_listening_is_an_error_not_a_hang() {
        let dir = temp_dir();
        assert!(SeqPacket::connect(&dir.join("nobody")).await.is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
