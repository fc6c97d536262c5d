//! Decoding an audio file (WAV, FLAC, Ogg/Vorbis, MP3 via symphonia) to mono
//! `f32` samples at the file's own rate. Strict: a file that is malformed,
//! truncated or changes format mid-stream is an error, because a prompt
//! that plays half a sentence is worse than one that fails at load time.

use std::fs::File;
use std::io::{Cursor, ErrorKind};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::{PromptError, MAX_PROMPT_SECONDS};

/// Decodes an audio file to mono samples in `[-1.0, 1.0]` (channels are
/// averaged) and returns them with the source sample rate.
pub fn decode_file(path: &Path) -> Result<(Vec<f32>, u32), PromptError> {
    let file = File::open(path).map_err(|source| PromptError::Io {
        path: path.to_owned(),
        source,
    })?;
    decode_guarded(Box::new(file), path)
}

/// Decodes audio held in memory (a TTS engine's output, a fuzz input) like
/// [`decode_file`]. `label` only names the audio in errors and gives the
/// format hint through its extension (e.g. `tts.wav`).
pub fn decode_bytes(bytes: Vec<u8>, label: &Path) -> Result<(Vec<f32>, u32), PromptError> {
    decode_guarded(Box::new(Cursor::new(bytes)), label)
}

fn decode_guarded(
    source: Box<dyn MediaSource>,
    path: &Path,
) -> Result<(Vec<f32>, u32), PromptError> {
    // symphonia parses untrusted bytes; should one of its demuxers or
    // decoders panic on a hostile file, that must not take the server down.
    catch_unwind(AssertUnwindSafe(|| decode_stream(source, path))).unwrap_or_else(|_| {
        Err(PromptError::Decode {
            path: path.to_owned(),
            reason: "the decoder panicked on this file".into(),
        })
    })
}

fn decode_stream(
    source: Box<dyn MediaSource>,
    path: &Path,
) -> Result<(Vec<f32>, u32), PromptError> {
    let bad = |reason: String| PromptError::Decode {
        path: path.to_owned(),
        reason,
    };
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let stream = MediaSourceStream::new(source, Default::default());
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            stream,
            &FormatOptions {
                enable_gapless: true,
                ..Default::default()
            },
            &MetadataOptions::default(),
        )
        .map_err(|e| bad(format!("not a supported audio file ({e})")))?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| bad("no audio track".into()))?;
    let track_id = track.id;
    let expected_frames = track.codec_params.n_frames;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| bad(format!("no decoder for this codec ({e})")))?;

    let mut mono: Vec<f32> = Vec::new();
    let mut rate: Option<u32> = None;
    let mut interleaved: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            // symphonia reports the end of the stream as an unexpected EOF.
            Err(SymphoniaError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(SymphoniaError::ResetRequired) => {
                return Err(bad("the stream changes format part-way".into()))
            }
            Err(e) => return Err(bad(e.to_string())),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = decoder.decode(&packet).map_err(|e| bad(e.to_string()))?;
        let spec = *decoded.spec();
        let channels = spec.channels.count();
        if channels == 0 || spec.rate == 0 {
            return Err(bad("stream has no channels or no sample rate".into()));
        }
        match rate {
            None => rate = Some(spec.rate),
            Some(r) if r != spec.rate => {
                return Err(bad("the sample rate changes part-way".into()))
            }
            Some(_) => {}
        }
        let max_frames = u64::from(spec.rate).saturating_mul(MAX_PROMPT_SECONDS);
        let frames = decoded.frames();
        if (mono.len() as u64).saturating_add(frames as u64) > max_frames {
            return Err(PromptError::TooLong {
                path: path.to_owned(),
                max_seconds: MAX_PROMPT_SECONDS,
            });
        }
        // Reuse the conversion buffer unless a packet is bigger than any
        // seen so far.
        let needed = frames.saturating_mul(channels);
        let buf = match interleaved.as_mut() {
            Some(buf) if buf.capacity() >= needed => buf,
            _ => interleaved.insert(SampleBuffer::new(decoded.capacity() as u64, spec)),
        };
        buf.copy_interleaved_ref(decoded);
        let scale = 1.0 / channels as f32;
        mono.extend(
            buf.samples()
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() * scale),
        );
    }

    let rate = rate.ok_or_else(|| bad("no audio in the file".into()))?;
    if mono.is_empty() {
        return Err(bad("no audio in the file".into()));
    }
    // A header announcing more than the prompt limit is a placeholder
    // (`espeak-ng --stdout` and other streaming writers put ~2^31 there),
    // not a length to check against.
    let plausible = u64::from(rate).saturating_mul(MAX_PROMPT_SECONDS);
    if let Some(expected) = expected_frames.filter(|&n| n <= plausible) {
        if (mono.len() as u64) < expected {
            return Err(bad(format!(
                "truncated: the header announces {expected} frames, the file holds {}",
                mono.len()
            )));
        }
    }
    Ok((mono, rate))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn wav_bytes(spec: hound::WavSpec, frames: &[Vec<f32>]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut writer = hound::WavWriter::new(Cursor::new(&mut bytes), spec).unwrap();
        for frame in frames {
            for &s in frame {
                match (spec.sample_format, spec.bits_per_sample) {
                    (hound::SampleFormat::Float, _) => writer.write_sample(s).unwrap(),
                    (_, 8) => writer.write_sample((s * 127.0).round() as i8).unwrap(),
                    (_, bits) => {
                        let full = f64::from(1u32 << (bits - 1)) - 1.0;
                        writer
                            .write_sample((f64::from(s) * full).round() as i32)
                            .unwrap()
                    }
                }
            }
        }
        writer.finalize().unwrap();
        bytes
    }

    fn spec(channels: u16, rate: u32, bits: u16, float: bool) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: if float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        }
    }

    #[test]
    fn every_wav_sample_format_decodes_to_the_same_samples() {
        let tone: Vec<Vec<f32>> = (0..4000)
            .map(|n| vec![0.5 * (std::f32::consts::TAU * 1000.0 * n as f32 / 16_000.0).sin()])
            .collect();
        for (bits, float, tolerance) in [
            (8, false, 0.01),
            (16, false, 1e-4),
            (24, false, 1e-4),
            (32, false, 1e-4),
            (32, true, 1e-6),
        ] {
            let bytes = wav_bytes(spec(1, 16_000, bits, float), &tone);
            let (mono, rate) = decode_bytes(bytes, Path::new("t.wav")).unwrap();
            assert_eq!((mono.len(), rate), (4000, 16_000), "{bits} bit");
            let worst = mono
                .iter()
                .zip(&tone)
                .map(|(a, b)| (a - b[0]).abs())
                .fold(0.0, f32::max);
            assert!(worst < tolerance, "{bits} bit float={float}: error {worst}");
        }
    }

    #[test]
    fn channels_are_averaged() {
        let frames = vec![vec![0.6f32, 0.0, -0.3]; 800];
        let bytes = wav_bytes(spec(3, 8000, 32, true), &frames);
        let (mono, rate) = decode_bytes(bytes, Path::new("three.wav")).unwrap();
        assert_eq!((mono.len(), rate), (800, 8000));
        assert!(
            mono.iter().all(|s| (s - 0.1).abs() < 1e-6),
            "{:?}",
            &mono[..4]
        );
    }

    #[test]
    fn streaming_wav_length_placeholders_are_accepted() {
        // Writers that cannot seek back (pipes, `espeak-ng --stdout`) leave
        // a huge placeholder in the RIFF and data sizes.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio");
        let clean = std::fs::read(dir.join("tone_8k_mono.wav")).unwrap();
        assert_eq!(&clean[36..40], b"data");
        // The sizes `espeak-ng --stdout` writes, and the largest possible.
        for placeholder in [0x7FFF_F000u32, u32::MAX - 36] {
            let mut bytes = clean.clone();
            bytes[4..8].copy_from_slice(&(placeholder + 36).to_le_bytes());
            bytes[40..44].copy_from_slice(&placeholder.to_le_bytes());
            let (mono, rate) = decode_bytes(bytes, Path::new("piped.wav")).unwrap();
            assert_eq!((mono.len(), rate), (5600, 8000), "{placeholder:#x}");
        }
        // A plausible length that the file does not hold is a truncation.
        let mut short = clean.clone();
        short[40..44].copy_from_slice(&(11_200u32 + 320).to_le_bytes());
        assert!(matches!(
            decode_bytes(short, Path::new("short.wav")),
            Err(PromptError::Decode { .. })
        ));
    }

    #[test]
    fn sources_over_the_length_limit_are_refused() {
        let rate = 1000;
        let frames = vec![vec![0.1f32]; (MAX_PROMPT_SECONDS as usize + 1) * rate as usize];
        let bytes = wav_bytes(spec(1, rate, 16, false), &frames);
        match decode_bytes(bytes, Path::new("long.wav")) {
            Err(e @ PromptError::TooLong { .. }) => assert!(e.to_string().contains("long.wav")),
            other => panic!("{:?}", other.map(|(m, r)| (m.len(), r))),
        }
        // Just under the limit is fine.
        let frames = vec![vec![0.1f32]; MAX_PROMPT_SECONDS as usize * rate as usize];
        let bytes = wav_bytes(spec(1, rate, 16, false), &frames);
        assert!(decode_bytes(bytes, Path::new("ok.wav")).is_ok());
    }

    #[test]
    fn errors_name_the_label() {
        let label = PathBuf::from("tts/cache-42.wav");
        let err = decode_bytes(b"RIFF\x10\0\0\0WAVEjunk".to_vec(), &label).unwrap_err();
        assert!(err.to_string().contains("tts/cache-42.wav"), "{err}");
        assert!(decode_bytes(Vec::new(), &label).is_err());
    }
}
