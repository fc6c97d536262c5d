//! Call detail records: one JSON object per line (one per leg, built by
//! `call::registry`), appended when a call closes, flushed at once.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use crate::call::registry::CdrRecord;

pub struct CdrWriter {
    file: Mutex<File>,
}

impl CdrWriter {
    pub fn open(path: &Path) -> std::io::Result<CdrWriter> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(CdrWriter {
            file: Mutex::new(file),
        })
    }

    pub fn write(&self, cdr: &CdrRecord) {
        let Ok(mut line) = serde_json::to_vec(cdr) else {
            return;
        };
        line.push(b'\n');
        // A panic caught elsewhere while this lock was held must not cost
        // every later CDR: a poisoned lock is used as it is.
        let mut f = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = f.write_all(&line) {
            tracing::error!(error = %e, "CDR write failed");
        }
    }
}
