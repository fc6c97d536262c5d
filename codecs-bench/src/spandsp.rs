//! Safe wrappers over spandsp (through `shim/spandsp_shim.c`): G.711 over
//! buffers, the DTMF receiver and packet loss concealment, used as the
//! reference that rivr's own code is measured against.
//!
//! This is the only module in the workspace with `unsafe`: each handle owns
//! one spandsp state allocated by spandsp and freed on drop, and every call
//! passes a Rust slice's pointer with its exact length (split into `c_int`
//! sized pieces), so spandsp never reads or writes past a buffer.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void};
use std::ptr::NonNull;

mod ffi {
    use std::ffi::{c_char, c_int, c_void};

    #[link(name = "spandsp")]
    extern "C" {}

    extern "C" {
        pub fn rivr_shim_g711_new(mode: c_int) -> *mut c_void;
        pub fn rivr_shim_g711_free(s: *mut c_void);
        pub fn rivr_shim_g711_encode(
            s: *mut c_void,
            out: *mut u8,
            pcm: *const i16,
            len: c_int,
        ) -> c_int;
        pub fn rivr_shim_g711_decode(
            s: *mut c_void,
            out: *mut i16,
            payload: *const u8,
            len: c_int,
        ) -> c_int;
        pub fn rivr_shim_linear_to_ulaw(x: i16) -> u8;
        pub fn rivr_shim_ulaw_to_linear(x: u8) -> i16;
        pub fn rivr_shim_linear_to_alaw(x: i16) -> u8;
        pub fn rivr_shim_alaw_to_linear(x: u8) -> i16;

        pub fn rivr_shim_dtmf_rx_new() -> *mut c_void;
        pub fn rivr_shim_dtmf_rx_free(s: *mut c_void);
        pub fn rivr_shim_dtmf_rx(
            s: *mut c_void,
            pcm: *const i16,
            len: c_int,
            digits: *mut c_char,
            max: c_int,
        ) -> c_int;

        pub fn rivr_shim_plc_new() -> *mut c_void;
        pub fn rivr_shim_plc_free(s: *mut c_void);
        pub fn rivr_shim_plc_rx(s: *mut c_void, pcm: *mut i16, len: c_int) -> c_int;
        pub fn rivr_shim_plc_fillin(s: *mut c_void, pcm: *mut i16, len: c_int) -> c_int;
    }
}

/// Largest piece handed to spandsp in one call (its lengths are `int`).
const MAX_PIECE: usize = 1 << 20;

/// Which G.711 law.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    /// µ-law (PCMU).
    Ulaw,
    /// A-law (PCMA).
    Alaw,
}

/// spandsp's G.711 codec state (`g711_init`), encoding and decoding buffers.
#[derive(Debug)]
pub struct G711 {
    state: NonNull<c_void>,
}

impl G711 {
    /// A codec for `law`; `None` if spandsp could not allocate its state.
    pub fn new(law: Law) -> Option<Self> {
        let mode = match law {
            Law::Alaw => 0,
            Law::Ulaw => 1,
        };
        // SAFETY: g711_init(NULL, mode) allocates and returns a fresh state or NULL.
        let state = NonNull::new(unsafe { ffi::rivr_shim_g711_new(mode) })?;
        Some(Self { state })
    }

    /// Encodes `min(pcm.len(), out.len())` samples; returns how many.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        let n = pcm.len().min(out.len());
        let (pcm, out) = (&pcm[..n], &mut out[..n]);
        for (p, o) in pcm.chunks(MAX_PIECE).zip(out.chunks_mut(MAX_PIECE)) {
            // SAFETY: both pieces hold exactly p.len() elements (≤ MAX_PIECE).
            unsafe {
                ffi::rivr_shim_g711_encode(
                    self.state.as_ptr(),
                    o.as_mut_ptr(),
                    p.as_ptr(),
                    p.len() as c_int,
                );
            }
        }
        n
    }

    /// Decodes `min(payload.len(), out.len())` bytes; returns how many.
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> usize {
        let n = payload.len().min(out.len());
        let (payload, out) = (&payload[..n], &mut out[..n]);
        for (p, o) in payload.chunks(MAX_PIECE).zip(out.chunks_mut(MAX_PIECE)) {
            // SAFETY: both pieces hold exactly p.len() elements (≤ MAX_PIECE).
            unsafe {
                ffi::rivr_shim_g711_decode(
                    self.state.as_ptr(),
                    o.as_mut_ptr(),
                    p.as_ptr(),
                    p.len() as c_int,
                );
            }
        }
        n
    }
}

impl Drop for G711 {
    fn drop(&mut self) {
        // SAFETY: the state came from g711_init and is freed once.
        unsafe { ffi::rivr_shim_g711_free(self.state.as_ptr()) }
    }
}

/// spandsp's per-sample µ-law encoder (the header's inline function).
pub fn linear_to_ulaw(x: i16) -> u8 {
    // SAFETY: a pure function of its argument.
    unsafe { ffi::rivr_shim_linear_to_ulaw(x) }
}

/// spandsp's per-sample µ-law decoder.
pub fn ulaw_to_linear(x: u8) -> i16 {
    // SAFETY: a pure function of its argument.
    unsafe { ffi::rivr_shim_ulaw_to_linear(x) }
}

/// spandsp's per-sample A-law encoder.
pub fn linear_to_alaw(x: i16) -> u8 {
    // SAFETY: a pure function of its argument.
    unsafe { ffi::rivr_shim_linear_to_alaw(x) }
}

/// spandsp's per-sample A-law decoder.
pub fn alaw_to_linear(x: u8) -> i16 {
    // SAFETY: a pure function of its argument.
    unsafe { ffi::rivr_shim_alaw_to_linear(x) }
}

/// Digits read back from spandsp per call; spandsp queues up to 128.
const DIGIT_BUF: usize = 128;

/// spandsp's DTMF receiver (`dtmf_rx_init` with its default parameters).
#[derive(Debug)]
pub struct DtmfRx {
    state: NonNull<c_void>,
    digits: [c_char; DIGIT_BUF],
    len: usize,
}

impl DtmfRx {
    /// A receiver for 8 kHz audio; `None` if spandsp could not allocate it.
    pub fn new() -> Option<Self> {
        // SAFETY: dtmf_rx_init(NULL, NULL, NULL) allocates a state or returns NULL.
        let state = NonNull::new(unsafe { ffi::rivr_shim_dtmf_rx_new() })?;
        Some(Self {
            state,
            digits: [0; DIGIT_BUF],
            len: 0,
        })
    }

    /// Feeds samples; returns the digits reported while processing them.
    pub fn process(&mut self, pcm: &[i16]) -> &[c_char] {
        self.len = 0;
        for piece in pcm.chunks(MAX_PIECE) {
            let room = &mut self.digits[self.len..];
            // SAFETY: `piece` has piece.len() samples; `room` has room.len()
            // writable chars and spandsp writes at most `max` of them.
            let got = unsafe {
                ffi::rivr_shim_dtmf_rx(
                    self.state.as_ptr(),
                    piece.as_ptr(),
                    piece.len() as c_int,
                    room.as_mut_ptr(),
                    room.len() as c_int,
                )
            };
            self.len = (self.len + usize::try_from(got).unwrap_or(0)).min(DIGIT_BUF);
        }
        &self.digits[..self.len]
    }
}

impl Drop for DtmfRx {
    fn drop(&mut self) {
        // SAFETY: the state came from dtmf_rx_init and is freed once.
        unsafe { ffi::rivr_shim_dtmf_rx_free(self.state.as_ptr()) }
    }
}

/// spandsp's packet loss concealment for 8 kHz speech (`plc_init`): pitch
/// period repetition with overlap-add, in the manner of G.711 Appendix I.
#[derive(Debug)]
pub struct Plc {
    state: NonNull<c_void>,
}

impl Plc {
    /// A fresh concealer; `None` if spandsp could not allocate it.
    pub fn new() -> Option<Self> {
        // SAFETY: plc_init(NULL) allocates a state or returns NULL.
        let state = NonNull::new(unsafe { ffi::rivr_shim_plc_new() })?;
        Some(Self { state })
    }

    /// A frame that arrived: remembered, and smoothed if it ends a gap.
    pub fn received(&mut self, pcm: &mut [i16]) {
        for piece in pcm.chunks_mut(MAX_PIECE) {
            // SAFETY: `piece` has piece.len() writable samples.
            unsafe {
                ffi::rivr_shim_plc_rx(
                    self.state.as_ptr(),
                    piece.as_mut_ptr(),
                    piece.len() as c_int,
                )
            };
        }
    }

    /// A frame that was lost: synthesised into `pcm`.
    pub fn conceal(&mut self, pcm: &mut [i16]) {
        for piece in pcm.chunks_mut(MAX_PIECE) {
            // SAFETY: `piece` has piece.len() writable samples.
            unsafe {
                ffi::rivr_shim_plc_fillin(
                    self.state.as_ptr(),
                    piece.as_mut_ptr(),
                    piece.len() as c_int,
                )
            };
        }
    }
}

impl Drop for Plc {
    fn drop(&mut self) {
        // SAFETY: the state came from plc_init and is freed once.
        unsafe { ffi::rivr_shim_plc_free(self.state.as_ptr()) }
    }
}

/// Digits as a string (spandsp reports ASCII).
pub fn digits_to_string(digits: &[c_char]) -> String {
    digits.iter().map(|&c| char::from(c as u8)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_codec_matches_the_inline_functions() {
        let pcm: Vec<i16> = (i16::MIN..=i16::MAX).step_by(3).collect();
        for (law, enc, dec) in [
            (
                Law::Ulaw,
                linear_to_ulaw as fn(i16) -> u8,
                ulaw_to_linear as fn(u8) -> i16,
            ),
            (Law::Alaw, linear_to_alaw, alaw_to_linear),
        ] {
            let mut codec = G711::new(law).expect("spandsp g711 state");
            let mut bytes = vec![0u8; pcm.len()];
            assert_eq!(codec.encode(&pcm, &mut bytes), pcm.len());
            let mut back = vec![0i16; pcm.len()];
            assert_eq!(codec.decode(&bytes, &mut back), pcm.len());
            for ((&s, &b), &d) in pcm.iter().zip(&bytes).zip(&back) {
                assert_eq!(b, enc(s), "{law:?} {s}");
                assert_eq!(d, dec(b), "{law:?} {b:#04x}");
            }
        }
    }

    #[test]
    fn spandsp_g711_hits_the_recommendation_code_points() {
        // G.711 Table 2a/2b end points: silence and full scale.
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
    }

    /// rivr's G.711 follows the ITU-T G.191 reference code, spandsp its own
    /// inline functions. They agree on every decode and every A-law encode;
    /// µ-law encoding differs on exactly one input per negative decision
    /// level (127), by one code step: G.191 folds negatives as `!x` (that
    /// is −x−1), spandsp as −x, so each negative threshold sits one LSB
    /// apart. This test pins that, so any other divergence shows up.
    #[test]
    fn rivr_and_spandsp_g711_differ_only_at_negative_ulaw_thresholds() {
        use rivr::media::g711 as r;
        for b in 0..=255u8 {
            assert_eq!(r::ulaw_to_linear(b), ulaw_to_linear(b), "µ {b:#04x}");
            assert_eq!(r::alaw_to_linear(b), alaw_to_linear(b), "A {b:#04x}");
        }
        let mut differ = 0;
        for s in i16::MIN..=i16::MAX {
            assert_eq!(r::linear_to_alaw(s), linear_to_alaw(s), "A {s}");
            let (ours, theirs) = (r::linear_to_ulaw(s), linear_to_ulaw(s));
            if ours != theirs {
                differ += 1;
                // One code step towards zero magnitude (µ-law bytes are
                // inverted: a larger byte is a smaller magnitude).
                assert!(
                    s < 0 && ours == theirs + 1,
                    "{s}: {ours:#04x} vs {theirs:#04x}"
                );
                // At the threshold itself: one sample closer to zero, both agree.
                assert_eq!(r::linear_to_ulaw(s + 1), linear_to_ulaw(s + 1), "{}", s + 1);
            }
        }
        assert_eq!(differ, 127);
    }

    #[test]
    fn shorter_output_limits_the_work() {
        let mut codec = G711::new(Law::Ulaw).expect("state");
        let mut out = [0u8; 4];
        assert_eq!(codec.encode(&[0; 10], &mut out), 4);
        let mut pcm = [0i16; 3];
        assert_eq!(codec.decode(&[0xFF; 10], &mut pcm), 3);
    }

    #[test]
    fn spandsp_receiver_finds_a_clean_key_and_nothing_in_silence() {
        let mut rx = DtmfRx::new().expect("state");
        let mut found = String::new();
        // 697 + 1209 Hz = '1', 60 ms at about -10 dBm0 per tone.
        let tone: Vec<i16> = (0..480)
            .map(|n| {
                let t = f64::from(n) / 8000.0;
                let w = std::f64::consts::TAU;
                (7000.0 * ((w * 697.0 * t).sin() + (w * 1209.0 * t).sin())) as i16
            })
            .collect();
        for frame in [vec![0i16; 800], tone, vec![0i16; 1600]]
            .concat()
            .chunks(160)
        {
            found.push_str(&digits_to_string(rx.process(frame)));
        }
        assert_eq!(found, "1");
        let mut quiet = DtmfRx::new().expect("state");
        assert!(quiet.process(&[0i16; 8000]).is_empty());
    }

    #[test]
    fn spandsp_plc_fills_a_lost_frame_with_continued_signal() {
        let mut plc = Plc::new().expect("state");
        let sine =
            |n: usize| (8000.0 * (std::f64::consts::TAU * 200.0 * n as f64 / 8000.0).sin()) as i16;
        for f in 0..10 {
            let mut frame: Vec<i16> = (f * 160..(f + 1) * 160).map(sine).collect();
            plc.received(&mut frame);
        }
        let mut lost = [0i16; 160];
        plc.conceal(&mut lost);
        let energy: f64 = lost.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 160.0;
        // A 8000-peak sine has mean power 3.2e7; the first concealed frame
        // keeps most of it (spandsp attenuates only after 10 ms).
        assert!(energy > 1.0e7, "concealed power {energy}");
    }
}
