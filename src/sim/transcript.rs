//! The transcript of a simulated call: one line per event on the virtual
//! timeline (what the script did, what the caller heard and pressed, how
//! the call ended), printed as text for a person or as one JSON object per
//! line (`rivr sim --json`).

use serde::Serialize;

/// A prompt as it was queued or heard: its name and milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromptSpan {
    pub name: String,
    /// How much of it the caller heard (for a play: its whole length).
    pub ms: u64,
    /// Its whole length.
    pub of_ms: u64,
}

/// Why a play ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlayEnd {
    /// Played to its end.
    End,
    /// An interruptible play stopped at the caller's key.
    Key,
    /// The script stopped it (a key in `gather`, its time limit, a newer play).
    Stopped,
    /// The call ended underneath it.
    Hangup,
}

/// One thing that happened on the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Start {
        script: String,
        from: String,
        to: String,
    },
    Answer,
    Ring,
    /// 183 with early media (`progress()`).
    Progress,
    Reject {
        code: u16,
    },
    /// The script (or the end of the script) hung up.
    Hangup,
    Play {
        id: u64,
        prompts: Vec<PromptSpan>,
        interruptible: bool,
    },
    /// What the caller heard of play `id` when it ended.
    Heard {
        id: u64,
        prompts: Vec<PromptSpan>,
        ended: PlayEnd,
    },
    /// The caller pressed a key.
    Key {
        key: char,
    },
    SendDigits {
        keys: String,
    },
    SetResult {
        key: String,
        value: String,
    },
    /// `send_sms`: recorded, never sent.
    Sms {
        to: String,
        text: String,
        id: String,
    },
    /// `opt_out()`: recorded, the list is not written.
    OptOut {
        number: String,
    },
    /// `dial()`: the simulated far party and how it ended.
    Dial {
        target: String,
        outcome: String,
        ring_ms: u64,
    },
    /// A line the script wrote with `log()`.
    Log {
        message: String,
    },
    CallerHangup,
    /// Keys the caller was given and never pressed (the call ended first).
    Unpressed {
        keys: String,
    },
    /// How the script ended: completed, hung_up, caller_hung_up, failed.
    End {
        outcome: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

/// An event at its virtual time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    /// Milliseconds since the call started.
    pub t_ms: u64,
    #[serde(flatten)]
    pub event: Event,
}

impl Line {
    /// One JSON object.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// `   4.120  key 2`: seconds with milliseconds, the event, its details.
    pub fn text(&self) -> String {
        format!("{:>8}  {}", seconds(self.t_ms), describe(&self.event))
    }
}

/// `s.mmm`
pub fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn spans(prompts: &[PromptSpan], heard: bool) -> String {
    prompts
        .iter()
        .map(|p| {
            if heard && p.ms != p.of_ms {
                format!("{} ({} of {} s)", p.name, seconds(p.ms), seconds(p.of_ms))
            } else {
                format!("{} ({} s)", p.name, seconds(p.of_ms))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(e: &Event) -> String {
    match e {
        Event::Start { script, from, to } => format!("start {script} from={from} to={to}"),
        Event::Answer => "answer".into(),
        Event::Ring => "ring".into(),
        Event::Progress => "progress (early media)".into(),
        Event::Reject { code } => format!("reject {code}"),
        Event::Hangup => "hangup".into(),
        Event::Play {
            prompts,
            interruptible,
            ..
        } => {
            let barge = if *interruptible { " [barge-in]" } else { "" };
            format!("play {}{barge}", spans(prompts, false))
        }
        Event::Heard { prompts, ended, .. } => {
            let how = match ended {
                PlayEnd::End => "",
                PlayEnd::Key => " [cut by key]",
                PlayEnd::Stopped => " [stopped]",
                PlayEnd::Hangup => " [cut by hangup]",
            };
            if prompts.is_empty() {
                format!("heard nothing{how}")
            } else {
                format!("heard {}{how}", spans(prompts, true))
            }
        }
        Event::Key { key } => format!("key {key}"),
        Event::SendDigits { keys } => format!("send_dtmf {keys}"),
        Event::SetResult { key, value } => format!("set_result {key} = {value:?}"),
        Event::Sms { to, text, id } => format!("send_sms to {to} {text:?} (not sent; id {id})"),
        Event::OptOut { number } => format!("opt_out {number} (not written)"),
        Event::Dial {
            target,
            outcome,
            ring_ms,
        } => format!(
            "dial {target}: {outcome} after {} s (simulated)",
            seconds(*ring_ms)
        ),
        Event::Log { message } => format!("log {message}"),
        Event::CallerHangup => "caller hangs up".into(),
        Event::Unpressed { keys } => format!("keys never pressed: {keys}"),
        Event::End { outcome, error } => match error {
            Some(e) => format!("end {outcome}: {e}"),
            None => format!("end {outcome}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_lines() {
        let l = Line {
            t_ms: 4120,
            event: Event::Heard {
                id: 1,
                prompts: vec![PromptSpan {
                    name: "main_menu".into(),
                    ms: 1500,
                    of_ms: 4120,
                }],
                ended: PlayEnd::Key,
            },
        };
        assert_eq!(
            l.text(),
            "   4.120  heard main_menu (1.500 of 4.120 s) [cut by key]"
        );
        assert_eq!(
            l.json(),
            r#"{"t_ms":4120,"event":"heard","id":1,"prompts":[{"name":"main_menu","ms":1500,"of_ms":4120}],"ended":"key"}"#
        );
        let end = Line {
            t_ms: 0,
            event: Event::End {
                outcome: "completed".into(),
                error: None,
            },
        };
        assert_eq!(
            end.json(),
            r#"{"t_ms":0,"event":"end","outcome":"completed"}"#
        );
        assert_eq!(end.text(), "   0.000  end completed");
    }
}
