//! The tokio side of the routes: one task owns the [`Chooser`](super::Chooser)'s
//! timers and the parts scheduled locally, claims parts in the store for a
//! route before handing them to that route's driver, and moves the parts a
//! route that went down never wrote to the next route. A message moving to
//! a route of another kind (SMPP parts vs an HTTP provider's text) is
//! encoded again for it, and moves only whole: while none of its parts was
//! written (a part written to an SMSC never goes out again).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::spawn::Kind;
use super::{Change, Chooser, Signal};
use crate::sms::config::ScheduleMode;
use crate::sms::driver::DriverCmd;
use crate::sms::Notice;
use crate::store::{now_ms, NodeLock, Store, StoredPart};

mod reencode;

/// From a route's driver.
#[derive(Debug)]
pub(crate) enum Report {
    Signal(usize, Signal),
}

/// From [`crate::sms::SmsService`].
#[derive(Debug)]
pub(crate) enum RouterCmd {
    /// Parts already stored.
    Submit(Vec<StoredPart>),
    Shutdown(oneshot::Sender<()>),
}

/// One route's driver(s), as the router reaches them.
pub(crate) struct RouteDriver {
    pub kind: Kind,
    pub schedule: ScheduleMode,
    pub cmds: mpsc::UnboundedSender<DriverCmd>,
    /// Asks an SMPP driver for the parts it has not written (none for HTTP,
    /// whose requests leave one by one).
    pub release: Option<mpsc::UnboundedSender<oneshot::Sender<Vec<StoredPart>>>>,
    /// A separate receiver bind, stopped with the route.
    pub receiver: Option<mpsc::UnboundedSender<DriverCmd>>,
}

struct Router {
    chooser: Arc<Mutex<Chooser>>,
    drivers: Vec<RouteDriver>,
    store: Store,
    notices: broadcast::Sender<Notice>,
    /// Parts scheduled on a `schedule = "local"` route, by due time.
    held: BTreeMap<(i64, u64), StoredPart>,
    next: u64,
}

/// How often a standby node tries to become the SMS sender, and how often
/// the sender reads the parts other nodes stored.
const OWNER_EVERY: Duration = Duration::from_secs(1);

/// Whether this process sends SMS (docs/scaling.md, "SMS across nodes").
pub(crate) struct Ownership {
    /// Held while this process sends; `None`: a standby, waiting for it.
    pub lock: Option<NodeLock>,
    /// Turned true once this process sends: the drivers wait for it.
    pub gate: watch::Sender<bool>,
    /// Other processes may store parts for this one to send (PostgreSQL):
    /// read them every [`OWNER_EVERY`].
    pub shared: bool,
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    chooser: Arc<Mutex<Chooser>>,
    drivers: Vec<RouteDriver>,
    store: Store,
    notices: broadcast::Sender<Notice>,
    unsent: Vec<StoredPart>,
    mut cmds: mpsc::UnboundedReceiver<RouterCmd>,
    mut reports: mpsc::UnboundedReceiver<Report>,
    ownership: Ownership,
) {
    let Ownership { lock, gate, shared } = ownership;
    let (_lock, unsent) = match lock {
        Some(l) => (l, unsent),
        None => {
            let Some(l) = standby(&store, &mut cmds).await else {
                return;
            };
            match take_over(&store).await {
                Ok(unsent) => (l, unsent),
                Err(e) => {
                    tracing::error!("sms: taking over as the SMS sender: {e}");
                    return;
                }
            }
        }
    };
    gate.send_replace(true);
    let mut poll = shared.then(|| {
        let mut i = tokio::time::interval(OWNER_EVERY);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let mut r = Router {
        chooser,
        drivers,
        store,
        notices,
        held: BTreeMap::new(),
        next: 0,
    };
    r.dispatch(unsent).await;
    loop {
        let health = r.lock().next_timeout();
        let due = r.held.keys().next().map(|(t, _)| instant_of(*t));
        let wake = match (health, due) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a
                .or(b)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
        };
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                Some(RouterCmd::Submit(parts)) => r.dispatch(parts).await,
                Some(RouterCmd::Shutdown(tx)) => {
                    r.shutdown().await;
                    let _ = tx.send(());
                    return;
                }
                None => {
                    r.shutdown().await;
                    return;
                }
            },
            Some(Report::Signal(i, s)) = reports.recv() => {
                // A part pushed back by a route already down (it was in
                // flight when the route went down) moves on as well.
                let again = matches!(s, Signal::Throttled | Signal::BindRefused(_));
                let change = r.lock().signal(i, s, Instant::now());
                match change {
                    Some(c) => r.changed(i, c).await,
                    None if again && !r.lock().is_up(i) => {
                        r.changed(i, Change::Down("still down".into())).await
                    }
                    None => {}
                }
            }
            _ = tick(&mut poll) => match r.store.unclaimed_parts().await {
                Ok(parts) if !parts.is_empty() => {
                    tracing::debug!("sms: {} parts stored by other nodes", parts.len());
                    r.dispatch(parts).await;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("sms: reading the parts other nodes stored: {e}"),
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                let changes = r.lock().poll(Instant::now());
                for (i, c) in changes {
                    r.changed(i, c).await;
                }
                let now = now_ms();
                let mut due = Vec::new();
                while let Some(e) = r.held.first_entry() {
                    if e.key().0 > now {
                        break;
                    }
                    due.push(e.remove());
                }
                if !due.is_empty() {
                    r.dispatch(due).await;
                }
            }
        }
    }
}

/// The next tick of `poll`; never without one.
async fn tick(poll: &mut Option<tokio::time::Interval>) {
    match poll {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// While another process sends SMS: what this one stores waits in the
/// store for the sender; every [`OWNER_EVERY`] this one tries to become
/// it. `None` when the service stops first.
async fn standby(store: &Store, cmds: &mut mpsc::UnboundedReceiver<RouterCmd>) -> Option<NodeLock> {
    tracing::info!("sms: another node sends SMS; this one stores its messages for it");
    let mut every = tokio::time::interval(OWNER_EVERY);
    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                // Stored already: the sender reads it from the store.
                Some(RouterCmd::Submit(_)) => {}
                Some(RouterCmd::Shutdown(tx)) => {
                    let _ = tx.send(());
                    return None;
                }
                None => return None,
            },
            _ = every.tick() => match store.try_sms_owner().await {
                Ok(Some(lock)) => return Some(lock),
                Ok(None) => {}
                Err(e) => tracing::warn!("sms: asking whether another node sends SMS: {e}"),
            },
        }
    }
}

/// The sender stopped (its lock is free): its parts being written are
/// ended `unknown` as a restart would (never sent twice), and the unsent
/// ones are this process's to send.
async fn take_over(store: &Store) -> Result<Vec<StoredPart>, crate::store::StoreError> {
    for id in store.end_interrupted_sends().await? {
        tracing::warn!(
            "sms: {id}: ended unknown; a part of it was being sent when the last sender stopped"
        );
    }
    let unsent = store.unsent_parts().await?;
    tracing::info!(
        "sms: this node sends SMS now ({} parts unsent)",
        unsent.len()
    );
    Ok(unsent)
}

/// The monotonic instant of a unix-ms time (now when it is past).
fn instant_of(unix_ms: i64) -> Instant {
    let ahead = unix_ms.saturating_sub(now_ms()).max(0);
    Instant::now() + Duration::from_millis(u64::try_from(ahead).unwrap_or(0))
}

impl Router {
    fn lock(&self) -> std::sync::MutexGuard<'_, Chooser> {
        // A panic elsewhere cannot leave the chooser half-updated: every
        // change is one assignment.
        self.chooser.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends parts to their routes, or holds them until due.
    async fn dispatch(&mut self, parts: Vec<StoredPart>) {
        let now = now_ms();
        let mut batches: BTreeMap<usize, Vec<StoredPart>> = BTreeMap::new();
        let mut later: BTreeMap<usize, Vec<StoredPart>> = BTreeMap::new();
        for p in parts {
            let target = {
                let c = self.lock();
                let via = p.sending.via.as_deref();
                let taken = p.route.as_deref().and_then(|r| c.index(r));
                match taken.filter(|&i| via.is_some() || c.is_up(i)) {
                    Some(i) => Ok(i),
                    None => c.choose_like(&p.destination, via, taken),
                }
            };
            let target = match target {
                Ok(t) => t,
                Err(e) => {
                    self.fail(&p, &e.to_string()).await;
                    continue;
                }
            };
            let local = self
                .drivers
                .get(target)
                .is_some_and(|d| d.schedule == ScheduleMode::Local);
            if p.sending.not_before_ms.is_some_and(|t| t > now && local) {
                later.entry(target).or_default().push(p);
                continue;
            }
            batches.entry(target).or_default().push(p);
        }
        // Claimed before they are held, so when due they stay with a route
        // of the family they were encoded for.
        for (t, ps) in later {
            for p in self.claim(t, ps).await {
                self.next += 1;
                let at = p.sending.not_before_ms.unwrap_or(now);
                self.held.insert((at, self.next), p);
            }
        }
        for (t, ps) in batches {
            self.hand(t, ps).await;
        }
    }

    async fn fail(&self, p: &StoredPart, why: &str) {
        tracing::warn!("sms: {}: {why}", p.message_id);
        if let Err(e) = self.store.mark_rejected(&p.message_id, p.part, why).await {
            tracing::error!("sms: store {} failed: {e}", p.message_id);
        }
        let _ = self.notices.send(Notice::State(p.message_id.clone()));
    }

    /// Claims parts for route `t` in the store (those not already its),
    /// then hands the claimed ones to its driver.
    async fn hand(&mut self, t: usize, parts: Vec<StoredPart>) {
        let go = self.claim(t, parts).await;
        if go.is_empty() {
            return;
        }
        if let Some(d) = self.drivers.get(t) {
            let _ = d.cmds.send(DriverCmd::Submit(go));
        }
    }

    /// Claims parts for route `t` (those not already its); returns the
    /// parts that are now `t`'s.
    async fn claim(&mut self, t: usize, parts: Vec<StoredPart>) -> Vec<StoredPart> {
        let name = self.lock().name(t).to_string();
        let (mine, claim): (Vec<StoredPart>, Vec<StoredPart>) = parts
            .into_iter()
            .partition(|p| p.route.as_deref() == Some(name.as_str()));
        let kind = self.drivers.get(t).map(|d| d.kind.clone());
        let (claim, other): (Vec<StoredPart>, Vec<StoredPart>) = claim
            .into_iter()
            .partition(|p| kind.is_some() && self.kind_of(p) == kind);
        let mut go = mine;
        if let Some(kind) = kind {
            go.extend(self.reencode(&name, &kind, other).await);
        }
        if !claim.is_empty() {
            let keys: Vec<(&str, u8, Option<&str>)> = claim
                .iter()
                .map(|p| (p.message_id.as_str(), p.part, p.route.as_deref()))
                .collect();
            match self.store.claim_parts(&keys, &name).await {
                Ok(ok) => {
                    for (mut p, claimed) in claim.into_iter().zip(ok) {
                        if claimed {
                            p.route = Some(name.clone());
                            go.push(p);
                        } else {
                            // Written already, or ended: it is not ours to send.
                            tracing::debug!(
                                "sms: {}.{} not claimed for {name}",
                                p.message_id,
                                p.part
                            );
                        }
                    }
                }
                // Left queued in the store: the next start sends it.
                Err(e) => tracing::error!("sms: claim {} parts for route {name}: {e}", keys.len()),
            }
        }
        go
    }

    /// The kind the part is encoded for, when the router can tell.
    fn kind_of(&self, p: &StoredPart) -> Option<Kind> {
        let name = p.route.as_deref().or(p.sending.encoded_for.as_deref())?;
        let i = self.lock().index(name)?;
        self.drivers.get(i).map(|d| d.kind.clone())
    }

    async fn changed(&mut self, i: usize, c: Change) {
        let name = self.lock().name(i).to_string();
        let why = match c {
            Change::Up => {
                tracing::info!("sms route {name}: up");
                return;
            }
            Change::Down(why) => why,
        };
        tracing::warn!("sms route {name}: down ({why}); its unsent messages go to the next route");
        let Some(release) = self.drivers.get(i).and_then(|d| d.release.clone()) else {
            return;
        };
        // With no other route there is nowhere to go: the parts keep their
        // place in this route's queue.
        let others = self.drivers.len() > 1;
        if !others {
            return;
        }
        let (tx, rx) = oneshot::channel();
        if release.send(tx).is_err() {
            return;
        }
        let Ok(Ok(parts)) = tokio::time::timeout(Duration::from_secs(5), rx).await else {
            return;
        };
        let mut back = Vec::new();
        let mut moved: BTreeMap<usize, Vec<StoredPart>> = BTreeMap::new();
        for p in parts {
            let next = p
                .sending
                .via
                .is_none()
                .then(|| self.lock().next_after(&p.destination, i))
                .flatten();
            match next {
                Some(t) => moved.entry(t).or_default().push(p),
                None => back.push(p),
            }
        }
        let now = now_ms();
        for (t, ps) in moved {
            let to = self.lock().name(t).to_string();
            tracing::info!("sms: {} parts move from route {name} to {to}", ps.len());
            let local = self
                .drivers
                .get(t)
                .is_some_and(|d| d.schedule == ScheduleMode::Local);
            let (later, go): (Vec<StoredPart>, Vec<StoredPart>) = ps
                .into_iter()
                .partition(|p| local && p.sending.not_before_ms.is_some_and(|at| at > now));
            // Claimed for the new route now, held here until due.
            for p in self.claim(t, later).await {
                self.next += 1;
                let at = p.sending.not_before_ms.unwrap_or(now);
                self.held.insert((at, self.next), p);
            }
            self.hand(t, go).await;
        }
        if !back.is_empty() {
            if let Some(d) = self.drivers.get(i) {
                let _ = d.cmds.send(DriverCmd::Submit(back));
            }
        }
    }

    async fn shutdown(&mut self) {
        let mut waits = Vec::new();
        for d in &self.drivers {
            for c in std::iter::once(&d.cmds).chain(d.receiver.as_ref()) {
                let (tx, rx) = oneshot::channel();
                if c.send(DriverCmd::Shutdown(tx)).is_ok() {
                    waits.push(rx);
                }
            }
        }
        for w in waits {
            let _ = w.await;
        }
    }
}
