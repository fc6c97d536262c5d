//! What differs between the store's two databases, and nothing else: how
//! to connect to each, the PostgreSQL-only prelude migration, the lock
//! that numbers rows with `MAX + 1` safely on PostgreSQL, the row locks
//! that let nodes claim work side by side, and the lock that keeps a node
//! id to one process. Every query and
//! every numbered migration is shared; a difference that cannot be written
//! portably goes here, once per backend (docs/scaling.md, "Writing a
//! migration").

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Executor};

use super::StoreError;

/// The database behind a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// One file (or memory): one node.
    Sqlite,
    /// A PostgreSQL server, which several nodes may share.
    Postgres,
}

impl Backend {
    /// The backend a `[store] url` names, if any.
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// Migrations that run before the shared ones on one backend only. Their
/// versions are below 1, so the shared files keep their numbers (and, on
/// SQLite, the checksums existing databases recorded).
pub(super) fn prelude(backend: Backend) -> &'static [(i64, &'static str, &'static str)] {
    match backend {
        Backend::Sqlite => &[],
        Backend::Postgres => &[(
            0,
            "postgres types",
            include_str!("../../migrations/postgres/0000_types.sql"),
        )],
    }
}

/// Connects a pool to `url`.
pub(super) async fn connect(url: &str, base_dir: &Path) -> Result<(Backend, AnyPool), StoreError> {
    // Idempotent; installs the drivers compiled in (sqlite, postgres).
    sqlx::any::install_default_drivers();
    match Backend::of_url(url) {
        Some(Backend::Sqlite) => Ok((Backend::Sqlite, sqlite(url, base_dir).await?)),
        Some(Backend::Postgres) => {
            let opts =
                AnyConnectOptions::from_str(url).map_err(|_| StoreError::Url(redact(url)))?;
            let pool = AnyPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Ok((Backend::Postgres, pool))
        }
        None => Err(StoreError::Url(redact(url))),
    }
}

async fn sqlite(url: &str, base_dir: &Path) -> Result<AnyPool, StoreError> {
    let memory = url == "sqlite::memory:" || url == "sqlite://:memory:";
    let opts = if memory {
        AnyConnectOptions::from_str("sqlite::memory:")?
    } else {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::Url(url.to_string()))?;
        let path = std::path::absolute(base_dir.join(path)).map_err(|source| StoreError::Dir {
            path: path.to_string(),
            source,
        })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        // The Any driver takes a URL; SQLite's own options write it, path
        // escaping included.
        let url = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .to_url_lossy();
        AnyConnectOptions::from_url(&url)?
    };
    // An in-memory database lives in one connection; keep it alone.
    let max = if memory { 1 } else { 4 };
    let pool = AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(if memory { 1 } else { 0 })
        .idle_timeout(None)
        .max_lifetime(None)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                // WAL + NORMAL survives a crash of rivr (not of the OS)
                // without an fsync per message.
                if !memory {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                }
                conn.execute(
                    "PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; \
                     PRAGMA foreign_keys = ON",
                )
                .await?;
                Ok(())
            })
        })
        .connect_with(opts)
        .await?;
    Ok(pool)
}

/// Makes the calling transaction the only one numbering rows with
/// `MAX(col) + 1` until it ends. SQLite needs nothing: its first write
/// takes the database's one write lock, and the callers write first. On
/// PostgreSQL two transactions would read the same MAX (and a change
/// counter could be seen out of order), so they queue on one advisory
/// lock. Call it as the transaction's first statement: a transaction
/// waiting here then holds no row lock, so the queue cannot deadlock.
pub(super) async fn lock_counters(
    backend: Backend,
    conn: &mut AnyConnection,
) -> Result<(), StoreError> {
    if backend == Backend::Postgres {
        // 0x72697672 = "rivr".
        sqlx::query("SELECT pg_advisory_xact_lock(1919514226)")
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Held by a `rivr serve` for its node id (docs/scaling.md, "Several
/// nodes"): on PostgreSQL a session advisory lock keyed by the id, on a
/// connection of its own, released by closing it or by dying (the server
/// drops the connection at once), so two live processes never run as one
/// node while a restarted node takes its id back at once. SQLite: nothing
/// to hold (its file has one node).
#[derive(Debug)]
pub struct NodeLock {
    // Only held (a Mutex makes the holder Sync; it is never locked).
    _conn: Option<std::sync::Mutex<AnyConnection>>,
}

/// The advisory lock class of node ids ("rivs"), the first of the two
/// 32-bit keys; the second is a hash of the id.
const NODE_LOCK: i32 = 1_919_514_227;

/// FNV-1a of the id, folded to 32 bits: stable across builds and hosts.
fn node_key(node: &str) -> i32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h ^ (h >> 32)) as u32 as i32
}

pub(super) async fn lock_node(
    backend: Backend,
    pool: &AnyPool,
    node: &str,
) -> Result<NodeLock, StoreError> {
    try_lock(backend, pool, NODE_LOCK, node_key(node))
        .await?
        .ok_or_else(|| StoreError::NodeInUse(node.to_string()))
}

/// The advisory lock class of the SMS routes' owner ("rivt"): one node of
/// a cluster binds to the SMSCs and sends (docs/scaling.md, "SMS across
/// nodes").
const SMS_OWNER_LOCK: i32 = 1_919_514_228;

/// Makes this process the one that sends SMS, if no live one is; `None`
/// while another holds it. SQLite: always this process.
pub(super) async fn try_sms_owner(
    backend: Backend,
    pool: &AnyPool,
) -> Result<Option<NodeLock>, StoreError> {
    try_lock(backend, pool, SMS_OWNER_LOCK, 0).await
}

/// A session advisory lock `(class, key)` on a connection of its own,
/// held by the returned guard; `None` if another session holds it.
async fn try_lock(
    backend: Backend,
    pool: &AnyPool,
    class: i32,
    key: i32,
) -> Result<Option<NodeLock>, StoreError> {
    if backend == Backend::Sqlite {
        return Ok(Some(NodeLock { _conn: None }));
    }
    let mut conn = pool.acquire().await?.detach();
    let got: i64 = sqlx::query_scalar(
        "SELECT CASE WHEN pg_try_advisory_lock(CAST($1 AS INTEGER), CAST($2 AS INTEGER)) THEN 1 ELSE 0 END",
    )
    .bind(i64::from(class))
    .bind(i64::from(key))
    .fetch_one(&mut conn)
    .await?;
    Ok((got == 1).then(|| NodeLock {
        _conn: Some(std::sync::Mutex::new(conn)),
    }))
}

/// What ends a `SELECT` of rows to claim: on PostgreSQL it locks them and
/// passes over rows another transaction holds, so concurrent claimers
/// (tasks or nodes) take different rows without waiting; SQLite has one
/// writer at a time and no row locks.
pub(super) fn skip_locked(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
    }
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        assert_eq!(Backend::of_url("sqlite://x.db"), Some(Backend::Sqlite));
        assert_eq!(Backend::of_url("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(
            Backend::of_url("postgres://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::of_url("postgresql://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::of_url("mysql://u@h/db"), None);
    }

    #[tokio::test]
    async fn a_failed_open_does_not_show_the_password() {
        let e = crate::store::Store::open("mysql://u:secret@h/x", Path::new("."))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "store url \"mysql://u:***@h/x\" is not supported (use sqlite://PATH, sqlite::memory: or postgres://…)"
        );
    }

    #[test]
    fn node_keys_are_stable_and_spread() {
        assert_eq!(node_key("a"), node_key("a"));
        assert_ne!(node_key("node-1"), node_key("node-2"));
    }

    #[test]
    fn a_password_never_reaches_a_message() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("nonsense"), "nonsense");
    }
}
