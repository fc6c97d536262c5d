//! The flow task: takes inbound SMS nobody has answered from the store,
//! oldest first, and hands each to a lane chosen by its sender, so one
//! sender's messages are answered in order while other senders' run
//! beside them. A lane claims the message in the store (`running`)
//! before anything acts on it, so a crash never answers one twice: a
//! claim a stopped process left is ended `interrupted` at the next start.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot};

use super::control::{SmsControl, SmsLeft};
use super::session::{self, SmsScope};
use super::{keyword, number, routes};
use crate::call::control::CallInfo;
use crate::config::SmsFlowConfig;
use crate::script::runner::{self, Outcome};
use crate::script::ScriptCache;
use crate::sms::{Notice, SmsService};
use crate::store::{FlowEnd, InboundSms, Store};

/// Lanes: senders hashed onto them; each answers one message at a time,
/// so a slow script (a web request, a `sleep`) holds up only the senders
/// that share its lane.
const LANES: usize = 16;
/// How often the store is read again with no announcement (messages a
/// `rivr sms send` process received, a lost announcement).
const RESCAN: Duration = Duration::from_secs(10);
/// [`RESCAN`] on a shared store (PostgreSQL): an inbound SMS another node
/// stored (a provider's webhook reached it) is answered here, by the node
/// that sends SMS, within this.
const RESCAN_SHARED: Duration = Duration::from_secs(1);
/// How far back a later read of the store looks (a message stored by
/// another process, or announced before its row was visible).
const RESCAN_MARGIN_MS: i64 = 10 * 60 * 1000;
/// How long a message waits for a free script thread before it fails.
const SPAWN_PATIENCE: Duration = Duration::from_secs(30);

/// Wall-clock milliseconds; a test gives a virtual one.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Everything a lane needs.
#[derive(Clone)]
pub struct FlowTask {
    pub cfg: Arc<SmsFlowConfig>,
    pub sms: SmsService,
    pub scripts: Arc<ScriptCache>,
    pub clock: Clock,
}

fn wall_ms() -> i64 {
    crate::store::now_ms()
}

/// Starts the flow task on the current runtime.
pub fn start(
    cfg: SmsFlowConfig,
    sms: SmsService,
    scripts: Arc<ScriptCache>,
) -> tokio::task::JoinHandle<()> {
    let t = FlowTask {
        cfg: Arc::new(cfg),
        sms,
        scripts,
        clock: Arc::new(wall_ms),
    };
    tokio::spawn(t.run())
}

impl FlowTask {
    fn store(&self) -> &Store {
        self.sms.store()
    }

    /// Reads the store on every announcement (and every [`RESCAN`]) and
    /// feeds the lanes, until the SMS service is gone.
    pub async fn run(self) {
        let mut notices = self.sms.notices();
        // Flows run on the node that sends SMS, and only there: the end of
        // the flows a stopped process left running below is the whole
        // store's (docs/scaling.md, "SMS across nodes").
        if !self.sms.wait_until_sender().await {
            return;
        }
        let rescan = if self.store().backend() == crate::store::Backend::Postgres {
            RESCAN_SHARED
        } else {
            RESCAN
        };
        match self.store().flow_end_interrupted((self.clock)()).await {
            Ok(ids) => {
                for id in ids {
                    tracing::warn!(sms = %id, "sms flow: ended interrupted; its script was running when the last process stopped");
                }
            }
            Err(e) => tracing::error!(error = %e, "sms flow: reading interrupted flows"),
        }
        let queued: Arc<Mutex<HashSet<String>>> = Arc::default();
        let lanes: Vec<mpsc::UnboundedSender<InboundSms>> = (0..LANES)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(self.clone().lane(rx, queued.clone()));
                tx
            })
            .collect();
        let mut last_expiry = (self.clock)();
        // The first read takes everything an earlier run left; later ones
        // what arrived since the oldest message still waiting, or since
        // RESCAN_MARGIN ago.
        let mut since = 0;
        loop {
            let oldest = self.feed(since, &lanes, &queued).await;
            let floor = (self.clock)().saturating_sub(RESCAN_MARGIN_MS);
            since = oldest.map_or(floor, |o| o.min(floor));
            let now = (self.clock)();
            if now.saturating_sub(last_expiry) > 3_600_000 {
                last_expiry = now;
                if let Err(e) = self.store().sms_sessions_expire(now).await {
                    tracing::warn!(error = %e, "sms flow: forgetting expired sessions");
                }
            }
            match tokio::time::timeout(rescan, notices.recv()).await {
                Ok(Err(broadcast::error::RecvError::Closed)) => return,
                Ok(Ok(Notice::Inbound(_)))
                | Ok(Err(broadcast::error::RecvError::Lagged(_)))
                | Err(_) => {}
                Ok(Ok(_)) => continue,
            }
        }
    }

    /// Hands what waits to the lanes; the oldest waiting message's time.
    async fn feed(
        &self,
        since: i64,
        lanes: &[mpsc::UnboundedSender<InboundSms>],
        queued: &Mutex<HashSet<String>>,
    ) -> Option<i64> {
        let pending = match self.store().flow_pending(since, 1000).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "sms flow: reading inbound SMS");
                return Some(since);
            }
        };
        let oldest = pending.first().map(|m| m.received_ms);
        for m in pending {
            let fresh = queued
                .lock()
                .map(|mut q| q.insert(m.id.clone()))
                .unwrap_or(false);
            if !fresh {
                continue;
            }
            let mut h = DefaultHasher::new();
            m.source.hash(&mut h);
            let lane = (h.finish() % LANES as u64) as usize;
            if let Some(l) = lanes.get(lane) {
                let _ = l.send(m);
            }
        }
        oldest
    }

    async fn lane(
        self,
        mut rx: mpsc::UnboundedReceiver<InboundSms>,
        queued: Arc<Mutex<HashSet<String>>>,
    ) {
        while let Some(m) = rx.recv().await {
            let id = m.id.clone();
            if let Err(e) = self.handle(m).await {
                tracing::error!(sms = %id, error = %e, "sms flow: store");
            }
            if let Ok(mut q) = queued.lock() {
                q.remove(&id);
            }
        }
    }

    /// Answers one inbound SMS: opt-out/opt-in keywords first, then the
    /// sender's do-not-contact entry, then its route's script.
    pub async fn handle(&self, m: InboundSms) -> Result<(), crate::store::StoreError> {
        let store = self.store().clone();
        let now = (self.clock)();
        let whole = keyword::whole(&m.body);
        let phone = number::e164(&m.source, self.cfg.country);
        let mut end = FlowEnd {
            inbound_id: m.id.clone(),
            sender: m.source.clone(),
            now_ms: now,
            ..FlowEnd::default()
        };
        let opt_out = self.cfg.opt_out_keywords.contains(&whole);
        if opt_out || self.cfg.opt_in_keywords.contains(&whole) {
            if !store.flow_claim(&m.id, None, now).await? {
                return Ok(());
            }
            let Some(phone) = phone else {
                tracing::warn!(sms = %m.id, from = %m.source, "sms flow: {whole} from a sender that is not a phone number; ignored");
                end.state = "failed".into();
                end.error = Some(format!("{whole}: {:?} is not a phone number", m.source));
                return store.flow_finish(&end).await;
            };
            let reply = if opt_out {
                store
                    .dnc_add(std::slice::from_ref(&phone), &format!("sms:{whole}"))
                    .await?;
                tracing::info!(sms = %m.id, %phone, keyword = %whole, "sms flow: sender opted out (do-not-contact)");
                end.state = "opted_out".into();
                &self.cfg.opt_out_reply
            } else {
                let n = store.dnc_remove_sms_opt_out(&phone).await?;
                tracing::info!(sms = %m.id, %phone, keyword = %whole, removed = n, "sms flow: sender opted in");
                end.state = "opted_in".into();
                &self.cfg.opt_in_reply
            };
            if !reply.is_empty() {
                if let Err(e) = self.sms.submit(m.source.trim(), reply).await {
                    tracing::warn!(sms = %m.id, error = %e, "sms flow: confirmation not sent");
                }
            }
            return store.flow_finish(&end).await;
        }
        let kw = keyword::first_word(&m.body);
        let live = store.sms_live_routes(&m.source, now).await?;
        let Some(route) = routes::pick(&self.cfg.routes, &m.destination, &kw, &live).cloned()
        else {
            if store.flow_claim(&m.id, None, now).await? {
                tracing::info!(sms = %m.id, to = %m.destination, keyword = %kw, "sms flow: no [[sms_route]] for this SMS");
                end.state = "no_route".into();
                store.flow_finish(&end).await?;
            }
            return Ok(());
        };
        end.route = Some(route.name.clone());
        if !store.flow_claim(&m.id, Some(&route.name), now).await? {
            return Ok(());
        }
        if let Some(p) = &phone {
            if store.dnc_contains(p).await? {
                tracing::info!(sms = %m.id, phone = %p, "sms flow: sender is on the do-not-contact list; no script runs");
                end.state = "dnc".into();
                return store.flow_finish(&end).await;
            }
        }
        let stored = store.sms_session(&m.source, &route.name, now).await?;
        let session = session::from_json(self.scripts.engine(), stored.as_deref());
        let ran = self
            .run_script(&m, &kw, &route.name, route.script.clone(), session)
            .await;
        match ran {
            Ok((left, session)) => {
                end.results = left.results;
                match session {
                    Ok(json) => {
                        end.state = "done".into();
                        end.session = Some((
                            m.source.clone(),
                            route.name.clone(),
                            json,
                            session::expires_at((self.clock)(), self.cfg.session_ttl),
                        ));
                    }
                    Err(e) => {
                        tracing::error!(sms = %m.id, route = %route.name, error = %e, "sms flow: script failed");
                        end.state = "failed".into();
                        end.error = Some(e);
                    }
                }
            }
            Err(e) => {
                tracing::error!(sms = %m.id, route = %route.name, error = %e, "sms flow: script failed");
                end.state = "failed".into();
                end.error = Some(e);
            }
        }
        end.now_ms = (self.clock)();
        store.flow_finish(&end).await
    }

    /// Runs the route's script on its own thread; what it left, and the
    /// session as JSON (or why it failed).
    async fn run_script(
        &self,
        m: &InboundSms,
        kw: &str,
        route: &str,
        script: PathBuf,
        session: rhai::Map,
    ) -> Result<(SmsLeft, Result<String, String>), String> {
        let left = Arc::new(Mutex::new(SmsLeft::default()));
        let session_left: session::SessionLeft = Arc::default();
        let info = CallInfo {
            id: m.id.clone(),
            from: m.source.clone(),
            to: m.destination.clone(),
            direction: "sms",
            started_at: SystemTime::now(),
            trunk: None,
            vars: Vec::new(),
            headers: Vec::new(),
            lang: String::new(),
            amd: false,
        };
        let deadline = tokio::time::Instant::now() + SPAWN_PATIENCE;
        let done_rx = loop {
            let ctl = SmsControl {
                sms: self.sms.clone(),
                from: m.source.clone(),
                dnc: super::dnc::DncWriter {
                    store: self.store().clone(),
                    runtime: self.sms.runtime().clone(),
                    country: self.cfg.country,
                },
                left: left.clone(),
            };
            let scope = SmsScope {
                sms: session::sms_map(m, kw, route),
                session: session.clone(),
                left: session_left.clone(),
            };
            let (tx, rx) = oneshot::channel();
            match runner::spawn_flow(
                self.scripts.clone(),
                script.clone(),
                info.clone(),
                Box::new(ctl),
                Box::new(scope),
                move |o: &Outcome| {
                    let _ = tx.send(o.clone());
                },
            ) {
                Ok(_) => break rx,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "sms flow: waiting for a script thread");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(format!("the script could not start: {e}")),
            }
        };
        let outcome = done_rx.await.unwrap_or_else(|_| {
            Outcome::Failed("the script thread ended without an outcome".into())
        });
        let left = std::mem::take(&mut *left.lock().map_err(|_| "internal: results lock")?);
        let fail = match &outcome {
            Outcome::Completed | Outcome::HungUp => None,
            Outcome::CallerHungUp => Some(match left.call_verb {
                Some(v) => format!(
                    "{}: {v}() needs a call; an SMS script has none",
                    script.display()
                ),
                None => format!("{}: the script was stopped", script.display()),
            }),
            Outcome::Failed(m) => Some(m.clone()),
        };
        if let Some(f) = fail {
            return Ok((left, Err(f)));
        }
        let session = match session_left.lock().ok().and_then(|mut l| l.take()) {
            Some(Ok(map)) => session::to_json(&map),
            Some(Err(e)) => Err(e),
            None => Err("the script left no session".into()),
        };
        Ok((left, session))
    }
}
