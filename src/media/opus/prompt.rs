//! Pre-encoding a prompt to Opus once, so playing it to any number of
//! callers costs a copy per frame, not an encode.

use super::{FrameDuration, OpusConfig, OpusEncoder, OpusError, OpusSampleRate, MAX_PACKET_BYTES};

/// Bit rate of cached prompts: transparent for 8 kHz (narrowband) speech.
pub const PROMPT_BITRATE: u32 = 20_000;

/// Encodes 8 kHz mono PCM into one Opus packet per 20 ms (the last frame
/// padded with silence), at complexity 10 since it happens once per prompt.
///
/// The packets carry in-band FEC for 5 % loss, which costs little at this
/// rate and lets a caller's decoder rebuild a lost prompt frame; they are
/// narrowband (the source is 8 kHz), so they suit any `maxplaybackrate`.
/// Consecutive packets depend on each other through the encoder state, so
/// they must be sent in order from the first.
pub fn encode_prompt_opus(pcm_8k: &[i16]) -> Result<Vec<Vec<u8>>, OpusError> {
    encode_prompt_opus_frames(pcm_8k, FrameDuration::Ms20)
}

/// As [`encode_prompt_opus`], in frames of `frame`: one packet per frame,
/// so 10 ms frames give two packets per 20 ms (the last 20 ms padded with
/// silence, so there are always `per_tick()` packets per 20 ms).
pub fn encode_prompt_opus_frames(
    pcm_8k: &[i16],
    frame: FrameDuration,
) -> Result<Vec<Vec<u8>>, OpusError> {
    let config = OpusConfig {
        sample_rate: OpusSampleRate::Hz8000,
        complexity: 10,
        bitrate: Some(PROMPT_BITRATE),
        inband_fec: true,
        packet_loss_pct: 5,
        ..OpusConfig::default()
    };
    let mut enc = OpusEncoder::new(config)?;
    let tick = enc.frame_samples();
    let size = frame.samples(config.sample_rate);
    let ticks = pcm_8k.len().div_ceil(tick);
    let mut packets = Vec::with_capacity(ticks * frame.per_tick());
    let mut buf = vec![0u8; MAX_PACKET_BYTES];
    let mut last = vec![0i16; tick];
    for chunk in pcm_8k.chunks(tick) {
        let pcm = if chunk.len() == tick {
            chunk
        } else {
            last.fill(0);
            last.get_mut(..chunk.len())
                .ok_or(OpusError::FrameLength {
                    expected: tick,
                    got: chunk.len(),
                })?
                .copy_from_slice(chunk);
            &last[..]
        };
        for part in pcm.chunks_exact(size) {
            let n = enc.encode_frame(part, frame, &mut buf)?;
            packets.push(buf.get(..n).unwrap_or_default().to_vec());
        }
    }
    Ok(packets)
}
