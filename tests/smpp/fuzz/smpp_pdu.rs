//! cargo-fuzz target for every SMPP decoder: framing, PDU bodies, receipts,
//! UDH and text decoding, and a bound session fed the bytes in two chunks.
//! Lives here because `fuzz/` is created by another branch; copy it to
//! `fuzz/fuzz_targets/smpp_pdu.rs` and add a `[[bin]]` entry named
//! `smpp_pdu` to `fuzz/Cargo.toml` (libfuzzer-sys + rivr path dependency).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rivr::sms::pdu::{self, Body, Pdu};
use rivr::sms::session::{Session, SessionConfig};
use rivr::sms::{encoding, receipt};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(n)) = pdu::frame_len(data) {
        if let Some(frame) = data.get(..n) {
            if let Ok(p) = Pdu::decode(frame) {
                if let Body::DeliverSm(sm) | Body::SubmitSm(sm) = &p.body {
                    let _ = receipt::parse(sm);
                    let _ = encoding::split_udh(&sm.short_message);
                    let _ = encoding::decode(sm.data_coding, &sm.short_message);
                }
                let mut out = Vec::new();
                let _ = p.encode(&mut out);
            }
        }
    }
    let _ = Pdu::decode(data);

    let now = std::time::Instant::now();
    let mut s = Session::new(SessionConfig::default(), now);
    s.handle_timeout(now);
    while s.poll_action().is_some() {}
    s.handle_connected(now);
    let mut bind = Vec::new();
    let _ = Pdu::new(1, Body::BindResp(pdu::BindMode::Transceiver, "f".into())).encode(&mut bind);
    s.handle_bytes(&bind, now);
    let (a, b) = data.split_at(data.len() / 2);
    s.handle_bytes(a, now);
    s.handle_bytes(b, now);
    while s.poll_event().is_some() {}
});
