//! The flow on a virtual clock: a survey answered question by question,
//! its session forgotten after `[sms] session_ttl_s`, answers kept, a
//! broken script failing only its own message, opt-out and opt-in. The
//! SMS service points at a port nobody listens on: replies stay queued in
//! the store, where the test reads them.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use super::FlowTask;
use crate::config::Config;
use crate::sms::SmsService;

const SURVEY: &str = r#"
let step = session.step ?? 0;
if step == 0 {
    reply("Q1: how was your visit? (1-5)");
    session.step = 1;
} else if step == 1 {
    set_result("visit", sms.text);
    reply("Q2: would you come back? yes/no");
    session.step = 2;
} else {
    set_result("again", sms.keyword);
    reply("Thank you!");
    session.clear();
}
"#;

const BROKEN: &str = "reply(\"before\");\nlet x = 1;\nx.no_such_method();\n";

struct Rig {
    task: FlowTask,
    now: Arc<AtomicI64>,
    _dir: std::path::PathBuf,
}

fn rig(rt: &tokio::runtime::Runtime) -> Rig {
    let dir = std::env::temp_dir().join(format!("rivr-flow-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("survey.rhai"), SURVEY).unwrap();
    std::fs::write(dir.join("broken.rhai"), BROKEN).unwrap();
    let toml = "[store]\nurl = \"sqlite::memory:\"\n\
        [smpp]\nhost = \"127.0.0.1\"\nport = 9\nsystem_id = \"t\"\npassword = \"t\"\n\
        [sms]\nsession_ttl_s = 600\n\
        [[sms_route]]\nname = \"survey\"\nkeyword = \"survey\"\nscript = \"survey.rhai\"\n\
        [[sms_route]]\nname = \"broken\"\nkeyword = \"broken\"\nscript = \"broken.rhai\"\n\
        [[sms_route]]\nname = \"survey-default\"\nscript = \"survey.rhai\"\n";
    let cfg = Config::parse(toml, "t.toml", &dir).unwrap_or_else(|e| panic!("{e}"));
    let sms = rt.block_on(SmsService::start(&cfg)).unwrap();
    let now = Arc::new(AtomicI64::new(1_000_000));
    let clock = now.clone();
    let task = FlowTask {
        cfg: Arc::new(cfg.sms.clone()),
        sms,
        scripts: Arc::new(crate::server::script_cache(&cfg, 8)),
        clock: Arc::new(move || clock.load(Ordering::SeqCst)),
    };
    Rig {
        task,
        now,
        _dir: dir,
    }
}

impl Rig {
    /// One inbound SMS, answered; what the flow did with it.
    fn text(&self, rt: &tokio::runtime::Runtime, from: &str, to: &str, body: &str) -> String {
        rt.block_on(async {
            let id = self.task.sms.accept_inbound(from, to, body).await.unwrap();
            for m in self.task.sms.store().flow_pending(0, 10).await.unwrap() {
                self.task.handle(m).await.unwrap();
            }
            let row = self.task.sms.store().flow_row(&id).await.unwrap().unwrap();
            match row.error {
                Some(e) => format!("{} {e}", row.state),
                None => row.state,
            }
        })
    }

    fn sent(&self, rt: &tokio::runtime::Runtime, to: &str) -> Vec<String> {
        rt.block_on(self.task.sms.store().bodies_sent_to(to))
            .unwrap()
    }

    fn advance_s(&self, s: i64) {
        self.now.fetch_add(s * 1000, Ordering::SeqCst);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_survey_goes_question_by_question_and_its_session_expires() {
    let rt = runtime();
    let r = rig(&rt);
    let a = "254700000001";
    assert_eq!(r.text(&rt, a, "2001", "Survey"), "done");
    assert_eq!(r.text(&rt, a, "2001", "4"), "done");
    r.advance_s(599);
    assert_eq!(r.text(&rt, a, "2001", "Yes!"), "done");
    assert_eq!(
        r.sent(&rt, a),
        [
            "Q1: how was your visit? (1-5)",
            "Q2: would you come back? yes/no",
            "Thank you!"
        ]
    );
    let live = rt.block_on(r.task.sms.store().sms_live_routes(a, i64::MAX - 1));
    assert!(
        live.unwrap().is_empty(),
        "session.clear() ends the conversation"
    );
    let results = rt
        .block_on(r.task.sms.store().sms_results(None, 0))
        .unwrap();
    let got: Vec<(&str, &str, &str)> = results
        .iter()
        .map(|x| (x.route.as_str(), x.name.as_str(), x.value.as_str()))
        .collect();
    assert_eq!(got, [("survey", "visit", "4"), ("survey", "again", "YES")]);

    // Half-way through, the session is forgotten after its lifetime.
    let b = "254700000002";
    r.text(&rt, b, "2001", "survey");
    r.advance_s(600);
    r.text(&rt, b, "2001", "5");
    assert_eq!(
        r.sent(&rt, b),
        [
            "Q1: how was your visit? (1-5)",
            "Q1: how was your visit? (1-5)"
        ],
        "the second message starts over"
    );
}

#[test]
fn a_broken_script_fails_its_own_message_with_file_line_and_column() {
    let rt = runtime();
    let r = rig(&rt);
    let state = r.text(&rt, "254700000003", "2001", "broken");
    assert!(state.starts_with("failed "), "{state}");
    assert!(state.contains("broken.rhai:3:"), "{state}");
    // A verb that needs a call fails the same way, at its line.
    std::fs::write(
        r._dir.join("broken.rhai"),
        "let k = 1;\ngather(#{ timeout: 60000 });\n",
    )
    .unwrap();
    let state = r.text(&rt, "254700000003", "2001", "broken");
    assert!(state.contains("broken.rhai:2:"), "{state}");
    assert!(state.contains("needs a call"), "{state}");
    std::fs::write(r._dir.join("broken.rhai"), "\n\nplay(\"hello\");\n").unwrap();
    let state = r.text(&rt, "254700000003", "2001", "broken");
    assert!(
        state.contains("broken.rhai:3:") && state.contains("need a call"),
        "{state}"
    );
    // The sender's next message runs as usual.
    assert_eq!(r.text(&rt, "254700000003", "2001", "survey"), "done");
}

#[test]
fn stop_opts_out_start_opts_in_and_nothing_runs_for_an_opted_out_sender() {
    let rt = runtime();
    let r = rig(&rt);
    let store = r.task.sms.store().clone();
    let a = "254700000004";
    assert_eq!(r.text(&rt, a, "2001", " Arrêt "), "opted_out");
    assert!(rt.block_on(store.dnc_contains("+254700000004")).unwrap());
    assert_eq!(r.text(&rt, a, "2001", "survey"), "dnc");
    assert_eq!(r.text(&rt, a, "2001", "start"), "opted_in");
    assert!(!rt.block_on(store.dnc_contains("+254700000004")).unwrap());
    let sent = r.sent(&rt, a);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].contains("no more messages"), "{sent:?}");
    assert!(sent[1].contains("subscribed again"), "{sent:?}");
    // "stop sending this" is not an opt-out: it goes to its route.
    assert_eq!(r.text(&rt, a, "2001", "stop sending this"), "done");
    // An operator's entry is not undone by START.
    rt.block_on(store.dnc_add(&["+254700000005".into()], "cli"))
        .unwrap();
    r.text(&rt, "254700000005", "2001", "START");
    assert!(rt.block_on(store.dnc_contains("+254700000005")).unwrap());
}

#[test]
fn the_example_sms_survey_asks_checks_and_stores() {
    let rt = runtime();
    let r = rig(&rt);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/sms_survey.rhai");
    std::fs::copy(script, r._dir.join("survey.rhai")).unwrap();
    let a = "254700000009";
    for text in ["survey", "seven", "4", "maybe", "Oui.", "no"] {
        assert_eq!(r.text(&rt, a, "2001", text), "done", "{text}");
    }
    let sent = r.sent(&rt, a);
    assert_eq!(sent.len(), 6, "{sent:?}");
    assert!(sent[0].starts_with("1/3 "), "{sent:?}");
    assert!(
        sent[1].starts_with("Please answer with a number"),
        "{sent:?}"
    );
    assert!(sent[2].starts_with("2/3 "), "{sent:?}");
    assert!(sent[3].starts_with("Please reply YES or NO"), "{sent:?}");
    assert!(sent[4].starts_with("3/3 "), "{sent:?}");
    assert!(sent[5].starts_with("Thank you"), "{sent:?}");
    let results = rt
        .block_on(r.task.sms.store().sms_results(Some("survey"), 0))
        .unwrap();
    let got: Vec<(&str, &str)> = results
        .iter()
        .map(|x| (x.name.as_str(), x.value.as_str()))
        .collect();
    assert_eq!(
        got,
        [("visit", "4"), ("wait_ok", "yes"), ("recommend", "no")]
    );
}

#[test]
fn the_task_answers_what_it_finds_stored_one_sender_in_order() {
    let rt = runtime();
    let r = rig(&rt);
    let store = r.task.sms.store().clone();
    let (a, b) = ("254700000011", "254700000012");
    // Stored before the task runs (a restart), interleaved, same millisecond
    // for most of them.
    rt.block_on(async {
        for text in ["survey", "4", "yes", "no"] {
            store.insert_inbound(a, "2001", text).await.unwrap();
            store.insert_inbound(b, "2001", text).await.unwrap();
        }
    });
    let task = rt.spawn(r.task.clone().run());
    let done = || {
        rt.block_on(store.flow_pending(0, 100))
            .map(|p| p.is_empty())
            .unwrap_or(false)
            && r.sent(&rt, a).len() == 4
            && r.sent(&rt, b).len() == 4
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?} {:?}",
            r.sent(&rt, a),
            r.sent(&rt, b)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let want = [
        "Q1: how was your visit? (1-5)",
        "Q2: would you come back? yes/no",
        "Thank you!",
        "Q1: how was your visit? (1-5)",
    ];
    assert_eq!(r.sent(&rt, a), want);
    assert_eq!(r.sent(&rt, b), want);
    task.abort();
}
