//! Recording a leg's caller to a WAV file (`record()` in scripts).
//!
//! Three parts, so the media worker's tick never touches a file:
//! - [`detector`]: when a recording ends (silence, a key, its maximum;
//!   hangup from outside), sans-IO on the audio's own clock;
//! - [`writer`]: the file. [`start`] opens it and spawns a writer thread
//!   with a pool of frame buffers allocated up front; the worker hands it
//!   each decoded 8 kHz frame through a [`RecordSink`] (a buffer from the
//!   pool, filled, sent on a bounded channel — no allocation, no lock, no
//!   system call per frame: the writer polls rather than waits, so the
//!   worker never has to wake it). The writer writes 16-bit mono 8 kHz
//!   PCM to `ID.wav.part` and renames it `ID.wav` when the recording
//!   ends, however it ends (a hangup, the worker dropping the leg);
//! - ids and paths: a recording is named by an id of `[A-Za-z0-9_-]`
//!   (and `.` not first), so `rec:ID` can never reach outside the
//!   recordings folder.
//!
//! Media knows neither SIP nor calls: the worker owns a sink per leg
//! recording; who asked for it learns of the end through the leg's
//! `MediaEvent::RecordDone` and the writer's [`RecordHandle`].

pub mod detector;
pub mod writer;

use std::path::{Path, PathBuf};

pub use detector::{End, EndDetector, EndRules, EndedBy};
pub use writer::{start, RecordHandle, RecordSink, Recorded};

/// Longest recording id.
pub const MAX_ID_LEN: usize = 100;

/// Why a recording could not be made (or kept).
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("bad recording id {0:?}: use 1-100 of A-Z a-z 0-9 _ - . (not starting with .)")]
    BadId(String),
    #[error("the recordings folder {dir} cannot be used ([media] recordings): {source}")]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the recording's writer thread: {0}")]
    Thread(std::io::Error),
    #[error("the recording's writer thread failed")]
    WriterFailed,
    #[error("no recording {0:?}")]
    NotFound(String),
}

/// True for an id that names a file inside the recordings folder and
/// nothing else.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// An id made valid: characters outside the allowed set become `_`.
pub fn sanitize_id(id: &str) -> String {
    let mut s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_ID_LEN)
        .collect();
    if s.starts_with('.') || s.is_empty() {
        s.insert(0, '_');
        s.truncate(MAX_ID_LEN);
    }
    s
}

/// The finished file of recording `id` in `dir`, if it exists.
pub fn path_of(dir: &Path, id: &str) -> Result<PathBuf, RecordError> {
    if !is_valid_id(id) {
        return Err(RecordError::BadId(id.to_owned()));
    }
    let path = dir.join(format!("{id}.wav"));
    if !path.is_file() {
        return Err(RecordError::NotFound(id.to_owned()));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_name_anything_outside_the_folder() {
        for good in ["c1-2", "rivr-7-1", "greeting_42", "a.b"] {
            assert!(is_valid_id(good), "{good}");
        }
        for bad in [
            "",
            "..",
            ".hidden",
            "../x",
            "a/b",
            "a\\b",
            "/etc/passwd",
            "a\0b",
            "ä",
        ] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
        assert!(!is_valid_id(&"x".repeat(MAX_ID_LEN + 1)));
        for raw in ["../../etc/passwd", ".x", "", "a b/c", "é"] {
            let s = sanitize_id(raw);
            assert!(is_valid_id(&s), "{raw:?} -> {s:?}");
        }
        assert_eq!(sanitize_id("node a-12"), "node_a-12");
    }

    #[test]
    fn a_path_is_only_given_for_a_valid_id_of_an_existing_file() {
        let dir = std::env::temp_dir().join(format!("rivr-rec-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("x.wav"), b"RIFF").unwrap();
        assert_eq!(path_of(&dir, "x").unwrap(), dir.join("x.wav"));
        assert!(matches!(path_of(&dir, "y"), Err(RecordError::NotFound(_))));
        assert!(matches!(path_of(&dir, "../x"), Err(RecordError::BadId(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
