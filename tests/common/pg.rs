//! A throw-away PostgreSQL for tests: `tests/pg/start-pg.sh` started once
//! per test binary (it stops by itself when the binary exits, killed or
//! not), and a new empty database per test, so tests run in parallel and
//! never see each other's rows. PostgreSQL missing is a failed test, not a
//! skipped one. The store's unit tests (src/store/) include this file too.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The running server.
struct Server {
    /// `postgres://rivr@127.0.0.1:PORT`, without a database.
    base: String,
    psql: PathBuf,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    match SERVER.get_or_init(start) {
        Ok(s) => s,
        Err(e) => panic!("PostgreSQL for the tests: {e}"),
    }
}

fn start() -> Result<Server, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pg/start-pg.sh");
    let out = Command::new(script)
        .args(["--owner", &std::process::id().to_string()])
        .output()
        .map_err(|e| format!("cannot run {script}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{script} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let url = stdout
        .lines()
        .next()
        .ok_or_else(|| format!("{script} printed no URL"))?;
    let base = url
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .ok_or_else(|| format!("{script} printed {url:?}, not a URL"))?;
    Ok(Server {
        base,
        psql: psql()?,
    })
}

fn psql() -> Result<PathBuf, String> {
    let dirs = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("/usr/lib/postgresql: {e} (apt-get install postgresql)"))?;
    dirs.filter_map(|d| d.ok())
        .map(|d| d.path().join("bin/psql"))
        .filter(|p| p.exists())
        .max()
        .ok_or_else(|| "no psql under /usr/lib/postgresql/*/bin".to_string())
}

/// The URL of a new, empty database on the tests' server.
pub fn database() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let s = server();
    let name = format!(
        "t{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let out = Command::new(&s.psql)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(format!("{}/postgres", s.base))
        .args(["-c", &format!("CREATE DATABASE {name}")])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", s.psql.display()));
    assert!(
        out.status.success(),
        "CREATE DATABASE {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("{}/{name}", s.base)
}

/// The rows `sql` returns from the database at `url`, one line per row,
/// columns joined by `|` (psql's unaligned output).
pub fn query(url: &str, sql: &str) -> String {
    let out = Command::new(&server().psql)
        .args([
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
