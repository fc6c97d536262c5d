//! Prompts: audio files decoded once, resampled once to 8 kHz mono and
//! pre-encoded once per codec into 20 ms frames, so that playing a prompt to
//! any number of callers is a slice copy per frame. For Opus peers that ask
//! for 10 ms packets a prompt is also encoded in 10 ms frames, once, the
//! first time such a leg plays it ([`Prompt::prepare_opus_10ms`], run off
//! the media tick), and shared the same way.
//!
//! - [`decode_file`] turns a WAV, FLAC, Ogg/Vorbis or MP3 file (any rate,
//!   any channel count) into mono `f32` samples at the source rate.
//! - [`Prompt`] holds the 8 kHz PCM and the encoded frames, immutable.
//! - [`PromptStore`] finds prompts by name under one directory, refuses
//!   names that would escape it, and caches each prompt as an `Arc<Prompt>`.
//!
//! Nothing here runs on the media tick except [`Prompt::frame`],
//! [`Prompt::opus_10ms`] and [`Prompt::request_opus_10ms`].

mod decode;
mod store;
mod tones;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use super::g711::{self, Law};
use super::opus::{encode_prompt_opus, encode_prompt_opus_frames, FrameDuration};
use super::resample::{resample, ResampleError};
use crate::codec::Codec;

pub use decode::{decode_bytes, decode_file};
pub use store::PromptStore;

/// Sample rate of [`Prompt::pcm_8k`].
pub const PROMPT_RATE_HZ: u32 = 8000;
/// Samples (and G.711 bytes) in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// Longest source file accepted, so a huge or hostile file cannot exhaust
/// memory at load time.
pub const MAX_PROMPT_SECONDS: u64 = 600;

/// Why a prompt could not be found or loaded. Every message names the
/// prompt or the file.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// No file for this name (tried `name`, `name.wav`, `.flac`, `.ogg`, `.mp3`).
    #[error("prompt {name:?} not found in {} (tried it bare and with .wav, .flac, .ogg, .mp3)", dir.display())]
    NotFound {
        /// The requested name.
        name: String,
        /// The prompts directory.
        dir: PathBuf,
    },
    /// The name is not a plain relative path inside the prompts directory.
    #[error("bad prompt name {name:?}: {reason}")]
    BadName {
        /// The requested name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not audio we can decode, or is malformed or truncated.
    #[error("{}: cannot decode audio: {reason}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// What the decoder reported.
        reason: String,
    },
    /// The file is longer than [`MAX_PROMPT_SECONDS`].
    #[error("{}: longer than the {max_seconds} s limit for a prompt", path.display())]
    TooLong {
        /// The file.
        path: PathBuf,
        /// The limit.
        max_seconds: u64,
    },
    /// The decoded audio could not be resampled to 8 kHz.
    #[error("{}: {source}", path.display())]
    Resample {
        /// The file.
        path: PathBuf,
        /// The resampler's error.
        #[source]
        source: ResampleError,
    },
}

/// A prompt ready to play: 8 kHz mono PCM plus its 20 ms frames encoded for
/// every codec in [`Codec::ALL`]. Immutable once built; share it as
/// `Arc<Prompt>`.
#[derive(Debug)]
pub struct Prompt {
    name: String,
    pcm: Vec<i16>,
    /// One entry per G.711 law (µ-law, A-law): `frame_count * FRAME_SAMPLES`
    /// bytes, the last frame padded with the law's silence byte.
    g711: [Vec<u8>; 2],
    /// The Opus packets back to back, and where each one ends; `None` if
    /// libopus refused (the call then hears silence, and the load logged why).
    opus: Option<OpusFrames>,
    /// The same in 10 ms frames, two packets per 20 ms frame: made on first
    /// need ([`Prompt::prepare_opus_10ms`]); `Some(None)` if libopus refused.
    opus_10ms: OnceLock<Option<OpusFrames>>,
    /// A leg asked for the 10 ms frames ([`Prompt::request_opus_10ms`]).
    opus_10ms_requested: AtomicBool,
}

/// Variable-length Opus packets in one allocation.
#[derive(Debug)]
struct OpusFrames {
    bytes: Vec<u8>,
    /// `ends[i]` is one past the last byte of packet `i`.
    ends: Vec<u32>,
}

impl OpusFrames {
    fn new(packets: &[Vec<u8>]) -> OpusFrames {
        let mut bytes = Vec::with_capacity(packets.iter().map(Vec::len).sum());
        let mut ends = Vec::with_capacity(packets.len());
        for p in packets {
            bytes.extend_from_slice(p);
            ends.push(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        }
        OpusFrames { bytes, ends }
    }

    fn get(&self, index: usize) -> Option<&[u8]> {
        let end = *self.ends.get(index)? as usize;
        let start = match index.checked_sub(1) {
            Some(prev) => *self.ends.get(prev)? as usize,
            None => 0,
        };
        self.bytes.get(start..end)
    }
}

impl Prompt {
    /// Builds a prompt from 8 kHz mono PCM (tones, TTS output, tests) and
    /// encodes it for every codec.
    pub fn from_pcm_8k(name: &str, pcm: Vec<i16>) -> Prompt {
        let frames = pcm.len().div_ceil(FRAME_SAMPLES);
        let padded_len = frames.saturating_mul(FRAME_SAMPLES);
        let g711 = Law::ALL.map(|law| {
            let mut bytes = vec![law.silence_byte(); padded_len];
            g711::encode(law, &pcm, &mut bytes);
            bytes
        });
        let opus = match encode_prompt_opus(&pcm) {
            Ok(packets) => Some(OpusFrames::new(&packets)),
            Err(e) => {
                tracing::warn!(prompt = name, error = %e, "cannot encode the prompt to Opus");
                None
            }
        };
        Prompt {
            name: name.to_owned(),
            pcm,
            g711,
            opus,
            opus_10ms: OnceLock::new(),
            opus_10ms_requested: AtomicBool::new(false),
        }
    }

    /// Builds a prompt from mono samples in `[-1.0, 1.0]` at `rate_hz`,
    /// resampling to 8 kHz. `path` is only used in error messages.
    pub fn from_samples(
        name: &str,
        samples: &[f32],
        rate_hz: u32,
        path: PathBuf,
    ) -> Result<Prompt, PromptError> {
        let at_8k = resample(samples, rate_hz, PROMPT_RATE_HZ)
            .map_err(|source| PromptError::Resample { path, source })?;
        Ok(Prompt::from_pcm_8k(name, to_i16(&at_8k)))
    }

    /// The name the prompt was loaded under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of 20 ms frames (the last one may be padded with silence).
    pub fn frame_count(&self) -> usize {
        self.pcm.len().div_ceil(FRAME_SAMPLES)
    }

    /// Frame `index` encoded with `codec` (160 bytes for G.711, one Opus
    /// packet), or `None` past the end.
    #[inline]
    pub fn frame(&self, codec: Codec, index: usize) -> Option<&[u8]> {
        match codec.g711_law() {
            Some(law) => {
                let start = index.checked_mul(FRAME_SAMPLES)?;
                self.g711_bytes(law)
                    .get(start..start.checked_add(FRAME_SAMPLES)?)
            }
            None => self.opus.as_ref()?.get(index),
        }
    }

    /// The 20 ms frame `index` as two 10 ms Opus packets, once the prompt
    /// has them ([`Prompt::prepare_opus_10ms`]); `None` before, past the
    /// end, or if libopus refused.
    #[inline]
    pub fn opus_10ms(&self, index: usize) -> Option<[&[u8]; 2]> {
        let frames = self.opus_10ms.get()?.as_ref()?;
        let first = index.checked_mul(2)?;
        Some([frames.get(first)?, frames.get(first.checked_add(1)?)?])
    }

    /// Whether the 10 ms Opus frames are there to play.
    pub fn has_opus_10ms(&self) -> bool {
        matches!(self.opus_10ms.get(), Some(Some(_)))
    }

    /// Encodes the prompt in 10 ms Opus frames, once (later calls, from
    /// any thread, wait for the first or return at once). Costs about as
    /// much as the prompt's 20 ms encoding, so it must not run on the media
    /// tick; returns whether the frames are there.
    pub fn prepare_opus_10ms(&self) -> bool {
        self.opus_10ms
            .get_or_init(
                || match encode_prompt_opus_frames(&self.pcm, FrameDuration::Ms10) {
                    Ok(packets) => Some(OpusFrames::new(&packets)),
                    Err(e) => {
                        tracing::warn!(prompt = self.name, error = %e, "cannot encode the prompt to 10 ms Opus");
                        None
                    }
                },
            )
            .is_some()
    }

    /// A leg that sends 10 ms Opus wants this prompt: true the first time
    /// (the caller then has [`Prompt::prepare_opus_10ms`] run off the
    /// tick), false once asked or prepared. Cheap: one atomic swap.
    pub fn request_opus_10ms(&self) -> bool {
        self.opus_10ms.get().is_none() && !self.opus_10ms_requested.swap(true, Ordering::AcqRel)
    }

    /// Undoes a [`Prompt::request_opus_10ms`] that could not be served, so
    /// the next play asks again.
    pub fn unrequest_opus_10ms(&self) {
        self.opus_10ms_requested.store(false, Ordering::Release);
    }

    /// Every frame for a G.711 law, back to back (`frame_count() * 160`
    /// bytes).
    pub fn g711_bytes(&self, law: Law) -> &[u8] {
        match law {
            Law::Ulaw => &self.g711[0],
            Law::Alaw => &self.g711[1],
        }
    }

    /// The 8 kHz mono PCM, unpadded.
    pub fn pcm_8k(&self) -> &[i16] {
        &self.pcm
    }

    /// Heap bytes the prompt holds (PCM and its 20 ms encodings; 10 ms
    /// Opus frames made later are not counted), for caches bounded in
    /// bytes.
    pub fn size_bytes(&self) -> usize {
        let opus = self
            .opus
            .as_ref()
            .map_or(0, |o| o.bytes.len() + o.ends.len() * 4);
        self.pcm.len() * 2 + self.g711[0].len() + self.g711[1].len() + opus
    }

    /// Length of the audio in milliseconds (unpadded).
    pub fn duration_ms(&self) -> u64 {
        self.pcm.len() as u64 * 1000 / u64::from(PROMPT_RATE_HZ)
    }
}

/// Converts `[-1.0, 1.0]` floats to 16-bit PCM, saturating out-of-range
/// values (resampling can overshoot a full-scale input slightly).
fn to_i16(samples: &[f32]) -> Vec<i16> {
    samples
        .iter()
        .map(|&s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}
