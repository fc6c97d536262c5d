//! A codec-neutral view of voice codecs ([`AudioCodec`]) and a
//! [`Transcoder`] that bridges any pair: decode with one, resample when the
//! PCM rates differ, encode with the other.
//!
//! G.711 runs at 8 kHz. Opus runs at whichever PCM rate its [`OpusConfig`]
//! says: at 8 kHz, libopus itself does the band-limiting and resampling, so a
//! PCMU↔Opus bridge needs no resampler at all; at 16 or 48 kHz the
//! [`StreamResampler`] (rubato) converts. Everything is allocated when the
//! transcoder is built; moving a frame through it allocates nothing.

use super::g711;
use super::g711::Law;
use super::opus::{OpusConfig, OpusDecoder, OpusEncoder, OpusError};
use super::plc::Plc;
use super::stream_resample::{StreamResampleError, StreamResampler, MAX_INPUT_SAMPLES};

/// The most PCM samples one payload may decode to (120 ms at 48 kHz).
pub const MAX_DECODE_SAMPLES: usize = MAX_INPUT_SAMPLES;

/// Why a codec or transcoder operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The Opus layer failed (corrupt packet, bad setting, …).
    #[error(transparent)]
    Opus(#[from] OpusError),
    /// The rate converter failed.
    #[error(transparent)]
    Resample(#[from] StreamResampleError),
    /// The caller's buffer is too short.
    #[error("output buffer of {have}, {need} needed")]
    OutputTooSmall {
        /// Length needed.
        need: usize,
        /// Length given.
        have: usize,
    },
    /// A payload with no bytes.
    #[error("empty payload")]
    EmptyPayload,
    /// More decoded audio is waiting than the transcoder holds: the caller
    /// pushed payloads without popping packets.
    #[error("transcoder backlog full ({0} samples waiting)")]
    Backlog(usize),
}

/// A voice codec as the media path sees it: PCM frames at a fixed rate in
/// and out, payloads in caller buffers, and loss concealment.
pub trait AudioCodec {
    /// The PCM rate in Hz.
    fn sample_rate(&self) -> u32;
    /// PCM samples in one 20 ms frame.
    fn frame_samples(&self) -> usize;
    /// Encodes one frame of `pcm` into `out`; returns the payload length.
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError>;
    /// Decodes one RTP payload into `out`; returns the samples written.
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError>;
    /// Fills `out` with a concealed frame for a lost payload; returns the
    /// samples written (one frame, or fewer if `out` is shorter).
    fn conceal(&mut self, out: &mut [i16]) -> Result<usize, CodecError>;
    /// Fills `out` for a lost payload when the one after it,
    /// `next_payload`, has already arrived: codecs with in-band FEC (Opus)
    /// rebuild the lost frame from it; the others conceal. The caller then
    /// decodes `next_payload` normally.
    fn recover_from_next(
        &mut self,
        next_payload: &[u8],
        out: &mut [i16],
    ) -> Result<usize, CodecError> {
        let _ = next_payload;
        self.conceal(out)
    }
}

/// G.711 µ-law or A-law at 8 kHz, with G.711 Appendix I concealment.
///
/// Decoded audio goes through the concealer, which delays it by
/// [`Plc::delay_samples`] (3.75 ms) so a loss can be blended in smoothly.
#[derive(Debug, Clone)]
pub struct G711Codec {
    law: Law,
    plc: Plc,
}

impl G711Codec {
    /// A PCMU or PCMA codec.
    pub fn new(law: Law) -> Self {
        G711Codec {
            law,
            plc: Plc::new(),
        }
    }

    /// Which G.711 law this is.
    pub fn law(&self) -> Law {
        self.law
    }
}

impl AudioCodec for G711Codec {
    fn sample_rate(&self) -> u32 {
        8000
    }

    fn frame_samples(&self) -> usize {
        160
    }

    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        let have = out.len();
        let dest = out.get_mut(..pcm.len()).ok_or(CodecError::OutputTooSmall {
            need: pcm.len(),
            have,
        })?;
        g711::encode(self.law, pcm, dest);
        Ok(pcm.len())
    }

    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::EmptyPayload);
        }
        let have = out.len();
        let dest = out
            .get_mut(..payload.len())
            .ok_or(CodecError::OutputTooSmall {
                need: payload.len(),
                have,
            })?;
        g711::decode(self.law, payload, dest);
        self.plc.good_frame(dest);
        Ok(payload.len())
    }

    fn conceal(&mut self, out: &mut [i16]) -> Result<usize, CodecError> {
        let n = out.len().min(self.frame_samples());
        let dest = out.get_mut(..n).unwrap_or_default();
        self.plc.conceal(dest);
        Ok(n)
    }
}

/// Opus, mono, 20 ms, with its own PLC and in-band FEC.
#[derive(Debug)]
pub struct OpusCodec {
    encoder: OpusEncoder,
    decoder: OpusDecoder,
}

impl OpusCodec {
    /// An Opus codec whose encoder uses `config` and whose decoder produces
    /// PCM at the same rate.
    pub fn new(config: OpusConfig) -> Result<Self, CodecError> {
        Ok(OpusCodec {
            encoder: OpusEncoder::new(config)?,
            decoder: OpusDecoder::new(config.sample_rate)?,
        })
    }

    /// Recovers the packet lost before `next_payload` from its FEC data (or
    /// by PLC if it has none); decode `next_payload` normally afterwards.
    pub fn decode_fec(
        &mut self,
        next_payload: &[u8],
        out: &mut [i16],
    ) -> Result<usize, CodecError> {
        Ok(self.decoder.decode_fec(next_payload, out)?)
    }

    /// The encoder, e.g. to change its bit rate or expected loss mid-call.
    pub fn encoder_mut(&mut self) -> &mut OpusEncoder {
        &mut self.encoder
    }

    /// The decoder.
    pub fn decoder_mut(&mut self) -> &mut OpusDecoder {
        &mut self.decoder
    }
}

impl AudioCodec for OpusCodec {
    fn sample_rate(&self) -> u32 {
        self.encoder.sample_rate().hz()
    }

    fn frame_samples(&self) -> usize {
        self.encoder.frame_samples()
    }

    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        Ok(self.encoder.encode(pcm, out)?)
    }

    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        Ok(self.decoder.decode(payload, out)?)
    }

    fn conceal(&mut self, out: &mut [i16]) -> Result<usize, CodecError> {
        Ok(self.decoder.conceal(out)?)
    }

    fn recover_from_next(
        &mut self,
        next_payload: &[u8],
        out: &mut [i16],
    ) -> Result<usize, CodecError> {
        self.decode_fec(next_payload, out)
    }
}

/// Bridges two codecs: payloads of one in, payloads of the other out.
///
/// Sans-IO in the usual shape: [`Transcoder::push_payload`] (or
/// [`Transcoder::push_loss`] for a missing packet) takes input, and
/// [`Transcoder::pop_packet`] is called until it returns `None`. Packet
/// durations need not match: a 60 ms packet in gives three 20 ms packets out.
pub struct Transcoder {
    from: Box<dyn AudioCodec + Send>,
    to: Box<dyn AudioCodec + Send>,
    resampler: Option<StreamResampler>,
    decoded: Vec<i16>,
    resampled: Vec<i16>,
    /// PCM at the output rate waiting to be encoded; the first `queued` are
    /// valid.
    queue: Vec<i16>,
    queued: usize,
}

impl std::fmt::Debug for Transcoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcoder")
            .field("from_hz", &self.from.sample_rate())
            .field("to_hz", &self.to.sample_rate())
            .field("queued", &self.queued)
            .finish()
    }
}

impl Transcoder {
    /// A transcoder from `from`'s payloads to `to`'s.
    pub fn new(
        from: Box<dyn AudioCodec + Send>,
        to: Box<dyn AudioCodec + Send>,
    ) -> Result<Self, CodecError> {
        let (from_hz, to_hz) = (from.sample_rate(), to.sample_rate());
        let resampler = if from_hz == to_hz {
            None
        } else {
            Some(StreamResampler::new(from_hz, to_hz)?)
        };
        let resampled_len = match &resampler {
            Some(r) => r.max_output_for(MAX_DECODE_SAMPLES + r.from_hz() as usize / 50),
            None => 0,
        };
        let queue_len = resampled_len.max(MAX_DECODE_SAMPLES) + to.frame_samples();
        Ok(Transcoder {
            from,
            to,
            resampler,
            decoded: vec![0; MAX_DECODE_SAMPLES],
            resampled: vec![0; resampled_len],
            queue: vec![0; queue_len],
            queued: 0,
        })
    }

    /// The delay the transcoder adds beyond the codecs' own, in output
    /// samples (the resampler's filter; zero when the rates match).
    pub fn delay_samples(&self) -> usize {
        self.resampler.as_ref().map_or(0, |r| r.delay_samples())
    }

    /// Decodes `payload` from the source codec and queues it for encoding.
    pub fn push_payload(&mut self, payload: &[u8]) -> Result<(), CodecError> {
        let n = self.from.decode(payload, &mut self.decoded)?;
        self.enqueue(n)
    }

    /// Conceals one lost source packet and queues the concealment.
    pub fn push_loss(&mut self) -> Result<(), CodecError> {
        let n = self.from.conceal(&mut self.decoded)?;
        self.enqueue(n)
    }

    /// Recovers one lost source packet from the packet after it (in-band
    /// FEC for Opus, concealment otherwise) and queues the result; push
    /// `next_payload` itself afterwards.
    pub fn push_loss_before(&mut self, next_payload: &[u8]) -> Result<(), CodecError> {
        let n = self
            .from
            .recover_from_next(next_payload, &mut self.decoded)?;
        self.enqueue(n)
    }

    /// Encodes the next frame for the destination codec into `out`, or
    /// returns `None` when less than a frame is queued.
    pub fn pop_packet(&mut self, out: &mut [u8]) -> Result<Option<usize>, CodecError> {
        let frame = self.to.frame_samples();
        if self.queued < frame {
            return Ok(None);
        }
        let pcm = self.queue.get(..frame).unwrap_or_default();
        let n = self.to.encode(pcm, out)?;
        self.queue.copy_within(frame..self.queued, 0);
        self.queued -= frame;
        Ok(Some(n))
    }

    /// The source codec.
    pub fn source_mut(&mut self) -> &mut (dyn AudioCodec + Send) {
        self.from.as_mut()
    }

    /// The destination codec.
    pub fn destination_mut(&mut self) -> &mut (dyn AudioCodec + Send) {
        self.to.as_mut()
    }

    fn enqueue(&mut self, n: usize) -> Result<(), CodecError> {
        let decoded = self.decoded.get(..n).unwrap_or_default();
        let pcm = match &mut self.resampler {
            Some(r) => {
                let m = r.process(decoded, &mut self.resampled)?;
                self.resampled.get(..m).unwrap_or_default()
            }
            None => decoded,
        };
        let end = self.queued + pcm.len();
        let slot = self
            .queue
            .get_mut(self.queued..end)
            .ok_or(CodecError::Backlog(self.queued))?;
        slot.copy_from_slice(pcm);
        self.queued = end;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod test_signal;
#[cfg(test)]
mod tests;
