//! One caller = a SIPp call plus the test's RTP socket: placed, answered,
//! and (once rivr's media address is known) sending 20 ms RTP like a
//! phone; its audio decoded and compared with prompts.

use std::sync::Arc;
use std::time::Duration;

use rivr::media::prompt::{Prompt, PromptStore};

use super::rtp::RtpPeer;
use super::server::{repo, Rivr};
use super::sipp::{Answer, CallSpec, Sipp};

/// Generous: a debug rivr on a loaded 2-core machine.
pub const SIGNALLING: Duration = Duration::from_secs(60);

/// The payload type the scenarios offer for telephone-event.
pub const EVENT_PT: u8 = 101;

pub struct Caller {
    pub sipp: Sipp,
    pub peer: RtpPeer,
    pub answer: Answer,
}

impl Caller {
    /// Places a call that is answered (200 OK with SDP), then starts the
    /// caller's RTP towards rivr.
    pub fn answered(rivr: &Rivr, label: &str, spec: CallSpec) -> Caller {
        let mut peer = RtpPeer::bind();
        let spec = CallSpec {
            rtp_port: peer.port,
            ..spec
        };
        let mut sipp = Sipp::start(rivr.dir.path(), label, rivr.sip_port, &spec);
        let answer = sipp.wait_answer(SIGNALLING);
        peer.start_sending(answer.rtp, answer.payload_type, EVENT_PT);
        Caller { sipp, peer, answer }
    }
}

/// A prompt exactly as rivr plays it (decoded, resampled to 8 kHz).
pub fn prompt(name: &str) -> Arc<Prompt> {
    PromptStore::new(repo().join("prompts"))
        .get(name)
        .unwrap_or_else(|e| panic!("prompt {name}: {e}"))
}
