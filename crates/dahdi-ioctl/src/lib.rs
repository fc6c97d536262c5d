//! The few DAHDI channel ioctls rivr's PRI spans need, and the numbers of
//! DAHDI's user interface they use, as `include/dahdi/user.h` (dahdi-linux)
//! defines them: the request numbers are computed the way Linux's
//! `_IOW`/`_IOR` macros compute them, with `DAHDI_CODE` 0xDA, and the tests
//! check each one against the value written out by hand from the header.
//!
//! This crate holds the only `unsafe` of rivr's DAHDI transport (an
//! `ioctl(2)` is a variadic C call through a raw pointer), so that the
//! `rivr` library keeps `#![forbid(unsafe_code)]`. It knows nothing of
//! ISDN: what to set on a D- or B-channel and what an event means for the
//! span is decided in `rivr::pri::dahdi`.
//!
//! Linux only: elsewhere every call answers `ErrorKind::Unsupported`.

use std::fs::File;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::raw::c_int;
use std::path::Path;

/// The ioctl type ("magic") of every DAHDI request (`DAHDI_CODE`).
pub const DAHDI_CODE: u32 = 0xDA;

/// What a `read(2)` or `write(2)` on a DAHDI channel fails with (as
/// `errno`) while an event waits on the channel: fetch it with
/// [`get_event`]. user.h defines `ELAST` as 500 where the C library has
/// none, which is the case on Linux, so the kernel module returns 500.
pub const ELAST: i32 = 500;

/// The `_IOC` encoding of the architecture (`asm-generic/ioctl.h`, and its
/// variants for powerpc, mips and sparc: 13 size bits and a 3-bit
/// direction with different values).
mod ioc {
    #[cfg(not(any(
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc",
        target_arch = "sparc64"
    )))]
    mod arch {
        pub const SIZEBITS: u32 = 14;
        pub const WRITE: u32 = 1;
        pub const READ: u32 = 2;
    }
    #[cfg(any(
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc",
        target_arch = "sparc64"
    ))]
    mod arch {
        pub const SIZEBITS: u32 = 13;
        pub const WRITE: u32 = 4;
        pub const READ: u32 = 2;
    }
    pub use arch::{READ, WRITE};

    const NRSHIFT: u32 = 0;
    const TYPESHIFT: u32 = 8;
    const SIZESHIFT: u32 = 16;
    const DIRSHIFT: u32 = SIZESHIFT + arch::SIZEBITS;

    /// `_IOC(dir, type, nr, size)`.
    pub const fn ioc(dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
        (dir << DIRSHIFT) | (ty << TYPESHIFT) | (nr << NRSHIFT) | ((size as u32) << SIZESHIFT)
    }
}

/// `_IOW(DAHDI_CODE, nr, T)`: the kernel reads a `T` from the caller.
const fn iow(nr: u32, size: usize) -> u32 {
    ioc::ioc(ioc::WRITE, DAHDI_CODE, nr, size)
}

/// `_IOR(DAHDI_CODE, nr, T)`: the kernel writes a `T` to the caller.
const fn ior(nr: u32, size: usize) -> u32 {
    ioc::ioc(ioc::READ, DAHDI_CODE, nr, size)
}

const INT: usize = std::mem::size_of::<c_int>();

/// `DAHDI_SET_BLOCKSIZE`: `_IOW(DAHDI_CODE, 1, int)`.
pub const DAHDI_SET_BLOCKSIZE: u32 = iow(1, INT);
/// `DAHDI_GETEVENT`: `_IOR(DAHDI_CODE, 8, int)`.
pub const DAHDI_GETEVENT: u32 = ior(8, INT);
/// `DAHDI_SET_BUFINFO`: `_IOW(DAHDI_CODE, 27, struct dahdi_bufferinfo)`.
pub const DAHDI_SET_BUFINFO: u32 = iow(27, std::mem::size_of::<BufferInfo>());
/// `DAHDI_AUDIOMODE`: `_IOW(DAHDI_CODE, 32, int)`.
pub const DAHDI_AUDIOMODE: u32 = iow(32, INT);
/// `DAHDI_SPECIFY`: `_IOW(DAHDI_CODE, 38, int)`.
pub const DAHDI_SPECIFY: u32 = iow(38, INT);
/// `DAHDI_SETLAW`: `_IOW(DAHDI_CODE, 39, int)`.
pub const DAHDI_SETLAW: u32 = iow(39, INT);

/// The `DAHDI_EVENT_*` values [`get_event`] returns that concern a PRI
/// span's channels (user.h numbers them; the others are analog-line and
/// timer events).
pub mod event {
    /// `DAHDI_EVENT_NONE`: nothing was pending.
    pub const NONE: i32 = 0;
    /// `DAHDI_EVENT_ALARM`: the span went into alarm (red, yellow, blue).
    pub const ALARM: i32 = 4;
    /// `DAHDI_EVENT_NOALARM`: the alarm cleared.
    pub const NOALARM: i32 = 5;
    /// `DAHDI_EVENT_ABORT`: an HDLC frame was aborted.
    pub const ABORT: i32 = 6;
    /// `DAHDI_EVENT_OVERRUN`: an HDLC frame overran the buffer.
    pub const OVERRUN: i32 = 7;
    /// `DAHDI_EVENT_BADFCS`: an HDLC frame failed its FCS check.
    pub const BADFCS: i32 = 8;
    /// `DAHDI_EVENT_REMOVED`: the channel's device is gone (close it).
    pub const REMOVED: i32 = 20;
}

/// `DAHDI_POLICY_*`: when a channel starts to play or record its buffers.
pub mod policy {
    /// `DAHDI_POLICY_IMMEDIATE`: at once.
    pub const IMMEDIATE: i32 = 0;
    /// `DAHDI_POLICY_WHEN_FULL`: once the buffers are full.
    pub const WHEN_FULL: i32 = 1;
}

/// The companding law of a channel (`DAHDI_LAW_*`, for `DAHDI_SETLAW`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    /// `DAHDI_LAW_DEFAULT` (0): the span's.
    Default,
    /// `DAHDI_LAW_MULAW` (1).
    Mulaw,
    /// `DAHDI_LAW_ALAW` (2).
    Alaw,
}

impl Law {
    /// The value user.h gives it.
    pub const fn value(self) -> c_int {
        match self {
            Law::Default => 0,
            Law::Mulaw => 1,
            Law::Alaw => 2,
        }
    }
}

/// `struct dahdi_bufferinfo`: six `int`s, in user.h's order.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BufferInfo {
    /// A [`policy`] for the transmit buffers.
    pub txbufpolicy: c_int,
    /// A [`policy`] for the receive buffers.
    pub rxbufpolicy: c_int,
    /// How many buffers (DAHDI allows up to 32).
    pub numbufs: c_int,
    /// How big each is: the channel's block size, the most one read returns.
    pub bufsize: c_int,
    /// Read-only: full read buffers.
    pub readbufs: c_int,
    /// Read-only: full write buffers.
    pub writebufs: c_int,
}

/// Opens a DAHDI device file (a channel node like `/dev/dahdi/chan/001/016`,
/// or `/dev/dahdi/channel` to [`specify`] next) read-write and
/// non-blocking, as a channel's user does.
pub fn open(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// `DAHDI_SPECIFY`: binds a descriptor opened on `/dev/dahdi/channel` to
/// channel `channel` (DAHDI's global channel number); before any other
/// ioctl on it.
pub fn specify(fd: BorrowedFd<'_>, channel: i32) -> io::Result<()> {
    write_int(fd, DAHDI_SPECIFY, channel)
}

/// `DAHDI_SET_BLOCKSIZE`: the octets one read returns and one write takes.
pub fn set_blocksize(fd: BorrowedFd<'_>, size: i32) -> io::Result<()> {
    write_int(fd, DAHDI_SET_BLOCKSIZE, size)
}

/// `DAHDI_SETLAW`: the channel's law until it is closed.
pub fn set_law(fd: BorrowedFd<'_>, law: Law) -> io::Result<()> {
    write_int(fd, DAHDI_SETLAW, law.value())
}

/// `DAHDI_AUDIOMODE`: a clear channel carries audio (`true`) rather than
/// HDLC frames.
pub fn audio_mode(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    write_int(fd, DAHDI_AUDIOMODE, c_int::from(on))
}

/// `DAHDI_GETEVENT`: takes the next pending event off the channel
/// (`event::NONE` when there is none).
pub fn get_event(fd: BorrowedFd<'_>) -> io::Result<i32> {
    let mut event: c_int = event::NONE;
    // SAFETY: `fd` is borrowed, so it stays open for the call. DAHDI_GETEVENT
    // is `_IOR(DAHDI_CODE, 8, int)`: the kernel writes one `int` through the
    // pointer, and `event` is a live, aligned `c_int` for the whole call. A
    // driver that is not DAHDI either refuses the number (ENOTTY) or, by
    // the size the number encodes, writes at most that one `int`.
    unsafe { sys::ioctl(fd, DAHDI_GETEVENT, &mut event as *mut c_int) }?;
    Ok(event)
}

/// `DAHDI_SET_BUFINFO`: the channel's buffer count, size (its block size)
/// and policies.
pub fn set_bufinfo(fd: BorrowedFd<'_>, info: &BufferInfo) -> io::Result<()> {
    let mut copy = *info;
    // SAFETY: `fd` is borrowed, so it stays open for the call.
    // DAHDI_SET_BUFINFO is `_IOW(DAHDI_CODE, 27, struct dahdi_bufferinfo)`:
    // the kernel reads that struct through the pointer, `BufferInfo` is
    // `repr(C)` with the same six `int`s (its size is checked by a test and
    // encoded in the request number), and `copy` lives for the whole call.
    unsafe { sys::ioctl(fd, DAHDI_SET_BUFINFO, &mut copy as *mut BufferInfo) }
}

/// The `_IOW(…, int)` requests: the kernel reads one `int`.
fn write_int(fd: BorrowedFd<'_>, request: u32, value: c_int) -> io::Result<()> {
    let mut v = value;
    // SAFETY: `fd` is borrowed, so it stays open for the call. `request` is
    // one of this crate's `_IOW(DAHDI_CODE, nr, int)` numbers, for which
    // DAHDI reads exactly one `int` through the pointer; `v` is a live,
    // aligned `c_int` for the whole call. A driver that is not DAHDI either
    // refuses the number (ENOTTY) or reads at most the `int` it encodes.
    unsafe { sys::ioctl(fd, request, &mut v as *mut c_int) }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::io;
    use std::os::fd::{AsRawFd as _, BorrowedFd};

    /// `ioctl(fd, request, arg)`, its -1 as the `errno` it set.
    ///
    /// # Safety
    ///
    /// `arg` must point to memory valid for what `request` makes the kernel
    /// read or write through it, for the whole call.
    pub unsafe fn ioctl<T>(fd: BorrowedFd<'_>, request: u32, arg: *mut T) -> io::Result<()> {
        // SAFETY: the descriptor is open (borrowed); the caller upholds the
        // contract for `arg`. The request type is `c_ulong` on glibc and
        // `c_int` on musl: the same 32 bits either way, as C passes them.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) };
        if r == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;
    use std::os::fd::BorrowedFd;

    /// DAHDI is a Linux kernel module: there is nothing to call elsewhere.
    ///
    /// # Safety
    ///
    /// Always safe; `unsafe` to match the Linux version.
    pub unsafe fn ioctl<T>(_fd: BorrowedFd<'_>, _request: u32, _arg: *mut T) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};
    use std::os::fd::AsFd as _;

    /// Each request number as user.h's macros give it on x86, arm, riscv
    /// and the other `asm-generic/ioctl.h` architectures:
    /// `(dir << 30) | (size << 16) | (0xDA << 8) | nr`, with _IOC_WRITE = 1,
    /// _IOC_READ = 2 and sizeof(int) = 4, sizeof(struct
    /// dahdi_bufferinfo) = 24.
    #[test]
    #[cfg(not(any(
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc",
        target_arch = "sparc64"
    )))]
    fn request_numbers_are_user_h_s() {
        // #define DAHDI_SET_BLOCKSIZE _IOW(DAHDI_CODE, 1, int)
        assert_eq!(DAHDI_SET_BLOCKSIZE, 0x4004_DA01);
        // #define DAHDI_GETEVENT _IOR(DAHDI_CODE, 8, int)
        assert_eq!(DAHDI_GETEVENT, 0x8004_DA08);
        // #define DAHDI_SET_BUFINFO _IOW(DAHDI_CODE, 27, struct dahdi_bufferinfo)
        assert_eq!(DAHDI_SET_BUFINFO, 0x4018_DA1B);
        // #define DAHDI_AUDIOMODE _IOW(DAHDI_CODE, 32, int)
        assert_eq!(DAHDI_AUDIOMODE, 0x4004_DA20);
        // #define DAHDI_SPECIFY _IOW(DAHDI_CODE, 38, int)
        assert_eq!(DAHDI_SPECIFY, 0x4004_DA26);
        // #define DAHDI_SETLAW _IOW(DAHDI_CODE, 39, int)
        assert_eq!(DAHDI_SETLAW, 0x4004_DA27);
    }

    /// The same on powerpc, mips and sparc: direction at bit 29, _IOC_WRITE = 4.
    #[test]
    #[cfg(any(
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc",
        target_arch = "sparc64"
    ))]
    fn request_numbers_are_user_h_s() {
        assert_eq!(DAHDI_SET_BLOCKSIZE, 0x8004_DA01);
        assert_eq!(DAHDI_GETEVENT, 0x4004_DA08);
        assert_eq!(DAHDI_SET_BUFINFO, 0x8018_DA1B);
        assert_eq!(DAHDI_AUDIOMODE, 0x8004_DA20);
        assert_eq!(DAHDI_SPECIFY, 0x8004_DA26);
        assert_eq!(DAHDI_SETLAW, 0x8004_DA27);
    }

    /// `struct dahdi_bufferinfo { int txbufpolicy, rxbufpolicy, numbufs,
    /// bufsize, readbufs, writebufs; }`.
    #[test]
    fn buffer_info_is_laid_out_as_the_c_struct() {
        assert_eq!(size_of::<c_int>(), 4);
        assert_eq!(size_of::<BufferInfo>(), 24);
        assert_eq!(align_of::<BufferInfo>(), align_of::<c_int>());
        assert_eq!(offset_of!(BufferInfo, txbufpolicy), 0);
        assert_eq!(offset_of!(BufferInfo, rxbufpolicy), 4);
        assert_eq!(offset_of!(BufferInfo, numbufs), 8);
        assert_eq!(offset_of!(BufferInfo, bufsize), 12);
        assert_eq!(offset_of!(BufferInfo, readbufs), 16);
        assert_eq!(offset_of!(BufferInfo, writebufs), 20);
    }

    #[test]
    fn user_h_s_event_law_and_policy_values() {
        assert_eq!(
            [
                event::NONE,
                event::ALARM,
                event::NOALARM,
                event::ABORT,
                event::OVERRUN,
                event::BADFCS,
                event::REMOVED
            ],
            [0, 4, 5, 6, 7, 8, 20]
        );
        assert_eq!(
            [Law::Default.value(), Law::Mulaw.value(), Law::Alaw.value()],
            [0, 1, 2]
        );
        assert_eq!([policy::IMMEDIATE, policy::WHEN_FULL], [0, 1]);
        assert_eq!(ELAST, 500);
    }

    /// On a file that is no DAHDI channel every call is an error, not a
    /// crash: the kernel refuses the numbers it does not know.
    #[test]
    fn a_file_that_is_no_dahdi_channel_refuses_every_call() {
        let f = open(Path::new("/dev/null")).expect("/dev/null opens");
        let fd = f.as_fd();
        assert!(specify(fd, 16).is_err());
        assert!(set_blocksize(fd, 160).is_err());
        assert!(set_law(fd, Law::Alaw).is_err());
        assert!(audio_mode(fd, true).is_err());
        assert!(get_event(fd).is_err());
        let bi = BufferInfo {
            numbufs: 32,
            bufsize: 1024,
            ..BufferInfo::default()
        };
        assert!(set_bufinfo(fd, &bi).is_err());
        assert!(open(Path::new("/nonexistent/dahdi/channel")).is_err());
    }
}
