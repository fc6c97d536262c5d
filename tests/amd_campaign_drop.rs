//! Voicemail drop measured at the far end: `rivr serve` runs a campaign
//! created with `--amd` against lines owned by the test
//! (tests/amd/far_end.rs: a SIP UAS with one real RTP socket per call).
//! Three numbers answer with an espeak-ng voicemail greeting and a beep
//! (greetings of different lengths and voices, beeps of 1000, 1400 and
//! 800 Hz), two with a person's "hello?" then silence. The script leaves
//! its message (`health_info`) after a machine's beep and runs the live
//! flow (`survey_q1`, a key) for a person. What the lines recorded is the
//! witness: where the message starts after the beep ends (energy onset,
//! and the message found there by cross-correlation with the prompt), that
//! a person heard the live flow's prompt and never the message; and the
//! campaign report (`answered_by`, one attempt) and the INVITEs per number.

#[allow(dead_code)] // the SIPp tests use its u-law writer
#[path = "amd/audio.rs"]
mod audio;
mod common;
#[path = "amd/far_end.rs"]
mod far_end;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use audio::{path, speech, tone};
use common::audio::{align, g711_roundtrip, Heard, SPEECH_MS};
use common::caller::prompt;
use common::campaign::{created_id, rivr_cli};
use common::rtp::Packet;
use common::scratch::Scratch;
use common::server::{Rivr, RivrConfig};
use far_end::{Answered, FarEnd};
use rivr::media::g711::{self, Law};
use serde_json::Value;

/// The campaign's script: the verdict of `--amd` (AMD ran before the
/// script) picks the flow.
const SCRIPT: &str = r##"
if call.answered_by == "machine" {
    let b = wait_for_beep(#{ timeout_ms: 15000 });
    set_result("beep", `${b.beep}`);
    set_result("beep_hz", `${b.freq_hz}`);
    play("health_info");
} else {
    let key = gather(#{ prompt: "survey_q1", max_digits: 1, timeout: 5000 });
    set_result("key", key);
    play("survey_thanks");
}
hangup();
"##;

/// The message left on voicemail, and the live flow's prompt.
const MESSAGE: &str = "health_info";
const LIVE: &str = "survey_q1";

/// The limit the issue sets: the message starts ≤ 500 ms after the beep.
const MAX_GAP: Duration = Duration::from_millis(500);
/// NCC at which a prompt counts as heard (G.711 both ways: ~0.99).
const HEARD: f64 = 0.9;

/// A called line: its number, what it says when it answers, and what it
/// is.
struct Line {
    number: &'static str,
    voice: &'static str,
    text: &'static str,
    /// The beep after the greeting (Hz, s); `None`: a person.
    beep: Option<(f64, f64)>,
}

const LINES: [Line; 5] = [
    Line {
        number: "254712000401",
        voice: "en-us",
        text: "Hi, you have reached the voicemail of Sarah. I can't take your call right now. Please leave a message after the tone.",
        beep: Some((1000.0, 0.5)),
    },
    Line {
        number: "254712000402",
        voice: "en-gb",
        text: "Hi, this is Mark. Leave a message after the tone.",
        beep: Some((1400.0, 0.3)),
    },
    Line {
        number: "254712000403",
        voice: "en-us+f3",
        text: "Hello, you have reached the office of Doctor Mwangi. Nobody can take your call right now. Please leave your name and number after the tone.",
        beep: Some((800.0, 0.8)),
    },
    Line {
        number: "254712000404",
        voice: "en-us",
        text: "Hello?",
        beep: None,
    },
    Line {
        number: "254712000405",
        voice: "en-gb",
        text: "Yes, hello?",
        beep: None,
    },
];

fn wav(p: &Path) -> Vec<i16> {
    hound::WavReader::open(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .samples::<i16>()
        .map(|s| s.expect("a 16-bit sample"))
        .collect()
}

/// The line's clip (8 kHz): 0.4 s of quiet, the words, and for a machine
/// 0.3 s of quiet and its beep, which ends the clip (the line's sender
/// goes on with silence).
fn clip(dir: &Path, line: &Line) -> Vec<i16> {
    let name = line.number;
    let mut pcm = vec![0i16; 400 * 8];
    pcm.extend(wav(&speech(dir, name, line.voice, line.text)));
    if let Some((hz, secs)) = line.beep {
        pcm.extend(vec![0i16; 300 * 8]);
        pcm.extend(wav(&tone(dir, &format!("{name}-beep"), hz, secs)));
    }
    pcm
}

/// Mean square of a G.711 packet's audio.
fn loudness(p: &Packet) -> f64 {
    let mut pcm = [0i16; 160];
    let n = p.payload.len().min(160);
    g711::decode(Law::Ulaw, &p.payload[..n], &mut pcm[..n]);
    pcm[..n]
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        / n.max(1) as f64
}

/// When rivr's audio first carried sound (above -40 dBFS) after `after`.
fn first_sound(packets: &[Packet], after: Instant) -> Option<Instant> {
    packets
        .iter()
        .filter(|p| p.payload_type == 0 && p.arrival >= after)
        .find(|p| loudness(p) > SPEECH_MS)
        .map(|p| p.arrival)
}

/// When sample `i` of `heard` reached the socket: its packet's arrival
/// plus its place in the packet.
fn sample_time(heard: &Heard, i: usize) -> Option<Instant> {
    let k = heard.packet_at(i)?;
    let (start, arrival) = *heard.packets.get(k)?;
    Some(arrival + Duration::from_micros((i - start) as u64 * 125))
}

/// Where the prompt `name` is in what `call` heard: (NCC, when its first
/// sound reached the socket).
fn find_prompt(heard: &Heard, name: &str) -> (f64, Option<Instant>) {
    let p = prompt(name);
    let reference = g711_roundtrip(p.pcm_8k(), 0);
    let (lag, ncc) = align(&heard.samples, &reference);
    let first = reference
        .iter()
        .position(|&x| f64::from(x) * f64::from(x) > SPEECH_MS)
        .unwrap_or(0);
    (ncc, sample_time(heard, lag + first))
}

/// What one machine line measured: the beep's end (its own clock) to the
/// message's first sound in what it received.
struct DropGap {
    gap_ms: i64,
    onset_vs_ncc_ms: i64,
    ncc: f64,
}

fn measure_drop(call: &Answered, clip_len: usize) -> DropGap {
    let started = call.clip_started.expect("the line never played its clip");
    let beep_end = started + Duration::from_micros(clip_len as u64 * 125);
    let packets = call.peer.packets();
    let heard = Heard::decode(&packets, 0);
    let onset = first_sound(&packets, started).expect("rivr's message never reached the line");
    let (ncc, message) = find_prompt(&heard, MESSAGE);
    let message = message.expect("the message's place in the recording");
    let ms = |a: Instant, b: Instant| -> i64 {
        if a >= b {
            (a - b).as_millis() as i64
        } else {
            -((b - a).as_millis() as i64)
        }
    };
    DropGap {
        gap_ms: ms(message, beep_end),
        onset_vs_ncc_ms: ms(onset, message),
        ncc,
    }
}

#[test]
fn an_amd_campaign_leaves_its_message_after_the_beep_and_runs_the_live_flow_for_people() {
    let dir = Scratch::new("amd-drop");
    let clips: HashMap<String, Vec<i16>> = LINES
        .iter()
        .map(|l| (l.number.to_string(), clip(dir.path(), l)))
        .collect();
    let lens: HashMap<String, usize> = clips.iter().map(|(n, c)| (n.clone(), c.len())).collect();
    let far = FarEnd::start(clips);

    let cfg = RivrConfig {
        extra_tables: format!(
            "[store]\nurl = \"sqlite://{db}\"\n\
             [[trunk]]\nname = \"lines\"\nuri = \"sip:127.0.0.1:{port}\"\ncps = 50\n\
             max_channels = 20\nring_timeout = 30\noptions_interval = 0\n",
            db = dir.join("rivr.db").display(),
            port = far.port,
        ),
        ..RivrConfig::default()
    };
    let mut rivr = Rivr::start("amd-drop", cfg);
    let config = rivr.dir.join("rivr.toml");
    let contacts = rivr.dir.join("contacts.csv");
    let mut csv = String::from("phone\n");
    for l in &LINES {
        csv.push_str(&format!("+{}\n", l.number));
    }
    std::fs::write(&contacts, csv).expect("write contacts.csv");
    let script = rivr.dir.join("drop.rhai");
    std::fs::write(&script, SCRIPT).expect("write drop.rhai");
    let created = rivr_cli(
        &config,
        &[
            "create",
            "--name",
            "amd-drop",
            "--contacts",
            path(&contacts),
            "--script",
            path(&script),
            "--trunk",
            "lines",
            "--cps",
            "10",
            "--max-channels",
            "10",
            "--attempts",
            "2",
            "--retry",
            "no_answer=3s",
            "--hours",
            "00:00-24:00",
            "--tz",
            "UTC",
            "--amd",
        ],
    );
    let id = created_id(&created, LINES.len());
    rivr_cli(&config, &["start", &id]);

    // A person presses 1 once the question has been heard to its end.
    let humans: HashSet<&str> = LINES
        .iter()
        .filter(|l| l.beep.is_none())
        .map(|l| l.number)
        .collect();
    let question = Duration::from_millis(prompt(LIVE).duration_ms() + 400);
    let mut pressed = HashSet::new();
    let t0 = Instant::now();
    let status = loop {
        far.with_calls(|calls| {
            for c in calls.iter().filter(|c| humans.contains(c.number.as_str())) {
                let Some(started) = c.clip_started else {
                    continue;
                };
                let heard = first_sound(&c.peer.packets(), started);
                if heard.is_some_and(|t| t.elapsed() >= question)
                    && pressed.insert(c.call_id.clone())
                {
                    c.peer.press('1', 160);
                }
            }
        });
        let s: Value = serde_json::from_str(&rivr_cli(&config, &["status", &id, "--json"]))
            .expect("status JSON");
        if s["state"] == "done" {
            println!("[amd-drop] done in {:?}: {s}", t0.elapsed());
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "campaign not done in 60 s: {s}\n{}",
            rivr.stderr()
        );
        assert!(rivr.is_running(), "rivr exited: {}", rivr.stderr());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status["amd"], true, "{status}");
    let report: Value =
        serde_json::from_str(&rivr_cli(&config, &["report", &id, "--format", "json"]))
            .expect("report JSON");
    let rows = report.as_array().expect("report rows").clone();
    let invites = far.invites();
    let _ = rivr.terminate(Duration::from_secs(5));
    let calls = far.stop();

    let mut wrong = Vec::new();
    for line in &LINES {
        let n = line.number;
        let row = rows
            .iter()
            .find(|r| r["phone"] == format!("+{n}"))
            .unwrap_or_else(|| panic!("no report row for {n}: {rows:?}"));
        let want = if line.beep.is_some() {
            "machine"
        } else {
            "human"
        };
        let sent = invites.iter().filter(|(num, _)| num == n).count();
        println!(
            "[amd-drop] {n}: {} answered_by={} attempts={} results={} INVITEs={sent}",
            row["outcome"], row["answered_by"], row["attempts"], row["results"]
        );
        if (
            row["outcome"].as_str(),
            row["answered_by"].as_str(),
            row["attempts"].as_u64(),
        ) != (Some("answered"), Some(want), Some(1))
        {
            wrong.push(format!("{n}: report row {row} (want answered by {want})"));
        }
        if sent != 1 {
            wrong.push(format!("{n}: {sent} INVITEs at the line"));
        }
        let Some(call) = calls.iter().find(|c| c.number == n) else {
            wrong.push(format!("{n}: never answered"));
            continue;
        };
        if call.bye.is_none() {
            wrong.push(format!("{n}: rivr never hung up"));
        }
        if let Some((hz, _)) = line.beep {
            let d = measure_drop(call, lens[n]);
            println!(
                "[amd-drop] {n} ({hz} Hz beep, greeting + beep {:.2} s): message starts {} ms \
                 after the beep ends (energy onset {:+} ms from the correlated start, NCC {:.3}); \
                 wait_for_beep heard {} Hz",
                lens[n] as f64 / 8000.0,
                d.gap_ms,
                d.onset_vs_ncc_ms,
                d.ncc,
                row["results"]["beep_hz"]
            );
            if d.ncc < HEARD {
                wrong.push(format!("{n}: the message was not heard (NCC {:.3})", d.ncc));
            }
            if d.onset_vs_ncc_ms.abs() > 60 {
                wrong.push(format!(
                    "{n}: the first sound after the clip is {} ms from the message",
                    d.onset_vs_ncc_ms
                ));
            }
            if !(0..=MAX_GAP.as_millis() as i64).contains(&d.gap_ms) {
                wrong.push(format!(
                    "{n}: the message starts {} ms after the beep ends",
                    d.gap_ms
                ));
            }
            if row["results"]["beep"] != "true" {
                wrong.push(format!("{n}: wait_for_beep heard no beep: {row}"));
            }
        } else {
            let heard = Heard::decode(&call.peer.packets(), 0);
            let (live, _) = find_prompt(&heard, LIVE);
            let (message, _) = find_prompt(&heard, MESSAGE);
            let started = call.clip_started.expect("the line never played its clip");
            let flow = first_sound(&call.peer.packets(), started)
                .map(|t| t.saturating_duration_since(started));
            println!(
                "[amd-drop] {n}: the live flow's first sound {} ms after the answer; \
                 {LIVE} NCC {live:.3}, {MESSAGE} NCC {message:.3}",
                flow.map_or(-1, |d| d.as_millis() as i64)
            );
            if live < HEARD {
                wrong.push(format!("{n}: {LIVE} not heard (NCC {live:.3})"));
            }
            if message >= 0.5 {
                wrong.push(format!("{n}: a person got the message (NCC {message:.3})"));
            }
            if flow.is_none_or(|d| d > Duration::from_millis(3500)) {
                wrong.push(format!(
                    "{n}: the live flow started {flow:?} after the answer"
                ));
            }
            if row["results"]["key"] != "1" {
                wrong.push(format!("{n}: the flow did not take the key: {row}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
