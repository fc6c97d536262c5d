//! `rivr media dtmf`: the key presses in a recording file.
//!
//! Reads any format symphonia decodes (WAV in PCM, µ-law, A-law or float;
//! FLAC, OGG, MP3), mixes the channels down, resamples to 8 kHz if needed and
//! runs a [`DtmfDetector`] over it in 20 ms frames, as a call would.

use std::fs::File;
use std::path::Path;

use rubato::{FftFixedInOut, Resampler};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::errors::Error as DecodeError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::DtmfDetector;
use crate::media::tone::SAMPLE_RATE_HZ;

/// Why a recording could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// The file could not be opened.
    #[error("cannot open: {0}")]
    Open(#[from] std::io::Error),
    /// The file is not audio symphonia can decode.
    #[error("cannot decode: {0}")]
    Decode(#[from] DecodeError),
    /// No audio track, or no sample rate.
    #[error("no audio track with a sample rate")]
    NoAudio,
    /// The sample rate could not be converted to 8 kHz.
    #[error("cannot resample from {rate} Hz: {reason}")]
    Resample { rate: u32, reason: String },
}

/// Samples per frame fed to the detector (20 ms, as from RTP).
const FRAME: usize = 160;

/// The key presses in the recording at `path`: onset in seconds and key, in
/// order.
pub fn detect_wav(path: &Path) -> Result<Vec<(f64, char)>, WavError> {
    let (mono, rate) = decode_mono(path)?;
    let pcm = to_8khz_pcm(mono, rate)?;
    let mut detector = DtmfDetector::new();
    let mut found = Vec::new();
    let mut push = |d: super::Detected| found.push((d.start_seconds(), d.digit));
    for frame in pcm.chunks(FRAME) {
        if let Some(d) = detector.process(frame) {
            push(d);
        }
        while let Some(d) = detector.poll() {
            push(d);
        }
    }
    // Flush the last partial block so a key at the very end still counts.
    if let Some(d) = detector.process(&[0; FRAME]) {
        push(d);
    }
    while let Some(d) = detector.poll() {
        push(d);
    }
    Ok(found)
}

/// Decodes the default track and averages its channels.
fn decode_mono(path: &Path) -> Result<(Vec<f32>, u32), WavError> {
    let file = File::open(path)?;
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe().format(
        &hint,
        stream,
        &FormatOptions::default(),
        &MetadataOptions::default(),
    )?;
    let mut format = probed.format;
    let track = format.default_track().ok_or(WavError::NoAudio)?;
    let track_id = track.id;
    let rate = track.codec_params.sample_rate.ok_or(WavError::NoAudio)?;
    let mut decoder =
        symphonia::default::get_codecs().make(&track.codec_params, &DecoderOptions::default())?;

    let mut mono = Vec::new();
    let mut buffer: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(DecodeError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(DecodeError::ResetRequired) => break,
            Err(e) => return Err(e.into()),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // A corrupt packet loses its samples, not the whole scan.
            Err(DecodeError::DecodeError(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let spec = *decoded.spec();
        let channels = spec.channels.count().max(1);
        let needed = decoded.capacity() as u64;
        let buf = match &mut buffer {
            Some(b) if b.capacity() as u64 >= needed * channels as u64 => b,
            slot => slot.insert(SampleBuffer::new(needed, spec)),
        };
        buf.copy_interleaved_ref(decoded);
        let scale = 1.0 / channels as f32;
        mono.extend(
            buf.samples()
                .chunks(channels)
                .map(|frame| frame.iter().sum::<f32>() * scale),
        );
    }
    Ok((mono, rate))
}

/// Converts to 8 kHz 16-bit samples.
fn to_8khz_pcm(mono: Vec<f32>, rate: u32) -> Result<Vec<i16>, WavError> {
    let resampled = if rate == SAMPLE_RATE_HZ {
        mono
    } else {
        resample(&mono, rate).map_err(|reason| WavError::Resample { rate, reason })?
    };
    Ok(resampled
        .iter()
        .map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect())
}

fn resample(input: &[f32], rate: u32) -> Result<Vec<f32>, String> {
    let mut resampler = FftFixedInOut::<f32>::new(rate as usize, SAMPLE_RATE_HZ as usize, 1024, 1)
        .map_err(|e| e.to_string())?;
    let delay = resampler.output_delay();
    let expected = (input.len() as u64 * u64::from(SAMPLE_RATE_HZ) / u64::from(rate)) as usize;
    let mut out = Vec::with_capacity(expected + delay + 2048);
    let mut rest = input;
    loop {
        let need = resampler.input_frames_next();
        if rest.len() < need {
            break;
        }
        let (chunk, tail) = rest.split_at(need);
        let block = resampler
            .process(&[chunk], None)
            .map_err(|e| e.to_string())?;
        out.extend(block.into_iter().flatten());
        rest = tail;
    }
    // Zero-padded last chunks, then drop the filter delay from the front.
    while out.len() < expected + delay {
        let block = resampler
            .process_partial(Some(&[rest]), None)
            .map_err(|e| e.to_string())?;
        rest = &[];
        if block.iter().all(Vec::is_empty) {
            break;
        }
        out.extend(block.into_iter().flatten());
    }
    Ok(out.into_iter().skip(delay).take(expected).collect())
}
