//! An Opus call end to end (issue 3): SIPp offers Opus first (payload type
//! 111, RFC 7587 fmtp, telephone-event at 48 kHz), rivr must answer Opus
//! with its own fmtp, send the menu prompt from its pre-encoded Opus cache
//! with a 48 kHz RTP clock, and the caller — decoding with libopus, as a
//! phone would — must hear audio that correlates with the prompt.
//!
//! Figures are printed; run with `--nocapture` to see them.

mod common;

use std::time::Duration;

use common::audio::{align, to_f32};
use common::caller::{prompt, SIGNALLING};
use common::rtp::RtpPeer;
use common::server::{Rivr, RivrConfig};
use common::sipp::{CallSpec, Sipp};
use rivr::media::opus::{OpusDecoder, OpusSampleRate};

/// The bar for an Opus call hearing the prompt.
const MIN_NCC: f64 = 0.85;
const OPUS_PT: u8 = 111;

#[test]
fn an_opus_caller_gets_opus_and_hears_the_menu_prompt() {
    require_sipp!();
    let rivr = Rivr::start("opus", RivrConfig::default());
    let menu = prompt("main_menu");
    let hold_ms = menu.duration_ms() + 3000;
    let peer = RtpPeer::bind();
    let mut sipp = Sipp::start(
        rivr.dir.path(),
        "opus",
        rivr.sip_port,
        &CallSpec {
            scenario: "uac_opus_hangup.xml",
            number: "1000",
            rtp_port: peer.port,
            hold_ms,
            ..CallSpec::default()
        },
    );
    let answer = sipp.wait_answer(SIGNALLING);
    assert_eq!(
        answer.payload_type, OPUS_PT,
        "Opus was offered first: rivr must answer with it"
    );
    sipp.expect_pass(SIGNALLING + Duration::from_millis(hold_ms));

    // The answer's SDP, as SIPp received it.
    let messages = sipp.messages();
    let ok = messages
        .split("SIP/2.0 200 OK")
        .nth(1)
        .expect("SIPp logged the 200 OK");
    for line in [
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 maxplaybackrate=16000; sprop-maxcapturerate=16000; stereo=0; sprop-stereo=0; useinbandfec=1; ptime=20",
        "a=rtpmap:110 telephone-event/48000",
    ] {
        assert!(ok.contains(line), "the 200 OK lacks {line:?}:\n{ok}");
    }

    let mut packets = peer.packets();
    assert!(!packets.is_empty(), "rivr sent no RTP");
    assert!(
        packets.iter().all(|p| p.payload_type == OPUS_PT),
        "rivr sent a payload type other than the negotiated Opus"
    );
    let first_seq = packets[0].seq;
    packets.sort_by_key(|p| p.seq.wrapping_sub(first_seq));
    let steps: Vec<u32> = packets
        .windows(2)
        .filter(|w| w[1].seq == w[0].seq.wrapping_add(1))
        .map(|w| w[1].ts.wrapping_sub(w[0].ts))
        .collect();
    assert!(
        steps.iter().all(|&s| s == 960),
        "RTP timestamps must advance 960 per 20 ms packet (48 kHz clock): {:?}",
        &steps[..steps.len().min(20)]
    );

    // Decode as the caller's phone would: in sequence order, concealing
    // any packet loopback lost.
    let mut dec = OpusDecoder::new(OpusSampleRate::Hz8000).expect("Opus decoder");
    let mut heard = Vec::with_capacity(packets.len() * 160);
    let mut frame = [0i16; 160];
    let mut lost = 0;
    let mut expected_seq = packets[0].seq;
    for p in &packets {
        while expected_seq != p.seq {
            dec.conceal(&mut frame).expect("Opus PLC");
            heard.extend_from_slice(&frame);
            expected_seq = expected_seq.wrapping_add(1);
            lost += 1;
        }
        let n = dec
            .decode(&p.payload, &mut frame)
            .expect("rivr's Opus decodes");
        assert_eq!(n, 160, "a 20 ms packet");
        heard.extend_from_slice(&frame);
        expected_seq = expected_seq.wrapping_add(1);
    }
    let (lag, ncc) = align(&to_f32(&heard), &to_f32(menu.pcm_8k()));
    let sizes: Vec<usize> = packets.iter().map(|p| p.payload.len()).collect();
    let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
    println!(
        "[opus] {} packets ({lost} missing), mean payload {mean:.1} bytes \
         ({:.1} kb/s), main_menu starts {} ms in, NCC = {ncc:.4}",
        packets.len(),
        mean * 8.0 * 50.0 / 1000.0,
        lag / 8
    );
    assert!(
        ncc >= MIN_NCC,
        "the decoded Opus audio does not correlate with main_menu: NCC {ncc:.4} < {MIN_NCC}"
    );
    let cdr = rivr.wait_cdr(&answer.call_id, SIGNALLING);
    assert_eq!(cdr["answered"], true, "{cdr}");
}
