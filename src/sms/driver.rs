//! The tokio driver of the SMPP session: one TCP connection at a time, bytes
//! and instants in, store updates out. It holds no protocol logic; the
//! session decides, the driver only moves bytes, time and store writes.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::config::SmppConfig;
use super::encoding;
use super::pdu::{tag, CommandStatus, ShortMessage};
use super::receipt;
use super::route::Signal;
use super::session::{Action, Event, PartKey, Session};
use super::submit_sm;
use super::{LinkStatus, Notice};
use crate::store::{Store, StoredPart};

/// Requests from [`super::SmsService`] to its driver task.
#[derive(Debug)]
pub(crate) enum DriverCmd {
    /// Parts already stored; send them in this order.
    Submit(Vec<StoredPart>),
    /// Finish outstanding parts, unbind, then stop.
    Shutdown(oneshot::Sender<()>),
}

/// What ties a driver to its route: where it reports its health and where
/// it is asked to give back the parts it has not written.
pub(crate) struct RouteCtx {
    pub index: usize,
    pub reports: mpsc::UnboundedSender<super::route::task::Report>,
    pub release: mpsc::UnboundedReceiver<oneshot::Sender<Vec<StoredPart>>>,
    /// A refused bind is the caller's error only when there is no other
    /// route (`rivr sms send` stops on it).
    pub sole: bool,
}

impl RouteCtx {
    fn report(&self, s: Signal) {
        let _ = self
            .reports
            .send(super::route::task::Report::Signal(self.index, s));
    }
}

/// The parts in the session, so those never written can be handed back.
#[derive(Default)]
struct Held {
    parts: HashMap<PartKey, StoredPart>,
    written: HashSet<PartKey>,
}

impl Held {
    fn add(&mut self, session: &mut Session, cfg: &SmppConfig, p: StoredPart, now: Instant) {
        let key = PartKey {
            message_id: p.message_id.clone(),
            part: p.part,
        };
        let sub = submit_sm::submission(cfg, p.clone(), crate::store::now_ms());
        if session.submit(sub, now) {
            self.parts.insert(key, p);
        }
    }

    fn done(&mut self, key: &PartKey) {
        self.parts.remove(key);
        self.written.remove(key);
    }

    /// Takes the parts never written out of the session.
    fn release(&mut self, session: &mut Session) -> Vec<StoredPart> {
        let written = &self.written;
        let subs = session.take_waiting(|k| !written.contains(k));
        subs.into_iter()
            .filter_map(|s| self.parts.remove(&s.key))
            .collect()
    }
}

/// Runs the session until shut down.
pub(crate) async fn run(
    cfg: SmppConfig,
    store: Store,
    unsent: Vec<StoredPart>,
    mut cmds: mpsc::UnboundedReceiver<DriverCmd>,
    notices: broadcast::Sender<Notice>,
    status: tokio::sync::watch::Sender<LinkStatus>,
    mut ctx: RouteCtx,
) {
    let seed = rand::random::<u64>();
    let mut counts = Counts::default();
    let mut session = Session::new(cfg.session(seed), Instant::now());
    let mut held = Held::default();
    for p in unsent {
        held.add(&mut session, &cfg, p, Instant::now());
    }
    let mut conn: Option<TcpStream> = None;
    let mut out = Vec::with_capacity(4096);
    let mut sending: Vec<PartKey> = Vec::new();
    let mut rbuf = vec![0u8; 16 * 1024];
    let mut shutdown: Option<oneshot::Sender<()>> = None;
    let receipt_timeout = Duration::from_secs(cfg.receipt_timeout_secs);
    let sweep_every = receipt_timeout.clamp(Duration::from_millis(200), Duration::from_secs(60));
    let mut next_sweep = Instant::now() + sweep_every;
    loop {
        let mut finished = false;
        // Drain the session until it has nothing more to say.
        loop {
            let mut busy = false;
            // Bytes first: an unbind_resp goes out before a Close.
            session.take_transmit(&mut out);
            session.take_sent_parts(&mut sending);
            held.written.extend(sending.iter().cloned());
            // Stored before the bytes leave: a part that may have reached the
            // SMSC is never sent again by a later process.
            if !sending.is_empty() && conn.is_some() {
                let keys: Vec<(&str, u8)> = sending
                    .iter()
                    .map(|k| (k.message_id.as_str(), k.part))
                    .collect();
                if let Err(e) = store.mark_sending(&keys).await {
                    // Not written, so not sent: the link is rebuilt (with
                    // backoff) and the parts go out again after it.
                    tracing::error!("sms: store {} parts as sending: {e}", keys.len());
                    out.clear();
                    conn = None;
                    session.handle_disconnected(Instant::now());
                }
            }
            if !out.is_empty() {
                busy = true;
                if let Some(s) = conn.as_mut() {
                    if let Err(e) = s.write_all(&out).await {
                        tracing::warn!("smpp: write: {e}");
                        conn = None;
                        session.handle_disconnected(Instant::now());
                    }
                }
            }
            while let Some(a) = session.poll_action() {
                busy = true;
                match a {
                    Action::Connect => {
                        let addr = format!("{}:{}", cfg.host, cfg.port);
                        let t = Duration::from_millis(cfg.response_timeout_ms.max(1));
                        match tokio::time::timeout(t, TcpStream::connect(&addr)).await {
                            Ok(Ok(s)) => {
                                let _ = s.set_nodelay(true);
                                conn = Some(s);
                                session.handle_connected(Instant::now());
                            }
                            Ok(Err(e)) => {
                                tracing::warn!("smpp: connect {addr}: {e}");
                                ctx.report(Signal::Unbound);
                                session.handle_disconnected(Instant::now());
                            }
                            Err(_) => {
                                tracing::warn!("smpp: connect {addr}: timed out");
                                ctx.report(Signal::Unbound);
                                session.handle_disconnected(Instant::now());
                            }
                        }
                    }
                    Action::Close => conn = None,
                }
            }
            // Acceptances that arrived together are stored in one
            // transaction; any other event first flushes them, keeping order.
            let mut accepted: Vec<(String, u8, String)> = Vec::new();
            while let Some(e) = session.poll_event() {
                busy = true;
                if let Event::Accepted { key, smsc_id } = e {
                    held.done(&key);
                    accepted.push((key.message_id, key.part, smsc_id));
                    continue;
                }
                counts.count(&e);
                store_accepted(&mut accepted, &store, &notices).await;
                route_event(&e, &ctx, &mut held, &store).await;
                if handle_event(e, &mut session, &store, &notices, ctx.sole).await {
                    finished = true;
                }
            }
            if !accepted.is_empty() {
                ctx.report(Signal::Accepted);
            }
            store_accepted(&mut accepted, &store, &notices).await;
            publish(&status, &session, &cfg, &counts);
            if !busy {
                break;
            }
        }
        if finished {
            if let Some(tx) = shutdown.take() {
                let _ = tx.send(());
            }
            return;
        }
        let wake = session
            .poll_timeout()
            .map_or(next_sweep, |t| t.min(next_sweep));
        let wake = tokio::time::Instant::from_std(wake);
        tokio::select! {
            n = read_some(&mut conn, &mut rbuf) => {
                match n {
                    Ok(0) | Err(_) => {
                        conn = None;
                        session.handle_disconnected(Instant::now());
                    }
                    Ok(n) => session.handle_bytes(rbuf.get(..n).unwrap_or(&[]), Instant::now()),
                }
            }
            cmd = cmds.recv() => match cmd {
                Some(DriverCmd::Submit(parts)) => {
                    let now = Instant::now();
                    for p in parts {
                        held.add(&mut session, &cfg, p, now);
                    }
                }
                Some(DriverCmd::Shutdown(tx)) => {
                    shutdown = Some(tx);
                    session.unbind(Instant::now());
                }
                None => session.unbind(Instant::now()),
            },
            Some(reply) = ctx.release.recv() => {
                let _ = reply.send(held.release(&mut session));
            }
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                session.handle_timeout(now);
                if now >= next_sweep {
                    next_sweep = now + sweep_every;
                    let cutoff = crate::store::now_ms()
                        .saturating_sub(i64::try_from(receipt_timeout.as_millis()).unwrap_or(i64::MAX));
                    match store.expire_receipts(cutoff).await {
                        Ok(ids) => for id in ids { let _ = notices.send(Notice::State(id)); },
                        Err(e) => tracing::error!("sms: receipt sweep: {e}"),
                    }
                }
            }
        }
    }
}

/// What the session does not count itself.
#[derive(Debug, Default)]
struct Counts {
    rejected: u64,
    receipts: u64,
}

impl Counts {
    fn count(&mut self, e: &Event) {
        match e {
            Event::Rejected { .. } => self.rejected += 1,
            Event::Deliver { sm, .. } if receipt::is_receipt(sm) => self.receipts += 1,
            _ => {}
        }
    }
}

/// Publishes the link's status when it changed.
fn publish(
    status: &tokio::sync::watch::Sender<LinkStatus>,
    session: &Session,
    cfg: &SmppConfig,
    counts: &Counts,
) {
    let st = session.stats();
    let now = LinkStatus {
        transport: "smpp",
        bound: session.is_bound(),
        window: cfg.window.max(1),
        outstanding: session.outstanding(),
        pending: session.pending(),
        submits: st.submits_sent,
        accepted: st.accepted,
        rejected: counts.rejected,
        throttled: st.backpressure,
        receipts: counts.receipts,
        connects: st.connects,
        malformed: st.malformed,
    };
    status.send_if_modified(|s| {
        let changed = *s != now;
        if changed {
            *s = now;
        }
        changed
    });
}

async fn read_some(conn: &mut Option<TcpStream>, buf: &mut [u8]) -> std::io::Result<usize> {
    match conn.as_mut() {
        Some(s) => s.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Reports what the route's health depends on; a throttled part, answered
/// "not taken" by the SMSC, is no longer one that may have reached it.
async fn route_event(e: &Event, ctx: &RouteCtx, held: &mut Held, store: &Store) {
    match e {
        Event::Bound { .. } => ctx.report(Signal::Bound),
        Event::BindFailed { status } => ctx.report(Signal::BindRefused(status.to_string())),
        Event::LinkLost => ctx.report(Signal::Unbound),
        Event::Backpressure { key, .. } => {
            ctx.report(Signal::Throttled);
            match store.clear_sending(&key.message_id, key.part).await {
                Ok(()) => {
                    held.written.remove(key);
                }
                Err(err) => tracing::error!("sms: store {} as not sent: {err}", key.message_id),
            }
        }
        Event::Rejected { key, .. } => held.done(key),
        _ => {}
    }
}

/// Applies one session event; true when the session has ended.
async fn handle_event(
    e: Event,
    session: &mut Session,
    store: &Store,
    notices: &broadcast::Sender<Notice>,
    sole: bool,
) -> bool {
    match e {
        Event::Bound { system_id } => {
            tracing::info!("smpp: bound to {system_id:?}");
            let _ = notices.send(Notice::Bound);
        }
        Event::BindFailed { status } => {
            tracing::warn!("smpp: bind failed: {status}");
            if sole {
                let _ = notices.send(Notice::BindFailed(status.to_string()));
            }
        }
        Event::LinkLost => tracing::info!("smpp: link lost, reconnecting"),
        Event::Accepted { key, smsc_id } => {
            let mut one = vec![(key.message_id, key.part, smsc_id)];
            store_accepted(&mut one, store, notices).await;
        }
        Event::Rejected { key, status } => {
            if let Err(err) = store
                .mark_rejected(&key.message_id, key.part, &status.to_string())
                .await
            {
                tracing::error!("sms: store rejected {}: {err}", key.message_id);
            }
            let _ = notices.send(Notice::State(key.message_id));
        }
        Event::Backpressure { key, status } => {
            tracing::debug!("smpp: {status} for {}; backing off", key.message_id)
        }
        Event::Deliver { sequence, sm } => {
            let status = match deliver(&sm, store, notices).await {
                Ok(()) => CommandStatus::OK,
                // Temporary application error: the SMSC will deliver again.
                Err(err) => {
                    tracing::error!("sms: store deliver_sm: {err}");
                    CommandStatus(0x64)
                }
            };
            session.ack_deliver(sequence, status);
        }
        Event::Unbound => return true,
    }
    false
}

/// Stores a batch of acceptances (emptying it) and announces them.
async fn store_accepted(
    batch: &mut Vec<(String, u8, String)>,
    store: &Store,
    notices: &broadcast::Sender<Notice>,
) {
    if batch.is_empty() {
        return;
    }
    if let Err(err) = store.mark_accepted_many(batch).await {
        tracing::error!("sms: store {} acceptances: {err}", batch.len());
    }
    for (id, _, _) in batch.drain(..) {
        let _ = notices.send(Notice::State(id));
    }
}

async fn deliver(
    sm: &ShortMessage,
    store: &Store,
    notices: &broadcast::Sender<Notice>,
) -> Result<(), crate::store::StoreError> {
    if receipt::is_receipt(sm) {
        if let Some(r) = receipt::parse(sm) {
            if let Some(id) = store.apply_receipt(&r).await? {
                let _ = notices.send(Notice::State(id));
            }
        }
        return Ok(());
    }
    let raw = sm
        .tlv(tag::MESSAGE_PAYLOAD)
        .filter(|_| sm.short_message.is_empty())
        .unwrap_or(&sm.short_message);
    let (concat, body) = if sm.esm_class & encoding::ESM_UDHI != 0 {
        encoding::split_udh(raw).unwrap_or((None, &[]))
    } else {
        (None, raw)
    };
    let text = encoding::decode(sm.data_coding, body);
    let (src, dst) = (&sm.source_addr, &sm.destination_addr);
    let id = match concat.filter(|c| c.total > 1 && c.seq >= 1 && c.seq <= c.total) {
        Some(c) => {
            match store
                .insert_inbound_part(src, dst, c.reference, c.total, c.seq, &text)
                .await?
            {
                Some(id) => id,
                None => return Ok(()),
            }
        }
        None => {
            super::flow::accept_inbound(store, notices, src, dst, &text).await?;
            return Ok(());
        }
    };
    // The joined parts are stored by the store itself; announced the same way.
    let _ = notices.send(Notice::Inbound(id));
    Ok(())
}
