//! What every supervisor in rivr shares: the text of a caught panic, and the
//! process's panic hook.
//!
//! A panic payload is just a value: its message may quote whatever the code
//! was looking at, bytes from the network included. The standard hook prints
//! it raw to stderr; rivr's hook logs it through `tracing` with the message
//! escaped (`?`), like every other field that may hold network text.

use std::any::Any;

/// The message a panic carried (`panic!("…")` gives a `&str` or a
/// `String`); a placeholder for any other payload. Log it with `?`.
pub fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.as_str()
    } else {
        "(a panic without a message)"
    }
}

/// Replaces the standard panic hook (process-wide) with one that logs the
/// thread, the location and the escaped message as one `tracing` error, and
/// a backtrace when `RUST_BACKTRACE` asks for one. The supervisor that
/// catches the panic logs what it ended and what it restarts.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let message = panic_message(info.payload());
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            tracing::error!(thread = ?thread.name(), %location, ?message, %backtrace, "panic");
        } else {
            tracing::error!(thread = ?thread.name(), %location, ?message, "panic");
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_of_str_string_and_other_payloads() {
        let caught = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "plain");
        let caught = std::panic::catch_unwind(|| panic!("with {}", "args\0")).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "with args\0");
        let caught = std::panic::catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
        assert_eq!(
            panic_message(caught.as_ref()),
            "(a panic without a message)"
        );
    }
}
