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
