//! The campaign dialer inside `rivr serve`: glue between the store (the
//! rows: campaigns, contacts, attempts), the campaign rules
//! (`crate::campaign`: pacing, retries, calling hours) and the call layer
//! (the server core places each call with `originate`). It runs as its own
//! task so the store's I/O never holds up signalling; it talks to the
//! server's loop through [`Control`] and hears of each call's end through
//! the CDR tap.
//!
//! Order of writes (docs/campaigns.md): a contact is claimed with a new
//! attempt (`claimed`), the attempt is marked `dialing` before the call is
//! handed to the core, and it ends `done` with one outcome when the call's
//! CDR arrives. At start the crash rule runs before anything is claimed.
//!
//! Each campaign call's SIP dialog is stored as it forms (the glue's
//! `DialogNote`s: after the INVITE, at ringing, at the answer), so that
//! after a crash the new process ends the calls the dead one left at the
//! carrier (CANCEL or BYE, `sip::endpoint::orphan`) and frees their
//! channels when the carrier confirms; calls it cannot end hold their
//! channel until the ghost deadline.

use std::collections::HashMap;

#[path = "campaigns_cluster.rs"]
mod cluster;
pub use cluster::{reservation, SIXTY_FOUR_T1};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::sync::{mpsc, oneshot, watch};

use crate::call::id::CallId;
use crate::call::outcome::Outcome as CallOutcome;
use crate::call::registry::{CdrRecord, OriginateRequest};
use crate::campaign::contacts::fill_template;
use crate::campaign::hours::{parse_tz, CallingHours, Window};
use crate::campaign::pace::{CampaignId, CampaignPace, Pacer, Start, TrunkPace};
use crate::campaign::retry::{Next, RetryPolicy};
use crate::campaign::AttemptOutcome;
use crate::server::sip_legs::DialogNote;
use crate::sip::endpoint::OutDialog;
use crate::sms::SmsService;
use crate::store::{
    AttemptInfo, Campaign, CampaignState, Claimed, Dialog, Finish, Recovery, Store, StoreError,
    Then,
};

/// How often the store is asked for changes made by the CLI.
const POLL: Duration = Duration::from_millis(500);

/// At most this many contacts are claimed and put back (calling hours,
/// the do-not-call list) for one pacing slot, so one slot never stalls
/// the loop.
const CLAIMS_PER_SLOT: usize = 64;

/// What the dialer (and the HTTP API) asks of the server's signalling loop.
#[derive(Debug)]
pub enum Control {
    /// The calls not yet closed, for the API and the dashboard.
    Calls {
        reply: oneshot::Sender<Vec<crate::call::registry::LiveCall>>,
    },
    /// An operator hangs a call up by its id text; the reply says whether
    /// there was such a call.
    Hangup {
        id: String,
        reply: oneshot::Sender<bool>,
    },
    /// The trunks' state now.
    Trunks {
        reply: oneshot::Sender<Vec<TrunkState>>,
    },
    /// The signalling side's counters now (`/metrics`).
    Stats {
        reply: oneshot::Sender<super::stats::ServerStats>,
    },
    /// Each ended leg's final jitter-buffer delay since the last such
    /// request: only `/metrics` asks (each sample goes to one histogram).
    JitterDelays { reply: oneshot::Sender<Vec<f64>> },
    /// Each `say()` synthesis' time since the last such request: only
    /// `/metrics` asks.
    TtsSynthTimes { reply: oneshot::Sender<Vec<f64>> },
    /// Place a call; the reply is its id and the id's text (as in CDRs).
    Originate {
        req: OriginateRequest,
        reply: oneshot::Sender<(CallId, String)>,
    },
    /// End a call of a cancelled campaign (CANCEL while it rings).
    End { call: CallId },
    /// End a call a dead process left at the carrier, from its stored
    /// dialog; `DialogNote::OrphanGone` with `tag` follows.
    EndOrphan {
        tag: String,
        trunk: Option<String>,
        dialog: Box<OutDialog>,
    },
    /// This node's share of a trunk's cluster-wide caps: every outbound
    /// call through it (a script's `dial`, `POST /calls`, a campaign's)
    /// is held to it at the wire.
    TrunkCaps {
        name: String,
        max_channels: u32,
        cps: u32,
    },
}

/// One trunk as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrunkState {
    pub name: String,
    /// `sip` or `pri`.
    pub kind: &'static str,
    /// OPTIONS answered (SIP) or a span's D-channel link up (PRI); a SIP
    /// trunk without keepalives counts as up.
    pub up: bool,
    /// `Some` when the trunk registers.
    pub registered: Option<bool>,
    pub channels_in_use: u32,
    pub max_channels: u32,
    pub cps: u32,
    /// A PRI trunk's spans, in hunting order (empty for SIP).
    pub spans: Vec<SpanState>,
}

/// One span of a PRI trunk as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SpanState {
    pub name: String,
    /// Its D-channel link (Q.921) is established.
    pub up: bool,
    /// B-channels holding a call.
    pub channels_in_use: usize,
    /// B-channels it has.
    pub channels: usize,
}

/// How long after the last INVITE a dead process wrote a restarted dialer
/// waits before its first: that INVITE may have left a moment after its
/// `dialed_at`, and the carrier's 1 s window must not see the two
/// processes' calls together.
const RESTART_QUIET: Duration = Duration::from_millis(1_250);

/// What the dialer needs from the configuration.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub trunks: Vec<TrunkPace>,
    /// How long a call a dead process left at the carrier is taken to
    /// hold its channel, from its INVITE: the ring timeout and then the
    /// session interval rivr asked for (a carrier that honours RFC 4028
    /// ends the call by then), or an hour.
    pub ghost_hold: Duration,
    /// How long an unanswered call of a dead node may hold its channel,
    /// from its INVITE: the longest ring timeout and 64·T1.
    pub unanswered_hold: Duration,
}

/// A campaign the dialer knows.
struct Active {
    num: CampaignId,
    campaign: Campaign,
    policy: RetryPolicy,
    hours: CallingHours,
    tz: Tz,
    ends: Option<DateTime<Utc>>,
    /// The earliest `next_at` of its waiting contacts, as last read.
    next_due: Option<i64>,
    in_pacer: bool,
    /// Its cps and channels on this node (its share of them among the
    /// nodes; a 0 starts nothing), as given to the pacer.
    share: (u32, u32),
    /// AMD before the script on every answered attempt (`campaigns.amd`).
    amd: bool,
}

/// An attempt whose call is up or ringing.
struct InFlight {
    call: CallId,
    attempt: String,
    campaign: String,
    contact: i64,
    trunk: String,
    n: u32,
    phone: String,
    fields: Vec<(String, String)>,
}

/// The dialer task's state.
pub struct Runner {
    store: Store,
    sms: Option<SmsService>,
    control: mpsc::UnboundedSender<Control>,
    cfg: RunnerConfig,
    pacer: Pacer,
    campaigns: HashMap<String, Active>,
    by_num: HashMap<CampaignId, String>,
    next_num: i64,
    /// By the call's id text.
    inflight: HashMap<String, InFlight>,
    /// Calls a dead process left, by attempt id: the channel each holds
    /// in the pacer (trunk, campaign, deadline).
    ghosts: HashMap<String, (String, CampaignId, Instant)>,
    /// No call before this (a restart after a crash: `RESTART_QUIET`).
    quiet_until: Instant,
    version: i64,
    /// Instants for the pacer, wall-clock ms for the store.
    started: (Instant, i64),
    /// This process as a node of a shared database, and its share of the
    /// trunks' caps (`with_node`); `None`: the store is this process's.
    node: Option<super::node::Node>,
    caps: Option<crate::cluster::share::Caps>,
    /// When dead nodes' rows are next cleaned up (Unix ms).
    forget_at: i64,
}

fn wall_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The attempt outcome of a call's CDR. A call that shutdown withdrew
/// before it was answered is `unknown` (the crash rule: counted, retried
/// as a new attempt), not a final `cancelled`.
pub fn attempt_outcome(r: &CdrRecord) -> AttemptOutcome {
    match CallOutcome::parse(r.outcome) {
        Some(CallOutcome::Cancelled) if r.end == "shutdown" => AttemptOutcome::Unknown,
        Some(o) => AttemptOutcome::Call(o),
        None => AttemptOutcome::Call(CallOutcome::Failed),
    }
}

/// The attempt outcome of a call's CDR with what its early media said:
/// the refined outcome's base (a SIT heard before a 480 makes the attempt
/// `unreachable`, not `no_answer`) and its detail (`sit-vc`). A call
/// withdrawn by shutdown stays `unknown` whatever was heard.
pub fn refined_attempt_outcome(r: &CdrRecord) -> (AttemptOutcome, Option<&str>) {
    let coarse = attempt_outcome(r);
    if coarse == AttemptOutcome::Unknown {
        return (coarse, None);
    }
    match r.refined_outcome.split_once(':') {
        Some((base, detail)) => match CallOutcome::parse(base) {
            Some(b) => (AttemptOutcome::Call(b), Some(detail)),
            None => (coarse, None),
        },
        None => (coarse, None),
    }
}

/// Whether a contact whose last attempt ended `outcome` gets the
/// campaign's SMS: the outcomes named by `--sms-on`, or, when none are,
/// any final outcome but an answer (and never a `dnc`).
pub fn sends_sms(sms_on: &[AttemptOutcome], outcome: AttemptOutcome) -> bool {
    if outcome == AttemptOutcome::Dnc {
        return false;
    }
    if sms_on.is_empty() {
        outcome != AttemptOutcome::Call(CallOutcome::Answered)
    } else {
        sms_on.contains(&outcome)
    }
}

impl Runner {
    pub fn new(
        store: Store,
        sms: Option<SmsService>,
        control: mpsc::UnboundedSender<Control>,
        cfg: RunnerConfig,
    ) -> Runner {
        Runner {
            pacer: Pacer::new(cfg.trunks.clone()),
            store,
            sms,
            control,
            cfg,
            campaigns: HashMap::new(),
            by_num: HashMap::new(),
            next_num: 1,
            inflight: HashMap::new(),
            ghosts: HashMap::new(),
            quiet_until: Instant::now(),
            version: 0,
            started: (Instant::now(), wall_ms()),
            node: None,
            caps: None,
            forget_at: 0,
        }
    }

    fn instant_of(&self, ms: i64) -> Instant {
        let (i0, w0) = self.started;
        let ahead = u64::try_from(ms.saturating_sub(w0)).unwrap_or(0);
        i0 + Duration::from_millis(ahead)
    }

    /// Runs until `stop` turns true and then until the CDR tap closes
    /// (the server is gone): calls ended by the shutdown are recorded.
    pub async fn run(
        mut self,
        mut cdrs: mpsc::UnboundedReceiver<CdrRecord>,
        mut dialogs: mpsc::UnboundedReceiver<DialogNote>,
        mut stop: watch::Receiver<bool>,
    ) {
        if let Err(e) = self.start().await {
            tracing::error!(error = %e, "campaigns: cannot read the store; no campaign runs");
            return;
        }
        let mut poll = tokio::time::interval(POLL);
        let mut wake = self.quiet_until.max(Instant::now());
        let mut dialing = true;
        loop {
            if dialing && *stop.borrow() {
                dialing = false;
                tracing::info!(
                    in_flight = self.inflight.len(),
                    "campaigns: no new calls (stopping); running campaigns stay running and resume at the next start"
                );
            }
            if dialing && Instant::now() >= wake {
                wake = self.dial_due().await.max(self.quiet_until);
            }
            let sleep_to = tokio::time::Instant::from_std(wake);
            tokio::select! {
                r = cdrs.recv() => match r {
                    Some(r) => self.on_cdr(r).await,
                    None => {
                        self.leave().await;
                        return;
                    }
                },
                Some(n) = dialogs.recv() => self.on_dialog(n).await,
                _ = poll.tick(), if dialing => {
                    if let Err(e) = self.poll_changes().await {
                        tracing::warn!(error = %e, "campaigns: store poll failed");
                    }
                    wake = wake.min(Instant::now()).max(self.quiet_until);
                }
                _ = tokio::time::sleep_until(sleep_to), if dialing => {}
                _ = stop.changed(), if dialing => {}
            }
        }
    }

    /// Reads every campaign, applies the crash rule to attempts a dead
    /// process left in flight, and counts the channels their calls may
    /// still hold at the carrier.
    async fn start(&mut self) -> Result<(), StoreError> {
        self.poll_changes().await?;
        let now = wall_ms();
        let ghost_ms = i64::try_from(self.cfg.ghost_hold.as_millis()).unwrap_or(i64::MAX);
        let campaigns = &self.campaigns;
        let decide = |a: &AttemptInfo| crash_rule(campaigns, now, ghost_ms, a);
        // A node ends its own previous process's attempts at once; other
        // nodes' are theirs until their lease runs out.
        let node = self.node.as_ref().map(|n| n.id.clone());
        let recovered = match &node {
            Some(id) => self.store.recover_own(id, now, decide).await?,
            None => self.store.recover_in_flight(now, decide).await?,
        };
        for (a, r) in &recovered {
            tracing::warn!(attempt = %a.id, campaign = %a.campaign_id, phone = %a.phone,
                outcome = %r.outcome, then = ?r.then,
                "campaigns: attempt in flight at the last stop ended by the crash rule");
        }
        let last = match &node {
            Some(id) => self.store.last_dialed_by(id).await?,
            None => self.store.last_dialed_at().await?,
        };
        if let Some(last) = last {
            self.quiet_until = self.instant_of(last) + RESTART_QUIET;
        }
        let ghosts = match &node {
            Some(id) => self.store.own_ghost_channels(id, now).await?,
            None => self.store.ghost_channels(now).await?,
        };
        for g in ghosts {
            let (Some(trunk), Some(until)) = (g.trunk.clone(), g.ghost_until) else {
                continue;
            };
            if let Some(c) = self.campaigns.get(&g.campaign_id) {
                let at = self.instant_of(until);
                if self.pacer.occupy_until(&trunk, c.num, at) {
                    self.ghosts.insert(g.id.clone(), (trunk.clone(), c.num, at));
                    tracing::info!(attempt = %g.id, trunk, until_ms = until,
                        "campaigns: a call left by the last process holds a channel");
                }
            }
            let dialog = g
                .dialog
                .sip
                .as_deref()
                .and_then(|j| serde_json::from_str::<OutDialog>(j).ok());
            match dialog {
                Some(d) => {
                    let _ = self.control.send(Control::EndOrphan {
                        tag: g.id.clone(),
                        trunk: Some(trunk),
                        dialog: Box::new(d),
                    });
                }
                None => tracing::warn!(attempt = %g.id,
                    "campaigns: no dialog stored for a call the last process left; its channel is held until its deadline"),
            }
        }
        self.send_owed_sms().await?;
        Ok(())
    }

    /// The SMS fallback of contacts a dead process ended (or the crash
    /// rule just ended) without texting them: each is sent once, as ever
    /// (`claim_sms`).
    async fn send_owed_sms(&mut self) -> Result<(), StoreError> {
        let texting: Vec<(String, String, Vec<AttemptOutcome>)> = self
            .campaigns
            .iter()
            .filter(|(_, a)| is_live(a.campaign.state))
            .filter_map(|(id, a)| {
                let text = a.campaign.settings.sms.clone()?;
                let outcomes = AttemptOutcome::all()
                    .filter(|o| sends_sms(&a.campaign.settings.sms_on, *o))
                    .collect();
                Some((id.clone(), text, outcomes))
            })
            .collect();
        for (id, text, outcomes) in texting {
            for owed in self.store.owed_sms(&id, &outcomes).await? {
                tracing::info!(campaign = %id, phone = %owed.phone, outcome = %owed.outcome,
                    "campaigns: SMS fallback the last process did not send");
                let body = fill_template(&text, &owed.fields);
                self.send_sms(&id, owed.contact_id, &owed.phone, &body)
                    .await;
            }
        }
        Ok(())
    }

    /// A campaign call's dialog moved on (stored for a restart), or a call
    /// a dead process left is over at the carrier (its channel is free).
    async fn on_dialog(&mut self, n: DialogNote) {
        match n {
            DialogNote::Dialog {
                tag,
                answered,
                dialog,
            } => {
                let text = serde_json::to_string(&*dialog).ok();
                let d = Dialog {
                    call_id: Some(dialog.call_id.clone()),
                    local_tag: Some(dialog.local_tag.clone()),
                    remote_tag: dialog.remote_tag.clone(),
                    remote_target: dialog.remote_target.clone(),
                    route_set: (!dialog.route_set.is_empty()).then(|| dialog.route_set.join(", ")),
                    cseq: Some(dialog.cseq),
                    sip: text,
                };
                if let Err(e) = self.store.update_dialog(&tag, &d).await {
                    tracing::warn!(attempt = %tag, error = %e, "campaigns: dialog not stored");
                }
                if answered {
                    if let Err(e) = self.store.mark_answered(&tag, wall_ms()).await {
                        tracing::warn!(attempt = %tag, error = %e, "campaigns: answer not stored");
                    }
                }
            }
            DialogNote::OrphanGone { tag } => {
                if let Err(e) = self.store.release_ghost(&tag).await {
                    tracing::warn!(attempt = %tag, error = %e, "campaigns: ghost not released in the store");
                }
                if let Some((trunk, num, until)) = self.ghosts.remove(&tag) {
                    self.pacer.release_ghost(&trunk, num, until);
                }
                tracing::info!(attempt = %tag, "campaigns: a call left by the last process is over; its channel is free");
            }
        }
    }

    /// Picks up campaigns created, started, paused, resumed or cancelled
    /// by the CLI; refreshes when each running one next has a contact due;
    /// closes the ones with nothing left.
    async fn poll_changes(&mut self) -> Result<(), StoreError> {
        let (version, changed) = self.store.changed_since(self.version).await?;
        self.version = version;
        for c in changed {
            let id = c.id.clone();
            let amd = self.store.campaign_amd(&id).await?;
            self.apply(c);
            if let Some(a) = self.campaigns.get_mut(&id) {
                a.amd = amd;
            }
        }
        self.poll_cluster().await?;
        let now = wall_ms();
        let running: Vec<String> = self
            .campaigns
            .iter()
            .filter(|(_, a)| a.campaign.state == CampaignState::Running)
            .map(|(id, _)| id.clone())
            .collect();
        for id in running {
            let due = self.store.next_due_at(&id).await?;
            let in_flight = self.inflight.values().filter(|f| f.campaign == id).count();
            let Some(a) = self.campaigns.get_mut(&id) else {
                continue;
            };
            a.next_due = due;
            let past_end = a.ends.is_some_and(|e| now >= e.timestamp_millis());
            // Other nodes' calls count too: one may still end in a retry.
            if in_flight == 0
                && (due.is_none() || past_end)
                && self.store.dialing_contacts(&id).await? == 0
            {
                let done = self
                    .store
                    .set_campaign_state(&id, &[CampaignState::Running], CampaignState::Done)
                    .await?;
                if done {
                    tracing::info!(campaign = %id, "campaigns: done");
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, c: Campaign) {
        let share = self.campaign_share(cps_of(&c), c.settings.max_channels);
        let id = c.id.clone();
        let state = c.state;
        if !self.campaigns.contains_key(&id) {
            match self.activate(c) {
                Ok(a) => {
                    self.by_num.insert(a.num, id.clone());
                    self.campaigns.insert(id.clone(), a);
                }
                Err(e) => {
                    tracing::error!(campaign = %id, error = %e, "campaigns: cannot run it");
                    return;
                }
            }
        } else if let Some(a) = self.campaigns.get_mut(&id) {
            a.campaign = c;
        }
        let Some(a) = self.campaigns.get_mut(&id) else {
            return;
        };
        match state {
            CampaignState::Running if !a.in_pacer => {
                let spec = CampaignPace {
                    id: a.num,
                    priority: a.campaign.settings.priority,
                    cps: share.0.max(1),
                    max_channels: share.1.max(1),
                    trunks: a.campaign.settings.trunks.clone(),
                };
                match self.pacer.add(spec, true) {
                    Ok(()) => {
                        a.in_pacer = true;
                        a.share = share;
                    }
                    Err(e) => {
                        tracing::error!(campaign = %id, error = %e, "campaigns: cannot run it")
                    }
                }
            }
            CampaignState::Running => {
                self.pacer.resume(a.num);
            }
            CampaignState::Paused => {
                self.pacer.pause(a.num);
            }
            CampaignState::Cancelled => {
                self.pacer.pause(a.num);
                for f in self.inflight.values().filter(|f| f.campaign == id) {
                    let _ = self.control.send(Control::End { call: f.call });
                }
            }
            CampaignState::Created | CampaignState::Done => {}
        }
        tracing::info!(campaign = %id, %state, "campaigns: state");
    }

    fn activate(&mut self, c: Campaign) -> Result<Active, String> {
        let s = &c.settings;
        let policy = RetryPolicy::parse(&s.retry, s.attempts).map_err(|e| format!("retry: {e}"))?;
        let hours = CallingHours::parse(&s.hours, &s.days).map_err(|e| format!("hours: {e}"))?;
        let tz = parse_tz(&s.tz).map_err(|e| format!("tz: {e}"))?;
        let num = CampaignId(self.next_num);
        self.next_num += 1;
        Ok(Active {
            num,
            policy,
            hours,
            tz,
            ends: s.ends_at.map(utc),
            next_due: None,
            in_pacer: false,
            share: (0, 0),
            amd: false,
            campaign: c,
        })
    }

    /// Starts every call the pacer allows now; returns when to look again.
    async fn dial_due(&mut self) -> Instant {
        if self.lease_lost() {
            return Instant::now() + POLL;
        }
        loop {
            if Instant::now() < self.quiet_until {
                // A share's cps changed: its window first.
                return self.quiet_until;
            }
            let now = Instant::now();
            let now_ms = wall_ms();
            let ready: HashMap<CampaignId, bool> = self
                .campaigns
                .values()
                .map(|a| {
                    let due = a.next_due.is_some_and(|t| t <= now_ms)
                        && a.ends.is_none_or(|e| now_ms < e.timestamp_millis())
                        && a.campaign.state == CampaignState::Running
                        && a.share.0 > 0
                        && a.share.1 > 0;
                    (a.num, due)
                })
                .collect();
            match self
                .pacer
                .next_start(now, |c| ready.get(&c).copied().unwrap_or(false))
            {
                Start::Go { campaign, trunk } => {
                    let Some(id) = self.by_num.get(&campaign).cloned() else {
                        self.pacer.ended(campaign, &trunk);
                        continue;
                    };
                    match self.claim_dialable(&id, now_ms).await {
                        Ok(Some(c)) => self.place(c, campaign, trunk).await,
                        Ok(None) => {
                            self.pacer.ended(campaign, &trunk);
                        }
                        Err(e) => {
                            tracing::warn!(campaign = %id, error = %e, "campaigns: claim failed");
                            self.pacer.ended(campaign, &trunk);
                            if let Some(a) = self.campaigns.get_mut(&id) {
                                a.next_due = None;
                            }
                        }
                    }
                }
                Start::WaitUntil(t) => return t,
                Start::Idle => return now + POLL,
            }
        }
    }

    /// The next contact of campaign `id` that may be called now: a contact
    /// on the do-not-call list ends `dnc`, one outside its calling hours
    /// goes back to wait for its next window (no attempt counted).
    async fn claim_dialable(
        &mut self,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<Claimed>, StoreError> {
        for _ in 0..CLAIMS_PER_SLOT {
            let node = self.node.as_ref().map(|n| n.id.as_str());
            let Some(c) = self.store.claim_due_as(node, id, now_ms, 1).await?.pop() else {
                let due = self.store.next_due_at(id).await?;
                if let Some(a) = self.campaigns.get_mut(id) {
                    a.next_due = due;
                }
                return Ok(None);
            };
            let Some(a) = self.campaigns.get(id) else {
                return Ok(None);
            };
            if c.dnc {
                tracing::info!(campaign = %id, phone = %c.phone, "campaigns: on the do-not-call list");
                let f = Finish::new(AttemptOutcome::Dnc, Then::Final);
                self.store.finish_attempt(&c.attempt_id, &f, now_ms).await?;
                continue;
            }
            let tz =
                c.tz.as_deref()
                    .and_then(|z| parse_tz(z).ok())
                    .unwrap_or(a.tz);
            match a.hours.window_at(tz, utc(now_ms)) {
                Window::Open { .. } => return Ok(Some(c)),
                Window::Closed { opens } => {
                    self.store
                        .unclaim(&c.attempt_id, opens.timestamp_millis())
                        .await?;
                }
                Window::Never => {
                    self.store
                        .unclaim(&c.attempt_id, now_ms.saturating_add(86_400_000))
                        .await?;
                }
            }
        }
        Ok(None)
    }

    async fn place(&mut self, c: Claimed, num: CampaignId, trunk: String) {
        let now_ms = wall_ms();
        let Some(a) = self.campaigns.get(&c.campaign_id) else {
            self.pacer.ended(num, &trunk);
            return;
        };
        let script = a.campaign.settings.script.clone();
        match self
            .store
            .mark_dialing(&c.attempt_id, &trunk, &Dialog::default(), now_ms)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                self.pacer.ended(num, &trunk);
                return;
            }
            Err(e) => {
                tracing::warn!(attempt = %c.attempt_id, error = %e, "campaigns: cannot mark dialing; not dialed");
                let _ = self.store.unclaim(&c.attempt_id, now_ms).await;
                self.pacer.ended(num, &trunk);
                return;
            }
        }
        let (reply, answer) = oneshot::channel();
        let req = OriginateRequest {
            amd: a.amd,
            target: c.phone.clone(),
            trunk: Some(trunk.clone()),
            caller_id: None,
            ring_timeout: None,
            script: Some(script.into()),
            vars: c.fields.clone(),
            tag: Some(c.attempt_id.clone()),
            pace: Some(self.wire_pace(&c.campaign_id, a.share.0, &trunk)),
        };
        if self
            .control
            .send(Control::Originate { req, reply })
            .is_err()
        {
            // The server is gone: the attempt stays `dialing` and the next
            // start resolves it by the crash rule.
            return;
        }
        let Ok((call, text)) = answer.await else {
            return;
        };
        tracing::info!(campaign = %c.campaign_id, attempt = %c.attempt_id, n = c.n, phone = %c.phone,
            trunk = %trunk, call = %text, "campaigns: dialing");
        self.inflight.insert(
            text,
            InFlight {
                call,
                attempt: c.attempt_id,
                campaign: c.campaign_id,
                contact: c.contact_id,
                trunk,
                n: c.n,
                phone: c.phone,
                fields: c.fields,
            },
        );
    }

    /// A call ended: its attempt gets its one outcome, its contact a
    /// retry time or its end (and the SMS, if the campaign sends one).
    async fn on_cdr(&mut self, r: CdrRecord) {
        if r.leg != 0 {
            return;
        }
        let Some(f) = self.inflight.remove(&r.call_id) else {
            return;
        };
        let now_ms = wall_ms();
        let (outcome, detail) = refined_attempt_outcome(&r);
        let Some(a) = self.campaigns.get(&f.campaign) else {
            return;
        };
        if detail.is_some() {
            // Before the finish, so the row that ends the attempt has it.
            if let Err(e) = self
                .store
                .note_refined_outcome(&f.attempt, &r.refined_outcome)
                .await
            {
                tracing::warn!(attempt = %f.attempt, error = %e, "campaigns: cannot note the refined outcome");
            }
        }
        let num = a.num;
        let then = if a.campaign.state == CampaignState::Cancelled {
            Then::Final
        } else {
            match a
                .policy
                .next_refined(outcome, detail, f.n, utc(now_ms), a.ends)
            {
                Next::Retry { at } => Then::Retry {
                    next_at: at.timestamp_millis(),
                },
                Next::Final { .. } => Then::Final,
            }
        };
        let sms = match (&a.campaign.settings.sms, then) {
            (Some(text), Then::Final) if sends_sms(&a.campaign.settings.sms_on, outcome) => {
                Some(fill_template(text, &f.fields))
            }
            _ => None,
        };
        let finish = Finish {
            outcome,
            sip_status: r.sip_status,
            q850: r.q850,
            ring_ms: Some(r.ring_ms),
            talk_ms: Some(r.talk_ms),
            results: Some(r.results.clone()),
            then,
        };
        match self.store.finish_attempt(&f.attempt, &finish, now_ms).await {
            Ok(_) => {}
            Err(e) => {
                tracing::error!(attempt = %f.attempt, error = %e, "campaigns: cannot record the outcome");
            }
        }
        tracing::info!(campaign = %f.campaign, attempt = %f.attempt, phone = %f.phone, %outcome,
            refined = %r.refined_outcome, then = ?then, "campaigns: attempt ended");
        self.pacer.ended(num, &f.trunk);
        if let (Then::Retry { next_at }, Some(a)) = (then, self.campaigns.get_mut(&f.campaign)) {
            a.next_due = Some(a.next_due.map_or(next_at, |d| d.min(next_at)));
        }
        if let Some(text) = sms {
            self.send_sms(&f.campaign, f.contact, &f.phone, &text).await;
        }
    }

    /// The campaign's SMS, at most once per contact: the message and the
    /// contact's claim on it are stored in one transaction before the
    /// driver sees it.
    async fn send_sms(&self, campaign: &str, contact: i64, phone: &str, text: &str) {
        let Some(sms) = &self.sms else {
            tracing::warn!(campaign = %campaign, "campaigns: SMS fallback asked for, but no [smpp] or [sms_http] is configured");
            return;
        };
        let m = match sms.prepare(phone, text) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(phone = %phone, error = %e, "campaigns: SMS not sent");
                return;
            }
        };
        match self.store.claim_sms(contact, &m).await {
            Ok(true) => {
                tracing::info!(campaign = %campaign, phone = %phone, sms = %m.id, "campaigns: SMS fallback");
                sms.send_stored(m);
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(phone = %phone, error = %e, "campaigns: SMS not stored"),
        }
    }
}

/// The crash rule's decision for an attempt found in flight whose process
/// is gone (docs/campaigns.md): `answered` if its answer was stored (the
/// contact heard the call), else `unknown`; the campaign's retry rule
/// says what follows; its call may hold a channel until `ghost_ms` after
/// its INVITE.
fn crash_rule(
    campaigns: &HashMap<String, Active>,
    now: i64,
    ghost_ms: i64,
    a: &AttemptInfo,
) -> Recovery {
    let outcome = if a.answered_at.is_some() {
        AttemptOutcome::Call(CallOutcome::Answered)
    } else {
        AttemptOutcome::Unknown
    };
    let then = match campaigns.get(&a.campaign_id) {
        Some(c) if is_live(c.campaign.state) => match c.policy.next(outcome, a.n, utc(now), c.ends)
        {
            Next::Retry { at } => Then::Retry {
                next_at: at.timestamp_millis(),
            },
            Next::Final { .. } => Then::Final,
        },
        _ => Then::Final,
    };
    Recovery {
        outcome,
        then,
        ghost_until: a
            .dialed_at
            .map(|d| d.saturating_add(ghost_ms))
            .filter(|t| *t > now),
    }
}

/// The campaign's calls per second as the pacers take it (the CLI stores
/// whole numbers from 1; the pacer refuses one above its bound).
fn cps_of(c: &Campaign) -> u32 {
    c.settings.cps.round().max(1.0) as u32
}

fn is_live(s: CampaignState) -> bool {
    matches!(s, CampaignState::Running | CampaignState::Paused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_goes_to_the_named_outcomes_or_to_any_unanswered_end() {
        let busy = AttemptOutcome::Call(CallOutcome::Busy);
        let answered = AttemptOutcome::Call(CallOutcome::Answered);
        assert!(sends_sms(&[], busy));
        assert!(sends_sms(&[], AttemptOutcome::Unknown));
        assert!(!sends_sms(&[], answered));
        assert!(!sends_sms(&[], AttemptOutcome::Dnc));
        assert!(sends_sms(&[busy], busy));
        assert!(!sends_sms(
            &[busy],
            AttemptOutcome::Call(CallOutcome::NoAnswer)
        ));
        assert!(!sends_sms(&[AttemptOutcome::Dnc], AttemptOutcome::Dnc));
    }
}
