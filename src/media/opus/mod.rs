//! Opus (RFC 6716) for calls and prompts, through libopus via `audiopus`,
//! carried in RTP per RFC 7587.
//!
//! What this module owns:
//! - [`OpusEncoder`] / [`OpusDecoder`]: mono voice, 20 ms frames (10 ms on
//!   request, [`FrameDuration`]), buffers the
//!   caller provides, typed errors; the decoder's own packet-loss concealment
//!   ([`OpusDecoder::conceal`]) and in-band FEC recovery
//!   ([`OpusDecoder::decode_fec`], with [`packet::has_fec`] to tell whether a
//!   packet carries the redundancy);
//! - the SDP `a=fmtp` parameters ([`fmtp_answer`], [`parse_fmtp`]);
//! - pre-encoding a prompt once ([`encode_prompt_opus`], and in 10 ms
//!   frames [`encode_prompt_opus_frames`]).
//!
//! Sample rates: the RTP clock is always 48 kHz and the SDP always says
//! `opus/48000/2`, even for mono narrowband audio (RFC 7587 §4.1, §7). The
//! PCM side, however, may run at any rate libopus supports natively (8, 12,
//! 16, 24 or 48 kHz): an encoder fed 8 kHz PCM band-limits and codes it
//! directly and a decoder asked for 8 kHz resamples internally, so a G.711 leg
//! and an Opus leg meet at 8 kHz with no extra resampler in between. The RTP
//! timestamp still advances 960 per 20 ms ([`rtp_timestamp_step`]).
//!
//! Nothing here touches a socket or a clock, and after `new` nothing
//! allocates except the prompt encoders, which run once per prompt.

mod config;
mod decoder;
mod encoder;
mod fmtp;
pub mod packet;
mod prompt;

pub use crate::codec::opus_fmtp::{
    fmtp_answer, parse_fmtp, OpusParams, LOCAL_MAX_CAPTURE_HZ, LOCAL_MAX_PLAYBACK_HZ,
};
pub use config::{FrameDuration, OpusConfig, OpusSampleRate};
pub use decoder::OpusDecoder;
pub use encoder::OpusEncoder;
pub use prompt::{encode_prompt_opus, encode_prompt_opus_frames, PROMPT_BITRATE};

/// The SDP `a=rtpmap` encoding for Opus, whatever the channel count or band.
pub const RTPMAP_ENCODING: &str = "opus/48000/2";

/// The RTP clock rate of Opus (RFC 7587 §4.1).
pub const RTP_CLOCK_HZ: u32 = 48_000;

/// Frame length rivr encodes with (and the media tick); 10 ms frames are
/// made for peers that ask for them ([`FrameDuration`]).
pub const FRAME_MS: u32 = 20;

/// Largest packet libopus may produce for one frame (RFC 6716 §3.4: 1275 bytes
/// per frame; libopus advises 4000 to be safe with any setting).
pub const MAX_PACKET_BYTES: usize = 4000;

/// Longest Opus packet in samples per channel at 48 kHz (120 ms).
pub const MAX_PACKET_SAMPLES_48K: usize = 5760;

/// The RTP timestamp increment for `samples` of PCM at `sample_rate_hz`.
pub fn rtp_timestamp_step(samples: usize, sample_rate_hz: u32) -> u32 {
    if sample_rate_hz == 0 {
        return 0;
    }
    let step = samples as u64 * u64::from(RTP_CLOCK_HZ) / u64::from(sample_rate_hz);
    u32::try_from(step).unwrap_or(u32::MAX)
}

/// Why an Opus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OpusError {
    /// The sample rate is not one libopus takes natively.
    #[error("unsupported Opus PCM rate {0} Hz (8000, 12000, 16000, 24000 or 48000)")]
    BadRate(u32),
    /// A setting is out of its documented range.
    #[error("invalid Opus setting: {0}")]
    BadSetting(&'static str),
    /// The PCM given to the encoder is not one frame long.
    #[error("frame of {got} samples, expected {expected}")]
    FrameLength {
        /// Samples per frame at the encoder's rate.
        expected: usize,
        /// Samples given.
        got: usize,
    },
    /// An RTP payload with no bytes: not an Opus packet (RFC 6716 §3.1).
    #[error("empty Opus payload")]
    EmptyPayload,
    /// The caller's output buffer is too short.
    #[error("output buffer of {have} samples or bytes, {need} needed")]
    OutputTooSmall {
        /// Length needed.
        need: usize,
        /// Length given.
        have: usize,
    },
    /// libopus rejected the call (e.g. a corrupt packet).
    #[error("libopus: {0}")]
    Codec(#[from] audiopus::Error),
}

#[cfg(test)]
mod tests;
