//! A second, independent UA as the called party (issue 10): baresip (the
//! Debian package `baresip-core`, its own SIP and RTP stack) answers
//! `rivr call` automatically in PCMA. Its audio source is a WAV the test
//! writes (silence, then the in-band DTMF keys 1 2 3); its `sndfile`
//! module records what it decoded from rivr. Shown by measurement: the
//! prompt rivr plays correlates with its source in baresip's recording,
//! and baresip's tones reach the script's `gather` through rivr's in-band
//! detector (`[media] inband_dtmf = "always"`: baresip negotiates
//! telephone-events, so the default `auto` would not scan its audio); the
//! JSON line says `answered` with ring and talk times.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::audio::{align, to_f32};
use common::caller::{prompt, SIGNALLING};
use common::dialer::{CallSetup, Dialer};
use common::scratch::Scratch;
use common::sipp::free_port;

/// Fails the test when baresip is missing, unless `RIVR_SKIP_BARESIP=1`.
fn require_baresip() -> bool {
    let ok = Command::new("baresip")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        if std::env::var_os("RIVR_SKIP_BARESIP").is_some_and(|v| v == "1") {
            eprintln!("\n*** SKIPPED (RIVR_SKIP_BARESIP=1): `baresip` is not installed ***\n");
            return false;
        }
        panic!(
            "`baresip` is not installed (Debian package baresip-core; `make deps` installs it); \
             set RIVR_SKIP_BARESIP=1 to skip on purpose"
        );
    }
    true
}

/// 8 kHz mono: 1 s of silence, keys 1 2 3 (120 ms on, 120 ms off, both
/// tones at -10 dBm0 or so), then 20 s of silence.
fn write_keys_wav(path: &Path) {
    const RATE: f64 = 8000.0;
    let mut pcm: Vec<i16> = vec![0; 8000];
    for (lo, hi) in [(697.0, 1209.0), (697.0, 1336.0), (697.0, 1477.0)] {
        for n in 0..960 {
            let t = f64::from(n) / RATE;
            let v = 5000.0
                * ((2.0 * std::f64::consts::PI * lo * t).sin()
                    + (2.0 * std::f64::consts::PI * hi * t).sin());
            pcm.push(v as i16);
        }
        pcm.extend(std::iter::repeat_n(0, 960));
    }
    pcm.extend(std::iter::repeat_n(0, 8000 * 20));
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create keys.wav");
    for s in pcm {
        w.write_sample(s).expect("write keys.wav");
    }
    w.finalize().expect("finish keys.wav");
}

/// A running baresip, killed on drop.
struct Baresip {
    child: Child,
    port: u16,
    recordings: PathBuf,
    log: PathBuf,
}

impl Baresip {
    fn start(dir: &Path) -> Baresip {
        let cfg = dir.join("baresip");
        let recordings = dir.join("recordings");
        std::fs::create_dir_all(&cfg).expect("baresip config dir");
        std::fs::create_dir_all(&recordings).expect("baresip recordings dir");
        let keys = dir.join("keys.wav");
        write_keys_wav(&keys);
        let port = free_port();
        let (rtp_lo, rtp_hi) = common::scratch::rtp_range(8);
        // No console module: stdin is not a terminal. The ALSA "null"
        // device plays what was decoded, after sndfile recorded it.
        let config = format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{port}\n\
             audio_source aufile,{keys}\naudio_player alsa,null\naudio_alert alsa,null\n\
             rtp_ports {rtp_lo}-{rtp_hi}\n\
             module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\n\
             module alsa.so\nmodule sndfile.so\nmodule_app account.so\nmodule_app menu.so\n\
             snd_path {rec}\n",
            keys = keys.display(),
            rec = recordings.display(),
        );
        std::fs::write(cfg.join("config"), config).expect("baresip config");
        std::fs::write(
            cfg.join("accounts"),
            "<sip:1234@127.0.0.1>;regint=0;answermode=auto;audio_codecs=PCMA/8000/1\n",
        )
        .expect("baresip accounts");
        let log = dir.join("baresip.log");
        let child = Command::new("baresip")
            .arg("-f")
            .arg(&cfg)
            .arg("-t")
            .arg("120")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("baresip log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start baresip");
        let b = Baresip {
            child,
            port,
            recordings,
            log,
        };
        b.wait_log("baresip is ready", SIGNALLING);
        b
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "baresip never logged {needle:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What baresip decoded from rivr, from its sndfile recording.
    fn heard(&self) -> Vec<i16> {
        let file = std::fs::read_dir(&self.recordings)
            .expect("recordings dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .unwrap_or_else(|| panic!("baresip recorded nothing:\n{}", self.log()));
        hound::WavReader::open(&file)
            .expect("baresip's recording")
            .into_samples::<i16>()
            .collect::<Result<_, _>>()
            .expect("16-bit samples")
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PLAY_AND_GATHER: &str = r#"
play("main_menu");
let keys = gather(#{ max_digits: 3, timeout: 4000 });
set_result("keys", keys);
"#;

#[test]
fn baresip_answers_hears_the_prompt_and_its_tones_are_gathered() {
    if !require_baresip() {
        return;
    }
    let dir = Scratch::new("out-baresip");
    let baresip = Baresip::start(dir.path());
    let trunk_extra = "codecs = [\"pcma\"]\ncaller_id = \"15550100\"\n";
    // baresip negotiates telephone-events but its keys are tones in its
    // audio: only `always` scans such a leg for them.
    let mut call = Dialer::start_with_media(
        dir.path(),
        "baresip",
        &CallSetup {
            trunk_port: baresip.port,
            trunk_params: "",
            trunk_extra,
            script: Some(PLAY_AND_GATHER),
            args: &[],
            number: "1234",
        },
        "inband_dtmf = \"always\"",
    );
    let placed = call.finish(Duration::from_secs(90));
    baresip.wait_log("terminated", SIGNALLING);
    println!("{}", placed.json);
    assert_eq!(placed.outcome(), "answered", "{}", placed.json);
    assert_eq!(
        placed.result("keys"),
        Some("123"),
        "baresip's in-band keys reach gather: {}",
        placed.json
    );
    let menu = prompt("main_menu");
    let talk = placed.ms("talk_ms");
    assert!(
        talk >= menu.duration_ms() && talk < menu.duration_ms() + 10_000,
        "talk_ms {talk}: the prompt is {} ms and the gather ends at once",
        menu.duration_ms()
    );
    let heard = baresip.heard();
    // The recording stops with the call, and baresip's own playout delay
    // holds back the prompt's tail: measure the first 10 s.
    let reference = &menu.pcm_8k()[..menu.pcm_8k().len().min(80_000)];
    let (lag, ncc) = align(&to_f32(&heard), &to_f32(reference));
    println!(
        "baresip recorded {:.2} s; main_menu ({:.2} s, first {:.2} s measured) starts {} ms in, NCC {ncc:.4}",
        heard.len() as f64 / 8000.0,
        menu.pcm_8k().len() as f64 / 8000.0,
        reference.len() as f64 / 8000.0,
        lag / 8
    );
    assert!(
        ncc >= 0.9,
        "what baresip heard is not main_menu: NCC {ncc:.4}"
    );
}
