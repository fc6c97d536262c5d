//! Test audio made with sox and espeak-ng (`make deps` installs both; a
//! missing tool fails the test): speech, tones and silence as 8 kHz WAV,
//! joined into raw u-law for SIPp's rtp_stream.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn run(program: &str, args: &[&str]) {
    let ok = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("run {program} (make deps): {e}"))
        .success();
    assert!(ok, "{program} {args:?} failed");
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// `text` spoken by espeak-ng, as 8 kHz 16-bit WAV at -6 dBFS.
pub fn speech(dir: &Path, name: &str, voice: &str, text: &str) -> PathBuf {
    let raw = dir.join(format!("{name}-raw.wav"));
    let out = dir.join(format!("{name}.wav"));
    run("espeak-ng", &["-v", voice, "-w", path(&raw), text]);
    run(
        "sox",
        &[
            path(&raw),
            "-r",
            "8000",
            "-c",
            "1",
            "-b",
            "16",
            path(&out),
            "norm",
            "-6",
        ],
    );
    out
}

/// `secs` of a sine at `hz` (0: silence), -14 dBFS, 8 kHz.
pub fn tone(dir: &Path, name: &str, hz: f64, secs: f64) -> PathBuf {
    let out = dir.join(format!("{name}.wav"));
    let (len, f) = (secs.to_string(), hz.to_string());
    let mut args = vec!["-n", "-r", "8000", "-c", "1", "-b", "16", path(&out)];
    if hz > 0.0 {
        args.extend(["synth", &len, "sine", &f, "gain", "-14"]);
    } else {
        args.extend(["trim", "0", &len]);
    }
    run("sox", &args);
    out
}

/// The parts, one after the other, as raw 8 kHz u-law (rtp_stream's
/// input).
pub fn ulaw(dir: &Path, name: &str, parts: &[PathBuf]) -> PathBuf {
    let out = dir.join(format!("{name}.ulaw"));
    let mut args: Vec<&str> = parts.iter().map(|p| path(p)).collect();
    args.extend(["-t", "ul", path(&out)]);
    run("sox", &args);
    out
}
