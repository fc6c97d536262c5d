//! A recording running on one leg: each heard frame goes to the writer
//! (through its sink: no file I/O here) and to the end detector; keys the
//! leg hears go to the detector too. Nothing here allocates.

use crate::media::core::FRAME;
use crate::media::events::{DigitSource, MediaEvent};
use crate::media::record::{EndDetector, EndRules, EndedBy, RecordSink};

pub(super) struct Recording {
    pub id: u64,
    detector: EndDetector,
    sink: Box<RecordSink>,
}

impl Recording {
    pub fn new(id: u64, rules: EndRules, sink: Box<RecordSink>) -> Self {
        Recording {
            id,
            detector: EndDetector::new(rules),
            sink,
        }
    }

    /// One frame the leg heard; the end it caused, if any.
    pub fn frame(&mut self, pcm: &[i16; FRAME]) -> Option<MediaEvent> {
        self.sink.push(pcm);
        let end = self.detector.frame(pcm)?;
        self.sink.end(end);
        Some(self.done(end.by))
    }

    /// A key the leg heard; the end it caused, if any.
    pub fn key(&mut self, digit: char, source: DigitSource) -> Option<MediaEvent> {
        let end = self.detector.key(digit, source)?;
        self.sink.end(end);
        Some(self.done(end.by))
    }

    /// Ended from outside; the end, unless it had ended already.
    pub fn stop(&mut self, by: EndedBy) -> Option<MediaEvent> {
        let end = self.detector.stop(by)?;
        self.sink.end(end);
        Some(self.done(end.by))
    }

    fn done(&self, ended_by: EndedBy) -> MediaEvent {
        MediaEvent::RecordDone {
            id: self.id,
            ended_by,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The per-frame path of a recording — a buffer from the pool, the
    /// copy, the send, the end detector, a key — allocates nothing (counted
    /// by the crate's test allocator, `alloc_meter`), including while the
    /// writer is draining and returning buffers, and once the pool is dry.
    #[test]
    fn the_per_frame_path_does_not_allocate() {
        assert!(alloc_meter::is_installed());
        let dir = std::env::temp_dir().join(format!("rivr-rec-alloc-{}", std::process::id()));
        let (sink, handle) = crate::media::record::start(&dir, "a").unwrap();
        let rules = EndRules {
            max: Duration::from_secs(60),
            silence: Some(Duration::from_secs(30)),
            finish_on: vec!['#'],
        };
        let mut r = Recording::new(1, rules, Box::new(sink));
        let mut pcm = [0i16; FRAME];
        for (i, s) in pcm.iter_mut().enumerate() {
            *s = (i as i16) * 50;
        }
        let before = alloc_meter::thread_allocs();
        for k in 0..1000u32 {
            assert_eq!(r.frame(&pcm), None);
            assert_eq!(r.key('5', DigitSource::Rfc4733), None);
            if k % 50 == 49 {
                // One tick's worth of the worker's time, now and then, so the
                // writer runs and hands buffers back meanwhile.
                std::thread::sleep(Duration::from_millis(45));
            }
        }
        let allocs = alloc_meter::thread_allocs() - before;
        println!("allocations in 1000 recorded frames: {allocs}");
        assert_eq!(allocs, 0);
        let done = r.key('#', DigitSource::Rfc4733);
        assert_eq!(
            done,
            Some(MediaEvent::RecordDone {
                id: 1,
                ended_by: EndedBy::Key('#')
            })
        );
        drop(r);
        let rec = handle.wait().unwrap();
        assert_eq!(rec.duration_ms, 20_000);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
