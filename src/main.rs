//! The `rivr` command line. Parsing only; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "rivr", version, about = "IVR and SIP media server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        #[arg(long, default_value = "rivr.toml")]
        config: PathBuf,
    },
    /// Compile call-flow scripts and report errors with file:line:col.
    Check {
        #[arg(required = true)]
        scripts: Vec<PathBuf>,
    },
    /// Media tools for debugging audio from a carrier.
    Media {
        #[command(subcommand)]
        cmd: MediaCommand,
    },
}

#[derive(Subcommand)]
enum MediaCommand {
    /// Print the DTMF keys found in a recording, one per line: the onset in
    /// seconds, a space, the key.
    Dtmf { file: PathBuf },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RIVR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            init_logging();
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
        Command::Check { scripts } => {
            let engine = rivr::script::engine::build_engine(&rivr::config::ScriptConfig::default());
            let mut failed = false;
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
    }
}
