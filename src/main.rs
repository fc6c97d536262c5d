//! The `rivr` command line. Parsing only; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Counts the bytes each thread holds, so a call's script (one thread each)
/// can be held to `[script] max_memory_bytes` (see `rivr::script::memory`).
#[global_allocator]
static ALLOC: alloc_meter::Meter = alloc_meter::Meter;

#[derive(Parser)]
#[command(name = "rivr", version, about = "IVR and SIP media server")]
struct Cli {
    /// How `serve` and `call` write their logs to stderr: `text` for a
    /// person, `json` (one object per line) for a log shipper.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        #[arg(long, default_value = "rivr.toml")]
        config: PathBuf,
    },
    /// Place one outbound call and print its outcome as one JSON line.
    Call(CallCli),
    /// Compile call-flow scripts and report errors with file:line:col.
    Check {
        /// Also check this config file: every key, its routes' scripts,
        /// and list its trunks and PRI spans.
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(required_unless_present = "config")]
        scripts: Vec<PathBuf>,
    },
    /// Outbound campaigns: create, start, pause, resume, cancel, status,
    /// report, list.
    Campaign {
        #[command(subcommand)]
        command: rivr::campaign::cli::CampaignCommand,
    },
    /// The do-not-call list: add, remove, list, import.
    Dnc {
        #[command(subcommand)]
        command: rivr::campaign::cli::DncCommand,
    },
    /// Call detail records in the store: list (filtered, paged).
    Cdr {
        #[command(subcommand)]
        command: rivr::store::cdr_cli::CdrCommand,
    },
    /// Send an SMS or show its state.
    Sms {
        #[command(subcommand)]
        command: rivr::sms::cli::SmsCommand,
    },
    /// Run an SMSC simulator (SMPP 3.4) for tests and demos.
    SmscSim(rivr::sms::sim::SimArgs),
    /// A self-contained tour: rivr with a simulated carrier and SMSC runs
    /// a small campaign and takes one call through its menu, then exits.
    Demo(rivr::demo::DemoArgs),
    /// Run a call flow with a simulated caller on a virtual clock (no
    /// network, no phone) and print what happened, one line per event.
    Sim(SimCli),
    /// Run the script tests (`NAME.test.toml` beside `NAME.rhai`) under DIR.
    Test {
        /// The config whose prompts and `[script]` limits the flows use
        /// (default: ./rivr.toml if there is one, else built-in defaults).
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(default_value = "scripts")]
        dir: PathBuf,
    },
    /// Media tools for debugging audio from a carrier.
    Media {
        #[command(subcommand)]
        cmd: MediaCommand,
    },
}

#[derive(clap::Args)]
struct CallCli {
    #[arg(long, default_value = "rivr.toml")]
    config: PathBuf,
    /// The trunk to use (default: the first that takes the call).
    #[arg(long)]
    trunk: Option<String>,
    /// The call flow to run once answered (default: hang up at once).
    #[arg(long)]
    script: Option<PathBuf>,
    /// The caller id (default: the trunk's `caller_id`).
    #[arg(long)]
    caller_id: Option<String>,
    /// Seconds to let it ring before giving up (default: the trunk's).
    #[arg(long)]
    ring_timeout: Option<u64>,
    /// KEY=VALUE for the script's `call.vars`; repeatable.
    #[arg(long = "var")]
    vars: Vec<String>,
    /// Place this many calls to the number at once, paced by the trunk's
    /// `cps` and capped by its `max_channels`; one JSON line per call as
    /// each ends (a trunk load test, or a batch without a campaign).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    count: u32,
    /// Answering-machine detection once answered, before the script:
    /// `call.answered_by` in the script, "answered_by" in the JSON line.
    #[arg(long)]
    amd: bool,
    /// A number (dialed on the trunk) or a sip: URI.
    number: String,
}

fn call(a: CallCli) -> ExitCode {
    let mut vars = Vec::new();
    for v in &a.vars {
        match v.split_once('=') {
            Some((k, val)) if !k.is_empty() => vars.push((k.to_string(), val.to_string())),
            _ => {
                eprintln!("rivr call: --var {v:?}: expected KEY=VALUE");
                return ExitCode::FAILURE;
            }
        }
    }
    let config = match rivr::config::Config::load(&a.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rivr call: {e}");
            return ExitCode::FAILURE;
        }
    };
    let args = rivr::server::one_call::CallArgs {
        number: a.number,
        trunk: a.trunk,
        script: a.script,
        caller_id: a.caller_id,
        ring_timeout: a.ring_timeout.map(std::time::Duration::from_secs),
        vars,
        count: a.count,
        amd: a.amd,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rivr call: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let emit = |json: serde_json::Value| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        // A closed stdout (`| head`) must not end the calls still up.
        let _ = writeln!(out, "{json}");
        let _ = out.flush();
    };
    match rt.block_on(rivr::server::one_call::place_each(config, args, emit)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rivr call: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(clap::Args)]
struct SimCli {
    /// The call flow.
    script: PathBuf,
    /// The config whose prompts and `[script]` limits the flow uses
    /// (default: ./rivr.toml if there is one, else built-in defaults).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The caller's keys: "KEYS", each pressed 1 s after the last prompt
    /// ends (or the last key), or "SECONDS:KEYS,…" at those times
    /// (keys of one group 200 ms apart).
    #[arg(long, default_value = "")]
    digits: String,
    /// The caller's URI (`call.from`).
    #[arg(long, default_value = rivr::sim::run::DEFAULT_FROM)]
    from: String,
    /// The dialed number (`call.to`; default: the route that runs SCRIPT).
    #[arg(long, default_value = "")]
    to: String,
    /// KEY=VALUE for the script's `call.vars`; repeatable.
    #[arg(long = "var")]
    vars: Vec<String>,
    /// The caller hangs up this many seconds into the call.
    #[arg(long)]
    hangup_after: Option<f64>,
    /// The call's language (`call.lang`: prompts from prompts/LANG/ first);
    /// default: the `lang` of the route `--to` reaches.
    #[arg(long, default_value = "")]
    lang: String,
    /// How every `dial()` ends: no_answer, answered, busy, rejected,
    /// unreachable, congestion or failed.
    #[arg(long, default_value = "no_answer")]
    dial: String,
    /// Write what the caller heard as 8 kHz 16-bit mono WAV.
    #[arg(long)]
    out: Option<PathBuf>,
    /// One JSON object per event instead of text.
    #[arg(long)]
    json: bool,
}

fn sim(a: SimCli) -> ExitCode {
    let fail = |e: String| {
        eprintln!("rivr sim: {e}");
        ExitCode::FAILURE
    };
    let mut opts = rivr::sim::SimOptions::new(&a.script);
    opts.keys = match rivr::sim::KeyPlan::parse(&a.digits) {
        Ok(k) => k,
        Err(e) => return fail(format!("--{e}")),
    };
    opts.from = a.from;
    opts.to = a.to;
    for v in &a.vars {
        match v.split_once('=') {
            Some((k, val)) if !k.is_empty() => opts.vars.push((k.to_string(), val.to_string())),
            _ => return fail(format!("--var {v:?}: expected KEY=VALUE")),
        }
    }
    if let Some(s) = a.hangup_after {
        if !(s.is_finite() && (0.0..=86_400.0).contains(&s)) {
            return fail(format!("--hangup-after {s}: expected 0 to 86400 seconds"));
        }
        opts.hangup_after = Some(std::time::Duration::from_millis((s * 1000.0).round() as u64));
    }
    if !rivr::sim::run::DIAL_OUTCOMES.contains(&a.dial.as_str()) {
        return fail(format!(
            "--dial {}: expected one of {}",
            a.dial,
            rivr::sim::run::DIAL_OUTCOMES.join(", ")
        ));
    }
    opts.dial_outcome = a.dial;
    if let Err(e) = rivr::script::lang::check_tag(&a.lang) {
        return fail(format!("--lang: {e}"));
    }
    opts.lang = a.lang;
    let config = match rivr::sim::load_config(a.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let report = rivr::sim::Simulator::new(config).run(&opts);
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for l in &report.lines {
            let _ = writeln!(out, "{}", if a.json { l.json() } else { l.text() });
        }
        let _ = out.flush();
    }
    if let Some(path) = &a.out {
        let pcm = rivr::sim::wav::render(&report.heard, report.duration_ms);
        if let Err(e) = rivr::sim::wav::write(path, &pcm) {
            return fail(e);
        }
    }
    if let rivr::script::runner::Outcome::Failed(m) = &report.outcome {
        return fail(m.clone());
    }
    ExitCode::SUCCESS
}

fn test_scripts(config: Option<PathBuf>, dir: PathBuf) -> ExitCode {
    let config = match rivr::sim::load_config(config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rivr test: {e}");
            return ExitCode::FAILURE;
        }
    };
    let files = match rivr::sim::cases::find(&dir) {
        Ok(f) if f.is_empty() => {
            eprintln!(
                "rivr test: no *{} files under {}",
                rivr::sim::cases::SUFFIX,
                dir.display()
            );
            return ExitCode::FAILURE;
        }
        Ok(f) => f,
        Err(e) => {
            eprintln!("rivr test: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sim = rivr::sim::Simulator::new(config);
    let (mut passed, mut failed) = (0, 0);
    for f in &files {
        let mut out = Vec::new();
        let t = rivr::sim::cases::run_file(&sim, f, &mut out);
        for l in out {
            println!("{l}");
        }
        passed += t.passed;
        failed += t.failed;
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[derive(Subcommand)]
enum MediaCommand {
    /// Print the DTMF keys found in a recording, one per line: the onset in
    /// seconds, a space, the key.
    Dtmf { file: PathBuf },
    /// Run a recording through encode, a simulated network, the jitter
    /// buffer and decode with concealment; write the result as WAV at the
    /// input's rate.
    Impair(ImpairArgs),
}

#[derive(clap::Args)]
struct ImpairArgs {
    /// pcmu, pcma or opus (20 ms packets with in-band FEC, at the libopus
    /// rate nearest the input's)
    #[arg(long, default_value = "pcmu")]
    codec: String,
    /// Mean variable delay in ms (varies by ± half of it unless --jitter-spread-ms).
    #[arg(long, default_value_t = 0.0)]
    jitter_ms: f64,
    #[arg(long)]
    jitter_spread_ms: Option<f64>,
    #[arg(long, default_value_t = 0.0)]
    loss_pct: f64,
    /// Mean loss burst length in packets (Gilbert–Elliott); 1 = independent.
    #[arg(long, default_value_t = 1.0)]
    burst: f64,
    #[arg(long, default_value_t = 0.0)]
    reorder_pct: f64,
    #[arg(long, default_value_t = 0.0)]
    dup_pct: f64,
    /// Sender clock drift in parts per million (+5000 = 0.5% fast).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    drift_ppm: i32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// plc (the default: the codec's concealment, and Opus FEC when the next
    /// packet carries it) or zero
    #[arg(long, default_value = "plc")]
    conceal: String,
    input: PathBuf,
    output: PathBuf,
}

fn impair(a: ImpairArgs) -> ExitCode {
    use rivr::media::impair::{impair_file, Conceal, ImpairOptions};
    let codec = match a.codec.as_str() {
        "pcmu" => rivr::codec::Codec::Pcmu,
        "pcma" => rivr::codec::Codec::Pcma,
        "opus" => rivr::codec::Codec::Opus,
        other => {
            eprintln!("rivr media impair: --codec {other}: expected pcmu, pcma or opus");
            return ExitCode::FAILURE;
        }
    };
    let conceal = match a.conceal.as_str() {
        "plc" => Conceal::Plc,
        "zero" => Conceal::Zero,
        other => {
            eprintln!("rivr media impair: --conceal {other}: expected plc or zero");
            return ExitCode::FAILURE;
        }
    };
    let o = ImpairOptions {
        codec,
        jitter_ms: a.jitter_ms,
        jitter_spread_ms: a.jitter_spread_ms.unwrap_or(a.jitter_ms / 2.0),
        loss_pct: a.loss_pct,
        burst: a.burst,
        reorder_pct: a.reorder_pct,
        dup_pct: a.dup_pct,
        drift_ppm: a.drift_ppm,
        seed: a.seed,
        conceal,
    };
    match impair_file(&a.input, &a.output, &o) {
        Ok(r) => {
            let fec = if codec == rivr::codec::Codec::Opus {
                format!(" fec-recovered {}", r.fec_recovered)
            } else {
                String::new()
            };
            eprintln!(
                "frames {} played {} concealed {}{fec} stretched {} quiet-dropped {} speech-dropped {} lost-in-network {} late {} duplicated {} reordered {}",
                r.frames,
                r.played,
                r.concealed,
                r.stretched,
                r.quiet_dropped,
                r.speech_dropped,
                r.lost_in_network,
                r.late,
                r.duplicated,
                r.reordered
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rivr media impair: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RIVR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // The dashboard's "recent errors" panel keeps the last WARN/ERROR events.
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let recent = rivr::api::RecentErrors;
    match format {
        LogFormat::Text => fmt
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .finish()
            .with(recent)
            .init(),
        // The event's fields at the top level beside `timestamp`, `level`
        // and `message`; a call's script lines carry the call's span as
        // `"span": {"name": "call", "id": …}` (docs/config.md, "Logs").
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .finish()
            .with(recent)
            .init(),
    }
}

/// `rivr check --config`: what the file sets up, one line per trunk and
/// span.
fn print_config(c: &rivr::config::Config) {
    use rivr::config::{Hunt, SpanTransport, TrunkTransport};
    for t in &c.trunks {
        let transport = match t.transport {
            TrunkTransport::Udp => "udp",
            TrunkTransport::Tcp => "tcp",
        };
        println!(
            "trunk {}: sip {}:{} ({transport}), max_channels {}, cps {}, ring_timeout {} s",
            t.name, t.host, t.port, t.max_channels, t.cps, t.ring_timeout_s
        );
    }
    for s in &c.spans {
        let variant = match s.variant {
            rivr::pri::q931::Variant::Etsi => "etsi",
            rivr::pri::q931::Variant::Ni2 => "ni2",
        };
        let law = match s.law {
            rivr::codec::Law::Alaw => "alaw",
            rivr::codec::Law::Ulaw => "ulaw",
        };
        let side = match s.side {
            rivr::pri::q931::Side::User => "user",
            rivr::pri::q931::Side::Network => "network",
        };
        let transport = match s.transport {
            SpanTransport::Socket => "socket",
            SpanTransport::Dahdi => "dahdi",
        };
        println!(
            "span {}: {variant} {law} {side} {transport}, dchannel {}, bchannels {}, channels {} ({})",
            s.name,
            s.dchannel.display(),
            s.bchannels_resolved().display(),
            s.channels_text(),
            s.channels.len()
        );
    }
    for t in &c.pri_trunks {
        let hunt = match t.hunt {
            Hunt::Lowest => "lowest",
            Hunt::Highest => "highest",
            Hunt::RoundRobin => "round-robin",
        };
        println!(
            "trunk {}: pri spans {}, hunt {hunt}, max_channels {}, cps {}, ring_timeout {} s",
            t.name,
            t.spans.join(","),
            t.max_channels,
            t.cps,
            t.ring_timeout_s
        );
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            init_logging(cli.log_format, "info");
            let config = match rivr::config::Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("rivr: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("rivr: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(rivr::server::serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rivr: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Call(args) => {
            init_logging(cli.log_format, "info");
            call(args)
        }
        Command::Check { config, scripts } => {
            let mut script_config = rivr::config::ScriptConfig::default();
            let mut scripts = scripts;
            let mut failed = false;
            if let Some(path) = &config {
                match rivr::config::Config::load(path) {
                    Ok(c) => {
                        println!("{}: ok", path.display());
                        print_config(&c);
                        script_config = c.script.clone();
                        scripts.extend(c.routes.iter().map(|r| r.script.clone()));
                        scripts.extend(c.sms.routes.iter().map(|r| r.script.clone()));
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        failed = true;
                    }
                }
            }
            let engine = rivr::script::engine::build_engine(&script_config);
            for s in &scripts {
                match rivr::script::engine::compile(&engine, s) {
                    Ok(_) => println!("{}: ok", s.display()),
                    Err(e) => {
                        eprintln!("{e}");
                        failed = true;
                    }
                }
            }
            if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Command::Media {
            cmd: MediaCommand::Dtmf { file },
        } => match rivr::media::dtmf_detect::detect_wav(&file) {
            Ok(keys) => {
                for (seconds, key) in keys {
                    println!("{seconds:.3} {key}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rivr media dtmf: {}: {e}", file.display());
                ExitCode::FAILURE
            }
        },
        Command::Media {
            cmd: MediaCommand::Impair(args),
        } => impair(args),
        Command::Campaign { command } => rivr::campaign::cli::run(command),
        Command::Dnc { command } => rivr::campaign::cli::run_dnc(command),
        Command::Cdr { command } => rivr::store::cdr_cli::run(command),
        Command::Sms { command } => rivr::sms::cli::run(command),
        Command::SmscSim(args) => rivr::sms::sim::run(args),
        Command::Sim(args) => {
            rivr::sim::log::init(std::io::IsTerminal::is_terminal(&std::io::stderr()));
            sim(args)
        }
        Command::Test { config, dir } => {
            rivr::sim::log::init(std::io::IsTerminal::is_terminal(&std::io::stderr()));
            test_scripts(config, dir)
        }
        Command::Demo(args) => {
            init_logging(cli.log_format, "warn");
            rivr::demo::run(args)
        }
    }
}
