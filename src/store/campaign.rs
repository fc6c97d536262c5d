//! The `campaigns` table and the creation of a campaign with its contacts.
//! A campaign's settings are kept as written (retry spec, hours, days):
//! `crate::campaign` reads them; the store does not interpret them.
//!
//! Every change to a campaign row takes the next value of a store-wide
//! version counter, so a server polling [`Store::changed_since`] sees a
//! pause or a cancel at its next poll without scanning every row.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{dialect, now_ms, Store, StoreError};
use crate::campaign::contacts::Contact;
use crate::campaign::AttemptOutcome;

/// Where a campaign is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CampaignState {
    Created,
    Running,
    Paused,
    Done,
    Cancelled,
}

impl CampaignState {
    pub const ALL: [CampaignState; 5] = [
        CampaignState::Created,
        CampaignState::Running,
        CampaignState::Paused,
        CampaignState::Done,
        CampaignState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Created => "created",
            CampaignState::Running => "running",
            CampaignState::Paused => "paused",
            CampaignState::Done => "done",
            CampaignState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<CampaignState> {
        CampaignState::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for CampaignState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A campaign's settings, as the operator gave them.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCampaign {
    pub name: String,
    pub script: String,
    pub trunks: Vec<String>,
    pub cps: f64,
    pub max_channels: u32,
    /// Most attempts per contact.
    pub attempts: u32,
    pub retry: String,
    pub hours: String,
    pub days: String,
    /// IANA zone for contacts whose row gave none.
    pub tz: String,
    /// ISO 3166 alpha-2 country the list's national numbers were read in.
    pub country: String,
    /// SMS fallback template, if any.
    pub sms: Option<String>,
    /// The attempt outcomes that send the SMS.
    pub sms_on: Vec<AttemptOutcome>,
    pub ends_at: Option<i64>,
    pub priority: i32,
    /// The contact list's other columns, in order (`Import::columns`).
    pub columns: Vec<String>,
}

/// A stored campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    pub id: String,
    pub settings: NewCampaign,
    pub state: CampaignState,
    /// The store-wide change counter when this row last changed.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

pub(super) fn bad(table: &'static str, what: impl Into<String>) -> StoreError {
    StoreError::BadRow {
        table,
        what: what.into(),
    }
}

fn comma_list(what: &'static str, items: &[&str]) -> Result<String, StoreError> {
    if let Some(x) = items.iter().find(|x| x.is_empty() || x.contains(',')) {
        return Err(StoreError::Value {
            what,
            why: format!("{x:?} is empty or has a comma"),
        });
    }
    Ok(items.join(","))
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').filter(|x| !x.is_empty())
}

pub(super) fn u32_of(table: &'static str, what: &str, v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| bad(table, format!("{what} = {v}")))
}

fn campaign_of(r: &AnyRow) -> Result<Campaign, StoreError> {
    let t = "campaigns";
    let state: String = r.try_get("state")?;
    let sms_on: String = r.try_get("sms_on")?;
    let columns: String = r.try_get("field_names")?;
    let trunks: String = r.try_get("trunks")?;
    Ok(Campaign {
        id: r.try_get("id")?,
        settings: NewCampaign {
            name: r.try_get("name")?,
            script: r.try_get("script")?,
            trunks: split_list(&trunks).map(str::to_string).collect(),
            cps: r.try_get("cps")?,
            max_channels: u32_of(t, "max_channels", r.try_get("max_channels")?)?,
            attempts: u32_of(t, "attempts", r.try_get("attempts")?)?,
            retry: r.try_get("retry")?,
            hours: r.try_get("hours")?,
            days: r.try_get("days")?,
            tz: r.try_get("tz")?,
            country: r.try_get("country")?,
            sms: r.try_get("sms")?,
            sms_on: split_list(&sms_on)
                .map(|o| AttemptOutcome::parse(o).ok_or_else(|| bad(t, format!("sms_on {o:?}"))))
                .collect::<Result<_, _>>()?,
            ends_at: r.try_get("ends_at")?,
            priority: i32::try_from(r.try_get::<i64, _>("priority")?)
                .map_err(|_| bad(t, "priority"))?,
            columns: serde_json::from_str(&columns)
                .map_err(|e| bad(t, format!("field_names: {e}")))?,
        },
        state: CampaignState::parse(&state).ok_or_else(|| bad(t, format!("state {state:?}")))?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// The JSON object of a contact's fields.
pub(super) fn fields_json(fields: &[(String, String)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// A contact's fields from their JSON object, in `columns` order (keys
/// not in `columns` follow, sorted).
pub(super) fn fields_of(
    json: &str,
    columns: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    let serde_json::Value::Object(mut map) =
        serde_json::from_str(json).map_err(|e| bad("contacts", format!("fields: {e}")))?
    else {
        return Err(bad("contacts", "fields is not a JSON object"));
    };
    let text = |v: serde_json::Value| match v {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    let mut out = Vec::with_capacity(map.len());
    for c in columns {
        if let Some(v) = map.remove(c) {
            out.push((c.clone(), text(v)));
        }
    }
    out.extend(map.into_iter().map(|(k, v)| (k, text(v))));
    Ok(out)
}

const NEXT_VERSION: &str = "(SELECT COALESCE(MAX(version), 0) + 1 FROM campaigns)";

impl Store {
    /// Stores a campaign (state `created`) and its contacts (state
    /// `waiting`, due at once) in one transaction; returns its id.
    pub async fn create_campaign(
        &self,
        c: &NewCampaign,
        contacts: &[Contact],
    ) -> Result<String, StoreError> {
        let trunks = comma_list(
            "trunks",
            &c.trunks.iter().map(String::as_str).collect::<Vec<_>>(),
        )?;
        let sms_on = comma_list(
            "sms_on",
            &c.sms_on.iter().map(|o| o.as_str()).collect::<Vec<_>>(),
        )?;
        if !c.cps.is_finite() || c.cps < 0.0 {
            return Err(StoreError::Value {
                what: "cps",
                why: format!("{} is not a rate", c.cps),
            });
        }
        let columns = serde_json::to_string(&c.columns).map_err(|e| StoreError::Value {
            what: "columns",
            why: e.to_string(),
        })?;
        let id = format!("c{:012x}", rand::random::<u64>() >> 16);
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        dialect::lock_counters(self.backend, &mut tx).await?;
        // A write first: the transaction holds the write lock from here.
        sqlx::query(&format!(
            "INSERT INTO campaigns (id, name, script, trunks, cps, max_channels, attempts, retry, hours, days, \
             tz, country, sms, sms_on, ends_at, priority, field_names, state, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 'created', \
             {NEXT_VERSION}, $18, $18)"
        ))
        .bind(&id)
        .bind(&c.name)
        .bind(&c.script)
        .bind(trunks)
        .bind(c.cps)
        .bind(i64::from(c.max_channels))
        .bind(i64::from(c.attempts))
        .bind(&c.retry)
        .bind(&c.hours)
        .bind(&c.days)
        .bind(&c.tz)
        .bind(&c.country)
        .bind(&c.sms)
        .bind(sms_on)
        .bind(c.ends_at)
        .bind(i64::from(c.priority))
        .bind(columns)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Contact ids are store-wide; this transaction holds the write lock,
        // so the largest cannot move under it.
        let base: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM contacts")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        for (i, ct) in contacts.iter().enumerate() {
            let n = i64::try_from(i).unwrap_or(i64::MAX);
            sqlx::query(
                "INSERT INTO contacts (id, campaign_id, line, phone, fields, tz, state, next_at, attempts) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'waiting', 0, 0)",
            )
            .bind(base.saturating_add(n).saturating_add(1))
            .bind(&id)
            .bind(i64::try_from(ct.line).unwrap_or(i64::MAX))
            .bind(&ct.phone)
            .bind(fields_json(&ct.fields))
            .bind(&ct.tz)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// The campaign `id`, if there is one.
    pub async fn campaign(&self, id: &str) -> Result<Option<Campaign>, StoreError> {
        sqlx::query("SELECT * FROM campaigns WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(campaign_of)
            .transpose()
    }

    /// Every campaign, highest priority first, then oldest first.
    pub async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        sqlx::query("SELECT * FROM campaigns ORDER BY priority DESC, created_at, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(campaign_of)
            .collect()
    }

    /// One page of the campaigns in `campaigns()`'s order, those in `state`
    /// only when given, and how many there are in all.
    pub async fn campaigns_page(
        &self,
        state: Option<CampaignState>,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<Campaign>, u64), StoreError> {
        let state = state.map(|s| s.as_str());
        let rows = sqlx::query(
            "SELECT * FROM campaigns WHERE ($1 IS NULL OR state = $1) \
             ORDER BY priority DESC, created_at, id LIMIT $2 OFFSET $3",
        )
        .bind(state)
        .bind(i64::from(limit))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM campaigns WHERE ($1 IS NULL OR state = $1)")
                .bind(state)
                .fetch_one(&self.pool)
                .await?;
        let page = rows
            .iter()
            .map(campaign_of)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((page, u64::try_from(total).unwrap_or(0)))
    }

    /// Moves campaign `id` to `to` if its state is one of `from` (any state
    /// when `from` is empty). False when there is no such campaign or it
    /// was in another state.
    pub async fn set_campaign_state(
        &self,
        id: &str,
        from: &[CampaignState],
        to: CampaignState,
    ) -> Result<bool, StoreError> {
        let from = if from.is_empty() {
            &CampaignState::ALL[..]
        } else {
            from
        };
        // The names are ours, not input.
        let list = from
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let mut tx = self.pool.begin().await?;
        dialect::lock_counters(self.backend, &mut tx).await?;
        let done = sqlx::query(&format!(
            "UPDATE campaigns SET state = $1, updated_at = $2, version = {NEXT_VERSION} \
             WHERE id = $3 AND state IN ({list})"
        ))
        .bind(to.as_str())
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// The campaigns changed since version `since` (0: all), and the
    /// version to ask from next time. Cheap when nothing changed.
    pub async fn changed_since(&self, since: i64) -> Result<(i64, Vec<Campaign>), StoreError> {
        let changed = sqlx::query("SELECT * FROM campaigns WHERE version > $1 ORDER BY version")
            .bind(since)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(campaign_of)
            .collect::<Result<Vec<_>, _>>()?;
        let next = changed.last().map_or(since, |c| c.version);
        Ok((next, changed))
    }
}

#[cfg(test)]
#[path = "campaign_tests.rs"]
mod tests;
