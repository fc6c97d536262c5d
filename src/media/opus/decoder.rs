//! The Opus decoder for one incoming stream, with its loss concealment and
//! in-band FEC recovery.

use audiopus::coder::Decoder;
use audiopus::Channels;

use super::config::OpusSampleRate;
use super::{packet, OpusError};

/// A mono decoder writing PCM at a fixed rate into the caller's buffer.
pub struct OpusDecoder {
    inner: Decoder,
    rate: OpusSampleRate,
    /// Samples of the last decoded or concealed packet: how much one lost
    /// packet is assumed to span.
    last_samples: usize,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder")
            .field("rate", &self.rate)
            .field("last_samples", &self.last_samples)
            .finish()
    }
}

impl OpusDecoder {
    /// A mono decoder producing PCM at `rate`.
    pub fn new(rate: OpusSampleRate) -> Result<Self, OpusError> {
        let inner = Decoder::new(rate.audiopus(), Channels::Mono)?;
        Ok(OpusDecoder {
            inner,
            rate,
            last_samples: rate.frame_samples(),
        })
    }

    /// The PCM rate.
    pub fn sample_rate(&self) -> OpusSampleRate {
        self.rate
    }

    /// Samples in one 20 ms frame at the PCM rate.
    pub fn frame_samples(&self) -> usize {
        self.rate.frame_samples()
    }

    /// Samples one packet can decode to at most (120 ms); `out` of this
    /// length always suffices.
    pub fn max_packet_samples(&self) -> usize {
        self.rate.frame_samples() * 6
    }

    /// Decodes one RTP payload into `out`, returning the samples written.
    ///
    /// Any byte string is safe: a corrupt packet is an error, never a panic.
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, OpusError> {
        if payload.is_empty() {
            return Err(OpusError::EmptyPayload);
        }
        let out = clamp_len(out, self.max_packet_samples());
        let n = self.inner.decode(Some(payload), out, false)?;
        self.last_samples = n;
        Ok(n)
    }

    /// Conceals one lost packet with the decoder's PLC, writing as many
    /// samples as the last packet had (at most `out.len()`, rounded down to
    /// libopus's 2.5 ms granularity).
    pub fn conceal(&mut self, out: &mut [i16]) -> Result<usize, OpusError> {
        let out = self.loss_span(out)?;
        let n = self.inner.decode(None::<&[u8]>, out, false)?;
        Ok(n)
    }

    /// Recovers the packet lost just before `next_payload` from the LBRR data
    /// `next_payload` carries (RFC 6716 §2.1.7). If it carries none, libopus
    /// falls back to PLC, so this is never worse than [`Self::conceal`]. The
    /// caller then decodes `next_payload` itself normally.
    pub fn decode_fec(&mut self, next_payload: &[u8], out: &mut [i16]) -> Result<usize, OpusError> {
        if next_payload.is_empty() {
            return Err(OpusError::EmptyPayload);
        }
        let out = self.loss_span(out)?;
        let n = self.inner.decode(Some(next_payload), out, true)?;
        Ok(n)
    }

    /// Whether `payload` carries FEC for the packet before it.
    pub fn has_fec(payload: &[u8]) -> bool {
        packet::has_fec(payload)
    }

    /// The part of `out` one lost packet fills.
    fn loss_span<'a>(&self, out: &'a mut [i16]) -> Result<&'a mut [i16], OpusError> {
        let granule = self.rate.frame_samples() / 8; // 2.5 ms
        let want = self.last_samples.clamp(granule, self.max_packet_samples());
        let n = want.min(out.len()) / granule * granule;
        if n == 0 {
            return Err(OpusError::OutputTooSmall {
                need: granule,
                have: out.len(),
            });
        }
        let have = out.len();
        out.get_mut(..n)
            .ok_or(OpusError::OutputTooSmall { need: n, have })
    }

    /// Forgets the signal history (e.g. on an SSRC change).
    pub fn reset(&mut self) -> Result<(), OpusError> {
        use audiopus::coder::GenericCtl;
        self.inner.reset_state()?;
        self.last_samples = self.rate.frame_samples();
        Ok(())
    }
}

fn clamp_len(out: &mut [i16], max: usize) -> &mut [i16] {
    let n = out.len().min(max);
    let (head, _) = out.split_at_mut(n);
    head
}
