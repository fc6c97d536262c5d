//! Fuzz target for `sip::sdp`: parse, answer and accept-answer never panic,
//! and rivr's own answer always parses again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rivr::codec::Codec;
use rivr::sip::sdp;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(sd) = sdp::parse(text) else {
        return;
    };
    let local = sdp::LocalMedia {
        ip: "192.0.2.1".parse().unwrap(),
        rtp_port: 40000,
        codecs: Codec::ALL.to_vec(),
        telephone_event: true,
        session_id: 1,
        session_version: 1,
    };
    if let Ok((_, answer)) = sdp::answer(&sd, &local) {
        sdp::parse(&answer).unwrap();
    }
    let _ = sdp::accept_answer(&sd, &local);
});
