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
    /// Send an SMS or show its state.
    Sms {
        #[command(subcommand)]
        command: rivr::sms::cli::SmsCommand,
    },
    /// Run an SMSC simulator (SMPP 3.4) for tests and demos.
    SmscSim(rivr::sms::sim::SimArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            eprintln!("serve {config:?}: not yet");
            ExitCode::FAILURE
        }
        Command::Check { scripts } => {
            eprintln!("check {scripts:?}: not yet");
            ExitCode::FAILURE
        }
        Command::Sms { command } => rivr::sms::cli::run(command),
        Command::SmscSim(args) => rivr::sms::sim::run(args),
    }
}
