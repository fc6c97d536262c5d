//! Generated prompts: names under `tone:` are synthesised by
//! [`crate::media::tone::ToneGenerator`] instead of read from a file, then
//! encoded per codec like any prompt, so a script plays a beep, ringback or
//! in-band DTMF keys with the same `play` verb (and barge-in) as a recording.
//!
//! | name | sound |
//! |---|---|
//! | `tone:beep` | 1000 Hz, 250 ms, −10 dBm0 (the "speak after the beep") |
//! | `tone:beep:HZ:MS` | HZ 100–3800, MS 10–10000, −10 dBm0 |
//! | `tone:ringback`, `tone:ringback:us` | one cadence: 440+480 Hz, 2 s on, 4 s off |
//! | `tone:ringback:uk` | 400+450 Hz, 0.4 on, 0.2 off, 0.4 on, 2 s off |
//! | `tone:ringback:eu` | 425 Hz, 1 s on, 4 s off |
//! | `tone:dtmf:KEYS` | up to 32 keys, each 100 ms of tone and 100 ms of silence, low group −9 dBm0, high −7 dBm0 (2 dB twist, as phones send) |

use crate::media::tone::{Region, ToneGenerator};

use super::{Prompt, PromptError};

/// The prefix that marks a generated prompt.
pub const TONE_PREFIX: &str = "tone:";

const BEEP_HZ: f32 = 1000.0;
const BEEP_MS: u32 = 250;
const BEEP_DBM0: f32 = -10.0;
const BEEP_HZ_RANGE: std::ops::RangeInclusive<u32> = 100..=3800;
const BEEP_MS_RANGE: std::ops::RangeInclusive<u32> = 10..=10_000;
const DTMF_ON_MS: u32 = 100;
const DTMF_OFF_MS: u32 = 100;
const DTMF_LOW_DBM0: f32 = -9.0;
const DTMF_HIGH_DBM0: f32 = -7.0;
const MAX_DTMF_KEYS: usize = 32;

/// Whether a generated prompt of this name should stay cached: beeps and
/// ringback are few and reused; DTMF key strings are as many as the numbers
/// a script dials, so they are made per play.
pub fn is_cacheable(name: &str) -> bool {
    !name.starts_with("tone:dtmf:")
}

/// The prompt for a `tone:` name, or an error saying what is wrong with it.
pub fn tone_prompt(name: &str) -> Result<Prompt, PromptError> {
    let bad = |reason: &'static str| PromptError::BadName {
        name: name.to_owned(),
        reason,
    };
    let spec = name
        .strip_prefix(TONE_PREFIX)
        .ok_or(bad("a tone name starts with \"tone:\""))?;
    let mut parts = spec.split(':');
    let kind = parts.next().unwrap_or_default();
    let args: Vec<&str> = parts.collect();
    let pcm = match (kind, args.as_slice()) {
        ("beep", []) => render(ToneGenerator::beep(BEEP_HZ, BEEP_MS, BEEP_DBM0), BEEP_MS),
        ("beep", [hz, ms]) => {
            let hz: u32 = hz
                .parse()
                .map_err(|_| bad("beep frequency is not a number"))?;
            let ms: u32 = ms.parse().map_err(|_| bad("beep length is not a number"))?;
            if !BEEP_HZ_RANGE.contains(&hz) {
                return Err(bad("beep frequency must be 100-3800 Hz"));
            }
            if !BEEP_MS_RANGE.contains(&ms) {
                return Err(bad("beep length must be 10-10000 ms"));
            }
            render(ToneGenerator::beep(hz as f32, ms, BEEP_DBM0), ms)
        }
        ("ringback", []) => ringback(Region::Us),
        ("ringback", [region]) => match *region {
            "us" => ringback(Region::Us),
            "uk" => ringback(Region::Uk),
            "eu" => ringback(Region::Eu),
            _ => return Err(bad("ringback region must be us, uk or eu")),
        },
        ("dtmf", [keys]) => dtmf(keys).ok_or(bad("dtmf keys must be 1-32 of 0-9 * # A-D"))?,
        _ => return Err(bad(
            "unknown tone (tone:beep, tone:beep:HZ:MS, tone:ringback[:us|uk|eu], tone:dtmf:KEYS)",
        )),
    };
    Ok(Prompt::from_pcm_8k(name, pcm))
}

/// `ms` of a one-shot generator.
fn render(mut generator: ToneGenerator, ms: u32) -> Vec<i16> {
    let mut pcm = vec![0i16; ms as usize * 8];
    let written = generator.fill(&mut pcm);
    pcm.truncate(written);
    pcm
}

/// One full cadence of ringback; a script loops `play` for more.
fn ringback(region: Region) -> Vec<i16> {
    let cycle_ms = match region {
        Region::Us => 6000,
        Region::Uk => 3000,
        Region::Eu => 5000,
    };
    let mut pcm = vec![0i16; cycle_ms * 8];
    ToneGenerator::ringback(region).fill(&mut pcm);
    pcm
}

fn dtmf(keys: &str) -> Option<Vec<i16>> {
    let count = keys.chars().count();
    if count == 0 || count > MAX_DTMF_KEYS {
        return None;
    }
    let mut pcm = Vec::with_capacity(count * (DTMF_ON_MS + DTMF_OFF_MS) as usize * 8);
    for key in keys.chars() {
        let (low, high) = crate::media::tone::dtmf_frequencies(key.to_ascii_uppercase())?;
        let generator = ToneGenerator::dual(
            low,
            high,
            DTMF_LOW_DBM0,
            DTMF_HIGH_DBM0,
            DTMF_ON_MS,
            DTMF_OFF_MS,
        );
        pcm.extend(render(generator, DTMF_ON_MS + DTMF_OFF_MS));
    }
    Some(pcm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;
    use crate::media::dtmf_detect::DtmfDetector;
    use crate::media::g711::{self, Law};

    /// Power of `freq` in `pcm` relative to the total (Goertzel).
    fn share_at(pcm: &[i16], freq: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &x in pcm {
            let s0 = f64::from(x) + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
        let total: f64 = pcm.iter().map(|&x| f64::from(x).powi(2)).sum();
        2.0 * power / (pcm.len() as f64 * total)
    }

    #[test]
    fn beep_is_a_quarter_second_of_1_khz() {
        let p = tone_prompt("tone:beep").unwrap();
        assert_eq!(p.duration_ms(), 250);
        assert!(share_at(p.pcm_8k(), 1000.0) > 0.95);
        let p = tone_prompt("tone:beep:440:1000").unwrap();
        assert_eq!(p.duration_ms(), 1000);
        assert!(share_at(p.pcm_8k(), 440.0) > 0.95);
    }

    #[test]
    fn ringback_is_one_cadence_of_each_region() {
        for (name, ms, on_ms, freqs) in [
            ("tone:ringback", 6000, 2000, &[440.0, 480.0][..]),
            ("tone:ringback:uk", 3000, 800, &[400.0, 450.0]),
            ("tone:ringback:eu", 5000, 1000, &[425.0]),
        ] {
            let p = tone_prompt(name).unwrap();
            assert_eq!(p.duration_ms(), ms, "{name}");
            let pcm = p.pcm_8k();
            // Frames with tone (two close frequencies beat, so single
            // samples near the beat's nulls are zero).
            let on = pcm
                .chunks(160)
                .filter(|f| f.iter().any(|&x| x != 0))
                .count() as u64;
            assert_eq!(on * 20, on_ms, "{name}: {on} frames of tone");
            let first_on = &pcm[..3200];
            let share: f64 = freqs.iter().map(|&f| share_at(first_on, f)).sum();
            assert!(share > 0.9, "{name}: {share}");
        }
    }

    #[test]
    fn dtmf_keys_are_heard_by_the_detector_through_g711() {
        let keys = "0123456789*#ABCD";
        let p = tone_prompt(&format!("tone:dtmf:{keys}")).unwrap();
        for law in Law::ALL {
            let mut detector = DtmfDetector::new();
            let mut heard = String::new();
            for k in 0..p.frame_count() {
                let bytes = p.frame(Codec::from(law), k).unwrap();
                let mut pcm = [0i16; 160];
                g711::decode(law, bytes, &mut pcm);
                heard.extend(detector.process(&pcm).map(|d| d.digit));
            }
            assert_eq!(heard, keys, "{law:?}");
        }
        assert!(!is_cacheable("tone:dtmf:1"));
        assert!(is_cacheable("tone:beep"));
    }

    #[test]
    fn bad_tone_names_say_what_is_wrong() {
        for (name, says) in [
            ("tone:", "unknown tone"),
            ("tone:bell", "unknown tone"),
            ("tone:beep:x:100", "frequency is not a number"),
            ("tone:beep:5000:100", "100-3800"),
            ("tone:beep:1000:0", "10-10000"),
            ("tone:beep:1000", "unknown tone"),
            ("tone:ringback:fr", "us, uk or eu"),
            ("tone:dtmf:", "1-32"),
            ("tone:dtmf:12x", "1-32"),
            ("tone:dtmf:111111111111111111111111111111111", "1-32"),
        ] {
            let err = tone_prompt(name).unwrap_err().to_string();
            assert!(err.contains(says), "{name}: {err}");
        }
    }
}
