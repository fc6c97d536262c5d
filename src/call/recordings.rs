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
