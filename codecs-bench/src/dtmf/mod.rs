//! DTMF accuracy, rivr's detector beside spandsp's on the same audio: the
//! Q.24 cases (`q24`) and the talk-off corpus, scored the same way. The
//! conformance tests in `codecs-bench/tests/` drive rivr's detector through
//! [`rivr_keys`] and [`scaled`] here too, so they and the report measure
//! the same thing.

pub mod q24;

use rivr::media::dtmf_detect::{Detected, DtmfDetector};

use crate::spandsp;

/// Samples per frame fed to a detector, as the media worker does (20 ms).
pub const FRAME: usize = 160;

/// Gains every talk-off signal is scanned at: as is, and 20 dB down.
pub const TALKOFF_GAINS_DB: [f64; 2] = [0.0, -20.0];

/// Frames of `pcm` as a call delivers them, then 40 ms of silence so that a
/// key at the very end is still reported.
fn frames_then_silence(pcm: &[i16]) -> impl Iterator<Item = &[i16]> {
    const TAIL: [i16; 2 * FRAME] = [0; 2 * FRAME];
    pcm.chunks(FRAME).chain(TAIL.chunks(FRAME))
}

/// Every key rivr's detector reports for `pcm`, with its onset.
pub fn rivr_keys(pcm: &[i16]) -> Vec<Detected> {
    let mut detector = DtmfDetector::new();
    let mut found = Vec::new();
    for frame in frames_then_silence(pcm) {
        let mut next = detector.process(frame);
        while let Some(d) = next {
            found.push(d);
            next = detector.poll();
        }
    }
    found
}

/// `pcm` with `gain_db` applied, rounded.
pub fn scaled(pcm: &[i16], gain_db: f64) -> Vec<i16> {
    let gain = 10f64.powf(gain_db / 20.0);
    pcm.iter()
        .map(|&s| (f64::from(s) * gain).round() as i16)
        .collect()
}

/// A detector under comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    /// `rivr::media::dtmf_detect::DtmfDetector`.
    Rivr,
    /// spandsp's `dtmf_rx`.
    Spandsp,
}

impl Receiver {
    /// Both, in table order.
    pub const ALL: [Receiver; 2] = [Receiver::Rivr, Receiver::Spandsp];

    /// Column label.
    pub fn name(self) -> &'static str {
        match self {
            Receiver::Rivr => "rivr",
            Receiver::Spandsp => "spandsp",
        }
    }

    /// Keys reported for `pcm`, fed in 20 ms frames and followed by 40 ms
    /// of silence so a key at the very end is still reported.
    pub fn detect(self, pcm: &[i16]) -> String {
        match self {
            Receiver::Rivr => rivr_keys(pcm).into_iter().map(|d| d.digit).collect(),
            Receiver::Spandsp => {
                let Some(mut rx) = spandsp::DtmfRx::new() else {
                    return "?".into();
                };
                frames_then_silence(pcm)
                    .map(|frame| spandsp::digits_to_string(rx.process(frame)))
                    .collect()
            }
        }
    }
}

/// How one receiver did on a set of cases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Score {
    /// Cases run.
    pub cases: usize,
    /// Cases where exactly the expected keys were reported.
    pub correct: usize,
    /// Expected keys not reported.
    pub missed: usize,
    /// Keys reported that were not expected (wrong keys, doubles, talk-off).
    pub false_keys: usize,
}

impl Score {
    /// Adds one case: `expected` keys against what was `found`.
    pub fn add(&mut self, expected: &str, found: &str) {
        let matched = matched_in_order(expected, found);
        self.cases += 1;
        self.correct += usize::from(expected == found);
        self.missed += expected.chars().count() - matched;
        self.false_keys += found.chars().count() - matched;
    }
}

/// Longest common subsequence length: keys found in the right order.
fn matched_in_order(expected: &str, found: &str) -> usize {
    let e: Vec<char> = expected.chars().collect();
    let f: Vec<char> = found.chars().collect();
    let mut row = vec![0usize; f.len() + 1];
    for &a in &e {
        let mut diagonal = 0;
        for (j, &b) in f.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if a == b {
                diagonal + 1
            } else {
                above.max(row[j])
            };
            diagonal = above;
        }
    }
    row[f.len()]
}

/// Q.24 results per group, per receiver (same order as [`Receiver::ALL`]).
pub fn run_q24() -> Vec<(&'static str, [Score; 2])> {
    let mut scores = [[Score::default(); 2]; q24::Group::ALL.len()];
    q24::for_each_case(&q24::Group::ALL, |case| {
        for (i, receiver) in Receiver::ALL.into_iter().enumerate() {
            let found = receiver.detect(&case.pcm);
            scores[case.group.index()][i].add(&case.expected, &found);
        }
    });
    q24::Group::ALL
        .map(q24::Group::name)
        .into_iter()
        .zip(scores)
        .collect()
}

/// Talk-off: every key reported anywhere in `pcm` (scanned at each of
/// [`TALKOFF_GAINS_DB`]) is false. Returns the false keys per receiver.
pub fn talkoff(pcm: &[i16]) -> [usize; 2] {
    let versions = TALKOFF_GAINS_DB.map(|g| scaled(pcm, g));
    Receiver::ALL.map(|r| versions.iter().map(|v| r.detect(v).chars().count()).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_counts_misses_and_extras_in_order() {
        let mut s = Score::default();
        s.add("123", "123");
        s.add("123", "13");
        s.add("", "55");
        s.add("12", "21");
        assert_eq!(
            s,
            Score {
                cases: 4,
                correct: 1,
                missed: 1 + 1,
                false_keys: 2 + 1,
            }
        );
    }

    #[test]
    fn both_receivers_find_a_generated_key_run() {
        // rivr's own generator, 60 ms on / 60 ms off at −10 dBm0.
        let mut pcm = vec![0i16; 800];
        for key in "159#".chars() {
            let mut tone = rivr::media::tone::ToneGenerator::dtmf(key, 60, 60, -10.0).expect("key");
            let mut buf = [0i16; 960];
            let n = tone.fill(&mut buf);
            pcm.extend_from_slice(&buf[..n]);
        }
        for r in Receiver::ALL {
            assert_eq!(r.detect(&pcm), "159#", "{}", r.name());
        }
    }
}
