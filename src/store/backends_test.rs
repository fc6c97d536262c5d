//! The store's tests run once per backend: [`on_both`] turns a list of
//! async test bodies into `sqlite::NAME` and `postgres::NAME` tests, and
//! inside a body [`fresh`] opens a new empty store and [`fresh_url`] names
//! one that can be reopened (a file for SQLite, a new database for
//! PostgreSQL). PostgreSQL comes from tests/pg/start-pg.sh; when it cannot
//! start, the `postgres::` tests fail.

use std::future::Future;
use std::path::{Path, PathBuf};

use super::{Backend, Store};

tokio::task_local! {
    static BACKEND: Backend;
}

/// Runs `body` with `backend` as the one [`fresh`] opens.
pub(crate) async fn run(backend: Backend, body: impl Future<Output = ()>) {
    BACKEND.scope(backend, body).await
}

/// The backend of the running test.
pub(crate) fn backend() -> Backend {
    BACKEND
        .try_with(|b| *b)
        .unwrap_or_else(|_| panic!("a store test outside on_both!"))
}

/// A new, empty, migrated store on the test's backend.
pub(crate) async fn fresh() -> Store {
    let url = match backend() {
        Backend::Sqlite => "sqlite::memory:".to_string(),
        Backend::Postgres => super::test_pg::database(),
    };
    Store::open(&url, Path::new(".")).await.unwrap()
}

/// A store that outlives its handles (reopened by URL, or by a child
/// process); a SQLite file is removed on drop.
pub(crate) struct FreshUrl {
    pub url: String,
    dir: Option<PathBuf>,
}

pub(crate) fn fresh_url() -> FreshUrl {
    match backend() {
        Backend::Sqlite => {
            let dir =
                std::env::temp_dir().join(format!("rivr-store-{:016x}", rand::random::<u64>()));
            FreshUrl {
                url: format!("sqlite://{}/sub/rivr.db", dir.display()),
                dir: Some(dir),
            }
        }
        Backend::Postgres => FreshUrl {
            url: super::test_pg::database(),
            dir: None,
        },
    }
}

impl FreshUrl {
    pub(crate) async fn open(&self) -> Store {
        Store::open(&self.url, Path::new("/")).await.unwrap()
    }
}

impl Drop for FreshUrl {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `on_both!(a, b, …)`: each async fn `a`, `b`, … (no arguments) becomes
/// the tests `sqlite::a` and `postgres::a`, … .
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    $crate::store::backends_test::run($crate::store::Backend::Sqlite, super::$name()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    $crate::store::backends_test::run($crate::store::Backend::Postgres, super::$name()).await
                }
            )*
        }
    };
}
pub(crate) use on_both;
