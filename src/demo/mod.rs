//! `rivr demo`: rivr's whole job in one command, with nothing else
//! running. In one process it starts the SMSC simulator
//! (`crate::sms::sim`), a simulated carrier ([`carrier`]: real SIP and RTP
//! over UDP on 127.0.0.1, answering by the dialed number's last digit),
//! and rivr itself (`server::Server`, the campaign dialer, the HTTP API
//! and dashboard); runs a small campaign with a progress bar; places one
//! inbound call through the main menu (from a second, small `Server`, as
//! `rivr call` does, whose script presses keys); prints the campaign's
//! report, the inbound call's outcome and where the dashboard is; exits.
//! Every port is a free one and every file goes to a temporary folder
//! unless `--dir` names one. See docs/demo.md.
//!
//! It owns nothing the server needs: it only drives public pieces, so what
//! it shows is what `rivr serve` does.

mod caller;
pub mod carrier;
pub mod carrier_io;
mod files;
mod report;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `rivr demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Keep the config, store and CDRs here (default: a temporary folder,
    /// removed at the end).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The prompts folder (default: `prompts/` here, else the one of the
    /// source tree rivr was built from).
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// Contacts in the campaign (their numbers' last digits cycle 0-9).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub contacts: u32,
    /// After the report, keep serving (the dashboard, the API, the menu
    /// on number 1000) until Ctrl-C.
    #[arg(long)]
    pub keep: bool,
}

/// Runs `rivr demo`; exit 0 when the campaign finished with every
/// contact's outcome as its number dictates and the inbound call went
/// through the menu.
pub fn run(args: DemoArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rivr demo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run::demo(args)) {
        Ok(run::Ending::AllAsExpected) => ExitCode::SUCCESS,
        Ok(run::Ending::Unexpected(why)) => {
            eprintln!("rivr demo: {why}");
            ExitCode::FAILURE
        }
        Ok(run::Ending::Interrupted) => {
            eprintln!("rivr demo: interrupted");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("rivr demo: {e}");
            ExitCode::FAILURE
        }
    }
}
