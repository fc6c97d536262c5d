use super::test_signal::{best_correlation, rms, speech_like};
use super::*;
use crate::media::opus::OpusSampleRate;

fn g711(law: Law) -> Box<dyn AudioCodec + Send> {
    Box::new(G711Codec::new(law))
}

fn opus(hz: u32) -> Box<dyn AudioCodec + Send> {
    Box::new(OpusCodec::new(OpusConfig::at_rate(hz).unwrap()).unwrap())
}

/// Encodes `pcm` with `codec` in 20 ms payloads.
fn payloads(mut codec: Box<dyn AudioCodec + Send>, pcm: &[i16]) -> Vec<Vec<u8>> {
    let mut buf = [0u8; 4000];
    pcm.chunks_exact(codec.frame_samples())
        .map(|f| {
            let n = codec.encode(f, &mut buf).unwrap();
            buf[..n].to_vec()
        })
        .collect()
}

fn decode(mut codec: Box<dyn AudioCodec + Send>, payloads: &[Vec<u8>]) -> Vec<i16> {
    let mut out = vec![0i16; MAX_DECODE_SAMPLES];
    let mut pcm = Vec::new();
    for p in payloads {
        let n = codec.decode(p, &mut out).unwrap();
        pcm.extend_from_slice(&out[..n]);
    }
    pcm
}

fn transcode(t: &mut Transcoder, input: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut buf = [0u8; 4000];
    let mut out = Vec::new();
    for p in input {
        t.push_payload(p).unwrap();
        while let Some(n) = t.pop_packet(&mut buf).unwrap() {
            out.push(buf[..n].to_vec());
        }
    }
    out
}

/// PCMU -> Opus (PCM at `opus_hz`) -> PCMA, decoded and compared with the
/// source; returns the correlation.
fn pcmu_opus_pcma(opus_hz: u32) -> f64 {
    let src = speech_like(8000, 4.0);
    let pcmu = payloads(g711(Law::Ulaw), &src);
    let mut a = Transcoder::new(g711(Law::Ulaw), opus(opus_hz)).unwrap();
    let opus_packets = transcode(&mut a, &pcmu);
    let mut b = Transcoder::new(opus(opus_hz), g711(Law::Alaw)).unwrap();
    let pcma = transcode(&mut b, &opus_packets);
    let out = decode(g711(Law::Alaw), &pcma);
    let (lag, r) = best_correlation(&src, &out, 800);
    println!(
        "PCMU->Opus@{opus_hz}->PCMA: {} -> {} -> {} packets, r {r:.3} at lag {lag} (resampler delay {} + {})",
        pcmu.len(),
        opus_packets.len(),
        pcma.len(),
        a.delay_samples(),
        b.delay_samples()
    );
    r
}

#[test]
fn pcmu_to_opus_to_pcma_at_8k_needs_no_resampler() {
    let r = pcmu_opus_pcma(8000);
    assert!(r >= 0.85, "r {r}");
    let t = Transcoder::new(g711(Law::Ulaw), opus(8000)).unwrap();
    assert_eq!(t.delay_samples(), 0);
}

#[test]
fn pcmu_to_opus_to_pcma_through_48k() {
    let r = pcmu_opus_pcma(48000);
    assert!(r >= 0.85, "r {r}");
}

#[test]
fn pcmu_to_opus_to_pcma_through_16k() {
    let r = pcmu_opus_pcma(16000);
    assert!(r >= 0.85, "r {r}");
}

#[test]
fn opus_to_opus_at_48k() {
    let src = speech_like(48000, 3.0);
    let input = payloads(opus(48000), &src);
    let low = OpusConfig {
        bitrate: Some(16_000),
        complexity: 3,
        ..OpusConfig::default()
    };
    let mut t = Transcoder::new(opus(48000), Box::new(OpusCodec::new(low).unwrap())).unwrap();
    let output = transcode(&mut t, &input);
    assert_eq!(output.len(), input.len());
    let out = decode(opus(48000), &output);
    let (lag, r) = best_correlation(&src, &out, 2000);
    println!("Opus@48k -> Opus@48k (16 kb/s): r {r:.3} at lag {lag}");
    assert!(r >= 0.85, "r {r}");
}

#[test]
fn g711_between_laws_is_near_transparent() {
    let src = speech_like(8000, 1.0);
    let pcmu = payloads(g711(Law::Ulaw), &src);
    let mut t = Transcoder::new(g711(Law::Ulaw), g711(Law::Alaw)).unwrap();
    let pcma = transcode(&mut t, &pcmu);
    let out = decode(g711(Law::Alaw), &pcma);
    let (lag, r) = best_correlation(&src, &out, 200);
    // Two concealers in line, each 3.75 ms (30 samples) late.
    assert_eq!(lag, 2 * crate::media::plc::Plc::delay_samples());
    assert!(r > 0.999, "r {r}");
}

#[test]
fn packet_durations_need_not_match() {
    // One 60 ms PCMU payload becomes three 20 ms Opus packets; 10 ms
    // payloads pair up.
    let src = speech_like(8000, 0.12);
    let mut t = Transcoder::new(g711(Law::Ulaw), opus(48000)).unwrap();
    let mut enc = G711Codec::new(Law::Ulaw);
    let mut buf = [0u8; 4000];
    let n = enc.encode(&src[..480], &mut buf).unwrap();
    t.push_payload(&buf[..n]).unwrap();
    let mut count = 0;
    while t.pop_packet(&mut buf).unwrap().is_some() {
        count += 1;
    }
    // The resampler holds nothing back at frame boundaries.
    assert_eq!(count, 3);
    for half in src[480..800].chunks(80) {
        let n = enc.encode(half, &mut buf).unwrap();
        t.push_payload(&buf[..n]).unwrap();
        while t.pop_packet(&mut buf).unwrap().is_some() {
            count += 1;
        }
    }
    assert_eq!(count, 5);
}

#[test]
fn losses_are_concealed_through_the_transcoder() {
    let src = speech_like(8000, 1.0);
    let opus_packets = payloads(opus(8000), &src);
    let mut t = Transcoder::new(opus(8000), g711(Law::Ulaw)).unwrap();
    let mut buf = [0u8; 4000];
    let mut frames = Vec::new();
    for (i, p) in opus_packets.iter().enumerate() {
        if i == 20 {
            t.push_loss().unwrap();
        } else {
            t.push_payload(p).unwrap();
        }
        while let Some(n) = t.pop_packet(&mut buf).unwrap() {
            assert_eq!(n, 160);
            frames.push(buf[..n].to_vec());
        }
    }
    assert_eq!(
        frames.len(),
        opus_packets.len(),
        "every gap filled, nothing extra"
    );
    let out = decode(g711(Law::Ulaw), &frames);
    assert!(
        rms(&out[20 * 160..21 * 160]) > 100.0,
        "the lost frame is not silence"
    );
}

#[test]
fn fec_through_the_transcoder_beats_plc() {
    let src = speech_like(8000, 3.0);
    let config = OpusConfig {
        packet_loss_pct: 20,
        ..OpusConfig::at_rate(8000).unwrap()
    };
    let opus_packets = payloads(Box::new(OpusCodec::new(config).unwrap()), &src);
    let lost: Vec<usize> = (8..opus_packets.len() - 1).step_by(9).collect();
    let run = |use_fec: bool| {
        let mut t = Transcoder::new(opus(8000), g711(Law::Ulaw)).unwrap();
        let mut buf = [0u8; 4000];
        let mut frames = Vec::new();
        for (i, p) in opus_packets.iter().enumerate() {
            if lost.contains(&i) {
                if use_fec {
                    t.push_loss_before(&opus_packets[i + 1]).unwrap();
                } else {
                    t.push_loss().unwrap();
                }
            } else {
                t.push_payload(p).unwrap();
            }
            while let Some(n) = t.pop_packet(&mut buf).unwrap() {
                frames.push(buf[..n].to_vec());
            }
        }
        decode(g711(Law::Ulaw), &frames)
    };
    let (fec, plc) = (run(true), run(false));
    let (_, r_fec) = best_correlation(&src, &fec, 200);
    let (_, r_plc) = best_correlation(&src, &plc, 200);
    println!(
        "Opus->PCMU with {} of {} packets lost: r FEC {r_fec:.3}, PLC {r_plc:.3}",
        lost.len(),
        opus_packets.len()
    );
    assert!(r_fec > r_plc, "FEC {r_fec} vs PLC {r_plc}");
    // G.711 has no FEC: recovering from the next payload is concealment.
    let mut a = G711Codec::new(Law::Ulaw);
    let mut b = G711Codec::new(Law::Ulaw);
    let (mut x, mut y) = ([0i16; 160], [0i16; 160]);
    for f in src[..1600].chunks_exact(160) {
        let mut p = [0u8; 160];
        a.encode(f, &mut p).unwrap();
        a.decode(&p, &mut x).unwrap();
        b.decode(&p, &mut y).unwrap();
    }
    a.recover_from_next(&[0xFF; 160], &mut x).unwrap();
    b.conceal(&mut y).unwrap();
    assert_eq!(x, y);
}

#[test]
fn g711_concealment_fades_to_silence_after_60_ms() {
    let mut c = G711Codec::new(Law::Ulaw);
    let src = speech_like(8000, 0.5);
    let mut out = [0i16; 160];
    let mut payload = [0u8; 160];
    for f in src[..1600].chunks_exact(160) {
        c.encode(f, &mut payload).unwrap();
        c.decode(&payload, &mut out).unwrap();
    }
    let mut levels = Vec::new();
    for _ in 0..5 {
        assert_eq!(c.conceal(&mut out).unwrap(), 160);
        levels.push(rms(&out));
    }
    println!("G.711 PLC frame RMS: {levels:.0?}");
    assert!(levels[0] > 100.0);
    // Silent from 60 ms of concealment; the output runs 3.75 ms behind, so
    // the fourth frame still holds the last 30 faded samples.
    assert!(levels[3] < levels[0] / 10.0);
    assert_eq!(levels[4], 0.0, "silent after 60 ms");
}

#[test]
fn codec_errors_are_typed() {
    let mut c = G711Codec::new(Law::Alaw);
    let mut small = [0i16; 10];
    assert!(matches!(
        c.decode(&[0u8; 11], &mut small),
        Err(CodecError::OutputTooSmall { need: 11, have: 10 })
    ));
    assert!(matches!(
        c.decode(&[], &mut small),
        Err(CodecError::EmptyPayload)
    ));
    assert!(matches!(
        c.encode(&[0i16; 11], &mut [0u8; 10]),
        Err(CodecError::OutputTooSmall { .. })
    ));
    let mut o = OpusCodec::new(OpusConfig::at_rate(8000).unwrap()).unwrap();
    assert!(matches!(
        o.decode(&[], &mut small),
        Err(CodecError::Opus(_))
    ));
    assert_eq!(o.sample_rate(), 8000);
    assert_eq!(o.frame_samples(), 160);
    assert_eq!(o.decoder_mut().sample_rate(), OpusSampleRate::Hz8000);
}

#[test]
fn a_backlog_is_an_error_not_growth() {
    let mut t = Transcoder::new(g711(Law::Ulaw), opus(48000)).unwrap();
    let payload = [0xFFu8; 160];
    let mut pushed = 0;
    let err = loop {
        match t.push_payload(&payload) {
            Ok(()) => pushed += 1,
            Err(e) => break e,
        }
        assert!(pushed < 1000, "the queue never filled");
    };
    assert!(matches!(err, CodecError::Backlog(_)));
    // Draining it makes room again.
    let mut buf = [0u8; 4000];
    while t.pop_packet(&mut buf).unwrap().is_some() {}
    t.push_payload(&payload).unwrap();
}

proptest::proptest! {
    #[test]
    fn any_payloads_through_any_pair_never_panic(
        input in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..400), 0..20),
        from in 0usize..4,
        to in 0usize..4,
    ) {
        let make = |i: usize| -> Box<dyn AudioCodec + Send> {
            match i {
                0 => g711(Law::Ulaw),
                1 => g711(Law::Alaw),
                2 => opus(8000),
                _ => opus(48000),
            }
        };
        let mut t = Transcoder::new(make(from), make(to)).unwrap();
        let mut buf = [0u8; 4000];
        for p in &input {
            if p.first() == Some(&0) {
                let _ = t.push_loss();
            } else {
                let _ = t.push_payload(p);
            }
            while let Ok(Some(n)) = t.pop_packet(&mut buf) {
                proptest::prop_assert!(n <= buf.len());
            }
        }
    }
}
