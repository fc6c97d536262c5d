//! The DTMF accuracy tables: both receivers on the ITU-T Q.24 cases and on
//! the talk-off corpus (`codecs_bench::dtmf`, the same signals rivr's
//! tests in `codecs-bench/tests/` assert on).

use codecs_bench::dtmf::{self, Score};
use codecs_bench::signals::{music, speech};

fn print_score_header(out: &mut String) {
    outln!(out, "| case group | cases | rivr correct | rivr missed keys | rivr false keys | spandsp correct | spandsp missed keys | spandsp false keys |");
    outln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
}

fn print_scores(out: &mut String, name: &str, s: &[Score; 2]) {
    outln!(
        out,
        "| {name} | {} | {} | {} | {} | {} | {} | {} |",
        s[0].cases,
        s[0].correct,
        s[0].missed,
        s[0].false_keys,
        s[1].correct,
        s[1].missed,
        s[1].false_keys
    );
}

/// One row per Q.24 case group, then the totals.
pub fn q24_section(out: &mut String) {
    outln!(out, "\n### DTMF accuracy on the ITU-T Q.24 cases (linear, µ-law and A-law channels, all 16 keys)\n");
    print_score_header(out);
    let mut total = [Score::default(); 2];
    for (name, s) in dtmf::run_q24() {
        print_scores(out, name, &s);
        for (t, x) in total.iter_mut().zip(s) {
            t.cases += x.cases;
            t.correct += x.correct;
            t.missed += x.missed;
            t.false_keys += x.false_keys;
        }
    }
    print_scores(out, "**total**", &total);
}

/// False keys per material: espeak-ng speech (when espeak-ng and sox are
/// installed), then the music-like signals.
pub fn talkoff_section(out: &mut String) {
    let mut material: Vec<(String, Vec<i16>)> = music::talkoff_corpus()
        .into_iter()
        .map(|(name, pcm)| (name.to_owned(), pcm))
        .collect();
    match speech::talkoff_corpus() {
        Ok(voices) => {
            let count = voices.len();
            let pcm: Vec<i16> = voices.into_iter().flat_map(|v| v.pcm).collect();
            material.insert(
                0,
                (
                    format!("espeak-ng speech, {count} voices, 10 languages"),
                    pcm,
                ),
            );
        }
        Err(e) => eprintln!("*** speech talk-off skipped: {e}"),
    }
    outln!(
        out,
        "\n### DTMF talk-off (no key should be reported; scanned as is and 20 dB down)\n"
    );
    outln!(
        out,
        "| material | minutes | rivr false keys | spandsp false keys |"
    );
    outln!(out, "|---|---:|---:|---:|");
    let mut total = (0.0, [0usize; 2]);
    for (name, pcm) in &material {
        let minutes = pcm.len() as f64 / 8000.0 / 60.0;
        let found = dtmf::talkoff(pcm);
        outln!(
            out,
            "| {name} | {minutes:.1} | {} | {} |",
            found[0],
            found[1]
        );
        total.0 += minutes;
        total.1[0] += found[0];
        total.1[1] += found[1];
    }
    outln!(
        out,
        "| **total** | {:.1} | {} | {} |",
        total.0,
        total.1[0],
        total.1[1]
    );
}
