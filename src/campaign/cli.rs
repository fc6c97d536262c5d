//! `rivr campaign …` and `rivr dnc …`: the operator's commands. They read
//! and write the store only; a running `rivr serve` picks the changes up
//! (docs/campaigns.md). Errors go to stderr with a non-zero exit.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use super::contacts::{self, Country};
use super::hours::{parse_tz, CallingHours};
use super::retry::RetryPolicy;
use super::AttemptOutcome;
use crate::config::Config;
use crate::store::{Campaign, CampaignState, NewCampaign, Status, Store};

/// `rivr campaign` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CampaignCommand {
    /// Import a contact list and store a campaign (state `created`); the
    /// id is the last word of the first line printed.
    Create(Box<CreateArgs>),
    /// Let `rivr serve` dial it.
    Start(IdArgs),
    /// Stop starting new attempts; calls up go on.
    Pause(IdArgs),
    Resume(IdArgs),
    /// End it: nothing more is dialed, ringing attempts are cancelled.
    Cancel(IdArgs),
    /// Counters, state and an estimate of the time left.
    Status(StatusArgs),
    /// One row per contact.
    Report(ReportArgs),
    /// Every campaign, one line each.
    List(ConfigArg),
}

#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    #[arg(long, default_value = "rivr.toml")]
    pub config: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct IdArgs {
    #[arg(long, default_value = "rivr.toml")]
    pub config: PathBuf,
    pub id: String,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[arg(long, default_value = "rivr.toml")]
    pub config: PathBuf,
    pub id: String,
    /// Draw a live progress bar until the campaign ends.
    #[arg(long)]
    pub follow: bool,
    /// One JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Csv,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[arg(long, default_value = "rivr.toml")]
    pub config: PathBuf,
    pub id: String,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ReportFormat,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[arg(long, default_value = "rivr.toml")]
    pub config: PathBuf,
    #[arg(long)]
    pub name: String,
    /// CSV with a header row and a `phone` column (and optionally `tz`).
    #[arg(long)]
    pub contacts: PathBuf,
    #[arg(long)]
    pub script: PathBuf,
    /// Trunk names in order of preference, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub trunk: Vec<String>,
    /// New calls per second (default: the first trunk's `cps`).
    #[arg(long)]
    pub cps: Option<u32>,
    /// Calls at once (default: the first trunk's `max_channels`).
    #[arg(long)]
    pub max_channels: Option<u32>,
    /// Most attempts per contact.
    #[arg(long, default_value_t = 3)]
    pub attempts: u32,
    /// Retry interval by outcome, e.g. `busy=10m,no_answer=30m` (default:
    /// busy=10m,no_answer=30m,congestion=5m; `none` retries nothing).
    #[arg(long)]
    pub retry: Option<String>,
    /// Calling hours in the contact's zone.
    #[arg(long, default_value = "09:00-20:00")]
    pub hours: String,
    #[arg(long, default_value = "mon-sun")]
    pub days: String,
    /// IANA zone for contacts without a `tz` column.
    #[arg(long, default_value = "UTC")]
    pub tz: String,
    /// Country of numbers written nationally (ISO 3166, e.g. KE); without
    /// it every number must start with `+`.
    #[arg(long)]
    pub country: Option<String>,
    /// SMS text for contacts voice could not reach; `{column}` is filled
    /// from the contact's row.
    #[arg(long)]
    pub sms_fallback: Option<String>,
    /// The outcomes that send it (default: any last attempt that was not
    /// answered).
    #[arg(long, value_delimiter = ',')]
    pub sms_on: Vec<String>,
    /// No attempt starts after this time: RFC 3339, or `YYYY-MM-DDTHH:MM`
    /// in `--tz`.
    #[arg(long)]
    pub ends: Option<String>,
    /// Higher goes first when campaigns share a trunk.
    #[arg(long, default_value_t = 0)]
    pub priority: i32,
}

/// `rivr dnc` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DncCommand {
    /// Add numbers (normalized to E.164).
    Add(DncNumbers),
    Remove(DncNumbers),
    /// Every listed number, one per line.
    List(ConfigArg),
    /// Add every `phone` of a CSV file.
    Import(DncImport),
}

#[derive(Debug, clap::Args)]
pub struct DncNumbers {
    #[arg(long, default_value = "rivr.toml")]
    pub config: PathBuf,
    /// Country of numbers written nationally.
    #[arg(long)]
    pub country: Option<String>,
    #[arg(required = true)]
    pub numbers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct DncImport {
    #[arg(long, default_value = "rivr.toml")]
    pub config: PathBuf,
    #[arg(long)]
    pub country: Option<String>,
    pub file: PathBuf,
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start runtime: {e}"))
}

fn finish(what: &str, res: Result<(), String>) -> ExitCode {
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rivr {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a `rivr campaign` subcommand.
pub fn run(cmd: CampaignCommand) -> ExitCode {
    let res = runtime().and_then(|rt| {
        rt.block_on(async {
            match cmd {
                CampaignCommand::Create(a) => create(&a).await,
                CampaignCommand::Start(a) => {
                    transition(&a, &[CampaignState::Created], CampaignState::Running).await
                }
                CampaignCommand::Pause(a) => {
                    transition(&a, &[CampaignState::Running], CampaignState::Paused).await
                }
                CampaignCommand::Resume(a) => {
                    transition(&a, &[CampaignState::Paused], CampaignState::Running).await
                }
                CampaignCommand::Cancel(a) => {
                    let from = [
                        CampaignState::Created,
                        CampaignState::Running,
                        CampaignState::Paused,
                    ];
                    transition(&a, &from, CampaignState::Cancelled).await
                }
                CampaignCommand::Status(a) => status(&a).await,
                CampaignCommand::Report(a) => report(&a).await,
                CampaignCommand::List(a) => list(&a.config).await,
            }
        })
    });
    finish("campaign", res)
}

/// Runs a `rivr dnc` subcommand.
pub fn run_dnc(cmd: DncCommand) -> ExitCode {
    let res = runtime().and_then(|rt| rt.block_on(dnc(cmd)));
    finish("dnc", res)
}

async fn open(config: &Path) -> Result<(Config, Store), String> {
    let cfg = Config::load(config).map_err(|e| e.to_string())?;
    let store = Store::open(&cfg.store.url, &cfg.base_dir)
        .await
        .map_err(|e| format!("store {}: {e}", cfg.store.url))?;
    Ok((cfg, store))
}

fn country(c: Option<&str>) -> Result<Country, String> {
    match c {
        Some(c) => c.parse().map_err(|e| format!("--country: {e}")),
        None => Ok(Country::NONE),
    }
}

/// `--ends`: RFC 3339, or a local `YYYY-MM-DDTHH:MM` in `tz`.
fn parse_ends(s: &str, tz: chrono_tz::Tz) -> Result<i64, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
        .map_err(|_| format!("--ends {s:?}: want RFC 3339 or YYYY-MM-DDTHH:MM"))?;
    // A time the clocks skip is refused; in a fold the earlier one ends it.
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
        .ok_or_else(|| format!("--ends {s:?}: that time does not exist in {tz} (DST)"))
}

async fn create(a: &CreateArgs) -> Result<(), String> {
    let (cfg, store) = open(&a.config).await?;
    // SIP and PRI trunks alike: the dialer does not care which.
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
    for t in &a.trunk {
        if !limits.iter().any(|x| x.0 == t) {
            return Err(format!(
                "--trunk {t:?}: no [[trunk]] with that name in {}",
                a.config.display()
            ));
        }
    }
    // The first trunk's limits are the campaign's defaults.
    let (_, trunk_cps, trunk_channels) = limits
        .iter()
        .find(|x| a.trunk.first() == Some(x.0))
        .copied()
        .ok_or("--trunk: give at least one trunk")?;
    let cps = a.cps.unwrap_or(trunk_cps);
    if !(1..=10_000).contains(&cps) {
        return Err(format!("--cps {cps}: must be 1 to 10000"));
    }
    let max_channels = a.max_channels.unwrap_or(trunk_channels);
    if max_channels == 0 {
        return Err("--max-channels: must be at least 1".into());
    }
    // Stored in full, so what the campaign does never depends on the
    // defaults of the rivr that runs it.
    let retry = a
        .retry
        .clone()
        .unwrap_or_else(|| RetryPolicy::default().to_string());
    let retry = RetryPolicy::parse(&retry, a.attempts)
        .map_err(|e| format!("--retry: {e}"))?
        .to_string();
    CallingHours::parse(&a.hours, &a.days).map_err(|e| format!("--hours/--days: {e}"))?;
    let tz = parse_tz(&a.tz).map_err(|e| format!("--tz: {e}"))?;
    let country = country(a.country.as_deref())?;
    let script = std::fs::canonicalize(&a.script)
        .map_err(|e| format!("--script {}: {e}", a.script.display()))?;
    let engine = crate::script::engine::build_engine(&cfg.script);
    crate::script::engine::compile(&engine, &script).map_err(|e| e.to_string())?;
    let ends_at = a.ends.as_deref().map(|s| parse_ends(s, tz)).transpose()?;
    let mut sms_on = Vec::new();
    for o in &a.sms_on {
        sms_on.push(
            AttemptOutcome::parse(o)
                .ok_or_else(|| format!("--sms-on {o:?}: not an outcome (busy, no_answer, …)"))?,
        );
    }
    if !sms_on.is_empty() && a.sms_fallback.is_none() {
        return Err("--sms-on needs --sms-fallback TEXT".into());
    }
    let import = contacts::import_file(&a.contacts, country).map_err(|e| e.to_string())?;
    if let Some(text) = &a.sms_fallback {
        if text.trim().is_empty() {
            return Err("--sms-fallback: the text is empty".into());
        }
        let unknown: Vec<String> = contacts::template_keys(text)
            .into_iter()
            .filter(|k| !import.columns.contains(k))
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "--sms-fallback: {{{}}} is not a column of {}",
                unknown.join("}, {"),
                a.contacts.display()
            ));
        }
    }
    if import.contacts.is_empty() {
        return Err(format!(
            "{}: no contact to call ({})",
            a.contacts.display(),
            import.summary()
        ));
    }
    let new = NewCampaign {
        name: a.name.clone(),
        script: script.display().to_string(),
        trunks: a.trunk.clone(),
        cps: f64::from(cps),
        max_channels,
        attempts: a.attempts,
        retry,
        hours: a.hours.clone(),
        days: a.days.clone(),
        tz: tz.name().to_string(),
        country: country.to_string(),
        sms: a.sms_fallback.clone(),
        sms_on,
        ends_at,
        priority: a.priority,
        columns: import.columns.clone(),
    };
    let id = store
        .create_campaign(&new, &import.contacts)
        .await
        .map_err(|e| e.to_string())?;
    println!("{}; created campaign {id}", import.summary());
    print_rejected(&a.contacts, &import);
    Ok(())
}

/// One line per row left out of a list, with its file and line.
fn print_rejected(file: &Path, import: &contacts::Import) {
    for r in &import.rejected {
        println!(
            "{}:{}: {:?} left out: {}",
            file.display(),
            r.line,
            r.value,
            r.why
        );
    }
}

async fn transition(a: &IdArgs, from: &[CampaignState], to: CampaignState) -> Result<(), String> {
    let (_, store) = open(&a.config).await?;
    let c = campaign(&store, &a.id).await?;
    let moved = store
        .set_campaign_state(&a.id, from, to)
        .await
        .map_err(|e| e.to_string())?;
    if !moved {
        return Err(format!(
            "campaign {} is {}, cannot make it {to}",
            a.id, c.state
        ));
    }
    println!("campaign {} {to}", a.id);
    Ok(())
}

async fn campaign(store: &Store, id: &str) -> Result<Campaign, String> {
    store
        .campaign(id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no campaign {id:?}"))
}

async fn list(config: &Path) -> Result<(), String> {
    let (_, store) = open(config).await?;
    for c in store.campaigns().await.map_err(|e| e.to_string())? {
        let s = store
            .campaign_status(&c.id, Utc::now().timestamp_millis())
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "{} {:<9} {:>7}/{:<7} {}",
            c.id, c.state, s.done, s.contacts, c.settings.name
        );
    }
    Ok(())
}

/// Seconds left if the campaign keeps its pace: the contacts still to be
/// tried, at its calls per second. A floor: retries and calling hours add
/// to it.
fn eta_s(c: &Campaign, s: &Status) -> Option<u64> {
    matches!(c.state, CampaignState::Running | CampaignState::Created)
        .then(|| (s.remaining as f64 / c.settings.cps.max(0.001)).ceil() as u64)
}

fn hms(s: u64) -> String {
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn status_json(c: &Campaign, s: &Status) -> serde_json::Value {
    serde_json::json!({
        "id": c.id,
        "name": c.settings.name,
        "state": c.state.as_str(),
        "total": s.contacts,
        "remaining": s.remaining,
        "in_progress": s.in_progress,
        "waiting": s.waiting,
        "dialed": s.dialed,
        "answered": s.answered,
        "busy": s.busy,
        "no_answer": s.no_answer,
        "failed": s.failed,
        "dnc": s.dnc,
        "texted": s.texted,
        "done": s.done,
        "outcomes": s.outcomes,
        "eta_s": eta_s(c, s),
    })
}

fn status_text(c: &Campaign, s: &Status) -> String {
    format!(
        "campaign {} {:?}: {}\n\
         contacts {}  done {}  remaining {}  in progress {}  waiting {} (calling hours or a retry)\n\
         dialed {}  answered {}  busy {}  no answer {}  failed {}  dnc {}  texted {}\n\
         eta {}",
        c.id,
        c.settings.name,
        c.state,
        s.contacts,
        s.done,
        s.remaining,
        s.in_progress,
        s.waiting,
        s.dialed,
        s.answered,
        s.busy,
        s.no_answer,
        s.failed,
        s.dnc,
        s.texted,
        eta_s(c, s).map_or("-".into(), hms),
    )
}

fn bar(c: &Campaign, s: &Status) -> String {
    const W: u64 = 30;
    let filled = (s.done * W).checked_div(s.contacts).unwrap_or(W).min(W);
    format!(
        "[{}{}] {}/{} done, {} up, answered {}, {}, eta {}",
        "#".repeat(filled as usize),
        ".".repeat((W - filled) as usize),
        s.done,
        s.contacts,
        s.in_progress,
        s.answered,
        c.state,
        eta_s(c, s).map_or("-".into(), hms),
    )
}

async fn status(a: &StatusArgs) -> Result<(), String> {
    let (_, store) = open(&a.config).await?;
    loop {
        let c = campaign(&store, &a.id).await?;
        let s = store
            .campaign_status(&a.id, Utc::now().timestamp_millis())
            .await
            .map_err(|e| e.to_string())?;
        let ended = matches!(c.state, CampaignState::Done | CampaignState::Cancelled);
        if !a.follow {
            if a.json {
                println!("{}", status_json(&c, &s));
            } else {
                println!("{}", status_text(&c, &s));
            }
            return Ok(());
        }
        if a.json {
            println!("{}", status_json(&c, &s));
        } else {
            use std::io::Write;
            print!("\r{}\x1b[K", bar(&c, &s));
            std::io::stdout().flush().ok();
        }
        if ended {
            if !a.json {
                println!();
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn report(a: &ReportArgs) -> Result<(), String> {
    let (_, store) = open(&a.config).await?;
    let c = campaign(&store, &a.id).await?;
    let mut rows = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .campaign_report(&a.id, after, 1000)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = last.line;
        rows.extend(page);
    }
    // The script's answers become columns, in the order first seen.
    let mut result_keys: Vec<String> = Vec::new();
    for r in &rows {
        for k in r.results.iter().flat_map(|m| m.keys()) {
            if !result_keys.contains(k) {
                result_keys.push(k.clone());
            }
        }
    }
    let value_text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match a.format {
        ReportFormat::Json => {
            let list: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "phone": r.phone,
                        "line": r.line,
                        "fields": r.fields.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str()))).collect::<serde_json::Map<_, _>>(),
                        "attempts": r.attempts,
                        "outcome": r.outcome.map(|o| o.as_str()),
                        "sip_status": r.sip_status,
                        "q850": r.q850,
                        "talk_s": r.talk_ms as f64 / 1000.0,
                        "results": r.results.clone().unwrap_or_default(),
                        "sms_id": r.sms_id,
                        "sms_state": r.sms_state.map(|s| s.to_string()),
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(list));
        }
        ReportFormat::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout());
            let mut head = vec!["phone".to_string()];
            head.extend(c.settings.columns.iter().cloned());
            head.extend(
                ["attempts", "outcome", "sip_status", "q850", "talk_s"]
                    .iter()
                    .map(|s| s.to_string()),
            );
            head.extend(result_keys.iter().cloned());
            head.extend(["sms_id".to_string(), "sms_state".to_string()]);
            w.write_record(&head).map_err(|e| e.to_string())?;
            for r in &rows {
                let mut rec = vec![r.phone.clone()];
                for col in &c.settings.columns {
                    rec.push(
                        r.fields
                            .iter()
                            .find(|(k, _)| k == col)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default(),
                    );
                }
                rec.push(r.attempts.to_string());
                rec.push(
                    r.outcome
                        .map(|o| o.as_str().to_string())
                        .unwrap_or_default(),
                );
                rec.push(r.sip_status.map(|s| s.to_string()).unwrap_or_default());
                rec.push(r.q850.map(|s| s.to_string()).unwrap_or_default());
                rec.push(format!("{:.1}", r.talk_ms as f64 / 1000.0));
                for k in &result_keys {
                    rec.push(
                        r.results
                            .as_ref()
                            .and_then(|m| m.get(k))
                            .map(value_text)
                            .unwrap_or_default(),
                    );
                }
                rec.push(r.sms_id.clone().unwrap_or_default());
                rec.push(r.sms_state.map(|s| s.to_string()).unwrap_or_default());
                w.write_record(&rec).map_err(|e| e.to_string())?;
            }
            w.flush().map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn normalize_all(numbers: &[String], c: Country) -> Result<Vec<String>, String> {
    numbers
        .iter()
        .map(|n| contacts::normalize(n, c).map_err(|e| format!("{n:?}: {e}")))
        .collect()
}

async fn dnc(cmd: DncCommand) -> Result<(), String> {
    match cmd {
        DncCommand::Add(a) => {
            let phones = normalize_all(&a.numbers, country(a.country.as_deref())?)?;
            let (_, store) = open(&a.config).await?;
            let n = store
                .dnc_add(&phones, "cli")
                .await
                .map_err(|e| e.to_string())?;
            println!("added {n} of {}", phones.len());
        }
        DncCommand::Remove(a) => {
            let phones = normalize_all(&a.numbers, country(a.country.as_deref())?)?;
            let (_, store) = open(&a.config).await?;
            let n = store.dnc_remove(&phones).await.map_err(|e| e.to_string())?;
            println!("removed {n} of {}", phones.len());
        }
        DncCommand::List(a) => {
            let (_, store) = open(&a.config).await?;
            let mut after = String::new();
            loop {
                let page = store
                    .dnc_list(&after, 1000)
                    .await
                    .map_err(|e| e.to_string())?;
                let Some(last) = page.last() else { break };
                after = last.phone.clone();
                for e in &page {
                    println!("{} {}", e.phone, e.source);
                }
            }
        }
        DncCommand::Import(a) => {
            let import = contacts::import_file(&a.file, country(a.country.as_deref())?)
                .map_err(|e| e.to_string())?;
            let (_, store) = open(&a.config).await?;
            let phones: Vec<String> = import.contacts.iter().map(|c| c.phone.clone()).collect();
            let n = store
                .dnc_add(&phones, &format!("import:{}", a.file.display()))
                .await
                .map_err(|e| e.to_string())?;
            println!("added {n} of {} ({})", phones.len(), import.summary());
            print_rejected(&a.file, &import);
        }
    }
    Ok(())
}
