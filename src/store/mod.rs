//! Persistence: one [`Store`] over a SQL database, SQLite by default at
//! `[store] url`. Schema changes are the numbered files in `migrations/`,
//! embedded at build time and applied at open. Queries are plain SQL with
//! `$N` placeholders that SQLite and PostgreSQL both accept, so a PostgreSQL
//! backend only needs its pool type. It owns the database, not the rules:
//! what a state means is decided by the modules that write it.

mod attempt;
mod campaign;
mod campaign_report;
mod cdr;
pub mod cdr_cli;
mod cdr_params;
mod dnc;
mod recovery;
mod sms;
mod sms_counts;
mod sms_inbound;
mod sms_routes;

use std::borrow::Cow;
use std::str::FromStr;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use attempt::{
    AttemptInfo, AttemptState, Claimed, ContactState, Dialog, Finish, Recovery, Then,
};
pub use campaign::{Campaign, CampaignState, NewCampaign};
pub use campaign_report::{ReportRow, Status};
pub use cdr::{CdrCursor, CdrPage, CdrQuery, CdrRow};
pub use cdr_params::{BadParam, CdrParams};
pub use dnc::DncEntry;
pub use recovery::OwedSms;
pub use sms::{MessageState, NewMessage, NewPart, Sending, StoredPart, INTERRUPTED};
pub use sms_inbound::InboundSms;
pub use sms_routes::PartRoute;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store url {0:?} is not supported (use sqlite://PATH or sqlite::memory:)")]
    Url(String),
    #[error("cannot create the store directory {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot store {what}: {why}")]
    Value { what: &'static str, why: String },
    #[error("bad row in {table}: {what}")]
    BadRow { table: &'static str, what: String },
}

/// The embedded migrations, in order.
fn migrator() -> Migrator {
    let files: [(i64, &str, &str); 7] = [
        (1, "sms", include_str!("../../migrations/0001_sms.sql")),
        (
            2,
            "sms inbound parts",
            include_str!("../../migrations/0002_sms_inbound_parts.sql"),
        ),
        (
            3,
            "campaigns",
            include_str!("../../migrations/0003_campaigns.sql"),
        ),
        (
            4,
            "attempt dialog",
            include_str!("../../migrations/0004_attempt_dialog.sql"),
        ),
        (
            5,
            "sms sending",
            include_str!("../../migrations/0005_sms_sending.sql"),
        ),
        (6, "cdrs", include_str!("../../migrations/0006_cdrs.sql")),
        (
            9,
            "sms routes",
            include_str!("../../migrations/0009_sms_routes.sql"),
        ),
    ];

    Migrator {
        migrations: Cow::Owned(
            files
                .iter()
                .map(|(v, d, sql)| {
                    Migration::new(
                        *v,
                        Cow::Borrowed(*d),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect(),
        ),
        ..Migrator::DEFAULT
    }
}

/// The database. Cheap to clone (a pool handle).
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database at `url` and migrates it.
    /// Relative SQLite paths are taken relative to `base_dir`.
    pub async fn open(url: &str, base_dir: &std::path::Path) -> Result<Store, StoreError> {
        let opts = if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            SqliteConnectOptions::from_str("sqlite::memory:")?
        } else {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .ok_or_else(|| StoreError::Url(url.to_string()))?;
            let path = base_dir.join(path);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL + NORMAL survives a crash of rivr (not of the OS) without
                // an fsync per message.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(std::time::Duration::from_secs(10))
        };
        let memory = opts.get_filename().to_string_lossy().contains(":memory:");
        // An in-memory database lives in one connection; keep it alone.
        let max = if memory { 1 } else { 4 };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .min_connections(if memory { 1 } else { 0 })
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await?;
        migrator().run(&pool).await?;
        Ok(Store { pool })
    }

    /// One trivial query: whether the database answers (`/ready`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Milliseconds since the Unix epoch (the store's wall-clock stamps).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
