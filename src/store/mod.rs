//! Persistence: one [`Store`] over a SQL database, SQLite or PostgreSQL as
//! `[store] url` says. Schema changes are the numbered files in
//! `migrations/`, embedded at build time and applied at open; both backends
//! run the same files. Queries are plain SQL with `$N` placeholders that
//! SQLite and PostgreSQL both accept, sent through sqlx's `Any` driver, so
//! one text and one row type serve both; what must differ lives in
//! [`dialect`]. It owns the database, not the rules: what a state means is
//! decided by the modules that write it. docs/scaling.md.

mod attempt;
mod attempt_refined;
#[cfg(test)]
mod backends_test;
mod campaign;
mod campaign_amd;
mod campaign_report;
mod cdr;
pub mod cdr_cli;
mod cdr_params;
mod dialect;
mod dnc;
mod nodes;
mod recovery;
mod sms;
mod sms_counts;
mod sms_flow;
mod sms_inbound;
mod sms_routes;
// The tests' PostgreSQL, shared with the integration tests.
#[cfg(test)]
#[path = "../../tests/common/pg.rs"]
#[allow(dead_code)] // `query` serves the integration tests only
mod test_pg;

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::AnyPool;

pub use attempt::{
    AttemptInfo, AttemptState, Claimed, ContactState, Dialog, Finish, Recovery, Then,
};
pub use campaign::{Campaign, CampaignState, NewCampaign};
pub use campaign_report::{ReportRow, Status};
pub use cdr::{CdrCursor, CdrPage, CdrQuery, CdrRow};
pub use cdr_params::{BadParam, CdrParams};
pub use dialect::{redact as redact_url, Backend, NodeLock};
pub use dnc::DncEntry;
pub use nodes::{NodeRow, Takeover};
pub use recovery::OwedSms;
pub use sms::{MessageState, NewMessage, NewPart, Sending, StoredPart, INTERRUPTED};
pub use sms_flow::{FlowEnd, FlowRow, SmsResult};
pub use sms_inbound::InboundSms;
pub use sms_routes::PartRoute;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "store url {0:?} is not supported (use sqlite://PATH, sqlite::memory: or postgres://…)"
    )]
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
    #[error(
        "node id {0:?} is held by another running `rivr serve` on this database; give each node its own [cluster] node_id"
    )]
    NodeInUse(String),
    #[error("bad row in {table}: {what}")]
    BadRow { table: &'static str, what: String },
}

/// The embedded migrations, in order: the backend's own first (see
/// [`dialect::prelude`]), then the shared numbered files.
fn migrator(backend: Backend) -> Migrator {
    let files: [(i64, &str, &str); 11] = [
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
            7,
            "sms flows",
            include_str!("../../migrations/0007_sms_flows.sql"),
        ),
        (
            8,
            "sms provider inbound",
            include_str!("../../migrations/0008_sms_provider_inbound.sql"),
        ),
        (
            9,
            "sms routes",
            include_str!("../../migrations/0009_sms_routes.sql"),
        ),
        (
            10,
            "refined outcomes",
            include_str!("../../migrations/0010_refined_outcomes.sql"),
        ),
        (11, "nodes", include_str!("../../migrations/0011_nodes.sql")),
    ];

    Migrator {
        migrations: Cow::Owned(
            dialect::prelude(backend)
                .iter()
                .chain(files.iter())
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
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens (creating if needed) the database at `url` and migrates it.
    /// Relative SQLite paths are taken relative to `base_dir`.
    pub async fn open(url: &str, base_dir: &std::path::Path) -> Result<Store, StoreError> {
        let (backend, pool) = dialect::connect(url, base_dir).await?;
        migrator(backend).run(&pool).await?;
        Ok(Store { pool, backend })
    }

    /// Makes this process the only one running as node `node` while the
    /// lock is held (dropped, or the process ends); `NodeInUse` if another
    /// live process holds it. The CLI and API need no lock.
    pub async fn lock_node(&self, node: &str) -> Result<NodeLock, StoreError> {
        dialect::lock_node(self.backend, &self.pool, node).await
    }

    /// Makes this process the cluster's SMS sender if no live process is
    /// (the guard holds it until dropped or the process ends); `None`
    /// while another holds it. SQLite: always this process.
    pub async fn try_sms_owner(&self) -> Result<Option<NodeLock>, StoreError> {
        dialect::try_sms_owner(self.backend, &self.pool).await
    }

    /// Which database this store is on.
    pub fn backend(&self) -> Backend {
        self.backend
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
