//! [`SmsService`]: the one handle scripts, the CLI and campaigns use to send
//! SMS. A message is stored (durably queued) before `submit` returns its id;
//! sending happens in the driver task (SMPP or HTTP).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};

use super::config::{HttpSmsConfig, Provider, SmppConfig};
use super::driver::{self, DriverCmd};
use super::{encoding, http, Notice, SmsError};
use crate::store::{MessageState, NewMessage, NewPart, Store, StoredPart};

/// Cloneable, `Send + Sync` handle to the SMS sender.
#[derive(Clone)]
pub struct SmsService {
    inner: Arc<Inner>,
}

enum Transport {
    Smpp(SmppConfig),
    Http(HttpSmsConfig),
}

struct Inner {
    store: Store,
    transport: Transport,
    cmds: mpsc::UnboundedSender<DriverCmd>,
    notices: broadcast::Sender<Notice>,
    runtime: tokio::runtime::Handle,
    next_ref: AtomicU8,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    watcher: tokio::task::JoinHandle<()>,
    /// The status of the last refused bind, until a bind succeeds.
    bind_error: Arc<Mutex<Option<String>>>,
    /// The link as the driver last published it.
    status: tokio::sync::watch::Receiver<super::LinkStatus>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

async fn watch_binds(mut rx: broadcast::Receiver<Notice>, last: Arc<Mutex<Option<String>>>) {
    loop {
        let v = match rx.recv().await {
            Ok(Notice::Bound) => None,
            Ok(Notice::BindFailed(why)) => Some(why),
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if let Ok(mut l) = last.lock() {
            *l = v;
        }
    }
}

impl SmsService {
    /// Opens the store and starts the SMPP driver (or, with no `[smpp]`, the
    /// HTTP one). Unsent messages from an earlier run are sent again.
    pub async fn start(cfg: &crate::config::Config) -> Result<SmsService, SmsError> {
        let store = Store::open(&cfg.store.url, &cfg.base_dir).await?;
        let transport = match (&cfg.smpp, &cfg.sms_http) {
            (Some(s), _) => Transport::Smpp(s.clone()),
            (None, Some(h)) => Transport::Http(h.clone()),
            (None, None) => return Err(SmsError::NotConfigured),
        };
        Self::start_with(store, transport).await
    }

    async fn start_with(store: Store, transport: Transport) -> Result<SmsService, SmsError> {
        // Read what an earlier run left unsent before anyone can submit, so
        // no message is both resumed here and handed over by `submit`.
        for id in store.end_interrupted_sends().await? {
            tracing::warn!(
                "sms: {id}: ended unknown; a part of it was being sent when the last run stopped"
            );
        }
        let unsent = store.unsent_parts().await?;
        let (cmds, rx) = mpsc::unbounded_channel();
        let (notices, _) = broadcast::channel(1024);
        // Subscribed before the driver starts, so no bind outcome is missed.
        let bind_error = Arc::new(Mutex::new(None));
        let watcher = tokio::spawn(watch_binds(notices.subscribe(), bind_error.clone()));
        let (s, n) = (store.clone(), notices.clone());
        let (status_tx, status) = tokio::sync::watch::channel(super::LinkStatus {
            transport: match &transport {
                Transport::Smpp(_) => "smpp",
                Transport::Http(_) => "http",
            },
            bound: matches!(transport, Transport::Http(_)),
            ..super::LinkStatus::default()
        });
        let task = match &transport {
            Transport::Smpp(c) => tokio::spawn(driver::run(c.clone(), s, unsent, rx, n, status_tx)),
            // HTTP has no session to report; its status stays as set here.
            Transport::Http(c) => tokio::spawn(http::run(c.clone(), s, unsent, rx, n)),
        };
        Ok(SmsService {
            inner: Arc::new(Inner {
                store,
                transport,
                cmds,
                notices,
                runtime: tokio::runtime::Handle::current(),
                next_ref: AtomicU8::new(rand::random()),
                task: Mutex::new(Some(task)),
                watcher,
                bind_error,
                status,
            }),
        })
    }

    /// Where the link stands now (the driver's last report).
    pub fn link_status(&self) -> super::LinkStatus {
        self.inner.status.borrow().clone()
    }

    /// The runtime the service runs on (script threads block on it).
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.inner.runtime
    }

    /// The one way an inbound SMS enters rivr, whatever brought it (the
    /// SMPP driver, an HTTP provider's webhook): stored first, then
    /// announced, so the two-way flows (`sms::flow`) answer it — also
    /// after a restart if the process stops in between. Returns its id.
    pub async fn accept_inbound(
        &self,
        from: &str,
        to: &str,
        text: &str,
    ) -> Result<String, SmsError> {
        Ok(
            super::flow::accept_inbound(&self.inner.store, &self.inner.notices, from, to, text)
                .await?,
        )
    }

    /// The store the service writes to.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Stores the message, hands it to the driver and returns its id.
    pub async fn submit(&self, to: &str, text: &str) -> Result<String, SmsError> {
        let m = self.prepare(to, text)?;
        let id = m.id.clone();
        self.inner.store.insert_message(&m).await?;
        self.send_stored(m);
        Ok(id)
    }

    /// The message `submit` would store, encoded for this transport, not
    /// yet stored: a caller that must store it in its own transaction
    /// (a campaign's SMS at most once per contact) stores it, then calls
    /// [`Self::send_stored`].
    pub fn prepare(&self, to: &str, text: &str) -> Result<NewMessage, SmsError> {
        check_number(to)?;
        let id = format!("sms-{:016x}", rand::random::<u64>());
        let (source, parts) = match &self.inner.transport {
            Transport::Smpp(c) => {
                let reference = self.inner.next_ref.fetch_add(1, Ordering::Relaxed);
                let e = encoding::encode(text, reference, c.use_message_payload)?;
                let esm_class = if e.udhi { encoding::ESM_UDHI } else { 0 };
                let parts = e
                    .parts
                    .into_iter()
                    .map(|short_message| NewPart {
                        esm_class,
                        data_coding: e.data_coding,
                        payload: e.payload,
                        short_message,
                    })
                    .collect();
                (c.source_addr.clone(), parts)
            }
            Transport::Http(c) if c.provider == Provider::Template => {
                if text.is_empty() {
                    return Err(encoding::EncodeError::Empty.into());
                }
                let part = NewPart {
                    esm_class: 0,
                    data_coding: 0,
                    payload: false,
                    short_message: text.as_bytes().to_vec(),
                };
                (c.from.clone(), vec![part])
            }
            Transport::Http(c) => (c.from.clone(), preset_parts(text)?),
        };
        Ok(NewMessage {
            id,
            source,
            destination: to.to_string(),
            body: text.to_string(),
            parts,
        })
    }

    /// Hands a message already in the store to the driver.
    pub fn send_stored(&self, m: NewMessage) {
        let NewMessage {
            id,
            source,
            destination,
            parts,
            ..
        } = m;
        let stored = parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| StoredPart {
                message_id: id.clone(),
                part: u8::try_from(i + 1).unwrap_or(u8::MAX),
                idempotency_key: format!("{id}.{}", i + 1),
                source: source.clone(),
                destination: destination.clone(),
                esm_class: p.esm_class,
                data_coding: p.data_coding,
                payload: p.payload,
                short_message: p.short_message,
            })
            .collect();
        // Stored first: if the driver is gone, the next start sends it.
        let _ = self.inner.cmds.send(DriverCmd::Submit(stored));
    }

    /// [`Self::submit`] for a thread outside the tokio runtime (a script's
    /// own OS thread). Returns once the message is stored, never waiting on
    /// the network. The service must have been started on a multi-thread
    /// runtime (its workers drive the store while this thread waits).
    pub fn submit_blocking(&self, to: &str, text: &str) -> Result<String, SmsError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(SmsError::BlockingInRuntime);
        }
        self.inner.runtime.block_on(self.submit(to, text))
    }

    /// The current state of a message.
    pub async fn status(&self, id: &str) -> Result<MessageState, SmsError> {
        self.inner
            .store
            .message_state(id)
            .await?
            .ok_or_else(|| SmsError::NoSuchMessage(id.to_string()))
    }

    /// Stores what a provider's webhook reported (receipts, inbound SMS)
    /// and announces it. Returns (receipts matched, inbound SMS stored).
    pub(crate) async fn apply_provider_events(
        &self,
        events: Vec<http::Event>,
    ) -> Result<(usize, usize), SmsError> {
        Ok(http::apply_events(&self.inner.store, &self.inner.notices, events).await?)
    }

    /// Subscribes to state changes, bind outcomes and inbound SMS.
    pub fn notices(&self) -> broadcast::Receiver<Notice> {
        self.inner.notices.subscribe()
    }

    /// Waits until `done(state)` holds for message `id`, at most `timeout`.
    /// A failed bind ends the wait with [`SmsError::Bind`].
    pub async fn wait_for(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(MessageState) -> bool,
    ) -> Result<MessageState, SmsError> {
        let mut rx = self.notices();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let state = self.status(id).await?;
            if done(state) {
                return Ok(state);
            }
            let refused = self.inner.bind_error.lock().ok().and_then(|l| l.clone());
            if let Some(why) = refused {
                return Err(SmsError::Bind(why));
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Err(_) => return Ok(state),
                Ok(Ok(Notice::BindFailed(why))) => return Err(SmsError::Bind(why)),
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) => return Ok(state),
            }
        }
    }

    /// Sends what is outstanding, unbinds and stops the driver (at most
    /// `timeout`). Queued messages stay stored for the next start.
    pub async fn shutdown(&self, timeout: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.inner.cmds.send(DriverCmd::Shutdown(tx)).is_ok() {
            let _ = tokio::time::timeout(timeout, rx).await;
        }
        let task = self.inner.task.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = task {
            t.abort();
        }
    }
}

/// The parts a preset provider bills for the text (it splits the text
/// itself, as SMPP would: GSM 7-bit 160/153, UCS-2 70/67), so each part
/// gets its state and receipt. Part 1 holds the whole text, the others
/// nothing; `data_coding` says whether it needs UCS-2.
fn preset_parts(text: &str) -> Result<Vec<NewPart>, SmsError> {
    let e = encoding::encode(text, 0, false)?;
    Ok((0..e.parts.len())
        .map(|i| NewPart {
            esm_class: 0,
            data_coding: e.data_coding,
            payload: false,
            short_message: if i == 0 {
                text.as_bytes().to_vec()
            } else {
                Vec::new()
            },
        })
        .collect())
}

/// A destination must look like a phone number: optional `+`, 1–20 digits.
fn check_number(to: &str) -> Result<(), SmsError> {
    let digits = to.strip_prefix('+').unwrap_or(to);
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SmsError::BadNumber(to.to_string()));
    }
    Ok(())
}
