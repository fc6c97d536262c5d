//! Issue 13's dashboard in a real browser: headless Chromium (Debian
//! `chromium`, driven by tests/dashboard/drive.js) signs in with
//! `/?token=READ`, then watches the page while SIPp holds inbound calls
//! and a campaign dials a SIPp carrier. The page's live-call count must
//! equal `GET /calls`, and each campaign counter the store's (`rivr
//! campaign status --json`), within 2 s — while calls are up and after.
//! The screenshots in docs/api.md (desktop 1280×800, phone 390×844) are
//! taken here, into the test's temp dir, or into `RIVR_SCREENSHOTS_DIR`
//! (`make screenshots` writes docs/img). The sign-in rules (cookie flags, the 303, the sign-in page)
//! are checked with a plain HTTP client.

#[path = "dashboard/browser.rs"]
mod browser;
mod common;
#[path = "smpp/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use browser::Browser;
use common::campaign::{self, rivr_cli};
use common::carrier::Carrier;
use common::server::{Rivr, RivrConfig};
use common::sipp_load::{LoadSpec, SippLoad};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token-0123456789abcdef";
const READ: &str = "read-token-0123456789abcdef";
/// How far the page may lag behind the API.
const LAG: Duration = Duration::from_secs(2);
/// The campaign counters the page must show as the store has them (the
/// page's name, the name in `rivr campaign status --json`).
const COUNTERS: [(&str, &str); 12] = [
    ("contacts", "total"),
    ("done", "done"),
    ("remaining", "remaining"),
    ("dialed", "dialed"),
    ("in_progress", "in_progress"),
    ("waiting", "waiting"),
    ("answered", "answered"),
    ("busy", "busy"),
    ("no_answer", "no_answer"),
    ("failed", "failed"),
    ("dnc", "dnc"),
    ("texted", "texted"),
];

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// Status, headers and body of a GET.
fn get(url: &str, token: Option<&str>) -> (u16, Vec<(String, String)>, String) {
    let mut r = agent().get(url);
    if let Some(t) = token {
        r = r.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = r.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let status = resp.status().as_u16();
    (
        status,
        headers,
        resp.body_mut().read_to_string().unwrap_or_default(),
    )
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The campaign's counters as the page names them, from the store.
fn store_counters(config: &std::path::Path, id: &str) -> Value {
    let s: Value = serde_json::from_str(&rivr_cli(config, &["status", id, "--json"]))
        .expect("status --json is JSON");
    let mut out = json!({ "state": s["state"] });
    for (page, store) in COUNTERS {
        out[page] = s[store].clone();
    }
    out
}

/// What the page shows of `campaign`, in the shape of [`store_counters`].
fn page_counters(page: &Value, campaign: &str) -> Value {
    let c = &page["campaigns"][campaign];
    let mut out = json!({ "state": c["state"] });
    for (name, _) in COUNTERS {
        // The page's numbers come back as JSON numbers (f64 in JS).
        out[name] = c[name].as_f64().map_or(Value::Null, |v| json!(v as u64));
    }
    out
}

/// Passes once the page shows, for both the live-call count and the
/// campaign's counters, a value the API gave less than [`LAG`] earlier;
/// fails after [`LAG`] (plus the time one round of reads takes) with
/// every reading.
fn page_matches_api(
    browser: &mut Browser,
    http: std::net::SocketAddr,
    config: &std::path::Path,
    campaign: &str,
    moment: &str,
) {
    let start = Instant::now();
    let mut api: Vec<(Instant, u64, Value)> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    loop {
        let (status, _, body) = get(&format!("http://{http}/calls"), Some(READ));
        assert_eq!(status, 200, "{body}");
        let calls: Value = serde_json::from_str(&body).expect("GET /calls is JSON");
        let count = calls["count"].as_u64().expect("a count");
        api.push((Instant::now(), count, store_counters(config, campaign)));
        let page = browser.read();
        let now = Instant::now();
        let (page_calls, page_campaign) = (page["calls"].as_u64(), page_counters(&page, campaign));
        let calls_ok = api
            .iter()
            .any(|(t, n, _)| now.duration_since(*t) <= LAG && Some(*n) == page_calls);
        let campaign_ok = api
            .iter()
            .any(|(t, _, c)| now.duration_since(*t) <= LAG && *c == page_campaign);
        seen.push(format!(
            "{:>5} ms: api calls {count}, campaign {}\n          page calls {page_calls:?}, campaign {page_campaign}",
            start.elapsed().as_millis(),
            api.last().map(|a| a.2.to_string()).unwrap_or_default()
        ));
        if calls_ok && campaign_ok {
            println!(
                "[dashboard] {moment}: page = API after {} ms: {page_calls:?} calls, campaign {page_campaign}",
                start.elapsed().as_millis()
            );
            return;
        }
        assert!(
            start.elapsed() <= LAG + Duration::from_millis(500),
            "{moment}: the page did not match the API within {LAG:?}:\n{}",
            seen.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn calls_now(http: std::net::SocketAddr) -> u64 {
    let (_, _, body) = get(&format!("http://{http}/calls"), Some(READ));
    serde_json::from_str::<Value>(&body).expect("JSON")["count"]
        .as_u64()
        .expect("a count")
}

#[test]
fn the_page_follows_live_calls_and_a_campaign_within_two_seconds() {
    require_sipp!();
    // Before anything else: no browser is a failure, never a skip.
    let mut browser = Browser::start();

    let sim_dir = harness::temp_dir("dashboard-smsc");
    let sim = harness::Sim::start(&sim_dir, &["--receipt-delay-ms", "200"]);
    let carrier_dir = harness::temp_dir("dashboard-carrier");
    let _carrier = Carrier::start_with(
        &carrier_dir,
        "dashboard",
        "uas_campaign.xml",
        200,
        &[],
        &["-m", "100000", "-timeout", "300s"],
    );
    let extra = format!(
        "{}[http]\nlisten = \"127.0.0.1:0\"\n\
         [[http.token]]\ntoken = \"{ADMIN}\"\nrole = \"admin\"\n\
         [[http.token]]\ntoken = \"{READ}\"\nrole = \"read\"\n",
        campaign::tables(&sim_dir.join("rivr.db"), sim.port, _carrier.port)
    );
    let rivr = Rivr::start(
        "dashboard",
        RivrConfig {
            rtp_ports: 200,
            extra_tables: extra,
            ..RivrConfig::default()
        }
        .script("3000", "hold.rhai", "answer();\nsleep(60000);\nhangup();\n"),
    );
    let http = rivr.http.expect("rivr printed its HTTP API address");
    let base = format!("http://{http}");

    // Signing in, as a plain HTTP client sees it.
    let (status, h, body) = get(&format!("{base}/"), None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("name=\"token\""), "no sign-in form: {body}");
    assert!(header(&h, "content-security-policy").is_some_and(|v| v.contains("default-src 'none'")));
    let (status, _, body) = get(&format!("{base}/?token=not-a-token-at-all-xxxx"), None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("not one of"), "{body}");
    let (status, h, _) = get(&format!("{base}/?token={READ}"), None);
    assert_eq!(status, 303);
    assert_eq!(header(&h, "location"), Some("/"));
    let cookie = header(&h, "set-cookie").expect("a cookie");
    for part in [
        &format!("rivr_token={READ}") as &str,
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(part), "cookie {cookie:?} lacks {part}");
    }
    let (status, _, body) = get(&format!("{base}/events"), None);
    assert_eq!(status, 401, "/events without a token: {body}");

    // The browser signs in by the link and loses the token from the URL.
    let opened = browser.cmd(json!({"cmd": "open", "url": format!("{base}/?token={READ}")}));
    assert_eq!(opened["url"], format!("{base}/"), "{opened}");
    assert_eq!(
        opened["js_cookie"], "",
        "the page's script can read the token: {opened}"
    );
    let cookie = &opened["cookies"][0];
    assert_eq!(cookie["name"], "rivr_token", "{opened}");
    assert_eq!(cookie["httpOnly"], true, "{opened}");
    assert_eq!(cookie["sameSite"], "Strict", "{opened}");
    assert!(
        wait_for(Duration::from_secs(5), || browser.read()["link"] == "live"),
        "the page's event stream did not open: {}",
        browser.read()
    );

    // A campaign: 80 contacts at 4 calls/s, 12 channels, 4 s calls, one
    // attempt (so it ends): busy, no answer and 503 by the last digit.
    let config = rivr.dir.join("rivr.toml");
    let (contacts, script) = campaign::blast_files(&rivr, 80, |i| format!("+254712{i:06}"), 4000);
    let created = rivr_cli(
        &config,
        &[
            "create",
            "--name",
            "reminders",
            "--contacts",
            &contacts.display().to_string(),
            "--script",
            &script.display().to_string(),
            "--trunk",
            "carrier",
            "--cps",
            "4",
            "--max-channels",
            "12",
            "--attempts",
            "1",
            "--hours",
            "00:00-24:00",
            "--tz",
            "UTC",
            "--sms-fallback",
            "Hello {name}, we tried to call you.",
        ],
    );
    let id = campaign::created_id(&created, 80);
    rivr_cli(&config, &["start", &id]);
    // Inbound callers held by their script until SIPp hangs up.
    let mut load = SippLoad::start(
        rivr.dir.path(),
        "dashboard-in",
        rivr.sip_port,
        &LoadSpec {
            ip: "127.0.0.1",
            number: "3000",
            calls: 12,
            rate: 3,
            hold_ms: 14_000,
            transport: "u1",
        },
    );

    // While calls are up: inbound ones held, the campaign's dialing.
    assert!(
        wait_for(Duration::from_secs(20), || calls_now(http) >= 15),
        "fewer than 15 calls up: {}",
        calls_now(http)
    );
    std::thread::sleep(Duration::from_secs(5)); // some chart history
    page_matches_api(&mut browser, http, &config, &id, "calls up");
    let up = browser.read();
    assert!(up["calls"].as_u64().is_some_and(|n| n >= 10), "{up}");
    // Into the test's own dir, so a test run leaves the tree clean;
    // `make screenshots` points this at docs/img.
    let shots = std::env::var_os("RIVR_SCREENSHOTS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| rivr.dir.path().to_path_buf());
    std::fs::create_dir_all(&shots).expect("the screenshots' dir");
    for (name, width, height) in [
        ("dashboard-desktop.png", 1280, 800),
        ("dashboard-phone.png", 390, 844),
    ] {
        let path = shots.join(name);
        browser.cmd(json!({"cmd": "shot", "width": width, "height": height, "path": path}));
        let png = std::fs::read(&path).unwrap_or_default();
        assert!(
            png.len() > 10_000 && png.starts_with(b"\x89PNG"),
            "{}: not a screenshot ({} bytes)",
            path.display(),
            png.len()
        );
    }
    page_matches_api(&mut browser, http, &config, &id, "calls up, later");

    // After: the campaign done, every caller gone.
    assert!(
        wait_for(Duration::from_secs(120), || {
            store_counters(&config, &id)["state"] == "done"
        }),
        "campaign not done: {}",
        store_counters(&config, &id)
    );
    let ended = load.wait(Duration::from_secs(60));
    assert_eq!(
        ended.successful,
        12,
        "inbound calls: {ended:?} {}",
        load.errors()
    );
    assert!(
        wait_for(Duration::from_secs(20), || calls_now(http) == 0),
        "calls still listed: {}",
        calls_now(http)
    );
    page_matches_api(&mut browser, http, &config, &id, "after");
    let after = browser.read();
    assert_eq!(after["calls"], 0, "{after}");
    let done = page_counters(&after, &id);
    assert_eq!(done["state"], "done", "{after}");
    assert_eq!(done["done"], 80, "{after}");
    assert!(done["answered"].as_u64().is_some_and(|n| n > 0), "{after}");
    assert!(done["busy"].as_u64().is_some_and(|n| n > 0), "{after}");

    // Nothing but rivr was asked for, and the page threw nothing.
    let f = browser.cmd(json!({"cmd": "foreign"}));
    assert_eq!(f["requests"], json!([]), "requests off rivr: {f}");
    assert_eq!(f["page_errors"], json!([]), "script errors: {f}");
}
