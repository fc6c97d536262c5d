//! The demo from start to end: the peers, rivr as `rivr serve` wires it
//! (server, HTTP API, campaign dialer), the campaign and the inbound call
//! at once, then the report. The server's loop runs while the demo waits
//! (`Server::run_until`), the way `serve` runs it while it waits for a
//! signal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::caller::Caller;
use super::files::{self, Ports, Tokens, Workdir};
use super::report::{self, Progress};
use super::DemoArgs;
use crate::call::registry::CdrRecord;
use crate::campaign::contacts::{self, Country};
use crate::config::Config;
use crate::server::{campaigns, drain::Drain, runner_config, Server, StartOptions};
use crate::store::{CampaignState, MessageState, NewCampaign, Store};

/// How the demo ended.
pub enum Ending {
    AllAsExpected,
    /// Something did not end as it should; why.
    Unexpected(String),
    Interrupted,
}

/// The callee of a `5` number hangs up this long after answering.
const HANGUP_AFTER: Duration = Duration::from_secs(2);
/// The whole run is given this long before it is called a failure.
const DEADLINE: Duration = Duration::from_secs(90);
/// How long rivr's record of the inbound call is waited for once the
/// caller has recorded its end.
const INBOUND_CDR_WAIT: Duration = Duration::from_secs(5);
/// How long the SMS receipts are waited for once the calls are done.
const RECEIPT_WAIT: Duration = Duration::from_secs(10);

fn err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

pub async fn demo(args: DemoArgs) -> Result<Ending, String> {
    let t0 = Instant::now();
    let dir = Workdir::new(args.dir.clone())?;
    let prompts = files::find_prompts(args.prompts.as_deref())?;

    // The SMSC simulator and the carrier, each on a free port.
    let smsc = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(err("smsc"))?;
    let smsc_port = smsc.local_addr().map_err(err("smsc"))?.port();
    let smsc_task = tokio::spawn(crate::sms::sim::serve_on(smsc, smsc_args()));
    let carrier = super::carrier_io::start(HANGUP_AFTER)
        .await
        .map_err(err("carrier"))?;
    let tokens = Tokens::new();
    let ports = Ports {
        smsc: smsc_port,
        carrier: carrier.sip,
    };
    let (rivr_toml, caller_toml, list, script) =
        files::write_all(&dir.path, &prompts, &ports, &tokens, args.contacts)?;
    let config = Config::load(&rivr_toml).map_err(|e| e.to_string())?;
    let store = Store::open(&config.store.url, &config.base_dir)
        .await
        .map_err(err("store"))?;
    let id = create_campaign(&store, &list, &script).await?;

    // rivr, wired as `rivr serve` wires it; the demo reads every CDR on
    // its way to the dialer to find the inbound call's.
    let (tap, mut cdrs) = mpsc::unbounded_channel::<CdrRecord>();
    let (to_runner, runner_cdrs) = mpsc::unbounded_channel();
    let (dialog_tap, dialogs) = mpsc::unbounded_channel();
    let mut server = Server::start(
        config.clone(),
        StartOptions {
            cdr_tap: Some(tap),
            dialog_tap: Some(dialog_tap),
            store: Some(store.clone()),
            ..StartOptions::default()
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let (seen, mut inbound) = mpsc::unbounded_channel::<CdrRecord>();
    tokio::spawn(async move {
        while let Some(r) = cdrs.recv().await {
            if r.direction == "inbound" && r.leg == 0 {
                let _ = seen.send(r.clone());
            }
            let _ = to_runner.send(r);
        }
    });
    let api = crate::api::ApiState::new(
        Arc::new(config.clone()),
        server.control(),
        store.clone(),
        server.sms(),
        Drain::new(),
    );
    let http = crate::api::start(api).await.map_err(err("http"))?;
    let (stop_dialing, stop_rx) = tokio::sync::watch::channel(false);
    let runner = campaigns::Runner::new(
        store.clone(),
        server.sms(),
        server.control(),
        runner_config(server.config()),
    );
    let runner = tokio::spawn(runner.run(runner_cdrs, dialogs, stop_rx));
    let dashboard = format!("http://{http}/?token={}", tokens.read);
    println!(
        "rivr demo: rivr on sip:{} (menu on number 1000), simulated carrier on sip:{}, SMSC on 127.0.0.1:{smsc_port}",
        server.local_addr(),
        carrier.sip
    );
    println!("dashboard: {dashboard}");
    println!(
        "files: {}{}",
        dir.path.display(),
        if dir.temporary() {
            " (removed at the end; --dir DIR keeps them)"
        } else {
            ""
        }
    );
    println!(
        "campaign {id}: {} contacts, 10 calls/s, 2 attempts, SMS to those not reached; one inbound call to the menu meanwhile",
        args.contacts
    );

    store
        .set_campaign_state(&id, &[CampaignState::Created], CampaignState::Running)
        .await
        .map_err(err("store"))?;
    let caller = Caller::place(
        &caller_toml,
        server.local_addr(),
        &dir.path.join("scripts/caller.rhai"),
    )
    .await?;

    // Registered now, not when first polled: a Ctrl-C at any moment
    // from here stops the demo.
    let mut stop = Stop::install()?;
    let watch = async {
        let follow = follow(&store, &id);
        let call = caller.finish();
        tokio::select! {
            (done, call) = async { tokio::join!(follow, call) } => Some((done, call)),
            _ = stop.next() => None,
            _ = tokio::time::sleep(DEADLINE) => Some((Err(format!("not finished after {} s", DEADLINE.as_secs())), None)),
        }
    };
    let watched = server.run_until(watch).await;
    let Some((followed, caller_cdr)) = watched else {
        let _ = stop_dialing.send(true);
        server.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), runner).await;
        return Ok(Ending::Interrupted);
    };

    let mut problems = Vec::new();
    if let Err(e) = followed {
        problems.push(format!("campaign: {e}"));
    }
    println!();
    println!("campaign report ({}):", id);
    let rows = report_rows(&store, &id).await?;
    problems.extend(report::print_table(&rows));
    let c = carrier.stats();
    println!(
        "carrier saw {} INVITEs: answered {}, busy {}, rang out {}, 503 {}",
        c.invites, c.answered, c.busy, c.rang_out, c.unavailable
    );
    println!();
    // The caller may record its end before rivr records its side of the
    // same call: rivr's record is waited for, rivr serving meanwhile.
    let rivr_side = server
        .run_until(tokio::time::timeout(INBOUND_CDR_WAIT, inbound.recv()))
        .await
        .ok()
        .flatten();
    problems.extend(print_inbound(caller_cdr.as_ref(), rivr_side.as_ref()));
    println!();
    println!("dashboard: {dashboard}");
    println!(
        "took {:.1} s; the files rivr used: {}",
        t0.elapsed().as_secs_f64(),
        dir.path.display()
    );

    if problems.is_empty() {
        println!(
            "every contact ended as its number dictates; the inbound call went through the menu"
        );
    }
    if args.keep {
        println!("--keep: rivr goes on serving (dashboard, API, menu on number 1000) until Ctrl-C");
        server.run_until(stop.next()).await;
    }
    let _ = stop_dialing.send(true);
    server.shutdown().await;
    if tokio::time::timeout(Duration::from_secs(5), runner)
        .await
        .is_err()
    {
        problems.push("the dialer did not stop".into());
    }
    smsc_task.abort();
    drop(carrier);
    Ok(if problems.is_empty() {
        Ending::AllAsExpected
    } else {
        Ending::Unexpected(problems.join("; "))
    })
}

/// Ctrl-C (SIGINT) or SIGTERM.
struct Stop {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Stop {
    fn install() -> Result<Stop, String> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Stop {
            int: signal(SignalKind::interrupt()).map_err(err("SIGINT"))?,
            term: signal(SignalKind::terminate()).map_err(err("SIGTERM"))?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// The demo's SMSC: the simulator's defaults, receipts after 100 ms.
fn smsc_args() -> crate::sms::sim::SimArgs {
    crate::sms::sim::SimArgs {
        listen: "127.0.0.1:0".into(),
        system_id: "rivrsim".into(),
        password: String::new(),
        latency_ms: 0,
        throttle_pct: 0,
        queue_full_pct: 0,
        drop_every: None,
        max_drops: u32::MAX,
        receipt_delay_ms: 100,
        no_receipts: false,
        receipt_missing_pct: 0,
        receipt_before_resp: false,
        mute_enquire_link: false,
        hex_ids: false,
        receipt_stat: "DELIVRD".into(),
        log: None,
        mo_text: None,
    }
}

/// Stores the campaign as `rivr campaign create` would: all day, every
/// day, two attempts 2 s apart, an SMS for whoever is not reached.
async fn create_campaign(
    store: &Store,
    list: &std::path::Path,
    script: &std::path::Path,
) -> Result<String, String> {
    let import = contacts::import_file(list, Country::NONE).map_err(|e| e.to_string())?;
    let new = NewCampaign {
        name: "clinic hours".into(),
        script: script.display().to_string(),
        trunks: vec!["carrier".into()],
        cps: 10.0,
        max_channels: 20,
        attempts: 2,
        retry: "busy=2s,no_answer=2s,congestion=2s".into(),
        hours: "00:00-24:00".into(),
        days: "mon-sun".into(),
        tz: "UTC".into(),
        country: Country::NONE.to_string(),
        sms: Some(
            "Hello {name}, the clinic tried to call you: it now opens 8-18, Monday to Saturday."
                .into(),
        ),
        sms_on: Vec::new(),
        ends_at: None,
        priority: 0,
        columns: import.columns.clone(),
    };
    store
        .create_campaign(&new, &import.contacts)
        .await
        .map_err(err("store"))
}

/// Draws the bar until the campaign is done and every SMS it sent has
/// its final state (or `RECEIPT_WAIT` has passed).
async fn follow(store: &Store, id: &str) -> Result<(), String> {
    let mut bar = Progress::new();
    let mut done_at: Option<Instant> = None;
    loop {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let c = store
            .campaign(id)
            .await
            .map_err(err("store"))?
            .ok_or("the campaign is gone")?;
        let s = store
            .campaign_status(id, now_ms)
            .await
            .map_err(err("store"))?;
        bar.draw(&c, &s);
        match c.state {
            CampaignState::Done => {
                let since = *done_at.get_or_insert_with(Instant::now);
                let rows = report_rows(store, id).await?;
                let settled = rows.iter().all(|r| {
                    r.sms_id.is_none()
                        || matches!(
                            r.sms_state,
                            Some(
                                MessageState::Delivered
                                    | MessageState::Failed
                                    | MessageState::Expired
                            )
                        )
                });
                if settled || since.elapsed() > RECEIPT_WAIT {
                    bar.finish();
                    return Ok(());
                }
            }
            CampaignState::Cancelled => {
                bar.finish();
                return Err("cancelled".into());
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn report_rows(store: &Store, id: &str) -> Result<Vec<crate::store::ReportRow>, String> {
    let mut rows = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .campaign_report(id, after, 1000)
            .await
            .map_err(err("store"))?;
        let Some(last) = page.last() else { break };
        after = last.line;
        rows.extend(page);
    }
    Ok(rows)
}

/// The inbound call, from both ends: what the caller pressed and how its
/// call ended, and what rivr's menu heard (its `set_result`s).
fn print_inbound(caller: Option<&CdrRecord>, rivr: Option<&CdrRecord>) -> Vec<String> {
    let mut wrong = Vec::new();
    let Some(c) = caller else {
        return vec!["the inbound call left no record".into()];
    };
    let keys = c
        .results
        .get("keys")
        .and_then(|v| v.as_str())
        .unwrap_or("none");
    println!(
        "inbound call to 1000 (scripts/main_menu.rhai): {}, {:.1} s, ended by {}; the caller pressed {keys}",
        c.outcome,
        c.talk_ms as f64 / 1000.0,
        if c.end == "remote-bye" { "rivr" } else { c.end }
    );
    let heard = |k: &str| {
        rivr.and_then(|r| r.results.get(k))
            .and_then(|v| v.as_str())
            .unwrap_or("-")
            .to_string()
    };
    let (menu, info) = (heard("menu"), heard("info"));
    println!("rivr's menu heard: main menu {menu}, information menu {info}");
    if c.outcome != "answered" {
        wrong.push(format!("the inbound call was {}", c.outcome));
    }
    if keys != "2 1" || menu != "2" || info != "1" {
        wrong.push(format!(
            "the menu heard main {menu:?} and information {info:?} for keys {keys:?}"
        ));
    }
    wrong
}
