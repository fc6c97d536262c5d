//! The demo's inbound call: a second, small `Server` (the one `rivr call`
//! runs) on its own free port places a real SIP call to rivr's menu
//! number, `sip:1000@<rivr>`, and runs `scripts/caller.rhai` once rivr
//! answers: it listens, presses keys as RFC 4733 events, and listens on
//! until rivr's menu says goodbye and hangs up.

use std::net::SocketAddr;
use std::path::Path;

use tokio::sync::mpsc;

use crate::call::registry::{CdrRecord, OriginateRequest};
use crate::config::Config;
use crate::server::{Server, StartOptions};

/// A placed call and the server that carries it.
pub struct Caller {
    server: Server,
    records: mpsc::UnboundedReceiver<CdrRecord>,
    call_id: String,
}

impl Caller {
    /// Starts the caller's server and sends the INVITE.
    pub async fn place(config: &Path, rivr: SocketAddr, script: &Path) -> Result<Caller, String> {
        let config = Config::load(config).map_err(|e| e.to_string())?;
        let (tap, records) = mpsc::unbounded_channel();
        let mut server = Server::start(
            config,
            StartOptions {
                cdr_tap: Some(tap),
                ..StartOptions::default()
            },
        )
        .await
        .map_err(|e| format!("the inbound caller: {e}"))?;
        let call = server
            .originate(OriginateRequest {
                amd: false,
                target: format!("sip:1000@{rivr}"),
                trunk: None,
                caller_id: Some("15550001234".into()),
                ring_timeout: Some(std::time::Duration::from_secs(10)),
                script: Some(script.to_path_buf()),
                vars: Vec::new(),
                tag: None,
                pace: None,
            })
            .await;
        let call_id = server.call_id_text(call);
        Ok(Caller {
            server,
            records,
            call_id,
        })
    }

    /// Serves the call to its end; its first leg's CDR (`None` if the
    /// server stopped without one).
    pub async fn finish(mut self) -> Option<CdrRecord> {
        let records = &mut self.records;
        let id = self.call_id.clone();
        let record = self
            .server
            .run_until(async move {
                while let Some(r) = records.recv().await {
                    if r.leg == 0 && r.call_id == id {
                        return Some(r);
                    }
                }
                None
            })
            .await;
        self.server.shutdown().await;
        record
    }
}
