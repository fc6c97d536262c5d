//! An INVITE without SDP (late offer): rivr offers in the 200 OK (PCMU,
//! PCMA, telephone-event), the caller answers in the ACK choosing PCMA, and
//! rivr's audio then follows the answer: PCMA to the ACK's address,
//! correlating with the menu prompt.

mod common;

use std::time::Duration;

use common::audio::{align, to_f32, Heard};
use common::caller::{prompt, Caller, SIGNALLING};
use common::server::{Rivr, RivrConfig};
use common::sipp::CallSpec;

#[test]
fn invite_without_sdp_gets_an_offer_and_media_follows_the_ack_answer() {
    require_sipp!();
    let rivr = Rivr::start("late-offer", RivrConfig::default());
    let menu = prompt("main_menu");
    let hold_ms = 6000;
    let mut caller = Caller::answered(
        &rivr,
        "late-offer",
        CallSpec {
            scenario: "uac_late_offer.xml",
            number: "1000",
            hold_ms,
            ..CallSpec::default()
        },
    );
    caller
        .sipp
        .expect_pass(SIGNALLING + Duration::from_millis(hold_ms));
    let packets = caller.peer.packets();
    assert!(!packets.is_empty(), "no RTP after the ACK's answer");
    assert!(
        packets.iter().all(|p| p.payload_type == 8),
        "rivr must send the codec the ACK chose (PCMA, 8)"
    );
    let heard = Heard::decode(&packets, 8);
    let head = &menu.pcm_8k()[..8000 * 4];
    let (lag, ncc) = align(&heard.samples, &to_f32(head));
    println!(
        "[late-offer] {} PCMA packets; main_menu NCC = {ncc:.4} at {} ms",
        packets.len(),
        lag / 8
    );
    assert!(
        ncc >= 0.9,
        "main_menu not heard after a late offer: NCC {ncc:.4}"
    );
}
