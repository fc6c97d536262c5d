//! Creating a campaign: every setting and the contact list are checked
//! before anything is stored ([`prepare`], blocking: it reads and compiles
//! the script and parses the CSV), then the campaign and its contacts are
//! stored in one transaction ([`create`]).

use std::path::PathBuf;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use super::{Field, Invalid, OpError};
use crate::campaign::contacts::{self, Country, Import};
use crate::campaign::hours::{parse_tz, CallingHours, HoursError};
use crate::campaign::retry::{RetryError, RetryPolicy};
use crate::campaign::AttemptOutcome;
use crate::config::Config;
use crate::store::{NewCampaign, Store};

/// The longest campaign name; it is shown in lists and the dashboard.
const MAX_NAME: usize = 200;

/// A campaign's settings as the operator gives them (the options of
/// `rivr campaign create`, the query of `POST /campaigns`).
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub name: String,
    /// Resolved by the caller: the CLI's against its working directory,
    /// the API's against the config file's directory.
    pub script: PathBuf,
    /// In order of preference.
    pub trunks: Vec<String>,
    /// Default: the first trunk's `cps`.
    pub cps: Option<u32>,
    /// Default: the first trunk's `max_channels`.
    pub max_channels: Option<u32>,
    pub attempts: u32,
    /// Default: [`RetryPolicy::default`].
    pub retry: Option<String>,
    pub hours: String,
    pub days: String,
    /// Zone of contacts without a `tz` cell.
    pub tz: String,
    /// ISO 3166 country of numbers written nationally.
    pub country: Option<String>,
    pub sms_fallback: Option<String>,
    pub sms_on: Vec<String>,
    /// RFC 3339, or `YYYY-MM-DDTHH:MM` in `tz`.
    pub ends: Option<String>,
    pub priority: i32,
    /// Answering-machine detection on every answered attempt, before
    /// the script (`call.answered_by`).
    pub amd: bool,
}

impl CreateRequest {
    /// The documented defaults for everything but the three required
    /// settings.
    pub fn new(name: String, script: PathBuf, trunks: Vec<String>) -> CreateRequest {
        CreateRequest {
            name,
            script,
            trunks,
            cps: None,
            max_channels: None,
            attempts: RetryPolicy::DEFAULT_ATTEMPTS,
            retry: None,
            hours: "09:00-20:00".into(),
            days: "mon-sun".into(),
            tz: "UTC".into(),
            country: None,
            sms_fallback: None,
            sms_on: Vec::new(),
            ends: None,
            priority: 0,
            amd: false,
        }
    }
}

/// A checked campaign, ready to store.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub campaign: NewCampaign,
    pub import: Import,
    /// `CreateRequest::amd`, stored beside the campaign's row.
    pub amd: bool,
}

/// A stored campaign: its id and what the import kept and left out.
#[derive(Debug, Clone)]
pub struct Created {
    pub id: String,
    pub import: Import,
}

/// `--ends`: RFC 3339, or a local `YYYY-MM-DDTHH:MM` in `tz`.
fn parse_ends(s: &str, tz: chrono_tz::Tz) -> Result<i64, Invalid> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
        .map_err(|_| Invalid::value(Field::Ends, s, "want RFC 3339 or YYYY-MM-DDTHH:MM"))?;
    // A time the clocks skip is refused; in a fold the earlier one ends it.
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
        .ok_or_else(|| {
            Invalid::value(
                Field::Ends,
                s,
                format!("that time does not exist in {tz} (DST)"),
            )
        })
}

/// The first trunk's `(cps, max_channels)`, after checking every trunk
/// named is one of the config's, SIP or PRI (the dialer does not care).
fn trunk_limits(cfg: &Config, trunks: &[String]) -> Result<(u32, u32), Invalid> {
    let limits: Vec<(&String, u32, u32)> = cfg
        .trunks
        .iter()
        .map(|t| (&t.name, t.cps, t.max_channels))
        .chain(
            cfg.pri_trunks
                .iter()
                .map(|t| (&t.name, t.cps, t.max_channels)),
        )
        .collect();
    for t in trunks {
        if !limits.iter().any(|x| x.0 == t) {
            return Err(Invalid::value(
                Field::Trunk,
                t.as_str(),
                "no [[trunk]] with that name in the config",
            ));
        }
    }
    let first = trunks
        .first()
        .ok_or_else(|| Invalid::new(Field::Trunk, "give at least one trunk"))?;
    limits
        .iter()
        .find(|x| x.0 == first)
        .map(|x| (x.1, x.2))
        .ok_or_else(|| Invalid::value(Field::Trunk, first.as_str(), "no such trunk"))
}

/// Checks `req` and the contact list `csv` (`source` names it in
/// errors) against `cfg`: the trunks exist, the numbers and times parse,
/// the script compiles, every `{column}` of the SMS text is a column, and
/// at least one contact can be called. Rows left out are in
/// `Prepared::import`. Blocking: reads files and parses the whole list.
pub fn prepare(
    cfg: &Config,
    req: &CreateRequest,
    source: &str,
    csv: &[u8],
) -> Result<Prepared, Invalid> {
    let name = req.name.trim();
    if name.is_empty() {
        return Err(Invalid::new(Field::Name, "the name is empty"));
    }
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Invalid::new(
            Field::Name,
            format!("at most {MAX_NAME} characters, no control characters"),
        ));
    }
    let (trunk_cps, trunk_channels) = trunk_limits(cfg, &req.trunks)?;
    let cps = req.cps.unwrap_or(trunk_cps);
    if !(1..=10_000).contains(&cps) {
        return Err(Invalid::value(
            Field::Cps,
            cps.to_string(),
            "must be 1 to 10000",
        ));
    }
    let max_channels = req.max_channels.unwrap_or(trunk_channels);
    if max_channels == 0 {
        return Err(Invalid::value(
            Field::MaxChannels,
            "0",
            "must be at least 1",
        ));
    }
    // Stored in full, so what the campaign does never depends on the
    // defaults of the rivr that runs it.
    let retry = req
        .retry
        .clone()
        .unwrap_or_else(|| RetryPolicy::default().to_string());
    let retry = RetryPolicy::parse(&retry, req.attempts)
        .map_err(|e| match e {
            RetryError::Attempts { .. } => Invalid::new(Field::Attempts, e.to_string()),
            other => Invalid::new(Field::Retry, other.to_string()),
        })?
        .to_string();
    CallingHours::parse(&req.hours, &req.days).map_err(|e| match e {
        HoursError::Day { .. } | HoursError::NoDays => Invalid::new(Field::Days, e.to_string()),
        other => Invalid::new(Field::Hours, other.to_string()),
    })?;
    let tz = parse_tz(&req.tz).map_err(|e| Invalid::new(Field::Tz, e.to_string()))?;
    let country = match req.country.as_deref() {
        Some(c) => c
            .parse::<Country>()
            .map_err(|e| Invalid::new(Field::Country, e.to_string()))?,
        None => Country::NONE,
    };
    let script = std::fs::canonicalize(&req.script).map_err(|e| {
        Invalid::value(
            Field::Script,
            req.script.display().to_string(),
            e.to_string(),
        )
    })?;
    let engine = crate::script::engine::build_engine(&cfg.script);
    crate::script::engine::compile(&engine, &script)
        .map_err(|e| Invalid::new(Field::Script, e.to_string()))?;
    let ends_at = req.ends.as_deref().map(|s| parse_ends(s, tz)).transpose()?;
    let mut sms_on = Vec::new();
    for o in &req.sms_on {
        sms_on.push(AttemptOutcome::parse(o).ok_or_else(|| {
            Invalid::value(
                Field::SmsOn,
                o.as_str(),
                "not an outcome (busy, no_answer, …)",
            )
        })?);
    }
    if !sms_on.is_empty() && req.sms_fallback.is_none() {
        return Err(Invalid::new(
            Field::SmsOn,
            "needs an SMS text (--sms-fallback, sms_fallback)",
        ));
    }
    let import = contacts::import(source, csv, country)
        .map_err(|e| Invalid::new(Field::Contacts, e.to_string()))?;
    if let Some(text) = &req.sms_fallback {
        if text.trim().is_empty() {
            return Err(Invalid::new(Field::SmsFallback, "the text is empty"));
        }
        let unknown: Vec<String> = contacts::template_keys(text)
            .into_iter()
            .filter(|k| !import.columns.contains(k))
            .collect();
        if !unknown.is_empty() {
            return Err(Invalid::new(
                Field::SmsFallback,
                format!("{{{}}} is not a column of {source}", unknown.join("}, {")),
            ));
        }
    }
    if import.contacts.is_empty() {
        return Err(Invalid::new(
            Field::Contacts,
            format!("{source}: no contact to call ({})", import.summary()),
        ));
    }
    let campaign = NewCampaign {
        name: name.to_string(),
        script: script.display().to_string(),
        trunks: req.trunks.clone(),
        cps: f64::from(cps),
        max_channels,
        attempts: req.attempts,
        retry,
        hours: req.hours.clone(),
        days: req.days.clone(),
        tz: tz.name().to_string(),
        country: country.to_string(),
        sms: req.sms_fallback.clone(),
        sms_on,
        ends_at,
        priority: req.priority,
        columns: import.columns.clone(),
    };
    Ok(Prepared {
        campaign,
        import,
        amd: req.amd,
    })
}

/// Stores a prepared campaign (state `created`).
pub async fn create(store: &Store, p: Prepared) -> Result<Created, OpError> {
    let id = store
        .create_campaign(&p.campaign, &p.import.contacts)
        .await?;
    // Before anyone can start it: a created campaign dials nothing.
    if p.amd {
        store.set_campaign_amd(&id, true).await?;
    }
    Ok(Created {
        id,
        import: p.import,
    })
}
