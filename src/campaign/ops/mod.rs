//! The campaign operations both `rivr campaign …` and the HTTP API run:
//! create, the state changes, status, the report, the list. They read and
//! write the store and return values and typed errors; printing, exit
//! codes and HTTP statuses belong to their callers (`super::cli`,
//! `crate::api::campaigns`), so the two can never disagree on a rule.
//!
//! - `create`: settings and CSV bytes checked, then stored;
//! - `report`: report pages and their CSV/JSON shapes.

mod create;
mod report;

pub use create::{create, prepare, CreateRequest, Created, Prepared};
pub use report::{report_layout, report_page, row_json, ReportLayout, ReportPage, MAX_PAGE};

use std::fmt;

use crate::store::{Campaign, CampaignState, Status, Store, StoreError};

/// A setting of a create request, named as the CLI option and the API
/// query parameter that carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Contacts,
    Script,
    Trunk,
    Cps,
    MaxChannels,
    Attempts,
    Retry,
    Hours,
    Days,
    Tz,
    Country,
    SmsFallback,
    SmsOn,
    Ends,
    Priority,
}

impl Field {
    /// The API's name (a query parameter, or `contacts` for the body).
    pub fn name(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Contacts => "contacts",
            Field::Script => "script",
            Field::Trunk => "trunk",
            Field::Cps => "cps",
            Field::MaxChannels => "max_channels",
            Field::Attempts => "attempts",
            Field::Retry => "retry",
            Field::Hours => "hours",
            Field::Days => "days",
            Field::Tz => "tz",
            Field::Country => "country",
            Field::SmsFallback => "sms_fallback",
            Field::SmsOn => "sms_on",
            Field::Ends => "ends",
            Field::Priority => "priority",
        }
    }

    /// The CLI's option.
    pub fn flag(self) -> String {
        format!("--{}", self.name().replace('_', "-"))
    }
}

/// A bad setting: which, the value at fault when one item of it is, and
/// why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: Field,
    pub value: Option<String>,
    pub why: String,
}

impl Invalid {
    fn new(field: Field, why: impl Into<String>) -> Invalid {
        Invalid {
            field,
            value: None,
            why: why.into(),
        }
    }

    fn value(field: Field, value: impl Into<String>, why: impl Into<String>) -> Invalid {
        Invalid {
            field,
            value: Some(value.into()),
            why: why.into(),
        }
    }

    /// `NAME "value": why` or `NAME: why`, with `name` the caller's word
    /// for the field (an option, a parameter, a file).
    pub fn describe(&self, name: &str) -> String {
        match &self.value {
            Some(v) => format!("{name} {v:?}: {}", self.why),
            None => format!("{name}: {}", self.why),
        }
    }
}

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{}", .0.describe(&.0.field.flag()))]
    Invalid(Invalid),
    #[error("no campaign {0:?}")]
    NotFound(String),
    /// The state change is not allowed from the campaign's state.
    #[error("campaign {id} is {current}, cannot make it {wanted}")]
    State {
        id: String,
        current: CampaignState,
        wanted: CampaignState,
    },
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl From<Invalid> for OpError {
    fn from(e: Invalid) -> OpError {
        OpError::Invalid(e)
    }
}

/// The operator's state changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Pause,
    Resume,
    Cancel,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "start" => Some(Action::Start),
            "pause" => Some(Action::Pause),
            "resume" => Some(Action::Resume),
            "cancel" => Some(Action::Cancel),
            _ => None,
        }
    }

    /// The states it moves a campaign from (docs/campaigns.md, "States").
    pub fn from(self) -> &'static [CampaignState] {
        use CampaignState::*;
        match self {
            Action::Start => &[Created],
            Action::Pause => &[Running],
            Action::Resume => &[Paused],
            Action::Cancel => &[Created, Running, Paused],
        }
    }

    pub fn to(self) -> CampaignState {
        match self {
            Action::Start | Action::Resume => CampaignState::Running,
            Action::Pause => CampaignState::Paused,
            Action::Cancel => CampaignState::Cancelled,
        }
    }
}

/// Moves campaign `id` as `action` says; its new state.
pub async fn transition(store: &Store, id: &str, action: Action) -> Result<CampaignState, OpError> {
    let to = action.to();
    if store.set_campaign_state(id, action.from(), to).await? {
        return Ok(to);
    }
    // Read after the refused update, so the state named is the one that
    // refused it (or a later one), never an earlier one.
    let c = campaign(store, id).await?;
    Err(OpError::State {
        id: id.to_string(),
        current: c.state,
        wanted: to,
    })
}

/// The stored campaign `id`.
pub async fn campaign(store: &Store, id: &str) -> Result<Campaign, OpError> {
    store
        .campaign(id)
        .await?
        .ok_or_else(|| OpError::NotFound(id.to_string()))
}

/// A campaign with its counters at some instant.
#[derive(Debug, Clone)]
pub struct StatusView {
    pub campaign: Campaign,
    pub status: Status,
    /// Seconds left at the campaign's pace; a floor, since retries and
    /// calling hours add to it. None once it is not running or created.
    pub eta_s: Option<u64>,
    /// AMD before the script on every answered attempt (`--amd`).
    pub amd: bool,
}

impl StatusView {
    /// The object of `rivr campaign status --json` and `GET
    /// /campaigns/{id}`.
    pub fn to_json(&self) -> serde_json::Value {
        let (c, s) = (&self.campaign, &self.status);
        serde_json::json!({
            "id": c.id,
            "name": c.settings.name,
            "state": c.state.as_str(),
            "total": s.contacts,
            "remaining": s.remaining,
            "in_progress": s.in_progress,
            "due": s.due,
            "waiting": s.waiting,
            "dialed": s.dialed,
            "answered": s.answered,
            "busy": s.busy,
            "no_answer": s.no_answer,
            "failed": s.failed,
            "unknown": s.unknown,
            "dnc": s.dnc,
            "texted": s.texted,
            "done": s.done,
            "outcomes": s.outcomes,
            "refined": s.refined,
            "amd": self.amd,
            "eta_s": self.eta_s,
        })
    }
}

fn eta_s(c: &Campaign, s: &Status) -> Option<u64> {
    matches!(c.state, CampaignState::Running | CampaignState::Created)
        .then(|| (s.remaining as f64 / c.settings.cps.max(0.001)).ceil() as u64)
}

async fn view(store: &Store, campaign: Campaign, now_ms: i64) -> Result<StatusView, OpError> {
    let status = store.campaign_status(&campaign.id, now_ms).await?;
    let eta_s = eta_s(&campaign, &status);
    let amd = store.campaign_amd(&campaign.id).await?;
    Ok(StatusView {
        campaign,
        status,
        eta_s,
        amd,
    })
}

/// Campaign `id` and its counters at `now_ms` (Unix ms).
pub async fn status(store: &Store, id: &str, now_ms: i64) -> Result<StatusView, OpError> {
    let c = campaign(store, id).await?;
    view(store, c, now_ms).await
}

/// Every campaign with its counters, in the store's order.
pub async fn list(store: &Store, now_ms: i64) -> Result<Vec<StatusView>, OpError> {
    let mut out = Vec::new();
    for c in store.campaigns().await? {
        out.push(view(store, c, now_ms).await?);
    }
    Ok(out)
}

/// A page of `list`: the campaigns from `offset` on (in `state` only,
/// when given), at most `limit`, and how many there are in all.
pub struct ListPage {
    pub views: Vec<StatusView>,
    pub total: u64,
    /// Where the next page starts, if there is one.
    pub next_offset: Option<u64>,
}

/// One page of the list, for the API: each view costs the campaign's
/// counters, so a long history is read a page at a time.
pub async fn list_page(
    store: &Store,
    now_ms: i64,
    state: Option<CampaignState>,
    offset: u64,
    limit: u32,
) -> Result<ListPage, OpError> {
    let (campaigns, total) = store.campaigns_page(state, offset, limit).await?;
    let mut views = Vec::with_capacity(campaigns.len());
    for c in campaigns {
        views.push(view(store, c, now_ms).await?);
    }
    let end = offset.saturating_add(views.len() as u64);
    Ok(ListPage {
        next_offset: (end < total && !views.is_empty()).then_some(end),
        views,
        total,
    })
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_follow_the_documented_states() {
        use CampaignState::*;
        for (a, from, to) in [
            ("start", &[Created][..], Running),
            ("pause", &[Running][..], Paused),
            ("resume", &[Paused][..], Running),
            ("cancel", &[Created, Running, Paused][..], Cancelled),
        ] {
            let action = Action::parse(a).expect(a);
            assert_eq!((action.from(), action.to()), (from, to), "{a}");
        }
        assert_eq!(Action::parse("done"), None);
    }

    #[test]
    fn errors_name_the_option_or_the_parameter() {
        let e = Invalid::value(Field::MaxChannels, "0", "must be at least 1");
        assert_eq!(
            OpError::from(e.clone()).to_string(),
            "--max-channels \"0\": must be at least 1"
        );
        assert_eq!(
            e.describe(e.field.name()),
            "max_channels \"0\": must be at least 1"
        );
    }
}
