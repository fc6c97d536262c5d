//! `rivr cdr list`: CDR rows from the store, one page per run, through the
//! same query the HTTP API calls ([`CdrParams`] → [`Store::query_cdrs`]).
//! Rows go to stdout (JSON lines, or CSV with a header); when more rows
//! match, the last line on stderr is `next: CURSOR`, to pass as `--after`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{CdrPage, CdrParams, CdrRow, Store};
use crate::config::Config;

/// `rivr cdr` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CdrCommand {
    /// One page of CDR rows (one per call leg), oldest written first.
    List(ListArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[arg(long, default_value = "rivr.toml")]
    pub config: PathBuf,
    /// Legs started at or after this RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Legs started before this RFC 3339 time.
    #[arg(long)]
    pub until: Option<String>,
    /// The caller's or the called number, exactly.
    #[arg(long)]
    pub number: Option<String>,
    /// Calls placed by this campaign (its id).
    #[arg(long)]
    pub campaign: Option<String>,
    /// answered, busy, no_answer, rejected, unreachable, congestion,
    /// auth_failed, cancelled or failed.
    #[arg(long)]
    pub outcome: Option<String>,
    /// Rows in the page (1 to 1000; default 100).
    #[arg(long)]
    pub limit: Option<u32>,
    /// The `next:` cursor a previous page printed.
    #[arg(long)]
    pub after: Option<String>,
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
}

/// Runs a `rivr cdr` subcommand.
pub fn run(cmd: CdrCommand) -> ExitCode {
    let CdrCommand::List(a) = cmd;
    match list(&a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rivr cdr list: {e}");
            ExitCode::FAILURE
        }
    }
}

fn list(a: &ListArgs) -> Result<(), String> {
    let params = CdrParams {
        since: a.since.clone(),
        until: a.until.clone(),
        number: a.number.clone(),
        campaign: a.campaign.clone(),
        outcome: a.outcome.clone(),
        limit: a.limit,
        after: a.after.clone(),
    };
    let q = params.to_query().map_err(|e| format!("--{e}"))?;
    let cfg = Config::load(&a.config).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start runtime: {e}"))?;
    let page = rt.block_on(async {
        let store = Store::open(&cfg.store.url, &cfg.base_dir)
            .await
            .map_err(|e| format!("store {}: {e}", cfg.store.url))?;
        store.query_cdrs(&q).await.map_err(|e| e.to_string())
    })?;
    let out = std::io::stdout();
    let mut out = out.lock();
    match a.format {
        Format::Json => write_json(&mut out, &page),
        Format::Csv => write_csv(&mut out, &page),
    }
    .map_err(|e| format!("stdout: {e}"))?;
    if let Some(next) = page.next {
        eprintln!("next: {next}");
    }
    Ok(())
}

fn write_json(out: &mut impl Write, page: &CdrPage) -> std::io::Result<()> {
    for r in &page.rows {
        serde_json::to_writer(&mut *out, r)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// The CSV columns: a JSON line's keys, `results` as JSON text.
const CSV_HEADER: [&str; 22] = [
    "id",
    "call_id",
    "leg",
    "direction",
    "transport",
    "trunk",
    "transport_id",
    "from",
    "to",
    "started_at",
    "answered",
    "ring_ms",
    "talk_ms",
    "end",
    "outcome",
    "sip_status",
    "reason",
    "q850",
    "script",
    "results",
    "campaign",
    "attempt",
];

fn csv_row(r: &CdrRow) -> [String; 22] {
    let opt = |v: Option<String>| v.unwrap_or_default();
    [
        r.id.to_string(),
        r.call_id.clone(),
        r.leg.to_string(),
        r.direction.clone(),
        r.transport.clone(),
        opt(r.trunk.clone()),
        r.transport_id.clone(),
        r.from.clone(),
        r.to.clone(),
        r.started_at.clone(),
        r.answered.to_string(),
        r.ring_ms.to_string(),
        r.talk_ms.to_string(),
        r.end.clone(),
        r.outcome.clone(),
        opt(r.sip_status.map(|v| v.to_string())),
        opt(r.reason.clone()),
        opt(r.q850.map(|v| v.to_string())),
        r.script.clone(),
        serde_json::Value::Object(r.results.clone()).to_string(),
        opt(r.campaign.clone()),
        opt(r.attempt.clone()),
    ]
}

fn write_csv(out: &mut impl Write, page: &CdrPage) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_HEADER)?;
    for r in &page.rows {
        w.write_record(csv_row(r))?;
    }
    w.flush()
}
