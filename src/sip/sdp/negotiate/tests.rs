//! Offer/answer tests with real-world offers.

use super::*;
use crate::sip::sdp::parse;

fn local() -> LocalMedia {
    LocalMedia {
        ip: "203.0.113.10".parse().unwrap(),
        rtp_port: 20000,
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        telephone_event: true,
        session_id: 4242,
        session_version: 7,
    }
}

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// SIPp's built-in `uac` scenario offer.
const SIPP_UAC: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// Shaped like a Linphone offer: Opus and Speex first, several
/// telephone-event rates, a=rtcp, a video stream.
const LINPHONE: &str = "v=0\r\no=bob 2233 3344 IN IP4 192.168.1.20\r\ns=Talk\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\na=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\nm=audio 7078 RTP/AVP 96 97 98 8 0 101 99 100\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\na=rtpmap:97 speex/16000\r\na=fmtp:97 vbr=on\r\na=rtpmap:98 speex/8000\r\na=fmtp:98 vbr=on\r\na=rtpmap:101 telephone-event/48000\r\na=rtpmap:99 telephone-event/16000\r\na=rtpmap:100 telephone-event/8000\r\na=rtcp:7079\r\na=rtcp-fb:* trr-int 1000\r\nm=video 9078 RTP/AVP 96 97\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 H264/90000\r\na=fmtp:97 profile-level-id=42801F\r\n";

#[test]
fn sipp_default_offer() {
    let (n, sdp) = answer(&parse(SIPP_UAC).unwrap(), &local()).unwrap();
    assert_eq!(
        n,
        Negotiated {
            codec: Codec::Pcmu,
            payload_type: 0,
            codec_fmtp: None,
            telephone_event_pt: None,
            telephone_event_rate: 8000,
            remote_rtp: sock("127.0.0.1:6000"),
            remote_rtcp: sock("127.0.0.1:6001"),
            ptime_ms: 20,
            direction: Direction::SendRecv,
        }
    );
    assert_eq!(
        sdp,
        "v=0\r\no=rivr 4242 7 IN IP4 203.0.113.10\r\ns=rivr\r\nc=IN IP4 203.0.113.10\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=maxptime:60\r\na=sendrecv\r\n"
    );
}

#[test]
fn linphone_offer_picks_pcma_first_in_offer_order_and_te_8000() {
    let (n, sdp) = answer(&parse(LINPHONE).unwrap(), &local()).unwrap();
    assert_eq!(n.codec, Codec::Pcma, "PCMA comes before PCMU in the offer");
    assert_eq!(n.payload_type, 8);
    assert_eq!(n.telephone_event_pt, Some(100));
    assert_eq!(n.remote_rtp, sock("192.168.1.20:7078"));
    assert_eq!(n.remote_rtcp, sock("192.168.1.20:7079"));
    let m_lines: Vec<&str> = sdp.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(
        m_lines,
        vec!["m=audio 20000 RTP/AVP 8 100", "m=video 0 RTP/AVP 96 97"]
    );
    assert!(sdp.contains("a=rtpmap:100 telephone-event/8000\r\na=fmtp:100 0-16\r\n"));
    // the answer is itself valid SDP
    let reparsed = parse(&sdp).unwrap();
    assert_eq!(reparsed.media.len(), 2);
    assert_eq!(reparsed.origin.session_id, "4242");
}

#[test]
fn opus_first_then_pcma() {
    let offer = "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 5004 RTP/AVP 111 8 126\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:126 telephone-event/8000\r\na=ptime:20\r\n";
    let (n, _) = answer(&parse(offer).unwrap(), &local()).unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.telephone_event_pt),
        (Codec::Pcma, 8, Some(126))
    );
}

#[test]
fn no_common_codec_is_488_material() {
    let offer = "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 5004 RTP/AVP 111 9 18\r\na=rtpmap:111 opus/48000/2\r\n";
    assert_eq!(
        answer(&parse(offer).unwrap(), &local()),
        Err(SdpError::NoCommonCodec)
    );
    // and a local list that excludes what is offered
    let only_pcma = LocalMedia {
        codecs: vec![Codec::Pcma],
        ..local()
    };
    assert_eq!(
        answer(&parse(SIPP_UAC).unwrap(), &only_pcma),
        Err(SdpError::NoCommonCodec)
    );
}

#[test]
fn dynamic_payload_type_with_g711_name_is_accepted_case_insensitively() {
    let offer = "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 5004 RTP/AVP 96\r\na=rtpmap:96 pcmu/8000\r\n";
    let (n, sdp) = answer(&parse(offer).unwrap(), &local()).unwrap();
    assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 96));
    assert!(sdp.contains("m=audio 20000 RTP/AVP 96\r\na=rtpmap:96 PCMU/8000\r\n"));
}

#[test]
fn rtpmap_overrides_static_assignment() {
    // pt 0 remapped to something else is not PCMU
    let offer = "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\na=rtpmap:0 G729/8000\r\n";
    assert_eq!(
        answer(&parse(offer).unwrap(), &local()),
        Err(SdpError::NoCommonCodec)
    );
}

#[test]
fn direction_is_mirrored_media_level_wins() {
    for (attr, expected) in [
        ("a=sendonly", Direction::RecvOnly),
        ("a=recvonly", Direction::SendOnly),
        ("a=inactive", Direction::Inactive),
        ("a=sendrecv", Direction::SendRecv),
    ] {
        let offer = format!("{SIPP_UAC}{attr}\r\n");
        let (n, sdp) = answer(&parse(&offer).unwrap(), &local()).unwrap();
        assert_eq!(n.direction, expected, "{attr}");
        assert!(
            sdp.ends_with(&format!("a={}\r\n", expected.as_str())),
            "{sdp}"
        );
    }
    let session_level = SIPP_UAC.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
    assert_eq!(
        answer(&parse(&session_level).unwrap(), &local())
            .unwrap()
            .0
            .direction,
        Direction::RecvOnly
    );
    let both = format!("{session_level}a=sendrecv\r\n");
    assert_eq!(
        answer(&parse(&both).unwrap(), &local())
            .unwrap()
            .0
            .direction,
        Direction::SendRecv
    );
}

#[test]
fn media_level_connection_and_ipv6() {
    let offer = "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\nc=IN IP6 2001:db8::5\r\n";
    let (n, _) = answer(&parse(offer).unwrap(), &local()).unwrap();
    assert_eq!(n.remote_rtp, sock("[2001:db8::5]:5004"));
    assert_eq!(n.remote_rtcp, sock("[2001:db8::5]:5005"));
    let v6_local = LocalMedia {
        ip: "2001:db8::99".parse().unwrap(),
        ..local()
    };
    let (_, sdp) = answer(&parse(offer).unwrap(), &v6_local).unwrap();
    assert!(sdp.contains("o=rivr 4242 7 IN IP6 2001:db8::99\r\n"));
    assert!(sdp.contains("c=IN IP6 2001:db8::99\r\n"));
}

#[test]
fn missing_connection_is_an_error() {
    let offer = "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n";
    assert_eq!(
        answer(&parse(offer).unwrap(), &local()),
        Err(SdpError::NoConnection)
    );
}

#[test]
fn rtcp_attribute_with_address() {
    let offer = format!("{SIPP_UAC}a=rtcp:53020 IN IP4 126.16.64.4\r\n");
    let (n, _) = answer(&parse(&offer).unwrap(), &local()).unwrap();
    assert_eq!(n.remote_rtcp, sock("126.16.64.4:53020"));
}

#[test]
fn audio_with_port_zero_is_rejected_and_next_audio_is_used() {
    let only_zero = SIPP_UAC.replace("m=audio 6000", "m=audio 0");
    assert_eq!(
        answer(&parse(&only_zero).unwrap(), &local()),
        Err(SdpError::NoAudio)
    );
    let two = format!("{only_zero}m=audio 6002 RTP/AVP 8\r\n");
    let (n, sdp) = answer(&parse(&two).unwrap(), &local()).unwrap();
    assert_eq!(
        (n.codec, n.remote_rtp),
        (Codec::Pcma, sock("127.0.0.1:6002"))
    );
    let m_lines: Vec<&str> = sdp.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(
        m_lines,
        vec!["m=audio 0 RTP/AVP 0", "m=audio 20000 RTP/AVP 8"]
    );
}

#[test]
fn srtp_only_offer_has_no_usable_audio() {
    let offer = SIPP_UAC.replace("RTP/AVP", "RTP/SAVP");
    assert_eq!(
        answer(&parse(&offer).unwrap(), &local()),
        Err(SdpError::NoAudio)
    );
}

#[test]
fn telephone_event_not_offered_back_when_disabled_locally() {
    let no_te = LocalMedia {
        telephone_event: false,
        ..local()
    };
    let (n, sdp) = answer(&parse(LINPHONE).unwrap(), &no_te).unwrap();
    assert_eq!(n.telephone_event_pt, None);
    assert!(!sdp.contains("telephone-event"));
}

#[test]
fn offer_text_and_round_trip_with_accept_answer() {
    let text = offer(&local());
    assert_eq!(
        text,
        "v=0\r\no=rivr 4242 7 IN IP4 203.0.113.10\r\ns=rivr\r\nc=IN IP4 203.0.113.10\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=maxptime:60\r\na=sendrecv\r\n"
    );
    // a peer (another rivr, with PCMA only) answers our offer
    let peer = LocalMedia {
        ip: "198.51.100.2".parse().unwrap(),
        rtp_port: 30000,
        codecs: vec![Codec::Pcma],
        ..local()
    };
    let (peer_view, answer_text) = answer(&parse(&text).unwrap(), &peer).unwrap();
    assert_eq!(peer_view.remote_rtp, sock("203.0.113.10:20000"));
    let ours = accept_answer(&parse(&answer_text).unwrap(), &local()).unwrap();
    assert_eq!(ours.codec, Codec::Pcma);
    assert_eq!(ours.payload_type, 8);
    assert_eq!(ours.telephone_event_pt, Some(101));
    assert_eq!(ours.remote_rtp, sock("198.51.100.2:30000"));
    assert_eq!(ours.direction, Direction::SendRecv);
}

#[test]
fn accept_answer_rejections() {
    let rejected = "v=0\r\no=- 1 1 IN IP4 198.51.100.2\r\ns=-\r\nc=IN IP4 198.51.100.2\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n";
    assert_eq!(
        accept_answer(&parse(rejected).unwrap(), &local()),
        Err(SdpError::NoAudio)
    );
    let foreign = rejected.replace("m=audio 0 RTP/AVP 0", "m=audio 4000 RTP/AVP 18");
    assert_eq!(
        accept_answer(&parse(&foreign).unwrap(), &local()),
        Err(SdpError::NoCommonCodec)
    );
    let recvonly = rejected.replace("m=audio 0", "m=audio 4000") + "a=recvonly\r\n";
    assert_eq!(
        accept_answer(&parse(&recvonly).unwrap(), &local())
            .unwrap()
            .direction,
        Direction::SendOnly
    );
}

#[test]
fn offered_ptime_is_reported() {
    let offer = format!("{SIPP_UAC}a=ptime:30\r\n");
    assert_eq!(
        answer(&parse(&offer).unwrap(), &local())
            .unwrap()
            .0
            .ptime_ms,
        30
    );
}

/// rivr sends at the peer's ptime within its maxptime, rounded to a
/// duration it sends, and its answer states that ptime.
#[test]
fn send_ptime_follows_ptime_and_maxptime() {
    let cases: &[(&str, u32)] = &[
        ("", 20),
        ("a=ptime:30\r\n", 30),
        ("a=ptime:10\r\n", 10),
        ("a=ptime:60\r\n", 60),
        ("a=ptime:25\r\n", 20),
        ("a=ptime:50\r\n", 40),
        ("a=ptime:90\r\n", 60),
        ("a=ptime:30.0\r\n", 30),
        ("a=ptime:60\r\na=maxptime:40\r\n", 40),
        ("a=ptime:30\r\na=maxptime:25\r\n", 20),
        ("a=maxptime:10\r\n", 10),
        ("a=maxptime:5\r\n", 10),
        ("a=ptime:0\r\n", 20),
        ("a=ptime:-30\r\n", 20),
        ("a=ptime:99999999999\r\n", 20),
        ("a=ptime:30ms\r\na=maxptime:x\r\n", 20),
    ];
    for (extra, want) in cases {
        let offer = format!("{SIPP_UAC}{extra}");
        let (n, sdp) = answer(&parse(&offer).unwrap(), &local()).unwrap();
        assert_eq!(n.ptime_ms, *want, "{extra:?}");
        assert!(
            sdp.contains(&format!("a=ptime:{want}\r\na=maxptime:60\r\n")),
            "{sdp}"
        );
    }
}

/// For Opus the fmtp's ptime and maxptime count too; Opus is sent at 10,
/// 20, 40 or 60 ms, so a 30 ms request gets 20, 60 gets 60, and 10 (or a
/// maxptime under 20) gets 10.
#[test]
fn opus_send_ptime_reads_the_fmtp() {
    let local = LocalMedia {
        codecs: vec![Codec::Opus],
        ..local()
    };
    let base = "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 5004 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n";
    for (extra, want) in [
        ("a=fmtp:111 ptime=60\r\n", 60),
        ("a=fmtp:111 ptime=40;maxptime=40\r\na=ptime:60\r\n", 40),
        ("a=ptime:30\r\n", 20),
        ("a=fmtp:111 useinbandfec=1\r\n", 20),
        ("a=ptime:10\r\n", 10),
        ("a=fmtp:111 ptime=10\r\n", 10),
        ("a=fmtp:111 maxptime=15\r\na=ptime:20\r\n", 10),
        ("a=maxptime:10\r\n", 10),
    ] {
        let offer = format!("{base}{extra}");
        let (n, sdp) = answer(&parse(&offer).unwrap(), &local).unwrap();
        assert_eq!(n.ptime_ms, want, "{extra:?}");
        assert!(sdp.contains(&format!("a=ptime:{want}\r\n")), "{sdp}");
    }
}

#[test]
fn linphone_opus_first_gets_opus_with_fmtp_and_48k_events() {
    let local = LocalMedia {
        codecs: Codec::ALL.to_vec(),
        ..local()
    };
    let (n, sdp) = answer(&parse(LINPHONE).unwrap(), &local).unwrap();
    assert_eq!((n.codec, n.payload_type), (Codec::Opus, 96));
    assert_eq!(n.codec_fmtp.as_deref(), Some("useinbandfec=1"));
    assert_eq!(
        (n.telephone_event_pt, n.telephone_event_rate),
        (Some(101), 48_000)
    );
    assert!(sdp.contains("m=audio 20000 RTP/AVP 96 101\r\n"), "{sdp}");
    assert!(sdp.contains("a=rtpmap:96 opus/48000/2\r\n"), "{sdp}");
    assert!(
        sdp.contains("a=fmtp:96 maxplaybackrate=16000; sprop-maxcapturerate=16000; stereo=0; sprop-stereo=0; useinbandfec=1; ptime=20\r\n"),
        "{sdp}"
    );
    assert!(
        sdp.contains("a=rtpmap:101 telephone-event/48000\r\n"),
        "{sdp}"
    );
    // the answer parses back to the same choice
    let back = accept_answer(&parse(&sdp).unwrap(), &local).unwrap();
    assert_eq!((back.codec, back.payload_type), (Codec::Opus, 96));
}

#[test]
fn opus_is_matched_by_name_rate_and_two_channels() {
    let local = LocalMedia {
        codecs: vec![Codec::Opus],
        ..local()
    };
    let offer = |map: &str| {
        format!("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 120\r\na=rtpmap:120 {map}\r\n")
    };
    for ok in ["opus/48000/2", "OPUS/48000/2", "opus/48000"] {
        let (n, _) = answer(&parse(&offer(ok)).unwrap(), &local).unwrap();
        assert_eq!((n.codec, n.payload_type), (Codec::Opus, 120), "{ok}");
    }
    for bad in ["opus/48000/1", "opus/16000/2", "opus/8000"] {
        assert_eq!(
            answer(&parse(&offer(bad)).unwrap(), &local).map(|(n, _)| n.codec),
            Err(SdpError::NoCommonCodec),
            "{bad}"
        );
    }
}

#[test]
fn rivr_offer_lists_opus_with_its_fmtp() {
    let local = LocalMedia {
        codecs: Codec::ALL.to_vec(),
        ..local()
    };
    let sdp = offer(&local);
    assert!(
        sdp.contains("m=audio 20000 RTP/AVP 0 8 111 101\r\n"),
        "{sdp}"
    );
    assert!(
        sdp.contains("a=rtpmap:111 opus/48000/2\r\na=fmtp:111 maxplaybackrate=16000;"),
        "{sdp}"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// (payload type, rtpmap line or none, codec it stands for)
    const FORMATS: [(u8, Option<&str>, Option<Codec>); 7] = [
        (0, None, Some(Codec::Pcmu)),
        (8, Some("PCMA/8000"), Some(Codec::Pcma)),
        (96, Some("pcmu/8000"), Some(Codec::Pcmu)),
        (97, Some("opus/48000/2"), Some(Codec::Opus)),
        (18, None, None),
        (9, Some("G722/8000"), None),
        (101, Some("telephone-event/8000"), None),
    ];

    fn offer_text(audio: &[usize], extra_video: bool, video_first: bool, dir: &str) -> String {
        let mut sdp = String::from(
            "v=0\r\no=- 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n",
        );
        let video = "m=video 5006 RTP/AVP 31\r\n";
        if extra_video && video_first {
            sdp.push_str(video);
        }
        let pts: Vec<String> = audio.iter().map(|&i| FORMATS[i].0.to_string()).collect();
        sdp.push_str(&format!("m=audio 5004 RTP/AVP {}\r\n", pts.join(" ")));
        for &i in audio {
            if let (pt, Some(map), _) = FORMATS[i] {
                sdp.push_str(&format!("a=rtpmap:{pt} {map}\r\n"));
            }
        }
        sdp.push_str(dir);
        if extra_video && !video_first {
            sdp.push_str(video);
        }
        sdp
    }

    proptest! {
        #[test]
        fn answers_follow_rfc3264(
            audio in prop::sample::subsequence((0..FORMATS.len()).collect::<Vec<_>>(), 1..=FORMATS.len()).prop_shuffle(),
            local_codecs in prop::sample::subsequence(Codec::ALL.to_vec(), 0..=3),
            extra_video in any::<bool>(),
            video_first in any::<bool>(),
            dir in prop::sample::select(vec!["", "a=sendonly\r\n", "a=recvonly\r\n", "a=inactive\r\n", "a=sendrecv\r\n"]),
        ) {
            // a codec can appear twice (0 and 96 are both PCMU): keep the
            // first occurrence to find the expected winner
            let offer = parse(&offer_text(&audio, extra_video, video_first, dir)).unwrap();
            let local = LocalMedia { codecs: local_codecs.clone(), ..local() };
            let expected = audio
                .iter()
                .find_map(|&i| FORMATS[i].2.filter(|c| local_codecs.contains(c)).map(|c| (c, FORMATS[i].0)));
            match (answer(&offer, &local), expected) {
                (Err(SdpError::NoCommonCodec), None) => {}
                (Ok((n, text)), Some((codec, pt))) => {
                    prop_assert_eq!((n.codec, n.payload_type), (codec, pt));
                    let te_offered = audio.iter().any(|&i| FORMATS[i].0 == 101);
                    prop_assert_eq!(n.telephone_event_pt, te_offered.then_some(101));
                    let ans = parse(&text).unwrap();
                    // same number of m= lines, same order, only audio has a port
                    prop_assert_eq!(ans.media.len(), offer.media.len());
                    for (a, o) in ans.media.iter().zip(&offer.media) {
                        prop_assert_eq!(&a.media, &o.media);
                        prop_assert_eq!(a.port != 0, o.media == "audio");
                    }
                    let audio_answer = ans.media.iter().find(|m| m.media == "audio").unwrap();
                    prop_assert_eq!(audio_answer.formats[0].clone(), pt.to_string());
                    prop_assert_eq!(audio_answer.ptime, Some(20));
                    let offered_dir = Direction::from_attribute(dir.trim().trim_start_matches("a=")).unwrap_or_default();
                    prop_assert_eq!(audio_answer.direction, Some(offered_dir.mirrored()));
                    prop_assert_eq!(n.direction, offered_dir.mirrored());
                    // the answer is acceptable to an offerer with the same codecs
                    let back = accept_answer(&ans, &local).unwrap();
                    prop_assert_eq!(back.codec, codec);
                }
                (got, want) => prop_assert!(false, "got {:?}, expected {:?}", got, want),
            }
        }
    }
}
