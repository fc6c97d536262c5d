use super::packet::{self, Mode};
use super::*;
use crate::media::transcode::test_signal::{best_correlation, correlation, speech_like};

/// Encodes `pcm` frame by frame; returns the packets.
fn encode_all(config: OpusConfig, pcm: &[i16]) -> Vec<Vec<u8>> {
    let mut enc = OpusEncoder::new(config).unwrap();
    let frame = enc.frame_samples();
    let mut buf = [0u8; MAX_PACKET_BYTES];
    pcm.chunks_exact(frame)
        .map(|f| {
            let n = enc.encode(f, &mut buf).unwrap();
            buf[..n].to_vec()
        })
        .collect()
}

fn decode_all(rate: OpusSampleRate, packets: &[Vec<u8>]) -> Vec<i16> {
    let mut dec = OpusDecoder::new(rate).unwrap();
    let mut out = vec![0i16; dec.max_packet_samples()];
    let mut pcm = Vec::new();
    for p in packets {
        let n = dec.decode(p, &mut out).unwrap();
        pcm.extend_from_slice(&out[..n]);
    }
    pcm
}

#[test]
fn round_trip_correlates_at_every_native_rate() {
    for hz in [8000, 16000, 48000] {
        let config = OpusConfig::at_rate(hz).unwrap();
        let src = speech_like(hz, 3.0);
        let packets = encode_all(config, &src);
        let out = decode_all(config.sample_rate, &packets);
        assert_eq!(out.len(), src.len());
        let lookahead = OpusEncoder::new(config).unwrap().lookahead().unwrap();
        let (lag, r) = best_correlation(&src, &out, hz as usize / 50);
        let bytes: usize = packets.iter().map(Vec::len).sum();
        println!(
            "opus {hz} Hz: r {r:.3} at lag {lag} (encoder lookahead {lookahead}), {:.1} kb/s",
            bytes as f64 * 8.0 / 3.0 / 1000.0
        );
        assert!(r >= 0.85, "{hz} Hz: r {r}");
        // The delay is the encoder's look-ahead (to a tenth of a millisecond:
        // the codec's phase response blurs the correlation peak slightly).
        assert!(lag.abs_diff(lookahead) <= hz as usize / 10_000, "lag {lag}");
        for p in &packets {
            assert_eq!(packet::duration_samples(p, 48_000), Some(960));
        }
    }
}

#[test]
fn encoder_checks_its_inputs() {
    let mut enc = OpusEncoder::new(OpusConfig::at_rate(8000).unwrap()).unwrap();
    let mut out = [0u8; 400];
    assert!(matches!(
        enc.encode(&[0; 159], &mut out),
        Err(OpusError::FrameLength {
            expected: 160,
            got: 159
        })
    ));
    assert!(matches!(
        enc.encode(&[0; 160], &mut []),
        Err(OpusError::OutputTooSmall { .. })
    ));
    assert!(matches!(
        OpusConfig::at_rate(44100),
        Err(OpusError::BadRate(44100))
    ));
    let bad = OpusConfig {
        complexity: 11,
        ..OpusConfig::default()
    };
    assert!(matches!(
        OpusEncoder::new(bad),
        Err(OpusError::BadSetting(_))
    ));
    let other_rate = OpusConfig::at_rate(16000).unwrap();
    assert!(enc.reconfigure(other_rate).is_err());
}

#[test]
fn decoder_reports_empty_and_short_buffers() {
    let mut dec = OpusDecoder::new(OpusSampleRate::Hz48000).unwrap();
    let mut out = vec![0i16; 960];
    assert!(matches!(
        dec.decode(&[], &mut out),
        Err(OpusError::EmptyPayload)
    ));
    assert!(matches!(
        dec.decode_fec(&[], &mut out),
        Err(OpusError::EmptyPayload)
    ));
    let packets = encode_all(OpusConfig::default(), &speech_like(48000, 0.1));
    let mut short = vec![0i16; 480];
    assert!(dec.decode(&packets[0], &mut short).is_err());
    assert!(matches!(
        dec.conceal(&mut []),
        Err(OpusError::OutputTooSmall { .. })
    ));
}

#[test]
fn conceal_fills_one_frame_and_fades() {
    let config = OpusConfig::at_rate(8000).unwrap();
    let packets = encode_all(config, &speech_like(8000, 1.0));
    let mut dec = OpusDecoder::new(config.sample_rate).unwrap();
    let mut out = vec![0i16; dec.max_packet_samples()];
    for p in &packets[..20] {
        dec.decode(p, &mut out).unwrap();
    }
    let mut energy = Vec::new();
    for _ in 0..10 {
        let n = dec.conceal(&mut out).unwrap();
        assert_eq!(n, 160);
        energy.push(crate::media::transcode::test_signal::rms(&out[..n]));
    }
    println!("opus PLC frame RMS over 200 ms of loss: {energy:.0?}");
    assert!(energy[0] > 0.0, "PLC continues the signal at first");
    assert!(energy[9] < energy[0] / 4.0, "and fades during a long loss");
}

/// Returns (FEC correlation, PLC correlation) for losing packet `lost`,
/// each measured against the cleanly decoded frame.
fn fec_vs_plc(packets: &[Vec<u8>], rate: OpusSampleRate, lost: usize) -> (f64, f64) {
    let frame = rate.frame_samples();
    let clean = decode_all(rate, packets);
    let reference = &clean[lost * frame..(lost + 1) * frame];
    let mut recovered = [vec![0i16; frame], vec![0i16; frame]];
    for (use_fec, dest) in [true, false].into_iter().zip(recovered.iter_mut()) {
        let mut dec = OpusDecoder::new(rate).unwrap();
        let mut out = vec![0i16; dec.max_packet_samples()];
        for p in &packets[..lost] {
            dec.decode(p, &mut out).unwrap();
        }
        let n = if use_fec {
            dec.decode_fec(&packets[lost + 1], &mut out).unwrap()
        } else {
            dec.conceal(&mut out).unwrap()
        };
        assert_eq!(n, frame);
        dest.copy_from_slice(&out[..n]);
    }
    (
        correlation(reference, &recovered[0]),
        correlation(reference, &recovered[1]),
    )
}

#[test]
fn fec_recovers_a_lost_packet_better_than_plc() {
    let config = OpusConfig {
        packet_loss_pct: 20,
        ..OpusConfig::at_rate(16000).unwrap()
    };
    let src = speech_like(16000, 3.0);
    let packets = encode_all(config, &src);
    let (mut fec_sum, mut plc_sum, mut trials) = (0.0, 0.0, 0);
    // Lose packets in voiced stretches (the signal pauses 1.3-1.5 s).
    for lost in (10..60).step_by(7) {
        if !packet::has_fec(&packets[lost + 1]) {
            continue;
        }
        let (fec, plc) = fec_vs_plc(&packets, config.sample_rate, lost);
        fec_sum += fec;
        plc_sum += plc;
        trials += 1;
    }
    assert!(trials >= 5, "too few packets carried FEC: {trials}");
    let (fec, plc) = (fec_sum / trials as f64, plc_sum / trials as f64);
    println!("lost packet vs clean decode, mean of {trials}: FEC r {fec:.3}, PLC r {plc:.3}");
    assert!(fec > plc + 0.1, "FEC {fec:.3} vs PLC {plc:.3}");
    assert!(fec > 0.8, "FEC {fec:.3}");
}

#[test]
fn has_fec_follows_the_encoder_setting() {
    let src = speech_like(48000, 2.0);
    let with = encode_all(OpusConfig::default(), &src);
    let without = encode_all(
        OpusConfig {
            inband_fec: false,
            ..OpusConfig::default()
        },
        &src,
    );
    let count = |ps: &[Vec<u8>]| ps.iter().filter(|p| packet::has_fec(p)).count();
    println!(
        "packets with LBRR: {} of {} with FEC on, {} with FEC off",
        count(&with),
        with.len(),
        count(&without)
    );
    assert_eq!(count(&without), 0);
    assert!(count(&with) > with.len() / 2);
    assert!(
        !packet::has_fec(&with[0]),
        "nothing precedes the first packet"
    );
    for p in &with {
        assert_ne!(
            packet::toc(p).unwrap().mode,
            Mode::Celt,
            "voice at 24 kb/s is SILK/hybrid"
        );
    }
}

#[test]
fn max_playback_rate_limits_the_coded_band() {
    // RFC 6716 Table 2: configs 0-3 are SILK narrowband.
    let config = OpusParams {
        max_playback_rate: 8000,
        ..OpusParams::default()
    }
    .encoder_config(OpusConfig::default());
    let packets = encode_all(config, &speech_like(48000, 1.0));
    for p in &packets {
        assert!(
            p[0] >> 3 <= 3,
            "TOC config {} is wider than narrowband",
            p[0] >> 3
        );
    }
    let wide = encode_all(OpusConfig::default(), &speech_like(48000, 1.0));
    assert!(
        wide.iter().any(|p| p[0] >> 3 > 3),
        "without the limit the band is wider"
    );
}

#[test]
fn dtx_sends_tiny_packets_in_silence() {
    let config = OpusConfig {
        dtx: true,
        ..OpusConfig::at_rate(8000).unwrap()
    };
    let packets = encode_all(config, &vec![0i16; 8000]);
    let tiny = packets.iter().filter(|p| packet::is_dtx(p)).count();
    println!(
        "DTX: {tiny} of {} silent packets are DTX frames",
        packets.len()
    );
    assert!(tiny > packets.len() / 2);
    let no_dtx = encode_all(OpusConfig::at_rate(8000).unwrap(), &vec![0i16; 8000]);
    assert_eq!(no_dtx.iter().filter(|p| packet::is_dtx(p)).count(), 0);
    // A DTX frame decodes (to comfort noise / silence) without error.
    let out = decode_all(OpusSampleRate::Hz8000, &packets);
    assert_eq!(out.len(), 8000);
}

#[test]
fn framing_of_hand_built_packets() {
    // TOC config 1 (SILK NB 20 ms), mono.
    let toc0 = 1 << 3;
    assert_eq!(
        packet::first_frame(&[toc0, 0xAA, 0xBB]),
        Some(&[0xAA, 0xBB][..])
    );
    assert_eq!(
        packet::first_frame(&[toc0 | 1, 1, 2, 3, 4]),
        Some(&[1, 2][..])
    );
    assert_eq!(
        packet::first_frame(&[toc0 | 1, 1, 2, 3]),
        None,
        "odd code-1 body"
    );
    assert_eq!(
        packet::first_frame(&[toc0 | 2, 2, 9, 9, 7]),
        Some(&[9, 9][..])
    );
    assert_eq!(
        packet::first_frame(&[toc0 | 2, 5, 9]),
        None,
        "length past the end"
    );
    // Code 3, CBR, 2 frames, 1 byte of padding.
    assert_eq!(
        packet::first_frame(&[toc0 | 3, 0x42, 1, 5, 6, 7, 8, 0]),
        Some(&[5, 6][..])
    );
    // Code 3, VBR, 3 frames of lengths 1, 2 and the rest.
    assert_eq!(
        packet::first_frame(&[toc0 | 3, 0x83, 1, 2, 0xC0, 3, 4, 5]),
        Some(&[0xC0][..])
    );
    assert_eq!(packet::first_frame(&[toc0 | 3, 0x00]), None, "zero frames");
    assert_eq!(packet::first_frame(&[]), None);

    // LBRR bit: mono 20 ms -> VAD in bit 7, LBRR in bit 6.
    assert!(packet::has_fec(&[toc0, 0b0100_0000]));
    assert!(!packet::has_fec(&[toc0, 0b1011_1111]));
    // 60 ms SILK (config 3): three VAD bits then LBRR in bit 4.
    assert!(packet::has_fec(&[3 << 3, 0b0001_0000]));
    assert!(!packet::has_fec(&[3 << 3, 0b1110_1111]));
    // Stereo 20 ms: the side channel's LBRR is bit 4.
    assert!(packet::has_fec(&[toc0 | 0x04, 0b0001_0000]));
    // CELT (config 31) never carries LBRR; an empty frame carries nothing.
    assert!(!packet::has_fec(&[31 << 3, 0xFF]));
    assert!(!packet::has_fec(&[toc0]));
    assert_eq!(packet::duration_samples(&[toc0], 8000), Some(160));
    assert_eq!(
        packet::duration_samples(&[3 << 3 | 3, 2], 48000),
        Some(5760)
    );
    assert_eq!(
        packet::duration_samples(&[3 << 3 | 3, 3], 48000),
        None,
        "over 120 ms"
    );
}

#[test]
fn rtp_clock_is_48k_whatever_the_pcm_rate() {
    assert_eq!(rtp_timestamp_step(160, 8000), 960);
    assert_eq!(rtp_timestamp_step(320, 16000), 960);
    assert_eq!(rtp_timestamp_step(960, 48000), 960);
    assert_eq!(rtp_timestamp_step(160, 0), 0);
    assert_eq!(RTPMAP_ENCODING, "opus/48000/2");
}

#[test]
fn parse_fmtp_reads_the_rfc_7587_example() {
    // RFC 7587 §7 example (the fmtp of its offer).
    let p = parse_fmtp(
        "maxplaybackrate=16000; sprop-maxcapturerate=16000; maxaveragebitrate=20000; stereo=1; useinbandfec=1; usedtx=0",
    );
    assert_eq!(p.max_playback_rate, 16000);
    assert_eq!(p.sprop_max_capture_rate, 16000);
    assert_eq!(p.max_average_bitrate, Some(20000));
    assert!(p.stereo && p.use_inband_fec && !p.use_dtx && !p.cbr);
    assert_eq!(parse_fmtp(""), OpusParams::default());
    // A whole attribute value with the payload type, odd spacing and case.
    let p = parse_fmtp("111 minptime=10;useinbandfec=1; MaxPlaybackRate = 8000 ;ptime=40;cbr=1");
    assert!(p.use_inband_fec && p.cbr);
    assert_eq!((p.max_playback_rate, p.ptime), (8000, Some(40)));
    // Out of range or malformed values are ignored or clamped.
    let p = parse_fmtp("maxplaybackrate=96000;maxaveragebitrate=1;ptime=x;stereo=yes;=;;");
    assert_eq!(p.max_playback_rate, 48000);
    assert_eq!(p.max_average_bitrate, None);
    assert_eq!(p.ptime, None);
    assert!(!p.stereo);
}

#[test]
fn fmtp_answer_honours_the_offer() {
    assert_eq!(
        fmtp_answer(None),
        "maxplaybackrate=16000; sprop-maxcapturerate=16000; stereo=0; sprop-stereo=0; useinbandfec=1; ptime=20"
    );
    // A narrowband offerer: it plays and captures only 8 kHz.
    assert_eq!(
        fmtp_answer(Some("maxplaybackrate=8000;sprop-maxcapturerate=8000;maxptime=10")),
        "maxplaybackrate=8000; sprop-maxcapturerate=8000; stereo=0; sprop-stereo=0; useinbandfec=1; ptime=20"
    );
    // A fullband stereo offerer still gets mono and rivr's own limits.
    let answer = fmtp_answer(Some("stereo=1; sprop-stereo=1; maxplaybackrate=48000"));
    let p = parse_fmtp(&answer);
    assert!(!p.stereo && !p.sprop_stereo && p.use_inband_fec);
    assert_eq!(p.max_playback_rate, LOCAL_MAX_PLAYBACK_HZ);
    assert_eq!(p.sprop_max_capture_rate, LOCAL_MAX_CAPTURE_HZ);
}

#[test]
fn offer_params_shape_the_encoder() {
    let base = OpusConfig::default();
    let p = parse_fmtp(
        "maxplaybackrate=12000; maxaveragebitrate=16000; useinbandfec=0; usedtx=1; cbr=1",
    );
    let c = p.encoder_config(base);
    assert_eq!(c.max_playback_hz, 12000);
    assert_eq!(c.bitrate, Some(16000));
    assert!(!c.inband_fec && c.dtx && c.cbr);
    assert_eq!(c.sample_rate, base.sample_rate);
    // The encoder accepts every configuration the parser can produce.
    OpusEncoder::new(c).unwrap();
}

#[test]
fn prompt_packets_decode_to_the_prompt() {
    let src = speech_like(8000, 2.03);
    let packets = encode_prompt_opus(&src).unwrap();
    assert_eq!(packets.len(), src.len().div_ceil(160));
    let out = decode_all(OpusSampleRate::Hz8000, &packets);
    let (lag, r) = best_correlation(&src, &out, 160);
    let bytes: usize = packets.iter().map(Vec::len).sum();
    println!(
        "prompt at 8 kHz: r {r:.3} at lag {lag}, {bytes} bytes for {} frames",
        packets.len()
    );
    assert!(r >= 0.85, "r {r}");
    // A 48 kHz decoder (the usual far end) gets 960 samples per packet.
    let wide = decode_all(OpusSampleRate::Hz48000, &packets);
    assert_eq!(wide.len(), packets.len() * 960);
    assert!(encode_prompt_opus(&[]).unwrap().is_empty());
}

/// 10 ms frames: one encoder may switch between 20 and 10 ms frames from
/// one call to the next; each 10 ms packet says so in its TOC (one frame,
/// code 0) and decodes to 80 samples at 8 kHz; the stream decodes back to
/// the source.
#[test]
fn ten_ms_frames_encode_decode_and_mix_with_20() {
    let src = speech_like(8000, 2.0);
    let mut enc = OpusEncoder::new(OpusConfig::at_rate(8000).unwrap()).unwrap();
    let mut dec = OpusDecoder::new(OpusSampleRate::Hz8000).unwrap();
    let (mut buf, mut pcm, mut out) = ([0u8; 1500], [0i16; 960], Vec::new());
    for (k, tick) in src.chunks_exact(160).enumerate() {
        let parts: Vec<&[i16]> = if k % 3 == 0 {
            vec![tick]
        } else {
            tick.chunks(80).collect()
        };
        for part in parts {
            let frame = if part.len() == 80 {
                FrameDuration::Ms10
            } else {
                FrameDuration::Ms20
            };
            let n = enc.encode_frame(part, frame, &mut buf).unwrap();
            let t = packet::toc(&buf[..n]).unwrap();
            assert_eq!((t.frame_samples_48k, t.code), (part.len() * 6, 0));
            assert_eq!(dec.decode(&buf[..n], &mut pcm).unwrap(), part.len());
            out.extend_from_slice(&pcm[..part.len()]);
        }
    }
    assert!(matches!(
        enc.encode_frame(&[0; 160], FrameDuration::Ms10, &mut buf),
        Err(OpusError::FrameLength {
            expected: 80,
            got: 160
        })
    ));
    let (lag, r) = best_correlation(&src, &out, 160);
    println!("opus 8 kHz, 10 and 20 ms frames mixed: r {r:.3} at lag {lag}");
    assert!(r >= 0.85, "r {r}");
    assert_eq!(FrameDuration::for_ptime(10), FrameDuration::Ms10);
    assert_eq!(FrameDuration::for_ptime(20), FrameDuration::Ms20);
    assert_eq!(FrameDuration::for_ptime(60), FrameDuration::Ms20);
    assert_eq!(FrameDuration::Ms10.per_tick(), 2);
}

proptest::proptest! {
    #[test]
    fn any_bytes_decode_without_panic(
        payload in proptest::collection::vec(proptest::num::u8::ANY, 0..1500),
        fec in proptest::bool::ANY,
    ) {
        let mut dec = OpusDecoder::new(OpusSampleRate::Hz8000).unwrap();
        let mut out = vec![0i16; dec.max_packet_samples()];
        let n = if fec {
            dec.decode_fec(&payload, &mut out)
        } else {
            dec.decode(&payload, &mut out)
        };
        if let Ok(n) = n {
            proptest::prop_assert!(n <= out.len());
        }
        // The decoder stays usable after garbage.
        proptest::prop_assert!(dec.conceal(&mut out).is_ok());
        let _ = packet::has_fec(&payload);
        let _ = packet::first_frame(&payload);
        let _ = packet::duration_samples(&payload, 48000);
    }

    #[test]
    fn any_fmtp_string_parses_without_panic(s in ".{0,200}") {
        let p = parse_fmtp(&s);
        proptest::prop_assert!((8000..=48000).contains(&p.max_playback_rate));
        let _ = fmtp_answer(Some(&s));
    }
}

/// libopus itself is the judge of `has_fec`: decoding a SILK packet with
/// `fec = 1` when it has no LBRR falls back to PLC, so the FEC and PLC
/// outputs are identical exactly when the packet carries no FEC.
#[test]
fn has_fec_agrees_with_libopus() {
    let (mut total_with, mut total_without) = (0, 0);
    for (hz, loss) in [(8000, 10), (16000, 20), (48000, 5), (48000, 25)] {
        let config = OpusConfig {
            packet_loss_pct: loss,
            ..OpusConfig::at_rate(hz).unwrap()
        };
        let mut src = speech_like(hz, 0.6);
        // Some silence too, where LBRR is usually skipped.
        src.extend(std::iter::repeat_n(0, hz as usize / 5));
        let packets = encode_all(config, &src);
        let (mut with, mut without) = (0, 0);
        for lost in 1..packets.len() - 1 {
            let outputs: Vec<Vec<i16>> = [true, false]
                .into_iter()
                .map(|fec| {
                    let mut dec = OpusDecoder::new(config.sample_rate).unwrap();
                    let mut out = vec![0i16; dec.max_packet_samples()];
                    for p in &packets[..lost] {
                        dec.decode(p, &mut out).unwrap();
                    }
                    let n = if fec {
                        dec.decode_fec(&packets[lost + 1], &mut out).unwrap()
                    } else {
                        dec.conceal(&mut out).unwrap()
                    };
                    out[..n].to_vec()
                })
                .collect();
            let libopus_used_fec = outputs[0] != outputs[1];
            let next = &packets[lost + 1];
            let ctx = format!("{hz} Hz, packet {}: {:?}", lost + 1, packet::toc(next));
            if packet::toc(next).unwrap().mode == Mode::Silk {
                assert_eq!(packet::has_fec(next), libopus_used_fec, "{ctx}");
            } else {
                // A hybrid packet's FEC path also redoes the CELT band, so
                // the outputs may differ without LBRR; only one way holds.
                assert!(!packet::has_fec(next) || libopus_used_fec, "{ctx}");
            }
            if libopus_used_fec {
                with += 1;
            } else {
                without += 1;
            }
        }
        println!(
            "{hz} Hz, {loss} % loss expected: has_fec agrees with libopus on {with} packets with FEC, {without} without"
        );
        total_with += with;
        total_without += without;
    }
    assert!(
        total_with > 30 && total_without > 30,
        "both cases exercised"
    );
}
