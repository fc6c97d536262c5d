//! [`SmsService`]: the one handle scripts, the CLI and campaigns use to send
//! SMS. A message is stored (durably queued) before `submit` returns its id;
//! the router ([`super::route`]) gives it to a route's driver (SMPP or HTTP).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::options::{OptionError, SendOptions};
use super::route::spawn::{spawn, Kind, RouteConf, RouteInfo, Spawned};
use super::route::task::{self, RouterCmd};
use super::route::{Chooser, RouteError, Signal};
use super::{encoding, http, sender, Notice, SmsError};
use crate::store::{MessageState, NewMessage, NewPart, Sending, Store, StoredPart};

/// A route as [`SmsService::routes`] reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RouteState {
    pub name: String,
    /// Takes new messages now.
    pub up: bool,
    pub down_because: Option<String>,
    pub link: super::LinkStatus,
}

/// Cloneable, `Send + Sync` handle to the SMS sender.
#[derive(Clone)]
pub struct SmsService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    routes: Vec<RouteInfo>,
    chooser: Arc<Mutex<Chooser>>,
    cmds: mpsc::UnboundedSender<RouterCmd>,
    notices: broadcast::Sender<Notice>,
    runtime: tokio::runtime::Handle,
    next_ref: AtomicU8,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    watcher: tokio::task::JoinHandle<()>,
    /// The status of the last refused bind, until a bind succeeds.
    bind_error: Arc<Mutex<Option<String>>>,
    /// True once this process sends SMS (it may wait for another node).
    owner: watch::Receiver<bool>,
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
    /// Opens the store and starts a driver per route (`[smpp]`, each
    /// `[[smsc]]`, `[sms_http]`, in that order) and the router between
    /// them. Unsent messages from an earlier run are sent again; those
    /// scheduled for later are held until due.
    pub async fn start(cfg: &crate::config::Config) -> Result<SmsService, SmsError> {
        let store = Store::open(&cfg.store.url, &cfg.base_dir).await?;
        let mut routes: Vec<RouteConf> = Vec::new();
        routes.extend(cfg.smpp.iter().cloned().map(RouteConf::Smpp));
        routes.extend(cfg.smsc.iter().cloned().map(RouteConf::Smpp));
        routes.extend(cfg.sms_http.iter().cloned().map(RouteConf::Http));
        if routes.is_empty() {
            return Err(SmsError::NotConfigured);
        }
        Self::start_with(store, routes).await
    }

    async fn start_with(store: Store, routes: Vec<RouteConf>) -> Result<SmsService, SmsError> {
        // One process of those sharing the store sends (docs/scaling.md,
        // "SMS across nodes"); the others store their messages for it and
        // wait to take over.
        let lock = store.try_sms_owner().await?;
        let mut unsent = Vec::new();
        if lock.is_some() {
            // Read what an earlier run left unsent before anyone can
            // submit, so no message is both resumed here and handed over
            // by `submit`.
            for id in store.end_interrupted_sends().await? {
                tracing::warn!(
                    "sms: {id}: ended unknown; a part of it was being sent when the last run stopped"
                );
            }
            unsent = store.unsent_parts().await?;
        }
        let (gate, owner) = watch::channel(false);
        let ownership = task::Ownership {
            lock,
            gate,
            shared: store.backend() == crate::store::Backend::Postgres,
        };
        let (cmds, cmd_rx) = mpsc::unbounded_channel();
        let (reports, report_rx) = mpsc::unbounded_channel();
        let (notices, _) = broadcast::channel(1024);
        // Subscribed before the drivers start, so no bind outcome is missed.
        let bind_error = Arc::new(Mutex::new(None));
        let watcher = tokio::spawn(watch_binds(notices.subscribe(), bind_error.clone()));
        let now = std::time::Instant::now();
        let Spawned {
            specs,
            infos,
            drivers,
        } = spawn(routes, &store, &notices, &reports, &owner);
        let mut chooser = Chooser::new(specs, now);
        // An HTTP route has no bind: it is up from the start.
        for (i, r) in infos.iter().enumerate() {
            if matches!(r.kind, Kind::Http { .. }) {
                chooser.signal(i, Signal::Bound, now);
            }
        }
        let chooser = Arc::new(Mutex::new(chooser));
        let task = tokio::spawn(task::run(
            chooser.clone(),
            drivers,
            store.clone(),
            notices.clone(),
            unsent,
            cmd_rx,
            report_rx,
            ownership,
        ));
        Ok(SmsService {
            inner: Arc::new(Inner {
                store,
                routes: infos,
                chooser,
                cmds,
                notices,
                runtime: tokio::runtime::Handle::current(),
                next_ref: AtomicU8::new(rand::random()),
                task: Mutex::new(Some(task)),
                watcher,
                bind_error,
                owner,
            }),
        })
    }

    /// Where the first route's link stands now (its driver's last report).
    pub fn link_status(&self) -> super::LinkStatus {
        self.inner
            .routes
            .first()
            .map(|r| r.status.borrow().clone())
            .unwrap_or_default()
    }

    /// Every route: its name, whether it takes messages now (and why not),
    /// and its link.
    pub fn routes(&self) -> Vec<RouteState> {
        let c = self.chooser();
        self.inner
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| RouteState {
                name: r.name.clone(),
                up: c.is_up(i),
                down_because: c.why_down(i).map(str::to_string),
                link: r.status.borrow().clone(),
            })
            .collect()
    }

    fn chooser(&self) -> std::sync::MutexGuard<'_, Chooser> {
        self.inner.chooser.lock().unwrap_or_else(|e| e.into_inner())
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

    /// Whether this process sends SMS now, or stores its messages for the
    /// node that does (docs/scaling.md, "SMS across nodes").
    pub fn sends(&self) -> bool {
        *self.inner.owner.borrow()
    }

    /// Returns once this process sends SMS (at once on a single node);
    /// false if the service stops first.
    pub async fn wait_until_sender(&self) -> bool {
        let mut owner = self.inner.owner.clone();
        let sends = owner.wait_for(|o| *o).await.is_ok();
        sends
    }

    /// The store the service writes to.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Stores the message, hands it to the driver and returns its id.
    pub async fn submit(&self, to: &str, text: &str) -> Result<String, SmsError> {
        self.submit_with(to, text, &SendOptions::default()).await
    }

    /// [`Self::submit`] with a sender ID, a schedule, a validity period or
    /// a forced route.
    pub async fn submit_with(
        &self,
        to: &str,
        text: &str,
        opts: &SendOptions,
    ) -> Result<String, SmsError> {
        let m = self.prepare_with(to, text, opts)?;
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
        self.prepare_with(to, text, &SendOptions::default())
    }

    /// [`Self::prepare`] with options, checked here (each error names its
    /// option).
    pub fn prepare_with(
        &self,
        to: &str,
        text: &str,
        opts: &SendOptions,
    ) -> Result<NewMessage, SmsError> {
        check_number(to)?;
        let route = self
            .chooser()
            .choose(to, opts.via.as_deref())
            .map_err(|e| match e {
                RouteError::NoSuchRoute(..) => {
                    SmsError::Option(OptionError::new("via", e.to_string()))
                }
                RouteError::NoRouteFor(_) => SmsError::NoRoute(e.to_string()),
            })?;
        let info = self
            .inner
            .routes
            .get(route)
            .ok_or(SmsError::NotConfigured)?;
        let mut sending = Sending {
            not_before_ms: opts.at_ms,
            valid_for_ms: opts
                .valid_for
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            via: opts.via.clone(),
            ..Sending::default()
        };
        let source = match &opts.from {
            Some(f) => {
                let id = sender::classify(f)
                    .map_err(|e| SmsError::Option(OptionError::new("from", e.to_string())))?;
                sending.source_ton = Some(id.ton);
                sending.source_npi = Some(id.npi);
                f.clone()
            }
            None => info.from.clone(),
        };
        let id = format!("sms-{:016x}", rand::random::<u64>());
        let reference = self.inner.next_ref.fetch_add(1, Ordering::Relaxed);
        let parts = encode_parts(&info.kind, text, reference)?;
        sending.encoded_for = Some(info.name.clone());
        Ok(NewMessage {
            id,
            source,
            destination: to.to_string(),
            body: text.to_string(),
            parts,
            sending,
        })
    }

    /// Hands a message already in the store to the router.
    pub fn send_stored(&self, m: NewMessage) {
        let NewMessage {
            id,
            source,
            destination,
            parts,
            sending,
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
                sending: sending.clone(),
                route: None,
            })
            .collect();
        // Stored first: if the router is gone, the next start sends it.
        let _ = self.inner.cmds.send(RouterCmd::Submit(stored));
    }

    /// [`Self::submit`] for a thread outside the tokio runtime (a script's
    /// own OS thread). Returns once the message is stored, never waiting on
    /// the network. The service must have been started on a multi-thread
    /// runtime (its workers drive the store while this thread waits).
    pub fn submit_blocking(&self, to: &str, text: &str) -> Result<String, SmsError> {
        self.submit_blocking_with(to, text, &SendOptions::default())
    }

    /// [`Self::submit_with`] for a thread outside the tokio runtime.
    pub fn submit_blocking_with(
        &self,
        to: &str,
        text: &str,
        opts: &SendOptions,
    ) -> Result<String, SmsError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(SmsError::BlockingInRuntime);
        }
        self.inner
            .runtime
            .block_on(self.submit_with(to, text, opts))
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
            // Read again at least every half second: on a node that does
            // not send SMS, the changes happen in another process.
            let next = deadline.min(tokio::time::Instant::now() + Duration::from_millis(500));
            match tokio::time::timeout_at(next, rx.recv()).await {
                Err(_) if next < deadline => {}
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
        if self.inner.cmds.send(RouterCmd::Shutdown(tx)).is_ok() {
            let _ = tokio::time::timeout(timeout, rx).await;
        }
        let task = self.inner.task.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = task {
            t.abort();
        }
    }
}

/// `text` as the parts of a route of `kind` (`reference`: the SMPP
/// concatenation reference).
pub(crate) fn encode_parts(
    kind: &Kind,
    text: &str,
    reference: u8,
) -> Result<Vec<NewPart>, SmsError> {
    Ok(match kind {
        Kind::Smpp {
            use_message_payload,
        } => {
            let e = encoding::encode(text, reference, *use_message_payload)?;
            let esm_class = if e.udhi { encoding::ESM_UDHI } else { 0 };
            e.parts
                .into_iter()
                .map(|short_message| NewPart {
                    esm_class,
                    data_coding: e.data_coding,
                    payload: e.payload,
                    short_message,
                })
                .collect()
        }
        Kind::Http { preset: false } => {
            if text.is_empty() {
                return Err(encoding::EncodeError::Empty.into());
            }
            vec![NewPart {
                esm_class: 0,
                data_coding: 0,
                payload: false,
                short_message: text.as_bytes().to_vec(),
            }]
        }
        Kind::Http { preset: true } => preset_parts(text)?,
    })
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
