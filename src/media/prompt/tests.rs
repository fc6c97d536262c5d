//! Prompt tests: frames and padding, the G.711 digital milliwatt, decoding
//! the same tone from every supported container and rate (checked by
//! measurement), hostile files, and the store's name handling.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio")
}

/// A fresh scratch directory for one test (removed by the `Drop`).
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("rivr-prompt-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------- frames

#[test]
fn frames_are_160_bytes_and_the_last_is_padded_with_silence() {
    let pcm: Vec<i16> = (0..330).map(|i| (i * 50) as i16).collect();
    let prompt = Prompt::from_pcm_8k("ramp", pcm.clone());
    assert_eq!(prompt.name(), "ramp");
    assert_eq!(prompt.frame_count(), 3);
    assert_eq!(prompt.duration_ms(), 41);
    assert_eq!(prompt.pcm_8k(), pcm.as_slice());
    for law in Law::ALL {
        let codec = Codec::from(law);
        for i in 0..3 {
            assert_eq!(prompt.frame(codec, i).map(<[u8]>::len), Some(160));
        }
        assert_eq!(prompt.frame(codec, 3), None);
        assert_eq!(prompt.frame(codec, usize::MAX), None);
        let last = prompt.frame(codec, 2).unwrap();
        assert!(last[10..].iter().all(|&b| b == law.silence_byte()));
        // Real samples are encoded, not silence.
        let mut want = [0u8; 10];
        g711::encode(law, &pcm[320..], &mut want);
        assert_eq!(&last[..10], &want);
        assert_eq!(prompt.g711_bytes(law).len(), 480);
    }
    // Opus: one packet per frame, the last one padded inside the encoder.
    for i in 0..3 {
        let packet = prompt.frame(Codec::Opus, i).unwrap();
        assert!(!packet.is_empty() && packet.len() < 400, "{}", packet.len());
    }
    assert_eq!(prompt.frame(Codec::Opus, 3), None);
    assert_eq!(prompt.frame(Codec::Opus, usize::MAX), None);
}

#[test]
fn opus_frames_decode_back_to_the_prompt() {
    use crate::media::opus::{OpusDecoder, OpusSampleRate};
    let store = PromptStore::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts"));
    let prompt = store.get("main_menu").unwrap();
    let mut dec = OpusDecoder::new(OpusSampleRate::Hz8000).unwrap();
    let mut back = vec![0i16; prompt.frame_count() * FRAME_SAMPLES];
    for (i, out) in back.chunks_exact_mut(FRAME_SAMPLES).enumerate() {
        let n = dec
            .decode(prompt.frame(Codec::Opus, i).unwrap(), out)
            .unwrap();
        assert_eq!(n, FRAME_SAMPLES);
    }
    // libopus delays its output by a few ms; find the lag, then correlate.
    let pcm = prompt.pcm_8k();
    let ncc = |lag: usize| {
        let (mut xy, mut xx, mut yy) = (0f64, 0f64, 0f64);
        for (a, b) in pcm.iter().zip(back.iter().skip(lag)) {
            let (a, b) = (f64::from(*a), f64::from(*b));
            xy += a * b;
            xx += a * a;
            yy += b * b;
        }
        xy / (xx * yy).sqrt().max(1.0)
    };
    let best = (0..160).map(ncc).fold(f64::MIN, f64::max);
    println!("main_menu through Opus (cached frames): r = {best:.3}");
    assert!(best > 0.85, "r = {best}");
}

/// The 10 ms Opus frames are made on first need, once, shared: before,
/// none; `request_opus_10ms` says yes once; after `prepare_opus_10ms`
/// (from two threads at once), two 10 ms packets per 20 ms frame that
/// decode back to main_menu, and the 20 ms frames are untouched.
#[test]
fn opus_10ms_frames_are_made_once_on_demand_and_decode_to_the_prompt() {
    use crate::media::opus::packet::toc;
    use crate::media::opus::{OpusDecoder, OpusSampleRate};
    let store = PromptStore::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts"));
    let prompt = store.get("main_menu").unwrap();
    assert!(!prompt.has_opus_10ms());
    assert_eq!(prompt.opus_10ms(0), None);
    assert!(prompt.request_opus_10ms());
    assert!(!prompt.request_opus_10ms());
    let both =
        [prompt.clone(), prompt.clone()].map(|p| std::thread::spawn(move || p.prepare_opus_10ms()));
    for t in both {
        assert!(t.join().unwrap());
    }
    assert!(prompt.has_opus_10ms() && !prompt.request_opus_10ms());
    let mut dec = OpusDecoder::new(OpusSampleRate::Hz8000).unwrap();
    let mut back = vec![0i16; prompt.frame_count() * FRAME_SAMPLES];
    for (i, out) in back.chunks_exact_mut(FRAME_SAMPLES).enumerate() {
        let [a, b] = prompt.opus_10ms(i).unwrap();
        let (first, second) = out.split_at_mut(FRAME_SAMPLES / 2);
        for (p, o) in [(a, first), (b, second)] {
            assert_eq!(
                toc(p).map(|t| (t.frame_samples_48k, t.code)),
                Some((480, 0))
            );
            assert_eq!(dec.decode(p, o).unwrap(), FRAME_SAMPLES / 2);
        }
    }
    assert_eq!(prompt.opus_10ms(prompt.frame_count()), None);
    assert_eq!(
        toc(prompt.frame(Codec::Opus, 0).unwrap())
            .unwrap()
            .frame_samples_48k,
        960
    );
    let pcm = prompt.pcm_8k();
    let best = (0..160)
        .map(|lag| {
            let (mut xy, mut xx, mut yy) = (0f64, 0f64, 0f64);
            for (a, b) in pcm.iter().zip(back.iter().skip(lag)) {
                let (a, b) = (f64::from(*a), f64::from(*b));
                xy += a * b;
                xx += a * a;
                yy += b * b;
            }
            xy / (xx * yy).sqrt().max(1.0)
        })
        .fold(f64::MIN, f64::max);
    println!("main_menu through Opus (10 ms frames): r = {best:.3}");
    assert!(best > 0.85, "r = {best}");
}

#[test]
fn empty_prompt_has_no_frames() {
    let prompt = Prompt::from_pcm_8k("nothing", Vec::new());
    assert_eq!(prompt.frame_count(), 0);
    assert_eq!(prompt.duration_ms(), 0);
    assert_eq!(prompt.frame(Codec::Pcmu, 0), None);
}

#[test]
fn a_1khz_tone_encodes_to_the_digital_milliwatt() {
    // 1 kHz at 8 kHz, phase pi/8, about 0 dBm0, starting negative: the
    // G.711 Table 5 sequence, repeated 20 times in one frame.
    let pcm: Vec<i16> = (0..FRAME_SAMPLES)
        .map(|k| {
            let phase = std::f64::consts::PI * (1.0 / 8.0 + k as f64 / 4.0);
            (-22768.0 * phase.sin()).round() as i16
        })
        .collect();
    let prompt = Prompt::from_pcm_8k("dmw", pcm);
    let ulaw = prompt.frame(Codec::Pcmu, 0).unwrap();
    let alaw = prompt.frame(Codec::Pcma, 0).unwrap();
    for k in 0..FRAME_SAMPLES / 8 {
        let at = k * 8..k * 8 + 8;
        assert_eq!(
            ulaw[at.clone()],
            [0x1E, 0x0B, 0x0B, 0x1E, 0x9E, 0x8B, 0x8B, 0x9E]
        );
        assert_eq!(alaw[at], [0x34, 0x21, 0x21, 0x34, 0xB4, 0xA1, 0xA1, 0xB4]);
    }
}

#[test]
fn float_samples_saturate_instead_of_wrapping() {
    assert_eq!(
        to_i16(&[1.5, -1.5, 1.0, -1.0, 0.0, f32::NAN]),
        [32767, -32768, 32767, -32768, 0, 0]
    );
}

// ------------------------------------------------------ decoding fixtures

/// |DFT| of `x` at `freq` (Goertzel), normalised by the length.
fn goertzel(x: &[i16], freq: f64) -> f64 {
    let w = std::f64::consts::TAU * freq / f64::from(PROMPT_RATE_HZ);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s0 = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0).sqrt()
}

/// Best normalised cross-correlation of `b` against `a` over lags within
/// `max_lag`, and the lag where `b[n + lag]` best matches `a[n]`.
fn best_correlation(a: &[i16], b: &[i16], max_lag: isize) -> (f64, isize) {
    let energy = |x: &[i16]| x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
    let norm = (energy(a) * energy(b)).sqrt();
    let mut best = (f64::MIN, 0);
    for lag in -max_lag..=max_lag {
        let mut sum = 0.0;
        for (n, &va) in a.iter().enumerate() {
            if let Some(&vb) = b.get((n as isize + lag) as usize) {
                sum += f64::from(va) * f64::from(vb);
            }
        }
        if sum / norm > best.0 {
            best = (sum / norm, lag);
        }
    }
    best
}

#[test]
fn the_same_tone_decodes_alike_from_every_format_and_rate() {
    let store = PromptStore::new(fixtures());
    let reference = store.get("tone_8k_mono").unwrap();
    let ref_pcm = reference.pcm_8k();
    assert_eq!(ref_pcm.len(), 5600);
    let ref_level = goertzel(ref_pcm, 700.0);

    // (name, lossless): lossless files must also line up sample-exactly.
    let cases = [
        ("tone_8k_mono", true),
        ("tone_44k1_stereo", true),
        ("tone_16k", true),
        ("tone_48k", false),
        ("tone_22k05", false),
    ];
    for (name, lossless) in cases {
        let prompt = store.get(name).unwrap();
        let pcm = prompt.pcm_8k();
        let level_db = 20.0 * (goertzel(pcm, 700.0) / ref_level).log10();
        let off_tone = goertzel(pcm, 650.0).max(goertzel(pcm, 750.0));
        let purity_db = 20.0 * (goertzel(pcm, 700.0) / off_tone).log10();
        let (corr, lag) = best_correlation(ref_pcm, pcm, 800);
        println!(
            "{name}: {} ms, level {level_db:+.2} dB vs 8 kHz WAV, 700 Hz over 650/750 Hz {purity_db:.1} dB, \
             correlation {corr:.4} at lag {lag}",
            prompt.duration_ms()
        );
        assert!(level_db.abs() < 1.0, "{name}: level {level_db} dB");
        assert!(purity_db > 30.0, "{name}: purity {purity_db} dB");
        assert!(corr >= 0.9, "{name}: correlation {corr}");
        // Gapless decoding drops the MP3/Vorbis encoder delay, and the
        // resampler is delay-compensated, so every format lines up.
        assert!(lag.abs() <= 1, "{name}: lag {lag}");
        if lossless {
            assert_eq!(lag, 0, "{name}");
            assert!(corr > 0.999, "{name}: correlation {corr}");
            assert_eq!(pcm.len(), 5600, "{name}");
        }
    }
}

#[test]
fn decode_file_reports_mono_samples_at_the_source_rate() {
    for (file, rate) in [
        ("tone_8k_mono.wav", 8000),
        ("tone_44k1_stereo.wav", 44_100),
        ("tone_16k.flac", 16_000),
        ("tone_48k.ogg", 48_000),
        ("tone_22k05.mp3", 22_050),
    ] {
        let (samples, got) = decode_file(&fixtures().join(file)).unwrap();
        assert_eq!(got, rate, "{file}");
        // 0.7 s of audio (Vorbis keeps its last block's padding).
        let seconds = samples.len() as f64 / f64::from(rate);
        assert!((0.699..0.72).contains(&seconds), "{file}: {seconds} s");
        let peak = samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!((0.45..0.56).contains(&peak), "{file}: peak {peak}");
    }
}

// --------------------------------------------------------- hostile files

const FIXTURE_FILES: [&str; 5] = [
    "tone_8k_mono.wav",
    "tone_44k1_stereo.wav",
    "tone_16k.flac",
    "tone_48k.ogg",
    "tone_22k05.mp3",
];

#[test]
fn truncated_files_are_errors_not_panics() {
    let scratch = Scratch::new("truncated");
    for file in FIXTURE_FILES {
        let bytes = std::fs::read(fixtures().join(file)).unwrap();
        for keep in [
            0,
            1,
            4,
            12,
            44,
            bytes.len() / 3,
            bytes.len() / 2,
            bytes.len() * 9 / 10,
        ] {
            let path = scratch.0.join(format!("cut{keep}-{file}"));
            std::fs::write(&path, &bytes[..keep]).unwrap();
            match decode_file(&path) {
                Err(PromptError::Decode { path: p, reason }) => {
                    assert_eq!(p, path);
                    let msg = PromptError::Decode { path: p, reason }.to_string();
                    assert!(msg.contains(&format!("cut{keep}-{file}")), "{msg}");
                }
                Ok((samples, rate)) => {
                    panic!(
                        "{file} cut at {keep}: decoded {} samples at {rate} Hz",
                        samples.len()
                    )
                }
                Err(other) => panic!("{file} cut at {keep}: {other}"),
            }
        }
    }
}

#[test]
fn garbage_files_are_errors() {
    let scratch = Scratch::new("garbage");
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for ext in ["wav", "flac", "ogg", "mp3", "txt", ""] {
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let path = scratch.0.join(format!("noise.{ext}"));
        std::fs::write(&path, &noise).unwrap();
        assert!(
            matches!(decode_file(&path), Err(PromptError::Decode { .. })),
            "{ext}"
        );
    }
    let text = scratch.0.join("readme.wav");
    std::fs::write(&text, "this is not audio").unwrap();
    assert!(matches!(
        decode_file(&text),
        Err(PromptError::Decode { .. })
    ));
    assert!(matches!(
        decode_file(&scratch.0.join("missing.wav")),
        Err(PromptError::Io { .. })
    ));
    assert!(matches!(
        decode_file(&scratch.0),
        Err(PromptError::Decode { .. } | PromptError::Io { .. })
    ));
}

#[test]
fn corrupted_files_never_panic() {
    // Flip bytes all over each fixture: the result may decode (to noise) or
    // fail, but must come back as a value.
    let scratch = Scratch::new("corrupt");
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut ok, mut failed, mut caught) = (0, 0, 0);
    for file in FIXTURE_FILES {
        let clean = std::fs::read(fixtures().join(file)).unwrap();
        for round in 0..40 {
            let mut bytes = clean.clone();
            for _ in 0..1 + round % 8 {
                let at = (next() as usize) % bytes.len();
                bytes[at] = next() as u8;
            }
            let path = scratch.0.join(format!("{round}-{file}"));
            std::fs::write(&path, &bytes).unwrap();
            match decode_file(&path) {
                Ok(_) => ok += 1,
                Err(PromptError::Decode { reason, .. }) if reason.contains("panicked") => {
                    caught += 1;
                    failed += 1;
                }
                Err(_) => failed += 1,
            }
        }
    }
    // `caught` counts symphonia panics turned into errors by decode_file.
    println!(
        "corrupted fixtures: {ok} decoded, {failed} rejected ({caught} decoder panics caught)"
    );
    assert_eq!(ok + failed, 200);
}

// ----------------------------------------------------------------- store

#[test]
fn names_that_leave_the_directory_are_refused() {
    let store = PromptStore::new(fixtures());
    for name in [
        "",
        "/etc/passwd",
        "../fixtures/audio/tone_16k",
        "a/../tone_16k",
        "./tone_16k",
        "a//b",
        "digits/",
        "nul\0byte",
        "bell\x07",
        "line\nbreak",
        "del\x7f",
        &"x".repeat(300),
    ] {
        match store.get(name) {
            Err(PromptError::BadName { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name:?}: {other:?}"),
        }
    }
    match store.get("no_such_prompt") {
        Err(e @ PromptError::NotFound { .. }) => {
            assert!(e.to_string().contains("\"no_such_prompt\""), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

proptest::proptest! {
    #[test]
    fn accepted_names_stay_inside_the_directory(name in "[a-z./_\\\\-]{0,12}") {
        let dir = Path::new("/srv/prompts");
        if store::check_name(&name).is_ok() {
            let joined = dir.join(&name);
            proptest::prop_assert!(joined.starts_with(dir));
            proptest::prop_assert!(joined
                .components()
                .skip(dir.components().count())
                .all(|c| matches!(c, std::path::Component::Normal(_))));
            proptest::prop_assert!(joined != dir);
        }
    }
}

#[cfg(unix)]
#[test]
fn symlinks_out_of_the_directory_are_refused() {
    let scratch = Scratch::new("symlink");
    let prompts = scratch.0.join("prompts");
    std::fs::create_dir(&prompts).unwrap();
    let outside = scratch.0.join("secret.wav");
    std::fs::copy(fixtures().join("tone_8k_mono.wav"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, prompts.join("leak.wav")).unwrap();
    std::fs::copy(
        fixtures().join("tone_8k_mono.wav"),
        prompts.join("real.wav"),
    )
    .unwrap();
    std::os::unix::fs::symlink(prompts.join("real.wav"), prompts.join("alias.wav")).unwrap();
    let store = PromptStore::new(&prompts);
    assert!(matches!(
        store.get("leak"),
        Err(PromptError::BadName { .. })
    ));
    // A link that stays inside is fine.
    assert_eq!(store.get("alias").unwrap().frame_count(), 35);
}

#[test]
fn prompts_are_found_by_any_extension_and_cached() {
    let store = PromptStore::new(fixtures());
    let first = store.get("tone_16k").unwrap();
    let again = store.get("tone_16k").unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    let by_file = store.get("tone_16k.flac").unwrap();
    assert_eq!(by_file.pcm_8k(), first.pcm_8k());
    assert_eq!(first.name(), "tone_16k");
    assert_eq!(store.cached_count(), 2);
}

#[test]
fn preload_walks_subdirectories_and_skips_other_files() {
    let scratch = Scratch::new("preload");
    let wav = fixtures().join("tone_8k_mono.wav");
    std::fs::create_dir(scratch.0.join("digits")).unwrap();
    std::fs::copy(&wav, scratch.0.join("hello.wav")).unwrap();
    std::fs::copy(
        fixtures().join("tone_16k.flac"),
        scratch.0.join("hello.flac"),
    )
    .unwrap();
    std::fs::copy(&wav, scratch.0.join("digits/7.wav")).unwrap();
    std::fs::copy(&wav, scratch.0.join("Shout.WAV")).unwrap();
    std::fs::copy(&wav, scratch.0.join(".hidden.wav")).unwrap();
    std::fs::write(scratch.0.join("README.md"), "not a prompt").unwrap();
    let store = PromptStore::new(&scratch.0);
    assert_eq!(store.preload_all().unwrap(), 3);
    for name in ["hello", "digits/7", "Shout.WAV"] {
        assert!(store.get(name).is_ok(), "{name}");
    }
    assert_eq!(store.cached_count(), 3);

    // One bad file fails the preload and is named.
    std::fs::write(scratch.0.join("broken.mp3"), b"ID3 junk").unwrap();
    let err = PromptStore::new(&scratch.0).preload_all().unwrap_err();
    assert!(err.to_string().contains("broken.mp3"), "{err}");
}

#[test]
fn inserted_prompts_are_served_by_name() {
    let store = PromptStore::new(fixtures());
    let beep = store.insert(Prompt::from_pcm_8k("tone:beep", vec![0; 3200]));
    assert!(Arc::ptr_eq(&beep, &store.get("tone:beep").unwrap()));
}

// ------------------------------------------------------- shipped prompts

#[test]
fn the_shipped_example_prompts_all_load() {
    let store = PromptStore::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts"));
    let loaded = store.preload_all().unwrap();
    let mut names: Vec<String> = [
        "main_menu",
        "opening_hours",
        "info_menu",
        "health_info",
        "water_info",
        "survey_intro",
        "survey_q1",
        "survey_q2",
        "survey_thanks",
        "invalid",
        "no_input",
        "goodbye",
        "opt_out",
        "beep",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.extend((0..10).map(|d| format!("digits/{d}")));
    // The main menu and the digits in French (`[[route]] lang = "fr"`).
    let french: Vec<String> = [
        "main_menu",
        "opening_hours",
        "info_menu",
        "health_info",
        "water_info",
        "invalid",
        "no_input",
        "goodbye",
    ]
    .iter()
    .map(|s| format!("fr/{s}"))
    .chain((0..10).map(|d| format!("fr/digits/{d}")))
    .collect();
    names.extend(french);
    assert_eq!(loaded, names.len());
    for name in &names {
        let prompt = store.get(name).unwrap();
        let peak = prompt
            .pcm_8k()
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap_or(0);
        let peak_dbfs = 20.0 * (f64::from(peak) / 32768.0).log10();
        // Normalised to -3 dBFS at 22.05 kHz; band-limiting to 4 kHz lowers
        // speech peaks a little.
        assert!(
            (-8.0..=-2.0).contains(&peak_dbfs),
            "{name}: peak {peak_dbfs:.1} dBFS"
        );
        assert!(
            prompt.duration_ms() >= 300,
            "{name}: {} ms",
            prompt.duration_ms()
        );
    }
    let beep = store.get("beep").unwrap();
    assert_eq!(beep.duration_ms(), 400);
    let purity = goertzel(beep.pcm_8k(), 1000.0) / goertzel(beep.pcm_8k(), 900.0);
    assert!(purity > 100.0, "beep is not a 1 kHz tone: {purity}");
    let menu = store.get("main_menu").unwrap();
    println!(
        "shipped prompts: {loaded} loaded; main_menu {} ms, {} frames",
        menu.duration_ms(),
        menu.frame_count()
    );
}

#[test]
fn concurrent_first_loads_share_one_prompt() {
    let store = PromptStore::new(fixtures());
    let loaded: Vec<Arc<Prompt>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| store.get("tone_16k").unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let cached = store.get("tone_16k").unwrap();
    assert!(loaded.iter().all(|p| Arc::ptr_eq(p, &cached)));
    assert_eq!(store.cached_count(), 1);
}

#[test]
fn a_missing_directory_is_an_error_naming_it() {
    let store = PromptStore::new("/nonexistent/rivr-prompts");
    let err = store.preload_all().unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/rivr-prompts"),
        "{err}"
    );
    assert!(matches!(
        store.get("hello"),
        Err(PromptError::NotFound { .. })
    ));
}

#[test]
fn prompts_and_the_store_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Prompt>();
    shareable::<Arc<Prompt>>();
    shareable::<PromptStore>();
    shareable::<PromptError>();
}

#[test]
fn encoded_frames_decode_back_to_the_pcm_at_g711_quality() {
    // The frames must be the PCM, in order: decoding them back must match it
    // to within G.711's quantisation noise (about 38 dB SNR for speech).
    let store = PromptStore::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts"));
    let prompt = store.get("main_menu").unwrap();
    let pcm = prompt.pcm_8k();
    for law in Law::ALL {
        let codec = Codec::from(law);
        let mut back = vec![0i16; prompt.frame_count() * FRAME_SAMPLES];
        for (i, out) in back.chunks_exact_mut(FRAME_SAMPLES).enumerate() {
            g711::decode(law, prompt.frame(codec, i).unwrap(), out);
        }
        let signal: f64 = pcm.iter().map(|&s| f64::from(s).powi(2)).sum();
        let noise: f64 = pcm
            .iter()
            .zip(&back)
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum();
        let snr_db = 10.0 * (signal / noise).log10();
        println!("main_menu through {codec:?}: SNR {snr_db:.1} dB");
        assert!(snr_db > 30.0, "{codec:?}: {snr_db} dB");
        let tail = &back[pcm.len()..];
        let silence = {
            let mut s = [0i16; 1];
            g711::decode(law, &[law.silence_byte()], &mut s);
            s[0]
        };
        assert!(tail.iter().all(|&s| s == silence));
    }
}
