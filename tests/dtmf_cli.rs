//! `rivr media dtmf FILE` end to end: a recording of known keys (made with
//! rivr's tone generator) as 8 kHz mono, 48 kHz stereo and µ-law WAV gives
//! one `seconds key` line per press at the right onset; a missing or broken
//! file fails with a message. The Q.24 conformance and talk-off suites of
//! the detector itself are `codecs-bench/tests/dtmf_q24.rs` and
//! `codecs-bench/tests/dtmf_talkoff.rs`.

fn rivr_bin() -> std::path::PathBuf {
    std::env::var_os("RIVR_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_rivr").into())
}

/// The sequence written into the test recordings: key, onset in seconds.
fn known_sequence() -> Vec<(char, f64)> {
    "0123456789*#ABCD"
        .chars()
        .enumerate()
        .map(|(i, k)| (k, 0.5 + 0.15 * i as f64))
        .collect()
}

/// 8 kHz PCM of the known sequence, made with rivr's tone generator.
fn known_recording() -> Vec<i16> {
    use rivr::media::tone::ToneGenerator;
    let mut pcm = vec![0i16; 4000];
    for (key, _) in known_sequence() {
        let mut generator = ToneGenerator::dtmf(key, 60, 90, -10.0).expect("a key");
        let mut buf = vec![0i16; 1200];
        let n = generator.fill(&mut buf);
        pcm.extend_from_slice(&buf[..n]);
    }
    pcm.extend(std::iter::repeat_n(0, 4000));
    pcm
}

fn write_wav(path: &std::path::Path, rate: u32, channels: u16, pcm8k: &[i16]) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    // Other rates: linear interpolation is plenty for tones far below 4 kHz.
    let ratio = 8000.0 / f64::from(rate);
    let frames = (pcm8k.len() as f64 / ratio) as usize;
    for i in 0..frames {
        let t = i as f64 * ratio;
        let j = t as usize;
        let a = f64::from(pcm8k[j]);
        let b = f64::from(*pcm8k.get(j + 1).unwrap_or(&0));
        let s = (a + (b - a) * (t - j as f64)).round() as i16;
        for c in 0..channels {
            // The second channel is the other leg: silent.
            w.write_sample(if c == 0 { s } else { 0 }).expect("write");
        }
    }
    w.finalize().expect("finalize wav");
}

fn run_cli(path: &std::path::Path) -> (bool, String, String) {
    let out = std::process::Command::new(rivr_bin())
        .args(["media", "dtmf"])
        .arg(path)
        .output()
        .expect("run rivr");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check_lines(stdout: &str, what: &str) {
    let expected = known_sequence();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{what}: {stdout}");
    for (line, (key, at)) in lines.iter().zip(expected) {
        let (seconds, digit) = line.split_once(' ').expect("`seconds digit`");
        assert_eq!(digit, key.to_string(), "{what}: {line}");
        let (whole, frac) = seconds.split_once('.').expect("decimal seconds");
        assert!(
            whole.chars().all(|c| c.is_ascii_digit()) && frac.len() == 3,
            "{line}"
        );
        let t: f64 = seconds.parse().expect("seconds");
        assert!(
            (t - at).abs() <= 0.003,
            "{what}: {line} but the key starts at {at:.3}"
        );
    }
}

#[test]
fn cli_prints_onset_and_key_per_line() {
    let dir = std::env::temp_dir().join(format!("rivr-dtmf-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pcm = known_recording();

    let narrow = dir.join("keys-8k.wav");
    write_wav(&narrow, 8000, 1, &pcm);
    let (ok, stdout, stderr) = run_cli(&narrow);
    assert!(ok, "{stderr}");
    check_lines(&stdout, "8 kHz mono");
    println!("rivr media dtmf keys-8k.wav:\n{stdout}");

    let wide = dir.join("keys-48k-stereo.wav");
    write_wav(&wide, 48_000, 2, &pcm);
    let (ok, stdout, stderr) = run_cli(&wide);
    assert!(ok, "{stderr}");
    check_lines(&stdout, "48 kHz stereo");

    // Carriers' recordings are often µ-law WAV (format tag 7).
    let sox_ok = std::process::Command::new("sox")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let skip_sox = std::env::var_os("RIVR_SKIP_SOX").is_some_and(|v| v == "1");
    assert!(
        sox_ok || skip_sox,
        "sox is missing (`make deps` installs it); set RIVR_SKIP_SOX=1 to skip the µ-law case on purpose"
    );
    if sox_ok {
        let ulaw = dir.join("keys-ulaw.wav");
        let status = std::process::Command::new("sox")
            .arg(&narrow)
            .args(["-e", "u-law", "-b", "8"])
            .arg(&ulaw)
            .status()
            .expect("run sox");
        assert!(status.success());
        let (ok, stdout, stderr) = run_cli(&ulaw);
        assert!(ok, "{stderr}");
        check_lines(&stdout, "µ-law WAV");
    } else {
        eprintln!("*** SKIPPED µ-law WAV case (RIVR_SKIP_SOX=1): sox is missing ***");
    }

    let missing = dir.join("absent.wav");
    let (ok, stdout, stderr) = run_cli(&missing);
    assert!(
        !ok && stdout.is_empty() && stderr.contains("absent.wav"),
        "{stderr}"
    );

    let garbage = dir.join("garbage.wav");
    std::fs::write(&garbage, b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk").expect("write");
    let (ok, _, stderr) = run_cli(&garbage);
    assert!(!ok && !stderr.is_empty());

    let _ = std::fs::remove_dir_all(&dir);
}
