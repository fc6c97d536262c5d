//! What the dashboard shows, as one JSON value per second: live calls,
//! trunks, calls per second, campaigns, SMS states and recent errors
//! (docs/api.md, "Dashboard"). One producer task builds it for every
//! open page, and only while a page is open, so ten viewers cost the
//! server loop and the store what one does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::watch;

use super::super::{ApiError, ApiState};
use crate::server::campaigns::Control;
use crate::store::{Campaign, CampaignState};

/// Live calls listed by name; the counts cover them all.
const LIST_CALLS: usize = 20;
/// Campaigns shown: every unfinished one first, then the latest finished.
const SHOW_CAMPAIGNS: usize = 8;
/// How often a snapshot is built.
pub const PERIOD: Duration = Duration::from_secs(1);

/// The latest snapshot (JSON text) for every open page.
#[derive(Clone)]
pub struct Feed {
    tx: watch::Sender<Option<Arc<str>>>,
    running: Arc<AtomicBool>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            tx: watch::Sender::new(None),
            running: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Feed {
    /// A page's view of the feed; starts the producer if it is idle.
    pub fn subscribe(&self, state: &ApiState) -> watch::Receiver<Option<Arc<str>>> {
        let rx = self.tx.subscribe();
        if !self.running.swap(true, Ordering::AcqRel) {
            tokio::spawn(produce(state.clone(), self.clone()));
        }
        rx
    }
}

/// Counters from the previous tick, for the rates.
struct Previous {
    at: Instant,
    started: u64,
    closed: u64,
}

async fn produce(state: ApiState, feed: Feed) {
    let mut previous: Option<Previous> = None;
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if feed.tx.receiver_count() == 0 {
            feed.running.store(false, Ordering::Release);
            // A page that subscribed between the count and the store saw
            // `running` still true and started nothing: carry on for it.
            if feed.tx.receiver_count() == 0 || feed.running.swap(true, Ordering::AcqRel) {
                // The next page must not open on a stale picture.
                feed.tx.send_replace(None);
                return;
            }
        }
        let value = match build(&state, &mut previous).await {
            Ok(v) => v,
            Err(e) => json!({ "t_ms": crate::store::now_ms(), "problem": e.message }),
        };
        feed.tx.send_replace(Some(Arc::from(value.to_string())));
    }
}

/// One snapshot.
async fn build(s: &ApiState, previous: &mut Option<Previous>) -> Result<Value, ApiError> {
    let calls = s.ask(|reply| Control::Calls { reply }).await?;
    let stats = s.ask(|reply| Control::Stats { reply }).await?;
    let now = Instant::now();

    let mut by_state: Vec<Value> = Vec::new();
    for direction in ["inbound", "outbound"] {
        for st in ["ringing", "answered", "ending"] {
            let n = calls
                .iter()
                .filter(|c| c.direction == direction && c.state == st)
                .count();
            by_state.push(json!({ "direction": direction, "state": st, "count": n }));
        }
    }
    let list: Vec<Value> = calls
        .iter()
        .take(LIST_CALLS)
        .map(|c| {
            json!({
                "id": c.id, "direction": c.direction, "from": c.from, "to": c.to,
                "trunk": c.trunk, "state": c.state, "duration_ms": c.duration_ms,
            })
        })
        .collect();

    // Every call ever started is either live or closed.
    let started = calls.len() as u64 + stats.calls_closed;
    let rates = previous.as_ref().map(|p| {
        let secs = now.saturating_duration_since(p.at).as_secs_f64().max(0.001);
        json!({
            "started": started.saturating_sub(p.started) as f64 / secs,
            "ended": stats.calls_closed.saturating_sub(p.closed) as f64 / secs,
        })
    });
    *previous = Some(Previous {
        at: now,
        started,
        closed: stats.calls_closed,
    });

    let now_ms = crate::store::now_ms();
    let mut campaigns = Vec::new();
    for c in shown(s.store.campaigns().await?) {
        let p = s.store.campaign_status(&c.id, now_ms).await?;
        campaigns.push(json!({
            "id": c.id, "name": c.settings.name, "state": c.state.as_str(),
            "contacts": p.contacts, "dialed": p.dialed, "answered": p.answered,
            "busy": p.busy, "no_answer": p.no_answer, "failed": p.failed,
            "unknown": p.unknown, "dnc": p.dnc, "texted": p.texted, "done": p.done,
            "remaining": p.remaining, "in_progress": p.in_progress, "due": p.due,
            "waiting": p.waiting, "outcomes": p.outcomes,
        }));
    }
    let sms: serde_json::Map<String, Value> = s
        .store
        .sms_counts()
        .await?
        .into_iter()
        .map(|(state, n)| (state.as_str().to_string(), json!(n)))
        .collect();

    Ok(json!({
        "t_ms": now_ms,
        "uptime_s": s.started.elapsed().as_secs(),
        "calls": { "count": calls.len(), "by_state": by_state, "list": list },
        "rates": rates,
        "trunks": stats.trunks,
        "campaigns": campaigns,
        "sms": sms,
        "errors": super::errors::recent(),
    }))
}

/// The campaigns worth a panel: unfinished ones (newest first), then the
/// most recently finished, [`SHOW_CAMPAIGNS`] in all.
fn shown(mut all: Vec<Campaign>) -> Vec<Campaign> {
    let finished = |c: &Campaign| matches!(c.state, CampaignState::Done | CampaignState::Cancelled);
    all.sort_by_key(|c| (finished(c), std::cmp::Reverse(c.updated_at)));
    all.truncate(SHOW_CAMPAIGNS);
    all
}
