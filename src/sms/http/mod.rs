//! The HTTP SMS transport, for providers reached over an HTTP API: the
//! Infobip and Vonage presets and the generic [`template`] (docs/sms.md,
//! "HTTP providers"). Messages go in order, one request at a time (Infobip:
//! up to [`infobip::MAX_BULK`] queued messages in one bulk request). 429,
//! 5xx, network errors and the provider's "throttled"/"internal error"
//! answers are retried with backoff; other errors fail the message with the
//! provider's error text. Delivery reports and inbound SMS arrive through
//! [`webhook`] (and Infobip's report pull) and go to the store by
//! [`apply_events`].

mod client;
mod events;
mod infobip;
pub(crate) mod template;
mod vonage;
pub(crate) mod webhook;

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use self::client::{Client, Reply};
pub(crate) use self::events::apply_events;
use self::events::pull_reports;
use super::config::{HttpSmsConfig, Provider};
use super::driver::DriverCmd;
use super::encoding::{Concat, DC_UCS2};
use super::receipt::Receipt;
use super::Notice;
use crate::store::{Store, StoreError, StoredPart};

/// One rivr message to send, with the numbers of its stored parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outgoing {
    pub id: String,
    pub to: String,
    pub from: String,
    pub text: String,
    /// Not GSM 7-bit: Vonage needs `type=unicode`.
    pub ucs2: bool,
    pub parts: Vec<u8>,
}

/// Per part of a message: the provider's id, or why it was refused.
pub(crate) type PartResult = Vec<Result<String, String>>;

/// How a send request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// An outcome per message of the batch, per part.
    Each(Vec<PartResult>),
    /// Refused for good, every message of the batch.
    Rejected(String),
    /// Worth trying again; the provider may have taken it.
    Retry(String),
    /// Worth trying again; the provider certainly did not take it.
    NotTaken(String),
}

/// What a provider told rivr on its own: a delivery report, an inbound SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    Receipt(Receipt),
    Inbound {
        from: String,
        to: String,
        text: String,
        provider_id: String,
        /// One part of a concatenated SMS the provider did not join.
        concat: Option<Concat>,
    },
}

const MAX_ATTEMPTS: u32 = 5;

pub(crate) async fn run(
    cfg: HttpSmsConfig,
    store: Store,
    unsent: Vec<StoredPart>,
    mut cmds: mpsc::UnboundedReceiver<DriverCmd>,
    notices: broadcast::Sender<Notice>,
) {
    let client = match Client::new(&cfg) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("sms http: {e}; messages stay queued");
            return;
        }
    };
    // Infobip keeps reports for a pull when no notifyUrl was given.
    let _puller = (cfg.provider == Provider::Infobip && cfg.webhook_url.is_empty()).then(|| {
        AbortOnDrop(tokio::spawn(pull_reports(
            cfg.clone(),
            client.clone(),
            store.clone(),
            notices.clone(),
        )))
    });
    let mut pending: VecDeque<Outgoing> = VecDeque::new();
    take(&store, &notices, &mut pending, unsent).await;
    let bulk = match cfg.provider {
        Provider::Infobip => infobip::MAX_BULK,
        _ => 1,
    };
    let mut stop = None;
    loop {
        if pending.is_empty() && stop.is_none() {
            match cmds.recv().await {
                Some(DriverCmd::Submit(p)) => take(&store, &notices, &mut pending, p).await,
                Some(DriverCmd::Shutdown(tx)) => stop = Some(tx),
                None => return,
            }
        }
        // Whatever queued up meanwhile joins the next bulk request.
        while stop.is_none() {
            match cmds.try_recv() {
                Ok(DriverCmd::Submit(p)) => take(&store, &notices, &mut pending, p).await,
                Ok(DriverCmd::Shutdown(tx)) => stop = Some(tx),
                Err(_) => break,
            }
        }
        if pending.is_empty() {
            if let Some(tx) = stop.take() {
                let _ = tx.send(());
                return;
            }
            continue;
        }
        let n = bulk.min(pending.len());
        let batch: Vec<Outgoing> = pending.drain(..n).collect();
        send_batch(&cfg, &client, &store, &notices, batch).await;
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Groups stored parts into messages (consecutive parts of one id). The
/// text is in part 1 (the presets store the whole text there and count
/// the other parts only); a message without it fails.
async fn take(
    store: &Store,
    notices: &broadcast::Sender<Notice>,
    pending: &mut VecDeque<Outgoing>,
    parts: Vec<StoredPart>,
) {
    let mut groups: Vec<(Vec<u8>, Option<StoredPart>, StoredPart)> = Vec::new();
    for p in parts {
        match groups.last_mut() {
            Some((nums, first, last)) if last.message_id == p.message_id => {
                nums.push(p.part);
                if p.part == 1 {
                    *first = Some(p.clone());
                }
                *last = p;
            }
            _ => groups.push((vec![p.part], (p.part == 1).then(|| p.clone()), p)),
        }
    }
    for (nums, first, last) in groups {
        let Some(first) = first else {
            for n in &nums {
                let res = store
                    .mark_rejected(&last.message_id, *n, "text lost: part 1 is not queued")
                    .await;
                log_store(res, &last.message_id);
            }
            let _ = notices.send(Notice::State(last.message_id));
            continue;
        };
        pending.push_back(Outgoing {
            id: first.message_id.clone(),
            to: first.destination.clone(),
            from: first.source.clone(),
            text: String::from_utf8_lossy(&first.short_message).into_owned(),
            ucs2: first.data_coding == DC_UCS2,
            parts: nums,
        });
    }
}

fn log_store(res: Result<(), StoreError>, id: &str) {
    if let Err(e) = res {
        tracing::error!("sms http: store {id}: {e}");
    }
}

async fn send_batch(
    cfg: &HttpSmsConfig,
    client: &Client,
    store: &Store,
    notices: &broadcast::Sender<Notice>,
    batch: Vec<Outgoing>,
) {
    let keys: Vec<(&str, u8)> = batch
        .iter()
        .flat_map(|m| m.parts.iter().map(|p| (m.id.as_str(), *p)))
        .collect();
    let mut delay = Duration::from_millis(500);
    let mut maybe_taken = false;
    for attempt in 1..=MAX_ATTEMPTS {
        // Stored before the request leaves: a later process never sends a
        // part this one may have handed over (docs/sms.md, "Nothing twice").
        if let Err(e) = store.mark_sending(&keys).await {
            tracing::error!(
                "sms http: store {} as sending: {e}; left queued",
                batch[0].id
            );
            return;
        }
        let why = match request(cfg, client, &batch).await {
            Answer::Each(results) => {
                record(store, notices, &batch, results).await;
                return;
            }
            Answer::Rejected(why) => {
                for (id, part) in &keys {
                    log_store(store.mark_rejected(id, *part, &why).await, id);
                }
                for m in &batch {
                    let _ = notices.send(Notice::State(m.id.clone()));
                }
                return;
            }
            Answer::Retry(why) => {
                maybe_taken = true;
                why
            }
            Answer::NotTaken(why) => {
                // Nothing reached the provider yet: a stop now may resend.
                if !maybe_taken {
                    for (id, part) in &keys {
                        log_store(store.clear_sending(id, *part).await, id);
                    }
                }
                why
            }
        };
        tracing::warn!(
            "sms http: {} (+{} more): attempt {attempt}: {why}",
            batch[0].id,
            batch.len() - 1
        );
        if attempt < MAX_ATTEMPTS {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }
    // Left queued: the next start sends it again if no attempt can have
    // reached the provider, and ends it unknown otherwise.
}

/// Stores each part's outcome: accepted parts in one transaction.
async fn record(
    store: &Store,
    notices: &broadcast::Sender<Notice>,
    batch: &[Outgoing],
    results: Vec<PartResult>,
) {
    let mut accepted = Vec::new();
    for (m, r) in batch.iter().zip(results.iter()) {
        for (part, res) in m.parts.iter().zip(r.iter()) {
            match res {
                Ok(pid) => accepted.push((m.id.clone(), *part, pid.clone())),
                Err(why) => log_store(store.mark_rejected(&m.id, *part, why).await, &m.id),
            }
        }
    }
    if let Err(e) = store.mark_accepted_many(&accepted).await {
        tracing::error!("sms http: store accepted parts: {e}");
    }
    for m in batch {
        let _ = notices.send(Notice::State(m.id.clone()));
    }
}

/// One send request for `batch` (one message, or an Infobip bulk).
async fn request(cfg: &HttpSmsConfig, client: &Client, batch: &[Outgoing]) -> Answer {
    let Some(first) = batch.first() else {
        return Answer::Each(Vec::new());
    };
    let req = match cfg.provider {
        Provider::Template => {
            let key = format!("{}.1", first.id);
            template::send_request(cfg, &first.to, &first.from, &first.text, &key)
        }
        Provider::Infobip => infobip::send_request(cfg, batch),
        Provider::Vonage => vonage::send_request(cfg, first),
    };
    let (status, body) = match client.send(req).await {
        Reply::NotSent(why) => return Answer::NotTaken(why),
        Reply::Lost(why) => return Answer::Retry(why),
        Reply::Answer { status, body } => (status, body),
    };
    let text = || match cfg.provider {
        Provider::Infobip => infobip::error_text(&body),
        Provider::Vonage => vonage::error_text(&body),
        Provider::Template => body.chars().take(200).collect(),
    };
    match status {
        200..=299 => {}
        429 => return Answer::NotTaken(format!("HTTP 429: {}", text())),
        500..=599 => return Answer::Retry(format!("HTTP {status}: {}", text())),
        _ => return Answer::Rejected(format!("HTTP {status}: {}", text())),
    }
    let answer = match cfg.provider {
        Provider::Template => Some(Answer::Each(vec![vec![
            Ok(template::accepted_id(
                cfg, &body
            ));
            first.parts.len()
        ]])),
        Provider::Infobip => infobip::parse_send_answer(&body, batch).map(Answer::Each),
        Provider::Vonage => vonage::parse_send_answer(&body, first.parts.len()),
    };
    answer.unwrap_or_else(|| {
        // A 2xx took the messages; sending again could text them twice.
        // Without ids their receipts match nothing (unknown in time).
        tracing::error!(
            "sms http: a {status} answer without the documented shape; accepted without ids: {}",
            body.chars().take(200).collect::<String>()
        );
        Answer::Each(
            batch
                .iter()
                .map(|m| vec![Ok(String::new()); m.parts.len()])
                .collect(),
        )
    })
}
