//! The Opus encoder for one outgoing stream.

use audiopus::coder::Encoder;
use audiopus::{Application, Bitrate, Channels};

use super::config::{bandwidth_for_playback, FrameDuration, OpusConfig, OpusSampleRate};
use super::OpusError;

/// A mono voice encoder: one 20 ms (or 10 ms) frame in, one RTP payload
/// out.
pub struct OpusEncoder {
    inner: Encoder,
    config: OpusConfig,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("config", &self.config)
            .finish()
    }
}

impl OpusEncoder {
    /// An encoder with `config` (VoIP application, mono).
    pub fn new(config: OpusConfig) -> Result<Self, OpusError> {
        config.validate()?;
        let inner = Encoder::new(
            config.sample_rate.audiopus(),
            Channels::Mono,
            Application::Voip,
        )?;
        let mut enc = OpusEncoder { inner, config };
        enc.apply(config)?;
        Ok(enc)
    }

    /// Changes the settings in place (e.g. after an SDP re-offer or when RTCP
    /// reports a new loss rate). The PCM rate cannot change: build a new
    /// encoder for that.
    pub fn reconfigure(&mut self, config: OpusConfig) -> Result<(), OpusError> {
        if config.sample_rate != self.config.sample_rate {
            return Err(OpusError::BadSetting("the PCM rate of an encoder is fixed"));
        }
        config.validate()?;
        self.apply(config)
    }

    fn apply(&mut self, c: OpusConfig) -> Result<(), OpusError> {
        let e = &mut self.inner;
        e.set_complexity(c.complexity)?;
        let bitrate = match c.bitrate {
            Some(b) => Bitrate::BitsPerSecond(i32::try_from(b).unwrap_or(i32::MAX)),
            None => Bitrate::Auto,
        };
        e.set_bitrate(bitrate)?;
        e.set_vbr(!c.cbr)?;
        e.set_inband_fec(c.inband_fec)?;
        e.set_packet_loss_perc(c.packet_loss_pct)?;
        e.set_encoder_ctl_request(audiopus::ffi::OPUS_SET_DTX_REQUEST, i32::from(c.dtx))?;
        e.set_max_bandwidth(bandwidth_for_playback(c.max_playback_hz))?;
        e.set_signal(audiopus::Signal::Voice)?;
        self.config = c;
        Ok(())
    }

    /// The current settings.
    pub fn config(&self) -> &OpusConfig {
        &self.config
    }

    /// The PCM rate.
    pub fn sample_rate(&self) -> OpusSampleRate {
        self.config.sample_rate
    }

    /// Samples in one frame at the PCM rate.
    pub fn frame_samples(&self) -> usize {
        self.config.sample_rate.frame_samples()
    }

    /// The encoder's look-ahead in PCM samples (its algorithmic delay).
    pub fn lookahead(&self) -> Result<usize, OpusError> {
        Ok(self.inner.lookahead()? as usize)
    }

    /// Encodes exactly one 20 ms frame of `pcm` into `out` and returns the
    /// payload length. With DTX on, a payload of 2 bytes or less is a
    /// silence frame the sender may skip ([`super::packet::is_dtx`]).
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, OpusError> {
        self.encode_frame(pcm, FrameDuration::Ms20, out)
    }

    /// Encodes exactly one frame of `frame`'s duration (a packet of one
    /// frame, RFC 6716 code 0) into `out` and returns its length. The
    /// duration may change from one call to the next: the encoder's state
    /// carries over, so a stream switches from 20 to 10 ms frames without a
    /// break.
    pub fn encode_frame(
        &mut self,
        pcm: &[i16],
        frame: FrameDuration,
        out: &mut [u8],
    ) -> Result<usize, OpusError> {
        let expected = frame.samples(self.config.sample_rate);
        if pcm.len() != expected {
            return Err(OpusError::FrameLength {
                expected,
                got: pcm.len(),
            });
        }
        if out.is_empty() {
            return Err(OpusError::OutputTooSmall { need: 1, have: 0 });
        }
        // libopus takes the buffer length as an i32; a longer buffer is
        // never needed (one frame is at most 1275 bytes).
        let cap = out.len().min(super::MAX_PACKET_BYTES);
        let Some(out) = out.get_mut(..cap) else {
            return Err(OpusError::OutputTooSmall { need: 1, have: 0 });
        };
        Ok(self.inner.encode(pcm, out)?)
    }

    /// Forgets the signal history (e.g. when a new stream starts).
    pub fn reset(&mut self) -> Result<(), OpusError> {
        use audiopus::coder::GenericCtl;
        self.inner.reset_state()?;
        Ok(())
    }
}
