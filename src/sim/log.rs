//! A script's `log()` lines in the simulated call's transcript. `log()`
//! writes through `tracing`, as on a real call; for `rivr sim` and
//! `rivr test` a layer picks out those events (the `script_log` field) and
//! notes them on the call being simulated. Other logs go to stderr only
//! when `RIVR_LOG` asks for them.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::sim::call::lock;
use crate::sim::caller::SimCore;
use crate::sim::transcript::Event;

thread_local! {
    /// The simulated call whose script runs on this thread.
    static CURRENT: RefCell<Option<Arc<Mutex<SimCore>>>> = const { RefCell::new(None) };
}

/// Makes `core` the call of this thread's script (once; the `SimCall` does
/// it on its first use, on the script's own thread).
pub fn attach(core: &Arc<Mutex<SimCore>>) {
    CURRENT.with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            if c.is_none() {
                *c = Some(core.clone());
            }
        }
    });
}

/// Installs stderr logging (`RIVR_LOG`, off by default) and the capture.
pub fn init(ansi: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RIVR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi)
        .with_filter(filter);
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(Capture)
        .try_init();
}

/// The layer that notes `log()` lines on the current call.
pub struct Capture;

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().fields().field("script_log").is_none() {
            return;
        }
        let mut v = ScriptLog(None);
        event.record(&mut v);
        let Some(message) = v.0 else { return };
        let core = CURRENT.with(|c| c.try_borrow().ok().and_then(|c| c.clone()));
        if let Some(core) = core {
            crate::script::memory::uncharged(|| lock(&core).note(Event::Log { message }));
        }
    }
}

struct ScriptLog(Option<String>);

impl Visit for ScriptLog {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "script_log" {
            self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "script_log" {
            // `log()` records the text with `?`: a quoted, escaped string.
            let quoted = format!("{value:?}");
            self.0 = Some(serde_json::from_str::<String>(&quoted).unwrap_or(quoted));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::keys::KeyPlan;

    #[test]
    fn script_log_events_land_on_the_current_call() {
        let core = Arc::new(Mutex::new(SimCore::new(
            KeyPlan::default(),
            None,
            "no_answer",
        )));
        let subscriber = tracing_subscriber::registry().with(Capture);
        attach(&core);
        tracing::subscriber::with_default(subscriber, || {
            let msg = "menu choice: \"2\"".to_string();
            tracing::info!(call = "sim-1", script_log = ?msg, "script");
            tracing::info!("not a script line");
        });
        let lines: Vec<String> = lock(&core).lines.iter().map(|l| l.text()).collect();
        assert_eq!(lines, vec!["   0.000  log menu choice: \"2\"".to_string()]);
    }
}
