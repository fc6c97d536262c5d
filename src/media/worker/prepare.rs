//! Encoding prompts in 10 ms Opus frames off the media tick, on first
//! need.
//!
//! Prompts are pre-encoded in 20 ms frames when loaded; an Opus leg whose
//! peer asked for 10 ms packets needs them in 10 ms frames too, which cost
//! as much to make (tens of milliseconds for a prompt of a few seconds):
//! too long for the tick, which serves every call of the worker. So the
//! first time such a leg plays a prompt, the worker hands the prompt here
//! (a bounded queue, never waited on) and one thread per pool encodes it,
//! once, into the prompt itself, where every later play on every leg finds
//! it (`Prompt::prepare_opus_10ms`). Meanwhile that first play goes through
//! the leg's own encoder (`media::core`), so nobody waits.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::media::prompt::Prompt;

/// Prompts waiting to be encoded at most; one more is asked again at its
/// next play.
const QUEUE: usize = 64;

/// Where a worker sends prompts to encode in 10 ms Opus frames.
#[derive(Clone)]
pub(super) struct Preparer {
    tx: Sender<Arc<Prompt>>,
}

impl Preparer {
    /// The preparer and its thread (`prompt-prep`), which ends when every
    /// [`Preparer`] is dropped and the queue is empty.
    pub fn start() -> std::io::Result<(Preparer, JoinHandle<()>)> {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        let thread = std::thread::Builder::new()
            .name("prompt-prep".into())
            .spawn(move || run(&rx))?;
        Ok((Preparer { tx }, thread))
    }

    /// A preparer that prepares nothing (every request is withdrawn), for
    /// measurements of the legs' own encoding.
    #[cfg(test)]
    pub fn none() -> Preparer {
        let (tx, _) = crossbeam_channel::bounded(1);
        Preparer { tx }
    }

    /// Has `prompt` encoded in 10 ms Opus frames (the caller asked it with
    /// `Prompt::request_opus_10ms`). Never blocks; with the queue full the
    /// request is withdrawn, so a later play asks again.
    pub fn prepare(&self, prompt: &Arc<Prompt>) {
        match self.tx.try_send(Arc::clone(prompt)) {
            Ok(()) => {}
            Err(TrySendError::Full(p) | TrySendError::Disconnected(p)) => {
                p.unrequest_opus_10ms();
            }
        }
    }
}

fn run(rx: &Receiver<Arc<Prompt>>) {
    while let Ok(prompt) = rx.recv() {
        let started = std::time::Instant::now();
        let ok = prompt.prepare_opus_10ms();
        tracing::debug!(
            prompt = prompt.name(),
            ok,
            ms = started.elapsed().as_millis() as u64,
            "prompt encoded in 10 ms Opus frames"
        );
    }
}
