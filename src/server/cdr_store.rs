//! CDR rows in the store: a task that writes each closed call's records
//! (one row per leg, one transaction per call) and tells the signalling
//! task when they are in, so the call is held until then
//! (docs/cdr.md, "Written before the call is forgotten").
//!
//! The signalling core is sans-IO and must not wait on the database, so
//! the write runs here and its end comes back as
//! [`SigCommand::CdrStored`]. The CDR file line is written first, by the
//! caller, so a store that fails costs no CDR.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::call::channel::SigCommand;
use crate::call::id::CallId;
use crate::call::registry::CdrRecord;
use crate::store::{Store, StoreError};

/// How often a write that failed on the database is tried, in all.
const TRIES: u32 = 3;
/// The pause before the next try.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// The records of one closed call.
struct Batch {
    call: CallId,
    records: Vec<CdrRecord>,
}

/// Where the signalling task hands closed calls' records.
#[derive(Clone)]
pub struct CdrStoreQueue {
    tx: mpsc::UnboundedSender<Batch>,
}

impl CdrStoreQueue {
    /// Starts the writer task (on the current tokio runtime). `file_kept`
    /// says whether the CDR file has the records too; without it a record
    /// the store refused goes whole into the error log.
    pub fn start(store: Store, sig: mpsc::UnboundedSender<SigCommand>, file_kept: bool) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, rx, sig, file_kept));
        CdrStoreQueue { tx }
    }

    /// Queues a call's records; false if the writer is gone.
    pub fn send(&self, call: CallId, records: Vec<CdrRecord>) -> bool {
        self.tx.send(Batch { call, records }).is_ok()
    }
}

async fn run(
    store: Store,
    mut rx: mpsc::UnboundedReceiver<Batch>,
    sig: mpsc::UnboundedSender<SigCommand>,
    file_kept: bool,
) {
    while let Some(b) = rx.recv().await {
        let id = b.records.first().map(|r| r.call_id.as_str()).unwrap_or("");
        match write(&store, &b.records).await {
            Ok(()) => tracing::debug!(call = %id, legs = b.records.len(), "CDR rows stored"),
            Err(e) if file_kept => {
                tracing::error!(call = %id, error = %e, "CDR rows not stored; the CDR file has them")
            }
            Err(e) => {
                let lines: Vec<String> = b
                    .records
                    .iter()
                    .filter_map(|r| serde_json::to_string(r).ok())
                    .collect();
                tracing::error!(call = %id, error = %e, records = %lines.join(" "),
                    "CDR rows not stored and [cdr] file = false: the records are only in this log line");
            }
        }
        // Stored or given up: either way the call need not be held.
        if sig.send(SigCommand::CdrStored(b.call)).is_err() {
            return;
        }
    }
}

/// One call's rows; a database error is tried again (a busy database, a
/// full disk freed meanwhile), a record it cannot hold is not.
async fn write(store: &Store, records: &[CdrRecord]) -> Result<(), StoreError> {
    let mut tried = 1;
    loop {
        match store.insert_cdrs(records).await {
            Err(StoreError::Db(e)) if tried < TRIES => {
                tracing::warn!(error = %e, tried, "CDR rows not stored yet; trying again");
                tried += 1;
                tokio::time::sleep(RETRY_AFTER).await;
            }
            other => return other,
        }
    }
}
