//! Two-way SMS: an inbound SMS runs the Rhai script of its `[[sms_route]]`
//! (`routes`: by the number it was sent to and/or its first word,
//! `keyword`), with the `sms` map, `reply()`, `set_result()` and a
//! `session` map kept per sender and route (`session`); a message that is
//! only an opt-out or opt-in keyword (`[sms] opt_out_keywords`) puts the
//! sender on the do-not-contact list campaigns use, or takes them off,
//! before any route (`run`). Scripts run through the call runner
//! (`script::runner::spawn_flow`) with an [`control::SmsControl`] in place
//! of a call.
//!
//! Every inbound SMS enters by [`accept_inbound`] (the SMPP driver; an
//! HTTP provider's webhook through `SmsService::accept_inbound`): stored,
//! then announced. The flow task takes messages from the store, never
//! from the announcement alone, so one that arrives while it is busy or
//! stopped is still answered.

pub mod control;
pub mod dnc;
pub mod keyword;
pub mod number;
pub mod routes;
mod run;
pub mod session;

use tokio::sync::broadcast;

use super::Notice;
use crate::store::{Store, StoreError};

pub use run::{start, FlowTask};

/// Stores an inbound SMS and announces it (`Notice::Inbound`); the flow
/// task answers it. Returns its id.
pub async fn accept_inbound(
    store: &Store,
    notices: &broadcast::Sender<Notice>,
    from: &str,
    to: &str,
    text: &str,
) -> Result<String, StoreError> {
    let id = store.insert_inbound(from, to, text).await?;
    let _ = notices.send(Notice::Inbound(id.clone()));
    Ok(id)
}

#[cfg(test)]
mod tests;
