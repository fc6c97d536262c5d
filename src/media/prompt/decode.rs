//! Decoding an audio file (WAV, FLAC, Ogg/Vorbis, MP3 via symphonia) to mono
//! `f32` samples at the file's own rate. Strict: a file that is malformed,
//! truncated or changes format mid-stream is an error, because a prompt
//! that plays half a sentence is worse than one that fails at load time.

use std::fs::File;
use std::io::ErrorKind;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
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
    // symphonia parses untrusted bytes; should one of its demuxers or
    // decoders panic on a hostile file, that must not take the server down.
    catch_unwind(AssertUnwindSafe(|| decode_stream(file, path))).unwrap_or_else(|_| {
        Err(PromptError::Decode {
            path: path.to_owned(),
            reason: "the decoder panicked on this file".into(),
        })
    })
}

fn decode_stream(file: File, path: &Path) -> Result<(Vec<f32>, u32), PromptError> {
    let bad = |reason: String| PromptError::Decode {
        path: path.to_owned(),
        reason,
    };
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
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
    if let Some(expected) = expected_frames {
        if (mono.len() as u64) < expected {
            return Err(bad(format!(
                "truncated: the header announces {expected} frames, the file holds {}",
                mono.len()
            )));
        }
    }
    Ok((mono, rate))
}
