//! The `CallControl` a simulated call's script gets: every verb goes to the
//! shared `SimCore` (which the simulator reads afterwards), prompts come
//! from the server's own `PromptStore`, and the clock is the core's.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::call::control::{CallControl, CallEnded, CallEvent, DialRequest};
use crate::media::prompt::{Prompt, PromptStore};
use crate::sim::caller::SimCore;

/// The `CallControl` a simulated call's script gets: the shared core, and
/// the prompts loaded as the server loads them.
pub struct SimCall {
    t0: Instant,
    core: Arc<Mutex<SimCore>>,
    prompts: Arc<PromptStore>,
}

impl SimCall {
    pub fn new(core: Arc<Mutex<SimCore>>, prompts: Arc<PromptStore>) -> SimCall {
        SimCall {
            t0: Instant::now(),
            core,
            prompts,
        }
    }

    /// Runs `f` on the core. What the transcript keeps is the simulator's,
    /// not the script's: it is not charged to the script's memory budget.
    fn with<T>(&self, f: impl FnOnce(&mut SimCore) -> T) -> T {
        crate::script::memory::uncharged(|| {
            crate::sim::log::attach(&self.core);
            f(&mut lock(&self.core))
        })
    }
}

/// The core, even after a panic elsewhere poisoned the lock.
pub fn lock(core: &Mutex<SimCore>) -> MutexGuard<'_, SimCore> {
    core.lock().unwrap_or_else(|p| p.into_inner())
}

impl CallControl for SimCall {
    fn now(&self) -> Instant {
        self.t0 + self.with(|c| c.elapsed())
    }

    fn answer(&mut self) -> Result<(), CallEnded> {
        self.with(|c| {
            if c.is_gone() {
                return Err(CallEnded);
            }
            c.answer();
            Ok(())
        })
    }

    fn ring(&mut self, early_media: bool) -> Result<(), CallEnded> {
        self.with(|c| {
            if c.is_gone() {
                return Err(CallEnded);
            }
            c.ring(early_media);
            Ok(())
        })
    }

    fn reject(&mut self, code: u16) -> Result<(), CallEnded> {
        self.with(|c| {
            if c.is_gone() {
                return Err(CallEnded);
            }
            c.reject(code);
            Ok(())
        })
    }

    fn hangup(&mut self) {
        self.with(SimCore::hangup)
    }

    fn play(
        &mut self,
        id: u64,
        prompts: Vec<Arc<Prompt>>,
        interruptible: bool,
    ) -> Result<(), CallEnded> {
        self.with(|c| {
            if c.is_gone() {
                return Err(CallEnded);
            }
            c.play(id, prompts, interruptible);
            Ok(())
        })
    }

    fn stop_play(&mut self, id: u64) {
        self.with(|c| c.stop_play(id))
    }

    fn send_digits(&mut self, id: u64, keys: &str) -> Result<(), CallEnded> {
        self.with(|c| {
            if c.is_gone() {
                return Err(CallEnded);
            }
            c.send_digits(id, keys);
            Ok(())
        })
    }

    fn next_event(&mut self, timeout: Option<Duration>) -> Option<CallEvent> {
        self.with(|c| c.next_event(timeout))
    }

    fn prompt(&self, name: &str) -> Result<Arc<Prompt>, String> {
        self.prompts.get(name).map_err(|e| e.to_string())
    }

    fn set_result(&mut self, key: &str, value: &str) {
        self.with(|c| c.set_result(key, value))
    }

    fn is_answered(&self) -> bool {
        self.with(|c| c.is_answered())
    }

    fn is_gone(&self) -> bool {
        self.with(|c| c.is_gone())
    }

    fn send_sms(&mut self, to: &str, text: &str) -> Result<String, String> {
        Ok(self.with(|c| c.send_sms(to, text)))
    }

    fn opt_out(&mut self, number: Option<&str>) -> Result<bool, String> {
        self.with(|c| c.opt_out(number.unwrap_or("the caller")));
        Ok(true)
    }

    // Recorded like any SMS; the simulator sends nothing, so there is no
    // schedule or route to honour.
    fn send_sms_with(
        &mut self,
        to: &str,
        text: &str,
        _: &crate::sms::SendOptions,
    ) -> Result<String, String> {
        self.send_sms(to, text)
    }

    fn dial(&mut self, req: DialRequest) -> Result<(), CallEnded> {
        self.with(|c| {
            if c.is_gone() {
                return Err(CallEnded);
            }
            c.dial(&req);
            Ok(())
        })
    }
}
