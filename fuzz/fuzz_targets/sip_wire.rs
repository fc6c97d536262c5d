//! Fuzz target for `sip::wire` (and `sip::validate` on what passes): no input
//! may panic, and a message that parses must have working typed accessors.
//! Seed with `tests/conformance/rfc4475/*.dat`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rivr::sip::{validate, wire};
use rsip::headers::{ToTypedHeader, UntypedHeader};
use rsip::message::HeadersExt;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(n)) = wire::frame_stream(data) {
        assert!(n <= data.len());
    }
    match wire::parse_message(data) {
        Err(err) => {
            if let Some(resp) = wire::error_response(data, &err) {
                assert_eq!(wire::frame_stream(&resp), Ok(Some(resp.len())));
            }
        }
        Ok(msg) => {
            msg.via_header().unwrap().typed().unwrap();
            msg.call_id_header().unwrap();
            msg.from_header().unwrap().typed().unwrap();
            msg.from_header().unwrap().tag().unwrap();
            msg.to_header().unwrap().typed().unwrap();
            msg.to_header().unwrap().tag().unwrap();
            msg.cseq_header().unwrap().typed().unwrap();
            if let Some(rr) = msg.record_route_header() {
                rr.typed().unwrap();
            }
            if let Some(r) = msg.route_header() {
                r.typed().unwrap();
            }
            for c in msg.contact_headers() {
                if !c.value().trim().starts_with('*') {
                    c.typed().unwrap();
                }
            }
            if let rsip::SipMessage::Request(req) = &msg {
                let _ = validate::check_request(req);
            }
        }
    }
});
