//! For tests/sms_providers.rs: a test CA and a server certificate for
//! 127.0.0.1 made with the openssl CLI at test time, the HTTPS provider
//! stand-in (provider_mock.py) and its request log, and Vonage's md5hash
//! signature computed independently of rivr's code; starting rivr with an
//! `[sms_http]` block and reading message states through its API.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::server::{Rivr, RivrConfig};
use crate::http::{Client, ADMIN};

pub const KEY: &str = "k3y-0123";
pub const SECRET: &str = "s3cr3t";

/// Runs openssl; a missing openssl fails the test (it is in APT_PKGS).
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian package openssl) must be installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (CA certificate, server certificate, server key) in `dir`.
pub fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=rivr test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    (dir.join("ca.pem"), dir.join("srv.pem"), dir.join("srv.key"))
}

/// The provider stand-in, stopped on drop.
pub struct Mock {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mock {
    pub fn start(dir: &Path) -> Mock {
        let (_, cert, key) = certificates(dir);
        let log = dir.join("requests.jsonl");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sms_http/provider_mock.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args([
                "--cert",
                cert.to_str().unwrap(),
                "--key-file",
                key.to_str().unwrap(),
            ])
            .args([
                "--log",
                log.to_str().unwrap(),
                "--key",
                KEY,
                "--secret",
                SECRET,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 must be installed");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("provider mock did not start: {line:?}"));
        Mock { child, port, log }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until `pred` holds for the request list.
    pub fn wait(&self, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.requests();
            if pred(&r) {
                return r;
            }
            assert!(
                Instant::now() < end,
                "provider never saw {what}; got {r:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `a=1&b=2` → pairs, percent and `+` decoded.
pub fn form(s: &str) -> std::collections::BTreeMap<String, String> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.replace('+', " ");
    let b = b.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap(),
            );
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Vonage's "MD5 hash" signature as its documentation describes it.
pub fn md5_sig(params: &[(&str, &str)], secret: &str) -> String {
    use md5::{Digest, Md5};
    let mut p: Vec<_> = params.to_vec();
    p.sort();
    let mut s = String::new();
    for (k, v) in p {
        s.push_str(&format!("&{k}={}", v.replace(['&', '='], "_")));
    }
    s.push_str(secret);
    format!("{:x}", Md5::digest(s.as_bytes()))
}

/// Percent-encodes for a query string or form body.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rivr-{name}-{}-{}", std::process::id(), rand_tag()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn rand_tag() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

pub fn start(label: &str, sms_http: String) -> (Rivr, Client) {
    let extra = format!(
        "[store]\nurl = \"sqlite://rivr.db\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\n\
         [[http.token]]\ntoken = \"{ADMIN}\"\nrole = \"admin\"\n\
         [sms_http]\n{sms_http}"
    );
    let rivr = Rivr::start(
        label,
        RivrConfig {
            extra_tables: extra,
            ..RivrConfig::default()
        },
    );
    let api = Client::new(rivr.http.expect("rivr printed its HTTP API address"));
    (rivr, api)
}

pub fn send(api: &Client, to: &str, text: &str) -> String {
    let a = api.post_json(
        "/sms",
        Some(ADMIN),
        &json!({ "to": to, "text": text }).to_string(),
    );
    assert_eq!(a.status, 202, "POST /sms: {}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

/// Waits until the message is in `state`; returns its `GET /sms/{id}`.
pub fn wait_state(api: &Client, id: &str, state: &str) -> Value {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let a = api.get(&format!("/sms/{id}"), Some(ADMIN));
        if a.body["state"] == state {
            return a.body;
        }
        assert!(Instant::now() < end, "{id} never {state}: {}", a.text);
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn part_states(v: &Value) -> Vec<String> {
    v["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"].as_str().unwrap().to_string())
        .collect()
}

/// The Infobip `messages[]` entries the stand-in received, in order.
pub fn infobip_messages(reqs: &[Value]) -> Vec<Value> {
    reqs.iter()
        .filter(|r| r["path"] == "/sms/2/text/advanced")
        .flat_map(|r| {
            let v: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
            v["messages"].as_array().unwrap().clone()
        })
        .collect()
}
