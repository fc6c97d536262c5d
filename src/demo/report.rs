//! What the demo prints: the progress bar while the campaign runs (redrawn
//! in place on a terminal, one line per change elsewhere, so CI logs stay
//! short), the report table, and the check of each contact's outcome
//! against what the carrier does with its number.

use std::io::Write;

use crate::store::{Campaign, ReportRow, Status};

use super::carrier::Behaviour;

/// Draws the bar; remembers what it last drew.
pub struct Progress {
    tty: bool,
    last: Option<(u64, u64, u64, crate::store::CampaignState)>,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            tty: std::io::IsTerminal::is_terminal(&std::io::stdout()),
            last: None,
        }
    }

    pub fn draw(&mut self, c: &Campaign, s: &Status) {
        let key = (s.done, s.in_progress, s.texted, c.state);
        if !self.tty && self.last == Some(key) {
            return;
        }
        self.last = Some(key);
        const W: u64 = 30;
        let filled = (s.done * W).checked_div(s.contacts).unwrap_or(W).min(W);
        let line = format!(
            "campaign [{}{}] {}/{} done, {} up, {} waiting | answered {} busy {} no answer {} failed {} texted {} | {}",
            "#".repeat(filled as usize),
            ".".repeat((W - filled) as usize),
            s.done,
            s.contacts,
            s.in_progress,
            s.waiting,
            s.answered,
            s.busy,
            s.no_answer,
            s.failed,
            s.texted,
            c.state,
        );
        let mut out = std::io::stdout().lock();
        if self.tty {
            let _ = write!(out, "\r{line}\x1b[K");
        } else {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }

    /// Ends the bar's line.
    pub fn finish(&mut self) {
        if self.tty {
            println!();
        }
    }
}

/// The outcome and attempts a contact must end with, by its number (the
/// campaign makes 2 attempts).
pub fn expected(phone: &str) -> (&'static str, u32) {
    match Behaviour::for_number(phone) {
        Behaviour::Answer | Behaviour::AnswerThenHangup => ("answered", 1),
        Behaviour::Busy => ("busy", 2),
        Behaviour::RingOut => ("no_answer", 2),
        Behaviour::Unavailable => ("congestion", 2),
    }
}

fn what_carrier_does(phone: &str) -> &'static str {
    match Behaviour::for_number(phone) {
        Behaviour::Answer => "answers",
        Behaviour::AnswerThenHangup => "answers, hangs up",
        Behaviour::Busy => "486 busy",
        Behaviour::RingOut => "rings out",
        Behaviour::Unavailable => "503",
    }
}

/// Prints the table; the rows whose outcome or attempts differ from what
/// their number dictates, as text.
pub fn print_table(rows: &[ReportRow]) -> Vec<String> {
    let mut wrong = Vec::new();
    println!(
        "{:<15} {:<7} {:<18} {:<11} {:>3} {:>4} {:>6}  {:<14} {:<9} ok",
        "phone", "name", "carrier", "outcome", "try", "sip", "talk", "heard", "sms"
    );
    for r in rows {
        let outcome = r.outcome.map_or("-", |o| o.as_str());
        let (want, tries) = expected(&r.phone);
        let ok = outcome == want && r.attempts == tries;
        if !ok {
            wrong.push(format!(
                "{}: {outcome} after {} attempt(s), expected {want} after {tries}",
                r.phone, r.attempts
            ));
        }
        let field = |k: &str| {
            r.results
                .as_ref()
                .and_then(|m| m.get(k))
                .and_then(|v| v.as_str())
                .unwrap_or("-")
                .to_string()
        };
        let name = r
            .fields
            .iter()
            .find(|(k, _)| k == "name")
            .map_or("-", |(_, v)| v.as_str());
        println!(
            "{:<15} {:<7} {:<18} {:<11} {:>3} {:>4} {:>5.1}s  {:<14} {:<9} {}",
            r.phone,
            name,
            what_carrier_does(&r.phone),
            outcome,
            r.attempts,
            r.sip_status.map_or("-".into(), |s| s.to_string()),
            r.talk_ms as f64 / 1000.0,
            field("heard"),
            r.sms_state.map_or("-", |s| s.as_str()),
            if ok { "yes" } else { "NO" },
        );
    }
    wrong
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_behaviour_has_its_outcome() {
        assert_eq!(expected("+254712000100"), ("answered", 1));
        assert_eq!(expected("+254712000105"), ("answered", 1));
        assert_eq!(expected("+254712000102"), ("busy", 2));
        assert_eq!(expected("+254712000103"), ("no_answer", 2));
        assert_eq!(expected("+254712000104"), ("congestion", 2));
    }
}
