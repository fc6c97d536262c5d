//! The prompt cache: resolves a prompt name to a file under the prompts
//! directory (never outside it), loads it once and hands out `Arc<Prompt>`.

use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use dashmap::DashMap;

use super::{decode_file, tones, Prompt, PromptError};

/// Extensions tried after the bare name, in this order.
const AUDIO_EXTENSIONS: [&str; 4] = ["wav", "flac", "ogg", "mp3"];
/// Longest accepted prompt name, in bytes.
const MAX_NAME_LEN: usize = 255;
/// How deep `preload_all` descends into sub-directories (`digits/`, …).
const MAX_PRELOAD_DEPTH: usize = 8;

/// Prompts under one directory, loaded on first use and cached for the life
/// of the store. Safe to share between threads.
#[derive(Debug)]
pub struct PromptStore {
    dir: PathBuf,
    cache: DashMap<String, Arc<Prompt>>,
}

impl PromptStore {
    /// A store serving prompts from `dir`. Nothing is read until asked.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        PromptStore {
            dir: dir.into(),
            cache: DashMap::new(),
        }
    }

    /// The prompts directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of prompts currently cached.
    pub fn cached_count(&self) -> usize {
        self.cache.len()
    }

    /// The prompt called `name`: a generated tone for names starting with
    /// `tone:` (see `tones`), else the file `name`, `name.wav`, `name.flac`,
    /// `name.ogg` or `name.mp3` under the directory, the first that exists.
    /// Loaded on the first call, then served from the cache. Names are
    /// relative paths (`digits/7` is fine); absolute paths, `..` and
    /// anything resolving outside the directory (e.g. through a symlink)
    /// are refused.
    pub fn get(&self, name: &str) -> Result<Arc<Prompt>, PromptError> {
        if let Some(prompt) = self.cache.get(name) {
            return Ok(Arc::clone(&prompt));
        }
        if name.starts_with(tones::TONE_PREFIX) {
            let prompt = Arc::new(tones::tone_prompt(name)?);
            if !tones::is_cacheable(name) {
                return Ok(prompt);
            }
            return Ok(Arc::clone(
                self.cache.entry(name.to_owned()).or_insert(prompt).value(),
            ));
        }
        check_name(name)?;
        let path = self.resolve(name)?;
        let (samples, rate) = decode_file(&path)?;
        let prompt = Arc::new(Prompt::from_samples(name, &samples, rate, path)?);
        // Decoding happens outside the map's lock; if another thread loaded
        // the same prompt meanwhile, keep the first so everyone shares it.
        Ok(Arc::clone(
            self.cache.entry(name.to_owned()).or_insert(prompt).value(),
        ))
    }

    /// Adds a prompt built elsewhere (a tone, a TTS result) under its own
    /// name, replacing any cached prompt of that name.
    pub fn insert(&self, prompt: Prompt) -> Arc<Prompt> {
        let prompt = Arc::new(prompt);
        self.cache
            .insert(prompt.name().to_owned(), Arc::clone(&prompt));
        prompt
    }

    /// Loads every audio file under the directory (recursively, skipping
    /// hidden entries), so that calls never wait for a decode. Each file is
    /// cached under its path without the extension (`digits/7`). Returns the
    /// number of prompts loaded; the first file that fails stops the load
    /// and is named in the error.
    pub fn preload_all(&self) -> Result<usize, PromptError> {
        let mut names = Vec::new();
        collect_names(&self.dir, "", 0, &mut names)?;
        names.sort();
        names.dedup();
        for name in &names {
            self.get(name)?;
        }
        Ok(names.len())
    }

    /// The first existing candidate file for `name`, checked to lie inside
    /// the directory once symlinks are resolved.
    fn resolve(&self, name: &str) -> Result<PathBuf, PromptError> {
        let candidates = std::iter::once(self.dir.join(name)).chain(
            AUDIO_EXTENSIONS
                .iter()
                .map(|ext| self.dir.join(format!("{name}.{ext}"))),
        );
        let Some(path) = candidates.into_iter().find(|p| p.is_file()) else {
            return Err(PromptError::NotFound {
                name: name.to_owned(),
                dir: self.dir.clone(),
            });
        };
        let root = self.dir.canonicalize().map_err(|source| PromptError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let real = path.canonicalize().map_err(|source| PromptError::Io {
            path: path.clone(),
            source,
        })?;
        if !real.starts_with(&root) {
            return Err(PromptError::BadName {
                name: name.to_owned(),
                reason: "it resolves to a file outside the prompts directory",
            });
        }
        Ok(path)
    }
}

/// Accepts only plain relative paths: no root, no drive prefix, no `.` or
/// `..` components, nothing empty, no NUL.
pub(super) fn check_name(name: &str) -> Result<(), PromptError> {
    let bad = |reason| {
        Err(PromptError::BadName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("it is longer than 255 bytes");
    }
    if name.contains('\0') {
        return bad("it contains a NUL byte");
    }
    // A name may come from the network through a script (`play(call.from)`):
    // no file rivr serves has a control character in its name.
    if name.chars().any(char::is_control) {
        return bad("it contains a control character");
    }
    if name.ends_with('/') || name.contains("//") {
        return bad("it has an empty path component");
    }
    if !Path::new(name)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return bad("it must be a relative path without `.` or `..` components");
    }
    Ok(())
}

/// Appends the prompt name of every audio file under `dir` to `names`;
/// `prefix` is the path of `dir` relative to the prompts directory.
fn collect_names(
    dir: &Path,
    prefix: &str,
    depth: usize,
    names: &mut Vec<String>,
) -> Result<(), PromptError> {
    let io = |source| PromptError::Io {
        path: dir.to_owned(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            tracing::warn!(path = %entry.path().display(), "skipping prompt file with a non-UTF-8 name");
            continue;
        };
        if file_name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        // `file_type` does not follow symlinks, so a linked directory is
        // never walked (no loops); linked files are checked by `resolve`.
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            if depth < MAX_PRELOAD_DEPTH {
                let sub = format!("{prefix}{file_name}/");
                collect_names(&path, &sub, depth + 1, names)?;
            }
            continue;
        }
        let Some((stem, ext)) = file_name.rsplit_once('.') else {
            continue;
        };
        if stem.is_empty() {
            continue;
        }
        if AUDIO_EXTENSIONS.contains(&ext) {
            names.push(format!("{prefix}{stem}"));
        } else if AUDIO_EXTENSIONS.iter().any(|k| k.eq_ignore_ascii_case(ext)) {
            // `get` only appends lower-case extensions, so `Intro.WAV` is
            // cached under its full file name.
            names.push(format!("{prefix}{file_name}"));
        }
    }
    Ok(())
}
