//! Opus end to end at the codec level: a real prompt pre-encoded for Opus
//! and decoded the way a caller's phone would, loss recovery with FEC over
//! a lossy run, and the no-allocation-per-frame rule of the media path,
//! checked with a counting allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use rivr::media::g711::Law;
use rivr::media::opus::{
    encode_prompt_opus, packet, OpusConfig, OpusDecoder, OpusEncoder, OpusSampleRate,
    MAX_PACKET_BYTES,
};
use rivr::media::prompt::PromptStore;
use rivr::media::stream_resample::StreamResampler;
use rivr::media::transcode::{AudioCodec, G711Codec, OpusCodec, Transcoder};

/// Counts heap allocations made by the current thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is a const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa * bb).sqrt()
    }
}

/// Best correlation of `test` (delayed) against `reference` over lags.
fn best_correlation(reference: &[i16], test: &[i16], max_lag: usize) -> (usize, f64) {
    (0..=max_lag)
        .map(|lag| {
            let len = reference.len().min(test.len().saturating_sub(lag));
            (lag, correlation(&reference[..len], &test[lag..lag + len]))
        })
        .fold((0, f64::MIN), |best, x| if x.1 > best.1 { x } else { best })
}

fn main_menu() -> Vec<i16> {
    let store = PromptStore::new(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts"));
    store
        .get("main_menu")
        .expect("prompts/main_menu.wav")
        .pcm_8k()
        .to_vec()
}

#[test]
fn a_prompt_pre_encoded_for_opus_correlates_with_its_source() {
    let src = main_menu();
    let packets = encode_prompt_opus(&src).unwrap();
    assert_eq!(packets.len(), src.len().div_ceil(160));
    let bytes: usize = packets.iter().map(Vec::len).sum();

    // A phone decodes at 48 kHz; bring it back to 8 kHz to compare.
    let mut dec = OpusDecoder::new(OpusSampleRate::Hz48000).unwrap();
    let mut down = StreamResampler::new(48_000, 8000).unwrap();
    let mut pcm48 = vec![0i16; dec.max_packet_samples()];
    let mut pcm8 = vec![0i16; down.max_output_for(pcm48.len())];
    let mut heard = Vec::with_capacity(src.len() + 800);
    for p in &packets {
        let n = dec.decode(p, &mut pcm48).unwrap();
        assert_eq!(n, 960, "20 ms per packet at the 48 kHz RTP clock");
        let m = down.process(&pcm48[..n], &mut pcm8).unwrap();
        heard.extend_from_slice(&pcm8[..m]);
    }
    let (lag, r) = best_correlation(&src, &heard, 400);
    println!(
        "main_menu ({:.1} s): {} Opus packets, {:.1} kb/s; decoded at 48 kHz: r {r:.3} at lag {lag} ({:.1} ms)",
        src.len() as f64 / 8000.0,
        packets.len(),
        bytes as f64 * 8.0 / (packets.len() as f64 * 0.02) / 1000.0,
        lag as f64 / 8.0
    );
    assert!(r >= 0.85, "r {r}");
}

/// Plays `packets` losing every index in `lost`, recovering each loss with
/// FEC from the next packet when `use_fec` and it carries FEC, else PLC.
fn play_with_loss(packets: &[Vec<u8>], lost: &[usize], use_fec: bool) -> Vec<i16> {
    let mut dec = OpusDecoder::new(OpusSampleRate::Hz8000).unwrap();
    let mut out = vec![0i16; dec.max_packet_samples()];
    let mut pcm = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        let n = if lost.contains(&i) {
            match packets.get(i + 1) {
                Some(next) if use_fec && packet::has_fec(next) && !lost.contains(&(i + 1)) => {
                    dec.decode_fec(next, &mut out).unwrap()
                }
                _ => dec.conceal(&mut out).unwrap(),
            }
        } else {
            dec.decode(p, &mut out).unwrap()
        };
        pcm.extend_from_slice(&out[..n]);
    }
    pcm
}

#[test]
fn fec_beats_plc_on_a_lossy_prompt() {
    let src = main_menu();
    let packets = encode_prompt_opus(&src).unwrap();
    // 8 % loss, spread deterministically (a 13-step stride over the prompt).
    let lost: Vec<usize> = (5..packets.len() - 1).step_by(13).collect();
    let with_fec = play_with_loss(&packets, &lost, true);
    let plc_only = play_with_loss(&packets, &lost, false);
    let clean = play_with_loss(&packets, &[], false);
    let r_fec = correlation(&clean, &with_fec);
    let r_plc = correlation(&clean, &plc_only);
    let carried = lost
        .iter()
        .filter(|&&i| packet::has_fec(&packets[i + 1]))
        .count();
    println!(
        "{} of {} packets lost ({carried} followed by FEC): r vs clean decode FEC {r_fec:.3}, PLC {r_plc:.3}",
        lost.len(),
        packets.len()
    );
    assert!(carried * 2 > lost.len(), "most prompt packets carry FEC");
    assert!(r_fec > r_plc, "FEC {r_fec} vs PLC {r_plc}");
    let (_, r_src) = best_correlation(&src, &with_fec, 200);
    assert!(r_src >= 0.85, "still {r_src} with the source");
}

#[test]
fn the_per_frame_path_does_not_allocate() {
    let src = main_menu();
    let frames: Vec<&[i16]> = src.chunks_exact(160).take(60).collect();

    let mut pcmu = G711Codec::new(Law::Ulaw);
    let mut t = Transcoder::new(
        Box::new(G711Codec::new(Law::Ulaw)),
        Box::new(OpusCodec::new(OpusConfig::default()).unwrap()),
    )
    .unwrap();
    let mut back = Transcoder::new(
        Box::new(OpusCodec::new(OpusConfig::default()).unwrap()),
        Box::new(G711Codec::new(Law::Alaw)),
    )
    .unwrap();
    let mut enc8 = OpusEncoder::new(OpusConfig::at_rate(8000).unwrap()).unwrap();
    let mut dec8 = OpusDecoder::new(OpusSampleRate::Hz8000).unwrap();
    let mut g711_buf = [0u8; 160];
    let mut opus_buf = [0u8; MAX_PACKET_BYTES];
    let mut pcma_buf = [0u8; 400];
    let mut pcm = [0i16; 960];

    let mut step = |frame: &[i16], i: usize| {
        pcmu.encode(frame, &mut g711_buf).unwrap();
        if i % 10 == 9 {
            t.push_loss().unwrap();
        } else {
            t.push_payload(&g711_buf).unwrap();
        }
        while let Some(n) = t.pop_packet(&mut opus_buf).unwrap() {
            back.push_payload(&opus_buf[..n]).unwrap();
            while back.pop_packet(&mut pcma_buf).unwrap().is_some() {}
        }
        let n = enc8.encode(frame, &mut opus_buf).unwrap();
        dec8.decode(&opus_buf[..n], &mut pcm).unwrap();
        dec8.conceal(&mut pcm).unwrap();
        dec8.decode_fec(&opus_buf[..n], &mut pcm).unwrap();
        let _ = packet::has_fec(&opus_buf[..n]);
    };
    // Warm up (nothing is expected to allocate, but be fair to lazy init).
    for (i, f) in frames.iter().take(10).enumerate() {
        step(f, i);
    }
    let before = allocations();
    for (i, f) in frames.iter().enumerate().skip(10) {
        step(f, i);
    }
    let made = allocations() - before;
    // The counter does count (so a zero above means something).
    let probe = allocations();
    let v = std::hint::black_box(vec![0u8; 64]);
    assert!(allocations() > probe && v.len() == 64);
    println!(
        "heap allocations in 50 frames of PCMU->Opus48->PCMA + Opus8 encode/decode/PLC/FEC: {made}"
    );
    assert_eq!(made, 0);
}
