//! Call detail records out of the server: the JSON-lines file (one object
//! per line, one per leg, built by `call::registry`, appended when a call
//! closes, flushed at once) and the store's rows (`cdr_store`), as
//! `[cdr]` says. Shutdown waits here for the last rows.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::mpsc;

use super::anyhow_like;
use super::cdr_store::CdrStoreQueue;
use super::env::Env;
use crate::call::channel::SigCommand;
use crate::call::registry::CdrRecord;
use crate::config::Config;
use crate::store::Store;

/// How long shutdown waits for the store to take the last CDR rows.
const STORE_GRACE: Duration = Duration::from_secs(5);

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
            tracing::error!(call = %cdr.call_id, error = %e, "CDR write failed");
        }
    }
}

/// The file and the store writer `[cdr]` asks for. Rows need a store: a
/// server started without one (`rivr call`) writes the file only.
pub(super) fn writers(
    config: &Config,
    store: Option<Store>,
    sig: &mpsc::UnboundedSender<SigCommand>,
) -> anyhow_like::Result<(Option<CdrWriter>, Option<CdrStoreQueue>)> {
    let file = match &config.cdr.file {
        Some(path) => Some(
            CdrWriter::open(path)
                .map_err(|e| anyhow_like::Error(format!("cdr.path {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let rows = match store {
        Some(s) if config.cdr.store => Some(CdrStoreQueue::start(s, sig.clone(), file.is_some())),
        _ => None,
    };
    Ok((file, rows))
}

impl super::Server {
    /// After the last calls closed: serves the store writer's answers
    /// until every closed call's rows are in, or [`STORE_GRACE`] passed.
    pub(super) async fn wait_cdrs_stored(&mut self) {
        let deadline = tokio::time::Instant::now() + STORE_GRACE;
        while self.core.env.cdrs_pending() > 0 {
            match tokio::time::timeout_at(deadline, self.sig_rx.recv()).await {
                Ok(Some(cmd)) => self.sup.on_command(&mut self.core, cmd),
                Ok(None) => break,
                Err(_) => {
                    let file = if self.shared.cdr.is_some() {
                        "the CDR file has them"
                    } else {
                        "[cdr] file = false: they are lost"
                    };
                    tracing::error!(calls = self.core.env.cdrs_pending(), waited = ?STORE_GRACE,
                        "shutdown: CDR rows of some calls not stored; {file}");
                    return;
                }
            }
        }
    }
}
