//! A call's recordings on the script's side: where they go (`[media]
//! recordings`), the writers of those in progress, and playing one back
//! (`play("rec:ID")`). The file work here runs on the script's thread —
//! opening, closing, loading — never on a media worker.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::call::control::RecordRequest;
use crate::media::prompt::Prompt;
use crate::media::record::{self, EndRules, RecordHandle, RecordSink, Recorded};

/// Prompt names that play a recording: `rec:ID`.
pub const PREFIX: &str = "rec:";
/// How long closing a file may take before the script is told it failed.
const CLOSE_WAIT: Duration = Duration::from_secs(10);
/// Largest recording `play("rec:ID")` loads (an hour of 8 kHz 16-bit
/// audio is 58 MB).
const MAX_PLAY_BYTES: u64 = 64 << 20;

pub struct Recordings {
    dir: PathBuf,
    active: Vec<(u64, RecordHandle)>,
}

impl Recordings {
    pub fn new(dir: PathBuf) -> Self {
        Recordings {
            dir,
            active: Vec::new(),
        }
    }

    /// Opens the file and starts its writer; the sink and rules go to
    /// the media worker.
    pub fn start(&mut self, id: u64, req: RecordRequest) -> Result<(RecordSink, EndRules), String> {
        let (sink, handle) =
            crate::script::memory::uncharged(|| record::start(&self.dir, &req.name))
                .map_err(|e| e.to_string())?;
        self.active.push((id, handle));
        Ok((sink, req.rules))
    }

    /// Waits for the writer of recording `id` to close its file.
    pub fn finish(&mut self, id: u64) -> Result<Recorded, String> {
        let at = self
            .active
            .iter()
            .position(|(i, _)| *i == id)
            .ok_or("no such recording")?;
        let (_, handle) = self.active.swap_remove(at);
        let deadline = Instant::now() + CLOSE_WAIT;
        while !handle.is_finished() {
            if Instant::now() >= deadline {
                return Err("the recording's file was not closed in time".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        handle.wait().map_err(|e| e.to_string())
    }

    /// Recording `id` as a prompt, decoded from its file (not cached:
    /// each call's recordings are its own).
    pub fn load(&self, id: &str) -> Result<Arc<Prompt>, String> {
        let path = record::path_of(&self.dir, id).map_err(|e| e.to_string())?;
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len > MAX_PLAY_BYTES {
            return Err(format!(
                "{}: too long to play ({len} bytes, at most {MAX_PLAY_BYTES})",
                path.display()
            ));
        }
        let (samples, rate) =
            crate::media::prompt::decode_file(&path).map_err(|e| e.to_string())?;
        let name = format!("{PREFIX}{id}");
        Prompt::from_samples(&name, &samples, rate, path)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::record::{End, EndedBy};

    #[test]
    fn a_recording_plays_back_as_written_and_nothing_else_can_be_reached() {
        let dir = std::env::temp_dir().join(format!("rivr-recordings-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut recs = Recordings::new(dir.clone());
        let req = RecordRequest {
            name: "r1".into(),
            rules: EndRules {
                max: Duration::from_secs(1),
                silence: None,
                finish_on: vec![],
            },
        };
        let (mut sink, _) = recs.start(7, req).unwrap();
        let mut frame = [0i16; crate::media::core::FRAME];
        for (i, s) in frame.iter_mut().enumerate() {
            *s = ((i as f64 * 0.2).sin() * 8000.0) as i16;
        }
        for _ in 0..10 {
            sink.push(&frame);
        }
        sink.end(End {
            by: EndedBy::Max,
            drop_frames: 0,
        });
        let done = recs.finish(7).unwrap();
        assert_eq!((done.duration_ms, done.ended_by), (200, EndedBy::Max));
        assert!(recs.finish(7).is_err(), "finished once");

        let p = recs.load("r1").unwrap();
        assert_eq!(p.name(), "rec:r1");
        assert_eq!(p.pcm_8k().len(), 10 * frame.len());
        assert_eq!(&p.pcm_8k()[..frame.len()], &frame[..]);

        std::fs::write(dir.join("secret.txt"), b"x").unwrap();
        for bad in ["../r1", "r1/../r1", "/etc/passwd", "secret.txt/..", ""] {
            assert!(recs.load(bad).is_err(), "{bad:?}");
        }
        assert!(recs.load("missing").unwrap_err().contains("no recording"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
