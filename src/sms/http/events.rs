//! What providers report on their own: delivery reports and inbound SMS
//! (from the webhooks, or Infobip's pull) into the store, announced as the
//! SMPP driver announces its own.

use std::time::Duration;

use tokio::sync::broadcast;

use super::client::{Client, Reply};
use super::{infobip, Event};
use crate::sms::config::HttpSmsConfig;
use crate::sms::Notice;
use crate::store::{Store, StoreError};

/// Infobip's pulled delivery reports, every `reports_poll_secs`.
pub(super) async fn pull_reports(
    cfg: HttpSmsConfig,
    client: Client,
    store: Store,
    notices: broadcast::Sender<Notice>,
) {
    let every = Duration::from_secs(cfg.reports_poll_secs.max(1));
    loop {
        tokio::time::sleep(every).await;
        match client.send(infobip::reports_request(&cfg)).await {
            Reply::Answer { status, body } if (200..300).contains(&status) => {
                let events = infobip::parse_events(body.as_bytes());
                if let Err(e) = apply_events(&store, &notices, events).await {
                    tracing::error!("sms infobip: store pulled reports: {e}");
                }
            }
            Reply::Answer { status, body } => tracing::warn!(
                "sms infobip: report pull: HTTP {status}: {}",
                infobip::error_text(&body)
            ),
            Reply::NotSent(why) | Reply::Lost(why) => {
                tracing::warn!("sms infobip: report pull: {why}")
            }
        }
    }
}

/// Stores what a provider reported: receipts matched to every part with
/// that provider id, inbound SMS kept like SMPP's. Returns how many
/// receipts matched a part and how many inbound SMS were stored.
pub(crate) async fn apply_events(
    store: &Store,
    notices: &broadcast::Sender<Notice>,
    events: Vec<Event>,
) -> Result<(usize, usize), StoreError> {
    let (mut matched, mut inbound) = (0, 0);
    for e in events {
        match e {
            // An empty id would match every part accepted without one.
            Event::Receipt(r) if r.smsc_id.trim().is_empty() => {}
            Event::Receipt(r) => {
                if let Some(id) = store.apply_receipt(&r).await? {
                    matched += 1;
                    let _ = notices.send(Notice::State(id));
                }
            }
            Event::Inbound {
                from,
                to,
                text,
                provider_id,
                concat,
            } => {
                let id = match concat {
                    Some(c) => {
                        store
                            .insert_inbound_part(&from, &to, c.reference, c.total, c.seq, &text)
                            .await?
                    }
                    // Parts are kept once by their number already.
                    None if provider_id.is_empty() => {
                        Some(store.insert_inbound(&from, &to, &text).await?)
                    }
                    None => {
                        let id = store
                            .insert_provider_inbound(&provider_id, &from, &to, &text)
                            .await?;
                        if id.is_none() {
                            tracing::info!(%provider_id, "sms http: inbound SMS posted again; stored once");
                        }
                        id
                    }
                };
                if let Some(id) = id {
                    tracing::info!(%id, %provider_id, "sms http: inbound SMS stored");
                    inbound += 1;
                    inbound_sms_arrived(notices, id);
                }
            }
        }
    }
    Ok((matched, inbound))
}

/// An inbound SMS from a provider's webhook is stored: announce it as the
/// SMPP driver does. The two-way flows (`sms::flow`) take their work from
/// the stored rows, so the announcement only wakes them.
fn inbound_sms_arrived(notices: &broadcast::Sender<Notice>, id: String) {
    let _ = notices.send(Notice::Inbound(id));
}
