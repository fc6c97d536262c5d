//! `record(#{ max_ms, silence_ms, beep, finish_on, name })`: records the
//! caller to `[media] recordings/ID.wav` until silence, a key, the
//! maximum, or a hangup (docs/scripts.md, "Recording"). The end rules run
//! in the media worker (`media::record::detector`); this verb starts the
//! recording, waits for its end, and lists it in the call's results.

use std::time::Duration;

use rhai::{Dynamic, Map};

use super::options::{VerbOptions, MAX_MS};
use super::{Session, VerbError};
use crate::call::control::{CallEvent, RecordRequest};
use crate::media::record::{is_valid_id, sanitize_id, EndRules, EndedBy};

/// The result key that lists the call's recordings (comma-separated ids).
pub const RESULT_KEY: &str = "recordings";
/// Defaults: two minutes at most, five seconds of silence end it.
pub const DEFAULT_MAX_MS: i64 = 120_000;
pub const DEFAULT_SILENCE_MS: i64 = 5000;

/// `record()`'s options, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordOptions {
    pub max: Duration,
    pub silence: Option<Duration>,
    pub beep: bool,
    pub finish_on: Vec<char>,
    /// The recording's id; `None`: `<call.id>-<n>`.
    pub name: Option<String>,
}

/// What `record()` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordResult {
    pub id: String,
    pub path: String,
    pub duration_ms: u64,
    pub ended_by: EndedBy,
}

fn bad(msg: String) -> VerbError {
    VerbError::BadArgument(format!("record: {msg}"))
}

/// Parses the script's options map.
pub fn options(m: &Map) -> Result<RecordOptions, VerbError> {
    let o = VerbOptions::new(
        "record",
        m,
        &["max_ms", "silence_ms", "beep", "finish_on", "name"],
    )?;
    let ms = |d: Option<Duration>, default: i64| {
        d.unwrap_or(Duration::from_millis(default.unsigned_abs()))
    };
    let max = ms(o.ms("max_ms", 1..=MAX_MS)?, DEFAULT_MAX_MS);
    let silence = ms(o.ms("silence_ms", 0..=MAX_MS)?, DEFAULT_SILENCE_MS);
    let beep = o.flag("beep")?.unwrap_or(false);
    let text = |key: &str| o.text(key);
    let finish_on: Vec<char> = text("finish_on")?
        .unwrap_or_else(|| "#".into())
        .chars()
        .collect();
    let key = |c: &char| c.is_ascii_digit() || "*#ABCD".contains(*c);
    if finish_on.len() > 16 || !finish_on.iter().all(key) {
        return Err(bad(format!(
            "finish_on: {:?} is not up to 16 of 0-9 * # A-D",
            finish_on.iter().collect::<String>()
        )));
    }
    let name = text("name")?;
    if let Some(n) = &name {
        if !is_valid_id(n) {
            return Err(bad(format!(
                "name {n:?}: use 1-100 of A-Z a-z 0-9 _ - . (not starting with .)"
            )));
        }
    }
    Ok(RecordOptions {
        max,
        silence: (!silence.is_zero()).then_some(silence),
        beep,
        finish_on,
        name,
    })
}

impl Session {
    /// Records the caller; see the module doc. Keys pressed meanwhile,
    /// except the one that ended it, are kept for the next `gather`. A
    /// hangup ends the script as in every verb, but the file is kept,
    /// closed, and listed in the results first.
    pub fn record(&mut self, call_id: &str, o: &RecordOptions) -> Result<RecordResult, VerbError> {
        self.check()?;
        if o.beep {
            self.play(&["tone:beep".to_string()], false)?;
        }
        let name = match &o.name {
            Some(n) => n.clone(),
            None => sanitize_id(&format!("{call_id}-{}", self.recordings.len() + 1)),
        };
        let id = self.next_play_id;
        self.next_play_id += 1;
        let req = RecordRequest {
            name,
            rules: EndRules {
                max: o.max,
                silence: o.silence,
                finish_on: o.finish_on.clone(),
            },
        };
        if let Err(e) = self.ctl.record(id, req) {
            if self.ctl.is_gone() {
                self.ended = true;
                return Err(VerbError::CallEnded);
            }
            return Err(VerbError::Failed(format!("record: {e}")));
        }
        let mut keys = Vec::new();
        let ended = loop {
            match self.wait(None) {
                Ok(Some(CallEvent::Digit { digit, .. })) => keys.push(digit),
                Ok(Some(CallEvent::RecordDone { id: done, ended_by })) if done == id => {
                    break Ok(ended_by)
                }
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        };
        if let Err(e) = &ended {
            let by = match e {
                VerbError::CallEnded => EndedBy::Hangup,
                _ => EndedBy::Stopped,
            };
            self.ctl.stop_record(id, by);
        }
        if let Ok(EndedBy::Key(k)) = ended {
            if let Some(at) = keys.iter().rposition(|&d| d == k) {
                keys.remove(at);
            }
        }
        for k in keys {
            self.buffer(k);
        }
        let finished = self.ctl.finish_record(id);
        if let Ok(r) = &finished {
            self.recordings.push(r.id.clone());
            let list = self.recordings.join(",");
            self.ctl.set_result(RESULT_KEY, &list);
        }
        let ended = ended?;
        let r = finished.map_err(|e| VerbError::Failed(format!("record: {e}")))?;
        tracing::debug!(recording = %r.id, ?ended, ms = r.duration_ms, "recorded");
        Ok(RecordResult {
            id: r.id,
            path: r.path.display().to_string(),
            duration_ms: r.duration_ms,
            ended_by: r.ended_by,
        })
    }
}

/// `record(opts)` for the Rhai API: `#{ id, path, duration_ms, ended_by,
/// key }`.
pub fn record_verb(s: &mut Session, call_id: &str, opts: &Map) -> Result<Map, VerbError> {
    let o = options(opts)?;
    let r = s.record(call_id, &o)?;
    let mut m = Map::new();
    m.insert("id".into(), r.id.into());
    m.insert("path".into(), r.path.into());
    m.insert("duration_ms".into(), Dynamic::from(r.duration_ms as i64));
    m.insert("ended_by".into(), r.ended_by.as_str().into());
    let key = match r.ended_by {
        EndedBy::Key(k) => k.to_string(),
        _ => String::new(),
    };
    m.insert("key".into(), key.into());
    Ok(m)
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
