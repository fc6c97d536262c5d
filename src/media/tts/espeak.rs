//! The default engine: the `espeak-ng` program, run once per synthesis
//! (not linked: a crash or a hang in it stays in its own process, and is
//! killed at the timeout). The text is one argument after `--`, so a text
//! starting with `-` is spoken, never read as an option; no shell is
//! involved. espeak-ng writes a 22050 Hz WAV to stdout.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{SayRequest, Speech, TtsEngine, TtsError};
use crate::media::prompt::{decode_bytes, MAX_PROMPT_SECONDS};

/// Most bytes of WAV read from the program: the prompt length limit at
/// espeak-ng's 22050 Hz, 16-bit, plus the header.
const MAX_OUTPUT_BYTES: u64 = 22_050 * 2 * MAX_PROMPT_SECONDS + 4096;
/// Most bytes of the program's error output kept for the message.
const MAX_STDERR_BYTES: u64 = 4096;
/// How often the program is checked for its end.
const POLL: Duration = Duration::from_millis(2);

/// espeak-ng run as a program.
#[derive(Debug, Clone)]
pub struct Espeak {
    program: PathBuf,
}

impl Espeak {
    /// `program` is `espeak-ng` (found on `PATH`) or a path to it.
    pub fn new(program: impl Into<PathBuf>) -> Espeak {
        Espeak {
            program: program.into(),
        }
    }

    pub fn program(&self) -> &Path {
        &self.program
    }
}

impl Default for Espeak {
    fn default() -> Self {
        Espeak::new("espeak-ng")
    }
}

impl TtsEngine for Espeak {
    fn name(&self) -> &str {
        "espeak-ng"
    }

    fn synthesize(&self, req: &SayRequest, timeout: Duration) -> Result<Speech, TtsError> {
        let started = Instant::now();
        let mut child = Command::new(&self.program)
            .args(["-b", "1", "-v", req.voice(), "-s"])
            .arg(req.rate_wpm().to_string())
            .args(["--stdout", "--", req.text()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                TtsError::Engine(format!(
                    "cannot run {}: {e} ([tts] program; `apt install espeak-ng`)",
                    self.program.display()
                ))
            })?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(TtsError::Engine("no pipes to espeak-ng".into()));
        };
        // The reader stops at the limit and drops the pipe: the program
        // then fails writing and ends, rather than filling memory.
        let reader = std::thread::Builder::new()
            .name("tts-read".into())
            .spawn(move || {
                let mut wav = Vec::new();
                let mut err = Vec::new();
                let read = stdout.take(MAX_OUTPUT_BYTES + 1).read_to_end(&mut wav);
                let _ = stderr.take(MAX_STDERR_BYTES).read_to_end(&mut err);
                (read.map(|_| wav), err)
            })
            .map_err(|e| TtsError::Engine(format!("cannot start a reader thread: {e}")))?;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() >= timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = reader.join();
                    return Err(TtsError::Timeout(timeout));
                }
                Ok(None) => std::thread::sleep(POLL),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = reader.join();
                    return Err(TtsError::Engine(format!("waiting for espeak-ng: {e}")));
                }
            }
        };
        let (wav, err) = reader
            .join()
            .map_err(|_| TtsError::Engine("the espeak-ng reader panicked".into()))?;
        let err = String::from_utf8_lossy(&err).trim().to_owned();
        if err.contains("voice does not exist") {
            return Err(TtsError::UnknownVoice(req.voice().to_owned()));
        }
        if !status.success() {
            return Err(TtsError::Engine(format!(
                "espeak-ng failed ({status}): {err}"
            )));
        }
        let wav = wav.map_err(|e| TtsError::Engine(format!("reading espeak-ng's output: {e}")))?;
        if wav.len() as u64 > MAX_OUTPUT_BYTES {
            return Err(TtsError::BadRequest(format!(
                "the speech is longer than {MAX_PROMPT_SECONDS} s"
            )));
        }
        let (samples, rate_hz) = decode_bytes(wav, Path::new("espeak-ng.wav"))
            .map_err(|e| TtsError::Audio(e.to_string()))?;
        Ok(Speech { samples, rate_hz })
    }
}
