//! The TTS cache: one `Arc<Prompt>` per (engine, voice, language, rate,
//! text), so a campaign saying the same sentence to 10,000 people
//! synthesizes it once. Bounded in bytes (least recently used out first);
//! two calls asking for the same text at once share one synthesis (the
//! second waits for the first, up to its own deadline); optionally backed
//! by a directory of 8 kHz WAV files that outlives the process.
//!
//! A failed synthesis is not cached: the next call tries again.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{SayRequest, TtsEngine, TtsError};
use crate::media::prompt::{Prompt, MAX_PROMPT_SECONDS, PROMPT_RATE_HZ};

/// Characters of the text kept in the prompt's name (logs, transcripts).
const NAME_CHARS: usize = 60;

/// Where a `say` found its audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSource {
    /// Synthesized now.
    Synthesized,
    /// In the memory cache.
    Memory,
    /// Another call was synthesizing it; this one waited for it.
    InFlight,
    /// In the cache directory.
    Disk,
}

/// The cache's counters at one instant (for `/metrics`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TtsCounts {
    pub hits_memory: u64,
    pub hits_in_flight: u64,
    pub hits_disk: u64,
    /// Syntheses that produced audio.
    pub synth_ok: u64,
    /// Syntheses that failed (bad voice, engine error, timeout).
    pub synth_failed: u64,
    pub entries: u64,
    pub bytes: u64,
}

#[derive(Default)]
struct Counters {
    hits_memory: AtomicU64,
    hits_in_flight: AtomicU64,
    hits_disk: AtomicU64,
    synth_ok: AtomicU64,
    synth_failed: AtomicU64,
}

/// Most synthesis times kept between two `/metrics` scrapes.
const MAX_TIMES: usize = 10_000;

/// One synthesis in progress; waiters sleep on `done`.
#[derive(Default)]
struct Pending {
    result: Mutex<Option<Result<Arc<Prompt>, TtsError>>>,
    done: Condvar,
}

/// What a lookup found, taken out of the lock.
enum Found {
    /// The prompt, and its previous last-use tick.
    Ready(Arc<Prompt>, u64),
    Pending(Arc<Pending>),
    Nothing,
}

enum Slot {
    Ready {
        prompt: Arc<Prompt>,
        bytes: usize,
        tick: u64,
    },
    Pending(Arc<Pending>),
}

#[derive(Default)]
struct State {
    map: HashMap<(String, SayRequest), Slot>,
    /// Ready entries by last use, oldest first.
    lru: BTreeMap<u64, (String, SayRequest)>,
    bytes: usize,
    tick: u64,
}

/// An engine and the prompts it made. Shared by every call (`Arc`).
pub struct TtsCache {
    engine: Box<dyn TtsEngine>,
    max_bytes: usize,
    dir: Option<PathBuf>,
    state: Mutex<State>,
    counters: Counters,
    /// Seconds each successful synthesis took, since the last
    /// [`TtsCache::take_synth_seconds`].
    times: Mutex<Vec<f64>>,
}

impl std::fmt::Debug for TtsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtsCache")
            .field("engine", &self.engine.name())
            .field("max_bytes", &self.max_bytes)
            .field("dir", &self.dir)
            .finish()
    }
}

impl TtsCache {
    /// A cache of at most `max_bytes` of prompts (8 kHz PCM plus its
    /// encodings) in front of `engine`; with `dir`, results are also kept
    /// there as WAV files (created if missing).
    pub fn new(engine: Box<dyn TtsEngine>, max_bytes: usize, dir: Option<PathBuf>) -> TtsCache {
        TtsCache {
            engine,
            max_bytes,
            dir,
            state: Mutex::new(State::default()),
            counters: Counters::default(),
            times: Mutex::new(Vec::new()),
        }
    }

    pub fn engine_name(&self) -> &str {
        self.engine.name()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The prompt for `req`: from memory, from another call's synthesis in
    /// progress, from the cache directory, or synthesized now. Fails by
    /// `timeout` at the latest (a wait or a synthesis that would take
    /// longer is abandoned).
    pub fn get(
        &self,
        req: &SayRequest,
        timeout: Duration,
    ) -> Result<(Arc<Prompt>, CacheSource), TtsError> {
        let deadline = Instant::now() + timeout;
        let key = (self.engine.name().to_owned(), req.clone());
        let found = {
            let mut st = self.lock();
            st.tick += 1;
            let tick = st.tick;
            let found = match st.map.get_mut(&key) {
                Some(Slot::Ready {
                    prompt, tick: last, ..
                }) => Found::Ready(Arc::clone(prompt), std::mem::replace(last, tick)),
                Some(Slot::Pending(p)) => Found::Pending(Arc::clone(p)),
                None => Found::Nothing,
            };
            match &found {
                Found::Ready(_, old) => {
                    if let Some(k) = st.lru.remove(old) {
                        st.lru.insert(tick, k);
                    }
                }
                Found::Nothing => {
                    let p = Arc::new(Pending::default());
                    st.map.insert(key.clone(), Slot::Pending(Arc::clone(&p)));
                    drop(st);
                    return self.make(key, p, deadline, timeout);
                }
                Found::Pending(_) => {}
            }
            found
        };
        match found {
            Found::Ready(prompt, _) => {
                self.counters.hits_memory.fetch_add(1, Ordering::Relaxed);
                Ok((prompt, CacheSource::Memory))
            }
            Found::Pending(p) => {
                let prompt = wait(&p, deadline, timeout)?;
                self.counters.hits_in_flight.fetch_add(1, Ordering::Relaxed);
                Ok((prompt, CacheSource::InFlight))
            }
            Found::Nothing => Err(TtsError::Engine("unreachable cache state".into())),
        }
    }

    /// Makes the prompt for `key` (this call owns the pending slot) and
    /// publishes it, or its error, to the waiters.
    fn make(
        &self,
        key: (String, SayRequest),
        pending: Arc<Pending>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(Arc<Prompt>, CacheSource), TtsError> {
        let mut owner = Owner {
            cache: self,
            key: Some(key),
            pending,
        };
        let req = owner.key.as_ref().map(|k| k.1.clone());
        let Some(req) = req else {
            return Err(TtsError::Engine("unreachable cache state".into()));
        };
        let file = self.file_for(&req);
        if let Some(pcm) = file.as_deref().and_then(read_cached) {
            let prompt = Arc::new(Prompt::from_pcm_8k(&prompt_name(&req), pcm));
            self.counters.hits_disk.fetch_add(1, Ordering::Relaxed);
            owner.finish(Ok(Arc::clone(&prompt)));
            return Ok((prompt, CacheSource::Disk));
        }
        let started = Instant::now();
        let left = deadline.saturating_duration_since(started);
        let made = if left.is_zero() {
            Err(TtsError::Timeout(timeout))
        } else {
            self.engine.synthesize(&req, left).and_then(|speech| {
                Prompt::from_samples(
                    &prompt_name(&req),
                    &speech.samples,
                    speech.rate_hz,
                    PathBuf::from(self.engine.name()),
                )
                .map_err(|e| TtsError::Audio(e.to_string()))
            })
        };
        match made {
            Ok(prompt) => {
                let took = started.elapsed();
                self.counters.synth_ok.fetch_add(1, Ordering::Relaxed);
                {
                    let mut times = self.times.lock().unwrap_or_else(PoisonError::into_inner);
                    if times.len() < MAX_TIMES {
                        times.push(took.as_secs_f64());
                    }
                }
                tracing::info!(
                    engine = self.engine.name(),
                    voice = req.voice(),
                    chars = req.text().chars().count(),
                    audio_ms = prompt.duration_ms(),
                    synth_ms = took.as_millis() as u64,
                    "tts: synthesized"
                );
                if let Some(f) = &file {
                    if let Err(e) = write_cached(f, prompt.pcm_8k()) {
                        tracing::warn!(file = %f.display(), error = %e, "tts: cannot write the cache file");
                    }
                }
                let prompt = Arc::new(prompt);
                owner.finish(Ok(Arc::clone(&prompt)));
                Ok((prompt, CacheSource::Synthesized))
            }
            Err(e) => {
                self.counters.synth_failed.fetch_add(1, Ordering::Relaxed);
                owner.finish(Err(e.clone()));
                Err(e)
            }
        }
    }

    /// The cache file for `req`, named by a hash of the key.
    fn file_for(&self, req: &SayRequest) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut h = Sha256::new();
        for part in [self.engine.name(), req.voice(), req.lang(), req.text()] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.update(req.rate_wpm().to_le_bytes());
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Some(dir.join(format!("{hex}.wav")))
    }

    /// Stores a made prompt (if it fits), evicting the least recently used
    /// ones; an error just clears the slot.
    fn publish(&self, key: (String, SayRequest), result: &Result<Arc<Prompt>, TtsError>) {
        let mut st = self.lock();
        st.map.remove(&key);
        let Ok(prompt) = result else { return };
        let bytes = prompt.size_bytes();
        if bytes > self.max_bytes {
            return;
        }
        while st.bytes + bytes > self.max_bytes {
            let Some((_, old)) = st.lru.pop_first() else {
                break;
            };
            if let Some(Slot::Ready { bytes, .. }) = st.map.remove(&old) {
                st.bytes -= bytes;
            }
        }
        st.tick += 1;
        let tick = st.tick;
        st.bytes += bytes;
        st.lru.insert(tick, key.clone());
        st.map.insert(
            key,
            Slot::Ready {
                prompt: Arc::clone(prompt),
                bytes,
                tick,
            },
        );
    }

    /// The synthesis times since the last call: only `/metrics` asks
    /// (each goes to one histogram).
    pub fn take_synth_seconds(&self) -> Vec<f64> {
        std::mem::take(&mut *self.times.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn counts(&self) -> TtsCounts {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let st = self.lock();
        TtsCounts {
            hits_memory: get(&c.hits_memory),
            hits_in_flight: get(&c.hits_in_flight),
            hits_disk: get(&c.hits_disk),
            synth_ok: get(&c.synth_ok),
            synth_failed: get(&c.synth_failed),
            entries: st.lru.len() as u64,
            bytes: st.bytes as u64,
        }
    }
}

/// The owner of a pending slot: publishes the result once; if dropped
/// without (a panic in the engine), tells the waiters it failed.
struct Owner<'a> {
    cache: &'a TtsCache,
    key: Option<(String, SayRequest)>,
    pending: Arc<Pending>,
}

impl Owner<'_> {
    fn finish(&mut self, result: Result<Arc<Prompt>, TtsError>) {
        let Some(key) = self.key.take() else { return };
        self.cache.publish(key, &result);
        let mut slot = self
            .pending
            .result
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *slot = Some(result);
        self.pending.done.notify_all();
    }
}

impl Drop for Owner<'_> {
    fn drop(&mut self) {
        if self.key.is_some() {
            self.finish(Err(TtsError::Engine("the synthesis panicked".into())));
        }
    }
}

fn wait(p: &Pending, deadline: Instant, timeout: Duration) -> Result<Arc<Prompt>, TtsError> {
    let mut slot = p.result.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if let Some(r) = slot.as_ref() {
            return r.clone();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(TtsError::Timeout(timeout));
        }
        slot = p
            .done
            .wait_timeout(slot, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

fn prompt_name(req: &SayRequest) -> String {
    let mut name = String::from("say:");
    name.extend(req.text().chars().take(NAME_CHARS));
    if req.text().chars().count() > NAME_CHARS {
        name.push('…');
    }
    name
}

/// A cache file's 8 kHz PCM; `None` (a miss) if it is missing, too long
/// or not 8 kHz mono 16-bit.
fn read_cached(path: &Path) -> Option<Vec<i16>> {
    let reader = hound::WavReader::open(path).ok()?;
    let spec = reader.spec();
    let max = u64::from(PROMPT_RATE_HZ) * MAX_PROMPT_SECONDS;
    if spec.channels != 1
        || spec.sample_rate != PROMPT_RATE_HZ
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
        || u64::from(reader.duration()) > max
    {
        tracing::warn!(file = %path.display(), "tts: ignoring a cache file that is not 8 kHz mono 16-bit");
        return None;
    }
    let pcm: Result<Vec<i16>, _> = reader.into_samples::<i16>().collect();
    pcm.ok().filter(|p| !p.is_empty())
}

/// Writes a cache file whole or not at all (a temporary name, then a
/// rename), so a crash never leaves half a sentence to be served.
fn write_cached(path: &Path, pcm: &[i16]) -> Result<(), String> {
    let dir = path.parent().ok_or("no directory")?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: PROMPT_RATE_HZ,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let write = || -> Result<(), hound::Error> {
        let mut w = hound::WavWriter::create(&tmp, spec)?;
        for &s in pcm {
            w.write_sample(s)?;
        }
        w.finalize()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.to_string());
    }
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}
