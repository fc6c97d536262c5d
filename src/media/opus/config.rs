//! Encoder settings and the PCM rates libopus accepts natively.

use audiopus::{Bandwidth, SampleRate};

use super::{OpusError, FRAME_MS};

/// A PCM sample rate libopus encodes from and decodes to without help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpusSampleRate {
    /// 8 kHz: the G.711 rate.
    Hz8000,
    /// 12 kHz.
    Hz12000,
    /// 16 kHz: wideband voice.
    Hz16000,
    /// 24 kHz.
    Hz24000,
    /// 48 kHz: the RTP clock rate.
    Hz48000,
}

impl OpusSampleRate {
    /// The rate for `hz`, if libopus takes it natively.
    pub fn from_hz(hz: u32) -> Result<Self, OpusError> {
        Ok(match hz {
            8000 => Self::Hz8000,
            12000 => Self::Hz12000,
            16000 => Self::Hz16000,
            24000 => Self::Hz24000,
            48000 => Self::Hz48000,
            _ => return Err(OpusError::BadRate(hz)),
        })
    }

    /// The rate in Hz.
    pub fn hz(self) -> u32 {
        match self {
            Self::Hz8000 => 8000,
            Self::Hz12000 => 12000,
            Self::Hz16000 => 16000,
            Self::Hz24000 => 24000,
            Self::Hz48000 => 48000,
        }
    }

    /// Samples in one 20 ms frame at this rate.
    pub fn frame_samples(self) -> usize {
        (self.hz() * FRAME_MS / 1000) as usize
    }

    pub(super) fn audiopus(self) -> SampleRate {
        match self {
            Self::Hz8000 => SampleRate::Hz8000,
            Self::Hz12000 => SampleRate::Hz12000,
            Self::Hz16000 => SampleRate::Hz16000,
            Self::Hz24000 => SampleRate::Hz24000,
            Self::Hz48000 => SampleRate::Hz48000,
        }
    }
}

/// How long the Opus frames rivr codes are: 20 ms, or 10 ms for a peer
/// that asked for 10 ms packets (RFC 6716 §2.1.4 allows 2.5 to 60 ms; a
/// 10 ms frame is one SILK frame, so voice quality is the same at a little
/// more overhead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FrameDuration {
    /// 10 ms: two frames, sent as two packets, per 20 ms tick.
    Ms10,
    /// 20 ms: one frame per tick (and per packet, or packed 2–3 to one).
    #[default]
    Ms20,
}

impl FrameDuration {
    /// The frames for a leg sent `ptime_ms` packets: 10 ms below 20 ms,
    /// else 20 ms (longer packets pack 20 ms frames).
    pub fn for_ptime(ptime_ms: u32) -> FrameDuration {
        if ptime_ms < FRAME_MS {
            FrameDuration::Ms10
        } else {
            FrameDuration::Ms20
        }
    }

    /// The duration in ms.
    pub fn ms(self) -> u32 {
        match self {
            FrameDuration::Ms10 => 10,
            FrameDuration::Ms20 => 20,
        }
    }

    /// Frames in one 20 ms tick.
    pub fn per_tick(self) -> usize {
        (FRAME_MS / self.ms()) as usize
    }

    /// Samples in one frame at `rate`.
    pub fn samples(self, rate: OpusSampleRate) -> usize {
        (rate.hz() * self.ms() / 1000) as usize
    }
}

/// How an [`super::OpusEncoder`] codes a call's voice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusConfig {
    /// The PCM rate fed to the encoder and produced by the decoder.
    pub sample_rate: OpusSampleRate,
    /// 0 (fastest) to 10 (best).
    pub complexity: u8,
    /// Target bits per second; `None` lets libopus choose.
    pub bitrate: Option<u32>,
    /// Constant bit rate (fmtp `cbr=1`) instead of VBR.
    pub cbr: bool,
    /// Put LBRR redundancy of the previous frame in each packet (fmtp
    /// `useinbandfec=1` from the receiver).
    pub inband_fec: bool,
    /// Expected loss in percent (0-100). libopus only emits FEC when this is
    /// above zero, and spends more bits on it as it grows.
    pub packet_loss_pct: u8,
    /// Discontinuous transmission: in silence, send a 1-2 byte packet every
    /// 400 ms instead of every 20 ms (fmtp `usedtx=1` from the receiver).
    pub dtx: bool,
    /// Highest audio rate the receiver plays (fmtp `maxplaybackrate`); the
    /// encoder codes no band above it.
    pub max_playback_hz: u32,
}

impl Default for OpusConfig {
    /// 48 kHz PCM, complexity 5, 24 kb/s VBR, FEC for 10 % loss, no DTX, up
    /// to fullband.
    fn default() -> Self {
        OpusConfig {
            sample_rate: OpusSampleRate::Hz48000,
            complexity: 5,
            bitrate: Some(24_000),
            cbr: false,
            inband_fec: true,
            packet_loss_pct: 10,
            dtx: false,
            max_playback_hz: 48_000,
        }
    }
}

impl OpusConfig {
    /// The default settings with PCM at `hz` (8, 12, 16, 24 or 48 kHz).
    pub fn at_rate(hz: u32) -> Result<Self, OpusError> {
        Ok(OpusConfig {
            sample_rate: OpusSampleRate::from_hz(hz)?,
            ..OpusConfig::default()
        })
    }

    pub(super) fn validate(&self) -> Result<(), OpusError> {
        if self.complexity > 10 {
            return Err(OpusError::BadSetting("complexity must be 0..=10"));
        }
        if self.packet_loss_pct > 100 {
            return Err(OpusError::BadSetting("packet loss must be 0..=100 %"));
        }
        if let Some(b) = self.bitrate {
            if !(500..=512_000).contains(&b) {
                return Err(OpusError::BadSetting("bitrate must be 500..=512000 b/s"));
            }
        }
        Ok(())
    }
}

/// The widest Opus audio band a receiver playing at `hz` can use (the mapping
/// of RFC 7587 §6.1 `maxplaybackrate` onto RFC 6716 Table 1 bandwidths).
pub(super) fn bandwidth_for_playback(hz: u32) -> Bandwidth {
    match hz {
        0..=8000 => Bandwidth::Narrowband,
        8001..=12000 => Bandwidth::Mediumband,
        12001..=16000 => Bandwidth::Wideband,
        16001..=24000 => Bandwidth::Superwideband,
        _ => Bandwidth::Fullband,
    }
}
