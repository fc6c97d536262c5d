//! What the simulated caller heard, as audio: each heard part of a prompt
//! placed at its time on the call's timeline, silence elsewhere, written as
//! 8 kHz 16-bit mono WAV (`rivr sim --out call.wav`).

use std::path::Path;

use crate::media::prompt::PROMPT_RATE_HZ;
use crate::sim::caller::HeardAudio;

const SAMPLES_PER_MS: usize = (PROMPT_RATE_HZ / 1000) as usize;

/// The call's audio from its start to `total_ms`.
pub fn render(heard: &[HeardAudio], total_ms: u64) -> Vec<i16> {
    let end = heard
        .iter()
        .map(|h| h.at_ms.saturating_add(h.ms))
        .max()
        .unwrap_or(0)
        .max(total_ms);
    let len = usize::try_from(end)
        .unwrap_or(usize::MAX)
        .saturating_mul(SAMPLES_PER_MS);
    let mut out = vec![0i16; len];
    for h in heard {
        let at = usize::try_from(h.at_ms)
            .unwrap_or(usize::MAX)
            .saturating_mul(SAMPLES_PER_MS);
        let n = usize::try_from(h.ms)
            .unwrap_or(usize::MAX)
            .saturating_mul(SAMPLES_PER_MS);
        let pcm = h.prompt.pcm_8k();
        let src = pcm.get(..n.min(pcm.len())).unwrap_or_default();
        if let Some(dst) = out.get_mut(at..at.saturating_add(src.len()).min(len)) {
            let k = dst.len();
            dst.copy_from_slice(src.get(..k).unwrap_or_default());
        }
    }
    out
}

/// Writes 8 kHz 16-bit mono WAV.
pub fn write(path: &Path, samples: &[i16]) -> Result<(), String> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: PROMPT_RATE_HZ,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let fail = |e: hound::Error| format!("{}: {e}", path.display());
    let mut w = hound::WavWriter::create(path, spec).map_err(fail)?;
    for s in samples {
        w.write_sample(*s).map_err(fail)?;
    }
    w.finalize().map_err(fail)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::media::prompt::Prompt;

    #[test]
    fn heard_parts_sit_at_their_time_with_silence_between() {
        let p = Arc::new(Prompt::from_pcm_8k("p", vec![1000; 800])); // 100 ms
        let heard = vec![
            HeardAudio {
                at_ms: 50,
                prompt: p.clone(),
                ms: 100,
            },
            HeardAudio {
                at_ms: 300,
                prompt: p,
                ms: 40, // cut by a key
            },
        ];
        let pcm = render(&heard, 400);
        assert_eq!(pcm.len(), 400 * 8);
        assert!(pcm[..400].iter().all(|&s| s == 0));
        assert!(pcm[400..1200].iter().all(|&s| s == 1000));
        assert!(pcm[1200..2400].iter().all(|&s| s == 0));
        assert!(pcm[2400..2720].iter().all(|&s| s == 1000));
        assert!(pcm[2720..].iter().all(|&s| s == 0));
        let f = std::env::temp_dir().join(format!("rivr-sim-wav-{}.wav", std::process::id()));
        write(&f, &pcm).unwrap();
        let r = hound::WavReader::open(&f).unwrap();
        assert_eq!(r.spec().sample_rate, 8000);
        assert_eq!(r.len() as usize, pcm.len());
        let _ = std::fs::remove_file(&f);
    }
}
