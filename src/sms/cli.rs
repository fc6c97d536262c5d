//! `rivr sms send|status`: one SMS from the command line, and its state.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::options::{self, OptionError, SendOptions};
use super::{MessageState, SmsError, SmsService};
use crate::config::Config;
use crate::store::Store;

/// The `rivr sms` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SmsCommand {
    /// Bind, submit one SMS, print its id (last word of the first line).
    Send {
        #[arg(long, default_value = "rivr.toml")]
        config: PathBuf,
        #[arg(long)]
        to: String,
        #[arg(long)]
        text: String,
        /// Sender ID: alphanumeric (at most 11 GSM characters), a short
        /// code, +E.164 or a national number; TON/NPI follow from its form.
        #[arg(long, value_name = "ID")]
        from: Option<String>,
        /// Deliver at this time (RFC 3339, e.g. 2026-12-05T09:00:00+01:00).
        #[arg(long, value_name = "RFC3339")]
        at: Option<String>,
        /// Validity period: 90s, 10m, 2h, 1d, 1h30m (SMSC drops it after).
        #[arg(long, value_name = "DURATION")]
        valid_for: Option<String>,
        /// Send through this route only (a `[[smsc]]` name, "smpp", "http").
        #[arg(long, value_name = "ROUTE")]
        via: Option<String>,
        /// Wait up to SECONDS for the final state and print it.
        #[arg(long, value_name = "SECONDS")]
        wait_receipt: Option<u64>,
    },
    /// How a text will be sent: encoding (GSM-7/UCS-2), parts, and the
    /// characters used and left in the last part. No config, no network.
    Parts {
        #[arg(long)]
        text: String,
        /// One JSON object instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// The answers SMS scripts stored with set_result, oldest first: one
    /// `SENDER ROUTE NAME VALUE` line each (or JSON lines with --json).
    Results {
        #[arg(long, default_value = "rivr.toml")]
        config: PathBuf,
        /// Only this [[sms_route]] (its name, else its script as written).
        #[arg(long)]
        route: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print the state of a message: queued, submitted, delivered, failed,
    /// expired or unknown.
    Status {
        #[arg(long, default_value = "rivr.toml")]
        config: PathBuf,
        /// Also print the schedule, the validity and each part's route and
        /// attempts (one line each, after the state).
        #[arg(long)]
        detail: bool,
        id: String,
    },
}

/// Runs a `rivr sms` subcommand; errors go to stderr.
pub fn run(cmd: SmsCommand) -> ExitCode {
    if let SmsCommand::Parts { text, json } = &cmd {
        return print_parts(text, *json);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rivr sms: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let res = match cmd {
        SmsCommand::Send {
            config,
            to,
            text,
            from,
            at,
            valid_for,
            via,
            wait_receipt,
        } => match options(from, at, valid_for, via) {
            Ok(o) => rt.block_on(send(&config, &to, &text, &o, wait_receipt)),
            Err(e) => Err(e),
        },
        SmsCommand::Status { config, detail, id } => rt.block_on(status(&config, &id, detail)),
        SmsCommand::Parts { .. } => Ok(()),
        SmsCommand::Results {
            config,
            route,
            json,
        } => rt.block_on(results(&config, route.as_deref(), json)),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rivr sms: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The `--from/--at/--valid-for/--via` flags, checked (errors name them).
fn options(
    from: Option<String>,
    at: Option<String>,
    valid_for: Option<String>,
    via: Option<String>,
) -> Result<SendOptions, String> {
    let flag = |e: OptionError| format!("--{}: {}", e.name.replace('_', "-"), e.why);
    Ok(SendOptions {
        from,
        at_ms: at
            .as_deref()
            .map(options::parse_at)
            .transpose()
            .map_err(flag)?,
        valid_for: valid_for
            .as_deref()
            .map(|v| options::parse_duration("valid_for", v))
            .transpose()
            .map_err(flag)?,
        via,
    })
}

async fn send(
    config: &Path,
    to: &str,
    text: &str,
    opts: &SendOptions,
    wait: Option<u64>,
) -> Result<(), String> {
    let cfg = Config::load(config).map_err(|e| e.to_string())?;
    let mut submit_wait = cfg
        .smpp
        .iter()
        .chain(&cfg.smsc)
        .map(|s| s.response_timeout_ms.saturating_mul(3))
        .max()
        .unwrap_or(30_000)
        .max(1000);
    // Held here until due when the route schedules locally.
    if let Some(at) = opts.at_ms {
        let ahead = at.saturating_sub(crate::store::now_ms()).max(0);
        submit_wait = submit_wait.saturating_add(u64::try_from(ahead).unwrap_or(0));
    }
    let svc = SmsService::start(&cfg).await.map_err(|e| e.to_string())?;
    let id = svc.submit_with(to, text, opts).await.map_err(|e| match e {
        SmsError::Option(o) => format!("--{}: {}", o.name.replace('_', "-"), o.why),
        other => other.to_string(),
    })?;
    println!("queued {id}");
    let res = report(&svc, &id, Duration::from_millis(submit_wait), wait).await;
    svc.shutdown(Duration::from_secs(5)).await;
    res
}

async fn report(
    svc: &SmsService,
    id: &str,
    submit_wait: Duration,
    wait: Option<u64>,
) -> Result<(), String> {
    let err = |e: SmsError| e.to_string();
    let state = svc
        .wait_for(id, submit_wait, |s| s != MessageState::Queued)
        .await
        .map_err(err)?;
    if state == MessageState::Queued {
        return Err(format!(
            "{id} not accepted by the SMSC in time; it stays queued"
        ));
    }
    let state = match wait {
        Some(secs) => svc
            .wait_for(id, Duration::from_secs(secs), MessageState::is_final)
            .await
            .map_err(err)?,
        None => state,
    };
    println!("state {state}");
    if state == MessageState::Failed {
        return Err(format!("{id} failed"));
    }
    Ok(())
}

async fn status(config: &Path, id: &str, detail: bool) -> Result<(), String> {
    let cfg = Config::load(config).map_err(|e| e.to_string())?;
    let store = Store::open(&cfg.store.url, &cfg.base_dir)
        .await
        .map_err(|e| e.to_string())?;
    let e = |e: crate::store::StoreError| e.to_string();
    let Some(state) = store.message_state(id).await.map_err(e)? else {
        return Err(format!("no message with id {id:?}"));
    };
    println!("{state}");
    if !detail {
        return Ok(());
    }
    let (at, valid) = store.message_schedule(id).await.map_err(e)?;
    if let Some(at) = at.and_then(chrono::DateTime::from_timestamp_millis) {
        println!(
            "scheduled {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
    }
    if let Some(v) = valid {
        println!("valid_for {}s", v / 1000);
    }
    for r in store.part_routes(id).await.map_err(e)? {
        if let Some(route) = r.route {
            println!(
                "part {} route {route} attempts {} (routes {})",
                r.part,
                r.attempts,
                r.routes.join(", ")
            );
        }
    }
    Ok(())
}

fn print_parts(text: &str, json: bool) -> ExitCode {
    match super::parts::parts(text) {
        Ok(p) if json => {
            println!("{}", serde_json::to_string(&p).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(p) => {
            print!("{}", p.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rivr sms parts: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn results(config: &Path, route: Option<&str>, json: bool) -> Result<(), String> {
    let cfg = Config::load(config).map_err(|e| e.to_string())?;
    let store = Store::open(&cfg.store.url, &cfg.base_dir)
        .await
        .map_err(|e| e.to_string())?;
    for r in store
        .sms_results(route, 0)
        .await
        .map_err(|e| e.to_string())?
    {
        if json {
            let v = serde_json::json!({
                "sms": r.inbound_id, "from": r.sender, "route": r.route,
                "name": r.name, "value": r.value, "at_ms": r.at_ms,
            });
            println!("{v}");
        } else {
            println!("{} {} {} {:?}", r.sender, r.route, r.name, r.value);
        }
    }
    Ok(())
}
