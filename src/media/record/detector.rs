//! When a recording ends, sans-IO: 20 ms frames of what the caller said
//! and the keys they pressed go in, a decision comes out. Time is the
//! audio's own (each frame is 20 ms of it), so the rules run the same on
//! a virtual clock as on the worker's tick, and the file's length is
//! exactly the time the detector counted.
//!
//! The rules (docs/scripts.md, "Recording"), in the order they are
//! checked:
//! 1. a key in `finish_on` ends it at once (the key is not recorded: a
//!    key heard in the audio drops the frames it sounded in);
//! 2. `max` of audio ends it;
//! 3. `silence` of audio in a row with no frame above the threshold ends
//!    it — counted from the start too, as Twilio's `timeout` and
//!    Asterisk's `Record(…,silence)` do, so a caller who says nothing is
//!    not recorded for `max`;
//! 4. the caller hanging up (or the script stopping it) ends it from
//!    outside ([`EndedBy::Hangup`], [`EndedBy::Stopped`]).

use std::time::Duration;

use crate::media::events::DigitSource;

/// A 20 ms frame whose RMS level is below this (of 32767: about
/// −41 dBFS) is silence — about Asterisk's default `silencethreshold`
/// (256 on its average-magnitude scale). Line noise and comfort noise
/// sit well below it; speech, even soft, well above.
pub const SILENCE_RMS: f64 = 300.0;

/// Frames dropped from the end when a key heard in the audio ends the
/// recording: the in-band detector needs about 40–60 ms of tone before
/// it reports a key, so these frames hold the key's tone.
pub const INBAND_KEY_FRAMES: u32 = 5;

/// What ended a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    Silence,
    /// A key in `finish_on`.
    Key(char),
    Max,
    Hangup,
    /// The script stopped it (its time limit).
    Stopped,
}

impl EndedBy {
    /// The word scripts and CDRs see.
    pub fn as_str(self) -> &'static str {
        match self {
            EndedBy::Silence => "silence",
            EndedBy::Key(_) => "key",
            EndedBy::Max => "max",
            EndedBy::Hangup => "hangup",
            EndedBy::Stopped => "stopped",
        }
    }
}

/// The end rules of one recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndRules {
    pub max: Duration,
    /// `None`: silence never ends it.
    pub silence: Option<Duration>,
    /// Keys that end it; at most 16 (checked by the verb).
    pub finish_on: Vec<char>,
}

/// A decision: the recording is over, and this many frames at its end
/// are to be dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    pub by: EndedBy,
    pub drop_frames: u32,
}

/// The end detector of one recording.
#[derive(Debug, Clone)]
pub struct EndDetector {
    max_frames: u64,
    silence_frames: Option<u64>,
    finish_on: Vec<char>,
    frames: u64,
    silent_run: u64,
    ended: Option<End>,
}

fn frames_of(d: Duration) -> u64 {
    u64::try_from(d.as_millis() / 20).unwrap_or(u64::MAX)
}

impl EndDetector {
    pub fn new(rules: EndRules) -> Self {
        EndDetector {
            max_frames: frames_of(rules.max).max(1),
            silence_frames: rules.silence.map(|s| frames_of(s).max(1)),
            finish_on: rules.finish_on,
            frames: 0,
            silent_run: 0,
            ended: None,
        }
    }

    /// One 20 ms frame was recorded. Returns the end it caused, once.
    pub fn frame(&mut self, pcm: &[i16]) -> Option<End> {
        if self.ended.is_some() {
            return None;
        }
        self.frames += 1;
        if is_silent(pcm) {
            self.silent_run += 1;
        } else {
            self.silent_run = 0;
        }
        if self.frames >= self.max_frames {
            return self.end(EndedBy::Max, 0);
        }
        if self.silence_frames.is_some_and(|s| self.silent_run >= s) {
            return self.end(EndedBy::Silence, 0);
        }
        None
    }

    /// The caller pressed a key. Returns the end it caused, once.
    pub fn key(&mut self, digit: char, source: DigitSource) -> Option<End> {
        if self.ended.is_some() || !self.finish_on.contains(&digit) {
            return None;
        }
        let drop = match source {
            DigitSource::InBand => INBAND_KEY_FRAMES,
            _ => 0,
        };
        self.end(EndedBy::Key(digit), drop)
    }

    /// Ended from outside (hangup, the script). Returns the end unless
    /// the recording had ended already.
    pub fn stop(&mut self, by: EndedBy) -> Option<End> {
        if self.ended.is_some() {
            return None;
        }
        self.end(by, 0)
    }

    /// Frames counted so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn ended(&self) -> Option<End> {
        self.ended
    }

    fn end(&mut self, by: EndedBy, drop_frames: u32) -> Option<End> {
        let e = End {
            by,
            drop_frames: drop_frames.min(u32::try_from(self.frames).unwrap_or(u32::MAX)),
        };
        self.ended = Some(e);
        Some(e)
    }
}

/// True when the frame's RMS level is below [`SILENCE_RMS`].
pub fn is_silent(pcm: &[i16]) -> bool {
    if pcm.is_empty() {
        return true;
    }
    let energy: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    energy / (pcm.len() as f64) < SILENCE_RMS * SILENCE_RMS
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET: [i16; 160] = [0; 160];

    fn loud() -> [i16; 160] {
        let mut f = [0i16; 160];
        for (i, s) in f.iter_mut().enumerate() {
            *s = ((i as f64 * 0.3).sin() * 3000.0) as i16;
        }
        f
    }

    fn rules(max_ms: u64, silence_ms: Option<u64>) -> EndRules {
        EndRules {
            max: Duration::from_millis(max_ms),
            silence: silence_ms.map(Duration::from_millis),
            finish_on: vec!['#'],
        }
    }

    /// Feeds `frames` (true: speech) on the audio's clock; returns the
    /// end and the millisecond it came at.
    fn run(d: &mut EndDetector, frames: impl IntoIterator<Item = bool>) -> Option<(End, u64)> {
        let speech = loud();
        for (i, talk) in frames.into_iter().enumerate() {
            let f = if talk { &speech[..] } else { &QUIET[..] };
            if let Some(e) = d.frame(f) {
                return Some((e, (i as u64 + 1) * 20));
            }
        }
        None
    }

    #[test]
    fn silence_after_speech_ends_it_when_the_run_is_long_enough() {
        let mut d = EndDetector::new(rules(60_000, Some(2000)));
        // 1 s speech, 1.5 s pause, 1 s speech, then silence.
        let pattern = (0..50)
            .map(|_| true)
            .chain((0..75).map(|_| false))
            .chain((0..50).map(|_| true))
            .chain((0..500).map(|_| false));
        let (e, at) = run(&mut d, pattern).expect("ends");
        assert_eq!(e.by, EndedBy::Silence);
        assert_eq!(e.drop_frames, 0);
        // 3.5 s of audio before the silence, then 2 s of it.
        assert_eq!(at, 3500 + 2000);
        assert_eq!(d.frames(), 275);
    }

    #[test]
    fn silence_from_the_start_counts_too() {
        let mut d = EndDetector::new(rules(60_000, Some(3000)));
        let (e, at) = run(&mut d, std::iter::repeat(false)).expect("ends");
        assert_eq!((e.by, at), (EndedBy::Silence, 3000));
    }

    #[test]
    fn without_a_silence_rule_only_max_ends_it() {
        let mut d = EndDetector::new(rules(10_000, None));
        let (e, at) = run(&mut d, std::iter::repeat(false)).expect("ends");
        assert_eq!((e.by, at), (EndedBy::Max, 10_000));
        assert_eq!(d.frame(&QUIET), None, "an end is reported once");
    }

    #[test]
    fn max_ends_it_while_the_caller_talks() {
        let mut d = EndDetector::new(rules(4000, Some(1000)));
        let (e, at) = run(&mut d, std::iter::repeat(true)).expect("ends");
        assert_eq!((e.by, at), (EndedBy::Max, 4000));
    }

    #[test]
    fn a_finish_key_ends_it_and_other_keys_do_not() {
        let mut d = EndDetector::new(rules(60_000, Some(5000)));
        assert_eq!(run(&mut d, (0..100).map(|_| true)), None);
        assert_eq!(d.key('5', DigitSource::Rfc4733), None);
        let e = d.key('#', DigitSource::Rfc4733).expect("ends");
        assert_eq!(
            e,
            End {
                by: EndedBy::Key('#'),
                drop_frames: 0
            }
        );
        assert_eq!(d.frames(), 100);
        assert_eq!(d.key('#', DigitSource::Rfc4733), None);
        assert_eq!(d.frame(&QUIET), None);
    }

    #[test]
    fn a_key_heard_in_the_audio_drops_its_tone() {
        let mut d = EndDetector::new(rules(60_000, None));
        run(&mut d, (0..50).map(|_| true));
        let e = d.key('#', DigitSource::InBand).expect("ends");
        assert_eq!(e.drop_frames, INBAND_KEY_FRAMES);
        // Never more than was recorded.
        let mut d = EndDetector::new(rules(60_000, None));
        run(&mut d, (0..2).map(|_| true));
        assert_eq!(
            d.key('#', DigitSource::InBand).map(|e| e.drop_frames),
            Some(2)
        );
    }

    #[test]
    fn a_hangup_ends_it_unless_it_had_ended() {
        let mut d = EndDetector::new(rules(60_000, Some(5000)));
        run(&mut d, (0..10).map(|_| true));
        assert_eq!(
            d.stop(EndedBy::Hangup),
            Some(End {
                by: EndedBy::Hangup,
                drop_frames: 0
            })
        );
        assert_eq!(d.stop(EndedBy::Hangup), None);
        let mut d = EndDetector::new(rules(200, None));
        run(&mut d, std::iter::repeat(true));
        assert_eq!(d.stop(EndedBy::Hangup), None, "max came first");
        assert_eq!(d.ended().map(|e| e.by), Some(EndedBy::Max));
    }

    #[test]
    fn the_threshold_sits_between_noise_and_soft_speech() {
        // −50 dBFS noise is silence; a −30 dBFS tone is not.
        let at = |dbfs: f64| {
            let amp = 32767.0 * 10f64.powf(dbfs / 20.0) * std::f64::consts::SQRT_2;
            (0..160)
                .map(|i| ((i as f64 * 0.7).sin() * amp) as i16)
                .collect::<Vec<_>>()
        };
        assert!(is_silent(&at(-50.0)));
        assert!(!is_silent(&at(-30.0)));
        assert!(is_silent(&[]));
    }
}
