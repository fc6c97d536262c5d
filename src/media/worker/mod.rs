//! Media workers: a few OS threads, each serving many calls (legs) on one
//! fixed 20 ms tick. A leg is its sans-IO [`MediaCore`](crate::media::core)
//! behind a packet path (`path::PacketPath`: RTP today). Each tick has three
//! steps: every leg receives (its path drains its sockets into its core,
//! which plays out one heard frame); every join hands its listener the
//! source's frame and keys (`joins`); every leg sends its next frame (a
//! slice of a pre-encoded prompt, a key, the joined audio in its codec, or
//! silence). One wake-up serves hundreds of calls; nothing on this path
//! allocates or takes a lock per packet.
//!
//! Supervision: a panic while serving one call (its tick, or a command
//! about it) ends that call only — removed from the table, its ports
//! released, its owner told through the call's event sink
//! ([`MediaEvent::Failed`]), counted in [`MediaFailures`] and logged. A panic anywhere else in the loop ends every call of that
//! worker the same way, and the worker starts again on the same thread
//! with an empty table. `catch_unwind` costs nothing until something
//! panics; it wraps a call's tick, not each packet.

mod bchannel_path;
mod call;
mod commands;
mod joins;
pub mod live;
mod path;
mod prepare;
mod recording;
mod recv_batch;
mod rtp_path;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tick_cost;
pub mod totals;

use std::any::Any;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use crate::media::events::{MediaEvent, MediaId};

use call::MediaCall;
pub use commands::{BChannelKind, BChannelSetup, MediaCallSetup, MediaCommand};
use prepare::Preparer;

/// One frame period.
pub const TICK: Duration = Duration::from_millis(20);
/// How often each call's live figures are written for the API.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);
/// How far behind the worker may fall before it drops the backlog.
const MAX_CATCH_UP: Duration = Duration::from_millis(100);

/// Panics the media workers survived, for the server's metrics.
#[derive(Debug, Default)]
pub struct MediaFailures {
    /// Panics while serving one call (its tick or a command about it).
    pub call_panics: AtomicU64,
    /// Panics elsewhere in a worker's loop, after which it started again.
    pub worker_restarts: AtomicU64,
    /// Calls ended by either.
    pub calls_ended: AtomicU64,
}

/// Where a test makes a worker panic.
#[cfg(test)]
#[derive(Debug, Clone, Copy)]
pub enum InjectedPanic {
    /// While applying a command about the call.
    Command,
    /// While serving the call on its next tick.
    Tick,
    /// In the worker's loop, outside any one call.
    Loop,
}

struct Worker {
    index: usize,
    rx: Receiver<MediaCommand>,
    calls: HashMap<MediaId, MediaCall>,
    /// Who hears whom (few; changed only by commands).
    joins: Vec<joins::Join>,
    recv_buf: Vec<u8>,
    send_buf: Vec<u8>,
    /// Calls whose tick panicked, ended after the pass over the table
    /// (empty, and not allocating, unless something panicked).
    failed: Vec<MediaId>,
    failures: Arc<MediaFailures>,
    /// What ended calls' media added up to (`/metrics`).
    totals: Arc<totals::MediaTotals>,
    /// Each call's media now, written once a second (`/calls`).
    live: live::LiveTable,
    next_publish: Instant,
    /// Encodes prompts in 10 ms Opus frames off the tick (`prepare`).
    preparer: Preparer,
    #[cfg(test)]
    panic_in_loop: bool,
}

/// A panic's message, for the log.
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic without a message)")
}

impl Worker {
    fn new(
        index: usize,
        rx: Receiver<MediaCommand>,
        failures: Arc<MediaFailures>,
        totals: Arc<totals::MediaTotals>,
        live: live::LiveTable,
        preparer: Preparer,
    ) -> Worker {
        Worker {
            index,
            rx,
            calls: HashMap::new(),
            joins: Vec::with_capacity(64),
            recv_buf: vec![0; 2048],
            // Room for a 60 ms Opus packet of three frames (`media::packetizer`).
            send_buf: vec![0; 4096],
            failed: Vec::with_capacity(8),
            failures,
            totals,
            live,
            next_publish: Instant::now(),
            preparer,
            #[cfg(test)]
            panic_in_loop: false,
        }
    }

    /// The thread's body: serves until `Shutdown` (or every sender is
    /// gone). A panic outside any one call ends all of this worker's calls
    /// and serves again, on the same thread, with an empty table.
    fn run(mut self) {
        loop {
            let panic = match catch_unwind(AssertUnwindSafe(|| self.serve())) {
                Ok(()) => return,
                Err(panic) => panic,
            };
            self.failures
                .worker_restarts
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                worker = self.index,
                panic = ?panic_message(panic.as_ref()),
                calls = self.calls.len(),
                "media worker panicked; its calls are ended and it starts again"
            );
            let calls: Vec<MediaId> = self.calls.keys().copied().collect();
            for call in calls {
                // Ending one call must not stop the others from ending.
                let _ = catch_unwind(AssertUnwindSafe(|| self.end_failed(call)));
            }
            for id in self.calls.keys() {
                self.live.remove(id);
            }
            self.calls = HashMap::new();
            self.joins.clear();
            self.failed.clear();
            // A fault that recurs at once is not retried faster than a tick.
            std::thread::sleep(TICK);
        }
    }

    /// Ends a call whose serving panicked: out of the table (its ports go
    /// back when it drops), its owner told, counted. The
    /// call itself is not touched again: no RTCP BYE from a broken state.
    fn end_failed(&mut self, call: MediaId) {
        self.forget_joins(call);
        let Some(c) = self.calls.remove(&call) else {
            // A panic while adding it: the setup (and its sink) unwound
            // with it; the owner learns of it when its commands find no
            // call (nothing answers them).
            return;
        };
        self.live.remove(&call);
        self.failures.calls_ended.fetch_add(1, Ordering::Relaxed);
        c.events.emit(MediaEvent::Failed);
    }

    fn call_panicked(&mut self, call: MediaId, during: &str, panic: &(dyn Any + Send)) {
        log_call_panic(self.index, &self.failures, call, during, panic);
        let _ = catch_unwind(AssertUnwindSafe(|| self.end_failed(call)));
    }

    /// Applies a command; a panic ends the call it was about.
    fn apply_guarded(&mut self, cmd: MediaCommand, now: Instant) -> bool {
        let call = cmd.call();
        match catch_unwind(AssertUnwindSafe(|| self.apply(cmd, now))) {
            Ok(go_on) => go_on,
            Err(panic) => {
                if let Some(call) = call {
                    self.call_panicked(call, "command", panic.as_ref());
                }
                true
            }
        }
    }

    /// One tick over every call: all receive, joins are fed, all send. A
    /// call whose part of the tick panics is ended after the pass.
    fn tick(&mut self, now: Instant) {
        for (call, c) in self.calls.iter_mut() {
            let buf = &mut self.recv_buf;
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| c.receive(now, buf))) {
                log_call_panic(self.index, &self.failures, *call, "tick", panic.as_ref());
                self.failed.push(*call);
            }
        }
        if !self.joins.is_empty() {
            self.mix();
        }
        for (call, c) in self.calls.iter_mut() {
            if self.failed.contains(call) {
                continue;
            }
            let buf = &mut self.send_buf;
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| c.send(now, buf))) {
                log_call_panic(self.index, &self.failures, *call, "tick", panic.as_ref());
                self.failed.push(*call);
            }
        }
        while let Some(call) = self.failed.pop() {
            let _ = catch_unwind(AssertUnwindSafe(|| self.end_failed(call)));
        }
    }

    fn serve(&mut self) {
        let mut next_tick = Instant::now();
        loop {
            let now = Instant::now();
            loop {
                match self.rx.try_recv() {
                    Ok(cmd) => {
                        if !self.apply_guarded(cmd, now) {
                            return;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            #[cfg(test)]
            if std::mem::take(&mut self.panic_in_loop) {
                panic!("injected panic in the worker loop");
            }
            self.tick(now);
            if now >= self.next_publish {
                self.next_publish = now + PUBLISH_EVERY;
                for (id, c) in &self.calls {
                    self.live.insert(*id, live::LiveMedia::of(c));
                }
            }
            next_tick += TICK;
            let after = Instant::now();
            if after >= next_tick + MAX_CATCH_UP {
                // Descheduled for long: resume the cadence from now rather
                // than bursting the backlog at the callers.
                next_tick = after + TICK;
            }
            // Otherwise a late tick is caught up at once (the wait below is
            // zero), so each call still gets 50 frames a second under load.
            // Commands are applied as they arrive, so a play starts or stops
            // without waiting for the tick; the tick schedule is kept.
            loop {
                let wait = next_tick.saturating_duration_since(Instant::now());
                if wait.is_zero() {
                    break;
                }
                match self.rx.recv_timeout(wait) {
                    Ok(cmd) => {
                        if !self.apply_guarded(cmd, Instant::now()) {
                            return;
                        }
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => break,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
                }
            }
        }
    }
}

/// Counts and logs a panic while serving one call.
fn log_call_panic(
    worker: usize,
    failures: &MediaFailures,
    call: MediaId,
    during: &str,
    panic: &(dyn Any + Send),
) {
    failures.call_panics.fetch_add(1, Ordering::Relaxed);
    tracing::error!(
        worker,
        call = %call,
        during,
        panic = ?panic_message(panic),
        "serving a call's media panicked; that call is ended"
    );
}

/// The wall clock as a 64-bit NTP timestamp, for RTCP sender reports. Read
/// once per call, at the edge (the RTP session keeps it from there).
fn ntp_now() -> u64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The call's media worker has stopped (shutdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the media worker is gone")]
pub struct WorkerGone;

/// How the owner of a call reaches its media: the call's id and its
/// worker's command channel.
#[derive(Clone)]
pub struct MediaHandle {
    pub id: MediaId,
    worker: usize,
    tx: Sender<MediaCommand>,
}

impl MediaHandle {
    /// Queues a command for the call's worker; `Err` once the worker is gone.
    pub fn send(&self, cmd: MediaCommand) -> Result<(), WorkerGone> {
        self.tx.send(cmd).map_err(|_| WorkerGone)
    }

    /// Which worker serves the call.
    pub fn worker(&self) -> usize {
        self.worker
    }
}

impl std::fmt::Debug for MediaHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MediaHandle({}, worker {})", self.id, self.worker)
    }
}

/// The pool of media workers; calls are spread round-robin.
pub struct MediaPool {
    workers: Vec<Sender<MediaCommand>>,
    next: AtomicUsize,
    failures: Arc<MediaFailures>,
    totals: Arc<totals::MediaTotals>,
    live: live::LiveTable,
    handles: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl MediaPool {
    /// Starts `n` workers (0: one per core).
    pub fn start(n: usize) -> std::io::Result<MediaPool> {
        let n = if n == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            n
        };
        let mut workers = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        let failures = Arc::new(MediaFailures::default());
        let totals = Arc::new(totals::MediaTotals::default());
        let live = live::LiveTable::default();
        // The workers hold the only senders: it ends after them.
        let (preparer, prep_thread) = Preparer::start()?;
        for i in 0..n {
            let (tx, rx) = crossbeam_channel::unbounded();
            let w = Worker::new(
                i,
                rx,
                failures.clone(),
                totals.clone(),
                live.clone(),
                preparer.clone(),
            );
            handles.push(
                std::thread::Builder::new()
                    .name(format!("media-{i}"))
                    .spawn(move || w.run())?,
            );
            workers.push(tx);
        }
        drop(preparer);
        handles.push(prep_thread);
        Ok(MediaPool {
            workers,
            next: AtomicUsize::new(0),
            failures,
            totals,
            live,
            handles: std::sync::Mutex::new(handles),
        })
    }

    /// Hands a call to a worker (round-robin); returns its handle.
    pub fn add(&self, setup: MediaCallSetup) -> Option<MediaHandle> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len().max(1);
        self.add_to(i, setup)
    }

    /// Hands a call to the worker that serves `near`, so the two can be
    /// joined without crossing threads (the legs of a bridge).
    pub fn add_near(&self, setup: MediaCallSetup, near: &MediaHandle) -> Option<MediaHandle> {
        self.add_to(near.worker, setup)
    }

    /// Hands a B-channel leg to a worker: round-robin, or beside `near`
    /// (the other leg of a bridge).
    pub fn add_bchannel(
        &self,
        setup: BChannelSetup,
        near: Option<&MediaHandle>,
    ) -> Option<MediaHandle> {
        let worker = match near {
            Some(n) => n.worker,
            None => self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len().max(1),
        };
        let id = setup.call;
        self.send_add(worker, id, MediaCommand::AddBChannel(Box::new(setup)))
    }

    fn add_to(&self, worker: usize, setup: MediaCallSetup) -> Option<MediaHandle> {
        let id = setup.call;
        self.send_add(worker, id, MediaCommand::Add(Box::new(setup)))
    }

    fn send_add(&self, worker: usize, id: MediaId, add: MediaCommand) -> Option<MediaHandle> {
        let tx = self.workers.get(worker)?.clone();
        tx.send(add).ok()?;
        Some(MediaHandle { id, worker, tx })
    }

    /// Panics the workers survived so far.
    pub fn failures(&self) -> &MediaFailures {
        &self.failures
    }

    /// What the media of ended calls added up to.
    pub fn totals(&self) -> totals::MediaSnapshot {
        self.totals.snapshot()
    }

    /// A call's media now (at most a second old), while it runs.
    pub fn live(&self, id: MediaId) -> Option<live::LiveMedia> {
        self.live.get(&id).map(|m| m.clone())
    }

    /// Each leg's final jitter-buffer delay since the last call.
    pub fn take_delays(&self) -> Vec<f64> {
        self.totals.take_delays()
    }

    pub fn shutdown(&self) {
        for w in &self.workers {
            let _ = w.send(MediaCommand::Shutdown);
        }
        if let Ok(mut h) = self.handles.lock() {
            for h in h.drain(..) {
                let _ = h.join();
            }
        }
    }
}
