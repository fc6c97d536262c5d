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
    }
}
