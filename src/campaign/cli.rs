//! `rivr campaign …` and `rivr dnc …`: the operator's commands. The
//! campaign commands print what `super::ops` returns (the HTTP API runs the
//! same operations); they read and write the store only, and a running
//! `rivr serve` picks the changes up (docs/campaigns.md). Errors go to
//! stderr with a non-zero exit.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;

use super::contacts::{self, Country};
use super::ops::{self, Action, CreateRequest, OpError, StatusView};
use crate::config::Config;
use crate::store::{CampaignState, Store};

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
    /// Answering-machine detection on every answered call before the
    /// script runs (`call.answered_by`; the report's `answered_by`).
    #[arg(long)]
    pub amd: bool,
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
                CampaignCommand::Start(a) => transition(&a, Action::Start).await,
                CampaignCommand::Pause(a) => transition(&a, Action::Pause).await,
                CampaignCommand::Resume(a) => transition(&a, Action::Resume).await,
                CampaignCommand::Cancel(a) => transition(&a, Action::Cancel).await,
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
        .map_err(|e| format!("store {}: {e}", crate::store::redact_url(&cfg.store.url)))?;
    Ok((cfg, store))
}

fn country(c: Option<&str>) -> Result<Country, String> {
    match c {
        Some(c) => c.parse().map_err(|e| format!("--country: {e}")),
        None => Ok(Country::NONE),
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

async fn create(a: &CreateArgs) -> Result<(), String> {
    let (cfg, store) = open(&a.config).await?;
    let source = a.contacts.display().to_string();
    let csv = std::fs::read(&a.contacts).map_err(|e| format!("--contacts {source}: {e}"))?;
    let req = CreateRequest {
        name: a.name.clone(),
        script: a.script.clone(),
        trunks: a.trunk.clone(),
        cps: a.cps,
        max_channels: a.max_channels,
        attempts: a.attempts,
        retry: a.retry.clone(),
        hours: a.hours.clone(),
        days: a.days.clone(),
        tz: a.tz.clone(),
        country: a.country.clone(),
        sms_fallback: a.sms_fallback.clone(),
        sms_on: a.sms_on.clone(),
        ends: a.ends.clone(),
        priority: a.priority,
        amd: a.amd,
    };
    let prepared =
        ops::prepare(&cfg, &req, &source, &csv).map_err(|e| OpError::from(e).to_string())?;
    let created = ops::create(&store, prepared)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{}; created campaign {}",
        created.import.summary(),
        created.id
    );
    print_rejected(&a.contacts, &created.import);
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

async fn transition(a: &IdArgs, action: Action) -> Result<(), String> {
    let (_, store) = open(&a.config).await?;
    let to = ops::transition(&store, &a.id, action)
        .await
        .map_err(|e| e.to_string())?;
    println!("campaign {} {to}", a.id);
    Ok(())
}

async fn list(config: &Path) -> Result<(), String> {
    let (_, store) = open(config).await?;
    for v in ops::list(&store, now_ms())
        .await
        .map_err(|e| e.to_string())?
    {
        println!(
            "{} {:<9} {:>7}/{:<7} {}",
            v.campaign.id,
            v.campaign.state,
            v.status.done,
            v.status.contacts,
            v.campaign.settings.name
        );
    }
    Ok(())
}

fn hms(s: u64) -> String {
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn status_text(v: &StatusView) -> String {
    let (c, s) = (&v.campaign, &v.status);
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
        v.eta_s.map_or("-".into(), hms),
    )
}

fn bar(v: &StatusView) -> String {
    const W: u64 = 30;
    let s = &v.status;
    let filled = (s.done * W).checked_div(s.contacts).unwrap_or(W).min(W);
    format!(
        "[{}{}] {}/{} done, {} up, answered {}, {}, eta {}",
        "#".repeat(filled as usize),
        ".".repeat((W - filled) as usize),
        s.done,
        s.contacts,
        s.in_progress,
        s.answered,
        v.campaign.state,
        v.eta_s.map_or("-".into(), hms),
    )
}

async fn status(a: &StatusArgs) -> Result<(), String> {
    let (_, store) = open(&a.config).await?;
    loop {
        let v = ops::status(&store, &a.id, now_ms())
            .await
            .map_err(|e| e.to_string())?;
        let ended = matches!(
            v.campaign.state,
            CampaignState::Done | CampaignState::Cancelled
        );
        if !a.follow {
            if a.json {
                println!("{}", v.to_json());
            } else {
                println!("{}", status_text(&v));
            }
            return Ok(());
        }
        if a.json {
            println!("{}", v.to_json());
        } else {
            use std::io::Write;
            print!("\r{}\x1b[K", bar(&v));
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
    let c = ops::campaign(&store, &a.id)
        .await
        .map_err(|e| e.to_string())?;
    let layout = ops::report_layout(&store, &c)
        .await
        .map_err(|e| e.to_string())?;
    let mut json = Vec::new();
    let mut w = csv::Writer::from_writer(std::io::stdout());
    if a.format == ReportFormat::Csv {
        w.write_record(layout.header()).map_err(|e| e.to_string())?;
    }
    let mut after = 0;
    loop {
        let page = ops::report_page(&store, &a.id, after, 1000)
            .await
            .map_err(|e| e.to_string())?;
        for r in &page.rows {
            match a.format {
                ReportFormat::Json => json.push(ops::row_json(r)),
                ReportFormat::Csv => w
                    .write_record(layout.record(r))
                    .map_err(|e| e.to_string())?,
            }
        }
        match page.next_after {
            Some(next) => after = next,
            None => break,
        }
    }
    w.flush().map_err(|e| e.to_string())?;
    if a.format == ReportFormat::Json {
        println!("{}", serde_json::Value::Array(json));
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
