//! The one shared Rhai engine, its limits, and the compiled-script cache.
//! Each script is compiled once and its AST shared between calls; a changed
//! file is recompiled on the next call that uses it (hot reload). A call
//! holds the AST it started with to its end, so an edit reaches new calls
//! only; an edit that does not compile leaves the last good version serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use dashmap::DashMap;
use rhai::{Engine, AST};

use crate::config::ScriptConfig;
use crate::script::threads::{ScriptThreads, DEFAULT_MAX_SCRIPTS};
use crate::script::verbs::http::HttpClient;

/// A script that cannot be loaded or that failed, with where.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScriptError {
    #[error("{file}: cannot read: {reason}")]
    Read { file: String, reason: String },
    #[error("{file}:{line}:{col}: {message}")]
    At {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    NoPosition { file: String, message: String },
}

impl ScriptError {
    pub(crate) fn from_position(file: &Path, pos: rhai::Position, message: String) -> Self {
        let file = file.display().to_string();
        match (pos.line(), pos.position()) {
            (Some(line), col) => ScriptError::At {
                file,
                line,
                col: col.unwrap_or(0),
                message,
            },
            _ => ScriptError::NoPosition { file, message },
        }
    }
}

/// Builds the shared engine: limits on, no file or network access (Rhai has
/// none unless a verb provides it), verbs registered.
pub fn build_engine(limits: &ScriptConfig) -> Engine {
    let mut engine = Engine::new();
    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(48);
    engine.set_max_expr_depths(64, 32);
    engine.set_max_string_size(64 * 1024);
    engine.set_max_array_size(10_000);
    engine.set_max_map_size(10_000);
    engine.set_max_variables(1_000);
    engine.set_max_functions(1_000);
    engine.set_max_modules(0);
    engine.disable_symbol("eval");
    allow_call_map(&mut engine);
    crate::script::api::register(&mut engine);
    engine
}

/// `call` is a reserved word in Rhai (kept for `f.call(…)`), so `call.id`
/// — the map every script gets (`runner::call_map`) — would not parse:
/// the tokenizer's `call` is turned back into a plain name. Function
/// pointers still work: `f.call(x)` and `call(f, x)` are looked up by that
/// name, which is unchanged.
fn allow_call_map(engine: &mut Engine) {
    use rhai::Token;
    #[allow(deprecated)] // "volatile", not deprecated (rhai's own words)
    engine.on_parse_token(|token, _, _| match token {
        Token::Reserved(name) if name.as_str() == "call" => Token::Identifier(name),
        other => other,
    });
}

/// What the file looked like when it was last read: an edit changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: Option<u64>,
}

impl Stamp {
    fn of(path: &Path) -> Stamp {
        let meta = std::fs::metadata(path).ok();
        Stamp {
            modified: meta.as_ref().and_then(|m| m.modified().ok()),
            len: meta.map(|m| m.len()),
        }
    }
}

struct Compiled {
    /// The file as it was when `ast` was compiled from it.
    stamp: Stamp,
    ast: Arc<AST>,
    /// 1 for the first good compile, one more for each good reload.
    version: u64,
    /// The file as it was when it last failed to compile (after `ast`):
    /// not compiled again until it changes, so a broken edit costs one
    /// compile and one log line, not one per call.
    broken: Option<Stamp>,
}

/// A compiled script and which version of its file it is.
#[derive(Clone)]
pub struct Versioned {
    pub ast: Arc<AST>,
    pub version: u64,
}

/// The engine plus every compiled script, and the running script threads.
pub struct ScriptCache {
    engine: Arc<Engine>,
    limits: ScriptConfig,
    compiled: DashMap<PathBuf, Compiled>,
    threads: Arc<ScriptThreads>,
    http: Arc<HttpClient>,
    /// `say()`'s engine and cache, shared by every call.
    speaker: Arc<crate::script::say::Speaker>,
}

impl ScriptCache {
    /// At most `DEFAULT_MAX_SCRIPTS` scripts at once; the server should use
    /// `with_max_scripts` with its call cap.
    pub fn new(limits: ScriptConfig) -> Self {
        Self::with_max_scripts(limits, DEFAULT_MAX_SCRIPTS)
    }

    /// At most `max_scripts` scripts run at once; `runner::spawn` fails
    /// beyond it. Size it to the call cap plus a margin for scripts still
    /// running `on_hangup` after their call ended.
    pub fn with_max_scripts(limits: ScriptConfig, max_scripts: usize) -> Self {
        if !crate::script::memory::enforced() {
            tracing::warn!(
                "this process has no alloc meter: [script] max_memory_bytes is not enforced"
            );
        }
        ScriptCache {
            engine: Arc::new(build_engine(&limits)),
            http: Arc::new(HttpClient::new(limits.http.clone())),
            limits,
            compiled: DashMap::new(),
            threads: ScriptThreads::new(max_scripts),
            speaker: Arc::new(crate::script::say::Speaker::default()),
        }
    }

    /// `say()` speaks as `[tts]` says (the default: espeak-ng, English,
    /// 160 words per minute, a 64 MiB cache).
    pub fn with_speaker(mut self, speaker: Arc<crate::script::say::Speaker>) -> Self {
        self.speaker = speaker;
        self
    }

    pub fn speaker(&self) -> &Arc<crate::script::say::Speaker> {
        &self.speaker
    }

    /// The running script threads: count, cap, panics.
    pub fn threads(&self) -> &Arc<ScriptThreads> {
        &self.threads
    }

    /// The client `http_get`/`http_post` use, with `[script] http_*`.
    pub fn http(&self) -> &Arc<HttpClient> {
        &self.http
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn limits(&self) -> &ScriptConfig {
        &self.limits
    }

    /// The compiled script, recompiled if the file changed since.
    pub fn get(&self, path: &Path) -> Result<Arc<AST>, ScriptError> {
        self.get_versioned(path).map(|v| v.ast)
    }

    /// The compiled script and its version. A file changed since it was
    /// compiled is compiled again; if that fails and an earlier version
    /// compiled, the earlier version goes on serving and the error is
    /// logged once with file:line:col. Only a script that never compiled
    /// is an error.
    pub fn get_versioned(&self, path: &Path) -> Result<Versioned, ScriptError> {
        let stamp = Stamp::of(path);
        if let Some(c) = self.compiled.get(path) {
            if c.stamp == stamp || c.broken == Some(stamp) {
                return Ok(Versioned {
                    ast: c.ast.clone(),
                    version: c.version,
                });
            }
        }
        match compile(&self.engine, path) {
            Ok(ast) => {
                let ast = Arc::new(ast);
                let mut entry = self.compiled.entry(path.to_path_buf()).or_insert(Compiled {
                    stamp,
                    ast: ast.clone(),
                    version: 0,
                    broken: None,
                });
                entry.stamp = stamp;
                entry.ast = ast.clone();
                entry.version += 1;
                entry.broken = None;
                if entry.version > 1 {
                    tracing::info!(script = %path.display(), version = entry.version, "script reloaded; new calls run it");
                }
                Ok(Versioned {
                    ast,
                    version: entry.version,
                })
            }
            Err(e) => match self.compiled.get_mut(path) {
                Some(mut c) => {
                    c.broken = Some(stamp);
                    tracing::error!(error = %e, version = c.version, "script edit does not compile; version {} goes on serving", c.version);
                    Ok(Versioned {
                        ast: c.ast.clone(),
                        version: c.version,
                    })
                }
                None => Err(e),
            },
        }
    }
}

/// Compiles one file; errors carry file:line:col.
pub fn compile(engine: &Engine, path: &Path) -> Result<AST, ScriptError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScriptError::Read {
        file: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut ast = engine
        .compile(&text)
        .map_err(|e| ScriptError::from_position(path, e.position(), e.err_type().to_string()))?;
    ast.set_source(path.display().to_string());
    Ok(ast)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ScriptConfig {
        ScriptConfig {
            max_operations: 1_000_000,
            max_duration_ms: 10_000,
            max_operations_between_verbs: 100_000,
            max_memory_bytes: 1 << 20,
            ..ScriptConfig::default()
        }
    }

    #[test]
    fn syntax_error_names_file_line_and_column() {
        let dir = std::env::temp_dir().join(format!("rivr-engine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("bad.rhai");
        std::fs::write(&f, "answer();\nlet x = ;\n").unwrap();
        let e = compile(&build_engine(&limits()), &f)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(&format!("{}:2:9:", f.display())), "{e}");
        std::fs::write(&f, "answer();\n").unwrap();
        let cache = ScriptCache::new(limits());
        let a1 = cache.get(&f).unwrap();
        let a2 = cache.get(&f).unwrap();
        assert!(Arc::ptr_eq(&a1, &a2), "compiled once, shared");
    }

    #[test]
    fn a_broken_edit_leaves_the_last_good_version_serving() {
        let dir = std::env::temp_dir().join(format!("rivr-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("flow.rhai");
        std::fs::write(&f, "answer();\n").unwrap();
        let cache = ScriptCache::new(limits());
        let v1 = cache.get_versioned(&f).unwrap();
        assert_eq!(v1.version, 1);
        // A different length is an edit even within the clock's resolution.
        std::fs::write(&f, "answer();\nhangup();\n").unwrap();
        let v2 = cache.get_versioned(&f).unwrap();
        assert_eq!(v2.version, 2);
        assert!(!Arc::ptr_eq(&v1.ast, &v2.ast));
        std::fs::write(&f, "answer();\nlet x = ;\n").unwrap();
        let kept = cache.get_versioned(&f).unwrap();
        assert_eq!(kept.version, 2, "the broken edit is not served");
        assert!(Arc::ptr_eq(&kept.ast, &v2.ast));
        std::fs::write(&f, "answer();\nsleep(1);\nhangup();\n").unwrap();
        assert_eq!(cache.get_versioned(&f).unwrap().version, 3, "fixed again");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_script_that_never_compiled_is_an_error() {
        let dir = std::env::temp_dir().join(format!("rivr-never-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("flow.rhai");
        std::fs::write(&f, "let x = ;\n").unwrap();
        let cache = ScriptCache::new(limits());
        let e = cache
            .get(&f)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains(":1:9:"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_call_map_is_reachable_and_function_pointers_still_call() {
        let engine = build_engine(&limits());
        let mut scope = rhai::Scope::new();
        let mut call = rhai::Map::new();
        call.insert("direction".into(), "outbound".into());
        scope.push_constant("call", call);
        let got: String = engine
            .eval_with_scope(&mut scope, "call.direction")
            .expect("`call.direction` parses and reads the map");
        assert_eq!(got, "outbound");
        let got: i64 = engine
            .eval("fn twice(x) { x * 2 } let f = Fn(\"twice\"); f.call(4) + call(f, 1)")
            .expect("function pointers are still called");
        assert_eq!(got, 10);
    }
}
