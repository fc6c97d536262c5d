//! The dashboard's "recent errors": the last WARN and ERROR log events,
//! kept in a small ring by a `tracing` layer beside the log formatter.
//!
//! The layer sees only what the log filter lets through, returns at once
//! for INFO and below, and takes one short lock per warning, so it costs
//! nothing on the media path (which does not log per packet). The ring is
//! process-wide because the subscriber is: `rivr serve` installs the layer
//! in `main` and the API reads it.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock, PoisonError};

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// How many events the ring holds.
const KEEP: usize = 20;
/// A line's longest text: fields can carry network input of any size.
const MAX_CHARS: usize = 400;

/// One WARN or ERROR event.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogLine {
    pub t_ms: i64,
    pub level: &'static str,
    /// The module that logged it.
    pub target: String,
    /// The message, then the other fields as `key=value`.
    pub text: String,
}

fn ring() -> &'static Mutex<VecDeque<LogLine>> {
    static RING: OnceLock<Mutex<VecDeque<LogLine>>> = OnceLock::new();
    RING.get_or_init(|| Mutex::new(VecDeque::with_capacity(KEEP)))
}

/// The recent WARN and ERROR events, newest first.
pub fn recent() -> Vec<LogLine> {
    let r = ring().lock().unwrap_or_else(PoisonError::into_inner);
    r.iter().rev().cloned().collect()
}

fn push(line: LogLine) {
    let mut r = ring().lock().unwrap_or_else(PoisonError::into_inner);
    if r.len() == KEEP {
        r.pop_front();
    }
    r.push_back(line);
}

/// The layer `main` adds to the log subscriber.
#[derive(Debug, Default, Clone, Copy)]
pub struct RecentErrors;

impl<S: Subscriber> Layer<S> for RecentErrors {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = *meta.level();
        // Level order: ERROR < WARN < INFO < … ("more verbose is greater").
        if level > Level::WARN {
            return;
        }
        let mut text = Text::default();
        event.record(&mut text);
        push(LogLine {
            t_ms: crate::store::now_ms(),
            level: if level == Level::ERROR {
                "error"
            } else {
                "warn"
            },
            target: meta.target().to_string(),
            text: text.finish(),
        });
    }
}

/// The message first, then `key=value` for the other fields, cut at
/// [`MAX_CHARS`].
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Text {
    fn finish(self) -> String {
        let mut s = self.message;
        if !self.fields.is_empty() {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(&self.fields);
        }
        if let Some((i, _)) = s.char_indices().nth(MAX_CHARS) {
            s.truncate(i);
            s.push('…');
        }
        s
    }
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &format_args!("{value}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // Enough text is enough: a field of megabytes stops here.
        if self.message.len() + self.fields.len() > MAX_CHARS * 4 {
            return;
        }
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn keeps_the_last_warnings_newest_first_and_skips_info() {
        let subscriber = tracing_subscriber::registry().with(RecentErrors);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("not kept");
            for i in 0..(KEEP + 5) {
                tracing::warn!(n = i, who = "x", "warning {i}");
            }
            tracing::error!(error = %"boom", "it broke");
            let long = "y".repeat(5000);
            tracing::warn!(field = %long, "long");
        });
        let r = recent();
        assert_eq!(r.len(), KEEP);
        assert_eq!(r[0].level, "warn");
        assert!(r[0].text.chars().count() <= MAX_CHARS + 1, "{}", r[0].text);
        assert_eq!(r[1].level, "error");
        assert_eq!(r[1].text, "it broke error=boom");
        assert_eq!(
            r[2].text,
            format!("warning {} n={} who=x", KEEP + 4, KEEP + 4)
        );
        assert!(r.iter().all(|l| !l.text.contains("not kept")));
    }
}
