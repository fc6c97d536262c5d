//! A failed test's own message stays at the end of its output: the
//! harness's dumps (a carrier's SIP trace, rivr's stderr) follow the panic
//! message, and CI shows only the last lines, so each dump repeats the
//! failure after itself.

use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Keeps each test thread's panic message (installed once per process,
/// chained to the default hook so nothing printed changes).
pub fn remember_failures() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{at}: {msg}")));
            previous(info);
        }));
    });
}

/// After a dump printed while unwinding: the failure again, cut to a
/// few lines.
pub fn repeat_failure() {
    if !std::thread::panicking() {
        return;
    }
    LAST_PANIC.with(|p| {
        if let Some(msg) = p.borrow().as_deref() {
            let short: String = msg.lines().take(12).collect::<Vec<_>>().join("\n");
            eprintln!("=== the test failed (repeated after the dump above) at {short}");
        }
    });
}
