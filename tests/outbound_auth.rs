//! Digest authentication of the calls rivr places (issue 10 §2), against
//! carriers that are not rivr: SIPp's `verifyauth` (MD5 401, a stale
//! nonce, a wrong password answered by 403 or by a fresh challenge) and,
//! where SIPp 3.6.1's verifyauth cannot check (SHA-256; a 407 proxy
//! challenge, whose Proxy-Authorization it misreads), a UAS written here on
//! a UDP socket that computes the RFC 7616 response itself with the `sha2`
//! and `md-5` crates from the header's fields — not with rivr's
//! `sip::digest`.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use common::caller::SIGNALLING;
use common::carrier::Carrier;
use common::dialer::{CallSetup, Dialer, Placed};
use common::rtp::RtpPeer;
use common::scratch::Scratch;

const USER: &str = "acct";
const PASSWORD: &str = "s3cret";
const REALM: &str = "carrier.test";

fn trunk_credentials(password: &str) -> String {
    format!("username = {USER:?}\npassword = {password:?}\nrealm = {REALM:?}\n")
}

/// One call through SIPp running `scenario` with the challenge keys;
/// rivr's trunk has `password`. Returns the carrier (for its log and
/// messages) and what `rivr call` printed.
fn challenged(
    label: &str,
    scenario: &str,
    proxy: bool,
    password: &str,
) -> (Scratch, Carrier, Placed) {
    let dir = Scratch::new(label);
    let peer = RtpPeer::bind();
    let (line, header) = if proxy {
        (
            "SIP/2.0 407 Proxy Authentication Required",
            "Proxy-Authenticate",
        )
    } else {
        ("SIP/2.0 401 Unauthorized", "WWW-Authenticate")
    };
    let mut carrier = Carrier::start(
        dir.path(),
        label,
        scenario,
        0,
        &[
            ("challenge_line", line.into()),
            ("challenge_header", header.into()),
            ("user", USER.into()),
            ("password", PASSWORD.into()),
            ("rtp_port", peer.port.to_string()),
        ],
    );
    let extra = trunk_credentials(password);
    let mut call = Dialer::start(
        dir.path(),
        label,
        &CallSetup {
            trunk_port: carrier.port,
            trunk_params: "",
            trunk_extra: &extra,
            script: None,
            args: &[],
            number: "15550150",
        },
    );
    carrier.expect_pass(SIGNALLING);
    let placed = call.finish(SIGNALLING);
    (dir, carrier, placed)
}

/// The value of the first header `name` (case-insensitive) of a message.
fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// `branch=` of the top Via.
fn branch(msg: &str) -> String {
    header(msg, "Via")
        .and_then(|v| v.split(";branch=").nth(1))
        .map(|b| b.split(';').next().unwrap_or(b).to_owned())
        .unwrap_or_default()
}

fn tag(value: &str) -> Option<&str> {
    value
        .split(";tag=")
        .nth(1)
        .map(|t| t.split(';').next().unwrap_or(t))
}

fn cseq_number(msg: &str) -> u32 {
    header(msg, "CSeq")
        .and_then(|c| c.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no CSeq in {msg}"))
}

/// RFC 3261 §22.2 (and §8.1.3.5): the retried INVITE keeps Call-ID and
/// From tag, its CSeq is one more, its branch is new.
fn assert_retry_of(first: &str, retry: &str) {
    assert_eq!(header(first, "Call-ID"), header(retry, "Call-ID"));
    assert_eq!(
        header(first, "From").and_then(tag),
        header(retry, "From").and_then(tag),
        "the From tag is kept"
    );
    assert_eq!(cseq_number(retry), cseq_number(first) + 1, "CSeq + 1");
    assert_ne!(branch(first), branch(retry), "a new branch");
    assert!(!branch(retry).is_empty());
}

/// 401 (WWW-Authenticate, MD5, qop=auth): SIPp verifies the retried INVITE
/// with the password it was given, and answers.
#[test]
fn md5_401_challenge_is_answered_and_verified_by_sipp() {
    require_sipp!();
    let (_dir, carrier, placed) = challenged("auth-401", "uas_auth.xml", false, PASSWORD);
    let log = carrier.log();
    assert!(
        log.contains("auth_valid") && !log.contains("auth_invalid"),
        "SIPp's verifyauth did not accept rivr's credentials:\n{log}"
    );
    assert_eq!(placed.outcome(), "answered", "{}", placed.json);
    let invites = carrier.received("INVITE");
    assert_eq!(invites.len(), 2, "the INVITE, then one retry");
    assert!(header(&invites[0], "Authorization").is_none());
    let auth = header(&invites[1], "Authorization").expect("credentials in the retry");
    assert!(
        auth.starts_with("Digest ") && auth.contains("username=\"acct\""),
        "{auth}"
    );
    assert!(header(&invites[1], "Proxy-Authorization").is_none());
    assert_retry_of(&invites[0], &invites[1]);
    println!("[auth-401] {auth}");
}

/// A wrong password: SIPp's verifyauth refuses it and answers 403, which
/// rivr reports as `auth_failed` (not `rejected`: it answered rivr's
/// credentials).
#[test]
fn wrong_password_answered_by_403_is_auth_failed() {
    require_sipp!();
    let (_dir, carrier, placed) = challenged("auth-403", "uas_auth.xml", false, "wrong");
    assert!(
        carrier.log().contains("auth_invalid"),
        "SIPp accepted a wrong password?\n{}",
        carrier.log()
    );
    assert_eq!(placed.outcome(), "auth_failed", "{}", placed.json);
    assert_eq!(placed.json["sip_status"], 403, "{}", placed.json);
    assert_eq!(carrier.received("INVITE").len(), 2);
}

/// A wrong password answered by a fresh challenge (no stale): rivr gives
/// up (`auth_failed`) instead of looping; the scenario fails on a third
/// INVITE.
#[test]
fn wrong_password_answered_by_a_fresh_challenge_is_auth_failed_without_a_loop() {
    require_sipp!();
    let (_dir, carrier, placed) =
        challenged("auth-again", "uas_auth_rechallenge.xml", false, "wrong");
    let log = carrier.log();
    assert!(log.contains("auth_invalid"), "{log}");
    assert!(log.contains("no_retry"), "{log}");
    assert_eq!(placed.outcome(), "auth_failed", "{}", placed.json);
    assert_eq!(placed.json["sip_status"], 401, "{}", placed.json);
    assert_eq!(carrier.received("INVITE").len(), 2);
    assert_eq!(carrier.received("ACK").len(), 2, "both 401s ACKed");
}

/// A stale nonce: 401, then (after valid credentials) a 401 with a new
/// nonce and stale=true; rivr retries once more with the new nonce, which
/// SIPp verifies, and the call is answered.
#[test]
fn stale_nonce_is_retried_with_the_new_nonce() {
    require_sipp!();
    let (_dir, carrier, placed) = challenged("auth-stale", "uas_auth_stale.xml", false, PASSWORD);
    let log = carrier.log();
    assert!(
        log.contains("first_valid") && log.contains("second_valid"),
        "{log}"
    );
    assert_eq!(placed.outcome(), "answered", "{}", placed.json);
    let invites = carrier.received("INVITE");
    assert_eq!(invites.len(), 3);
    assert_retry_of(&invites[1], &invites[2]);
    let nc = |msg: &str| {
        header(msg, "Authorization")
            .and_then(|a| digest_params(a).into_iter().find(|(k, _)| k == "nc"))
            .map(|(_, v)| v)
    };
    assert_eq!(
        nc(&invites[2]).as_deref(),
        Some("00000001"),
        "nc restarts with a new nonce"
    );
}

// ---- A digest UAS written here: SHA-256, and 407 ---------------------------
// SIPp 3.6.1's verifyauth knows MD5 only, and reads `Authorization` only:
// given a Proxy-Authorization it fails with "authentication must be
// digest" (it finds the header name inside the other one). So SHA-256 and
// the 407 proxy challenge are checked by this UAS.

/// The parameters of a Digest credentials/challenge value, unquoted, keys
/// lower-cased: `Digest a="x, y", b=z` → [("a", "x, y"), ("b", "z")].
fn digest_params(value: &str) -> Vec<(String, String)> {
    let rest = value.trim().strip_prefix("Digest").unwrap_or(value).trim();
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return out;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                val.push(c);
                chars.next();
            }
        }
        out.push((key.trim().to_ascii_lowercase(), val.trim().to_owned()));
    }
}

fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

fn md5_hex(s: &str) -> String {
    hex(&md5::Md5::digest(s.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How the UAS challenges: 401 or 407, and the algorithms it offers in
/// order (one header each, with its own nonce); the last one is the one
/// rivr must answer (the strongest offered).
struct Challenge {
    proxy: bool,
    offers: &'static [(&'static str, &'static str)],
}

impl Challenge {
    fn expected(&self) -> (&'static str, &'static str) {
        *self.offers.last().expect("an offer")
    }
}

/// What the digest UAS saw.
#[derive(Debug, Default)]
struct Verdict {
    invites: usize,
    /// The (Proxy-)Authorization header of the retried INVITE, raw.
    authorization: Option<String>,
    /// The response matched the one computed here.
    valid: Option<bool>,
    acks: usize,
    bye_answered: bool,
}

/// MD5 first, SHA-256 second in one 401: rivr must pick the stronger.
const MD5_THEN_SHA256: Challenge = Challenge {
    proxy: false,
    offers: &[("MD5", "md5-nonce-0001"), ("SHA-256", "sha256-nonce-0001")],
};

/// A proxy's 407 with MD5.
const PROXY_MD5: Challenge = Challenge {
    proxy: true,
    offers: &[("MD5", "proxy-md5-nonce-0001")],
};

/// A carrier on `sock` that challenges as `ch` says, checks the response
/// (to the last offer) with `password` by hashing the header's own fields,
/// answers 200 (SDP to `rtp_port`) or 403, then answers rivr's BYE. Ends at
/// the BYE, the 403's ACK or after `SIGNALLING`.
fn digest_uas(sock: UdpSocket, ch: &Challenge, password: &str, rtp_port: u16) -> Verdict {
    let mut v = Verdict::default();
    let (challenge_name, credentials_name, status) = if ch.proxy {
        (
            "Proxy-Authenticate",
            "Proxy-Authorization",
            "407 Proxy Authentication Required",
        )
    } else {
        ("WWW-Authenticate", "Authorization", "401 Unauthorized")
    };
    let (algorithm, nonce) = ch.expected();
    let hash = |s: &str| match algorithm {
        "MD5" => md5_hex(s),
        _ => sha256_hex(s),
    };
    let deadline = Instant::now() + SIGNALLING;
    let mut buf = vec![0u8; 8192];
    let local = sock.local_addr().expect("local address");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    while Instant::now() < deadline {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        let method = msg.split_whitespace().next().unwrap_or("").to_owned();
        let reply = |status: &str, extra: &str, body: &str| {
            respond(&sock, from, local, &msg, status, extra, body);
        };
        match method.as_str() {
            "INVITE" => {
                v.invites += 1;
                let Some(auth) = header(&msg, credentials_name) else {
                    let offers: String = ch
                        .offers
                        .iter()
                        .map(|(alg, nonce)| {
                            format!(
                                "{challenge_name}: Digest realm=\"{REALM}\", nonce=\"{nonce}\", \
                                 algorithm={alg}, qop=\"auth\"\r\n"
                            )
                        })
                        .collect();
                    reply(status, &offers, "");
                    continue;
                };
                v.authorization = Some(auth.to_owned());
                let p = digest_params(auth);
                let get = |k: &str| {
                    p.iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, val)| val.as_str())
                        .unwrap_or("")
                };
                let ha1 = hash(&format!("{}:{}:{password}", get("username"), get("realm")));
                let ha2 = hash(&format!("INVITE:{}", get("uri")));
                let expected = hash(&format!(
                    "{ha1}:{}:{}:{}:{}:{ha2}",
                    get("nonce"),
                    get("nc"),
                    get("cnonce"),
                    get("qop")
                ));
                let request_uri = msg.split_whitespace().nth(1).unwrap_or("");
                let valid = get("algorithm").eq_ignore_ascii_case(algorithm)
                    && get("username") == USER
                    && get("realm") == REALM
                    && get("nonce") == nonce
                    && get("uri") == request_uri
                    && get("qop") == "auth"
                    && !get("cnonce").is_empty()
                    && get("response").eq_ignore_ascii_case(&expected);
                v.valid = Some(valid);
                if valid {
                    let sdp = format!(
                        "v=0\r\no=carrier 1 1 IN IP4 127.0.0.1\r\ns=carrier\r\nc=IN IP4 127.0.0.1\r\n\
                         t=0 0\r\nm=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
                    );
                    reply(
                        "200 OK",
                        &format!(
                            "Contact: <sip:carrier@{local}>\r\nContent-Type: application/sdp\r\n"
                        ),
                        &sdp,
                    );
                } else {
                    reply("403 Forbidden", "", "");
                }
            }
            "ACK" => {
                v.acks += 1;
                if v.valid == Some(false) {
                    break;
                }
            }
            "BYE" => {
                reply("200 OK", "", "");
                v.bye_answered = true;
                break;
            }
            _ => {}
        }
    }
    v
}

/// A response to `req` copying its Via, From, To (with a tag), Call-ID and
/// CSeq.
fn respond(
    sock: &UdpSocket,
    to: SocketAddr,
    local: SocketAddr,
    req: &str,
    status: &str,
    extra: &str,
    body: &str,
) {
    let mut r = format!("SIP/2.0 {status}\r\n");
    for line in req.lines() {
        let name = line.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("Via") {
            r.push_str(line.trim_end());
            r.push_str("\r\n");
        }
    }
    let to_value = header(req, "To").unwrap_or("");
    let to_value = if tag(to_value).is_some() {
        to_value.to_owned()
    } else {
        format!("{to_value};tag=digestuas")
    };
    r.push_str(&format!(
        "From: {}\r\nTo: {to_value}\r\nCall-ID: {}\r\nCSeq: {}\r\nServer: test-digest-uas@{local}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        header(req, "From").unwrap_or(""),
        header(req, "Call-ID").unwrap_or(""),
        header(req, "CSeq").unwrap_or(""),
        body.len()
    ));
    let _ = sock.send_to(r.as_bytes(), to);
}

fn digest_call(label: &str, ch: &'static Challenge, password: &str) -> (Verdict, Placed) {
    let dir = Scratch::new(label);
    let peer = RtpPeer::bind();
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind the digest UAS");
    let port = sock.local_addr().expect("address").port();
    let (tx, rx) = mpsc::channel();
    let rtp_port = peer.port;
    std::thread::spawn(move || {
        let _ = tx.send(digest_uas(sock, ch, PASSWORD, rtp_port));
    });
    let extra = trunk_credentials(password);
    let mut call = Dialer::start(
        dir.path(),
        label,
        &CallSetup {
            trunk_port: port,
            trunk_params: "",
            trunk_extra: &extra,
            script: None,
            args: &[],
            number: "15550151",
        },
    );
    let placed = call.finish(SIGNALLING);
    let verdict = rx
        .recv_timeout(SIGNALLING)
        .expect("the digest UAS finished");
    println!("[{label}] {verdict:?}");
    (verdict, placed)
}

/// RFC 7616 SHA-256 with qop=auth, offered after an MD5 challenge in the
/// same 401: rivr answers the stronger one, with the RFC's quoting
/// (algorithm, qop and nc unquoted), and the response checks out.
#[test]
fn sha256_challenge_is_answered_with_the_stronger_algorithm() {
    let (v, placed) = digest_call("auth-sha256", &MD5_THEN_SHA256, PASSWORD);
    let auth = v
        .authorization
        .as_deref()
        .expect("a retried INVITE with credentials");
    assert_eq!(v.valid, Some(true), "the SHA-256 response is wrong: {auth}");
    for unquoted in ["algorithm=SHA-256", "qop=auth", "nc=00000001"] {
        assert!(
            auth.contains(unquoted),
            "RFC 7616 §3.4: {unquoted} unquoted in {auth}"
        );
    }
    for quoted in [
        "username=\"",
        "realm=\"",
        "nonce=\"",
        "uri=\"",
        "response=\"",
        "cnonce=\"",
    ] {
        assert!(
            auth.contains(quoted),
            "RFC 7616 §3.4: {quoted}…\" in {auth}"
        );
    }
    assert_eq!(v.invites, 2);
    assert!(v.bye_answered, "rivr hung up the answered call with a BYE");
    assert_eq!(placed.outcome(), "answered", "{}", placed.json);
}

/// The same carrier with a wrong password in rivr's trunk: the response is
/// computed with the wrong password, refused 403, and the call is
/// `auth_failed`.
#[test]
fn sha256_wrong_password_is_refused_and_auth_failed() {
    let (v, placed) = digest_call("auth-sha256-wrong", &MD5_THEN_SHA256, "wrong");
    assert_eq!(v.valid, Some(false), "{:?}", v.authorization);
    assert!(
        v.authorization
            .as_deref()
            .is_some_and(|a| a.contains("algorithm=SHA-256")),
        "{:?}",
        v.authorization
    );
    assert_eq!(placed.outcome(), "auth_failed", "{}", placed.json);
    assert_eq!(placed.json["sip_status"], 403, "{}", placed.json);
}

/// 407 from a proxy (MD5): the retry carries Proxy-Authorization (and no
/// Authorization), verified here, and the call is answered.
#[test]
fn md5_407_proxy_challenge_is_answered_with_proxy_authorization() {
    let (v, placed) = digest_call("auth-407", &PROXY_MD5, PASSWORD);
    let auth = v
        .authorization
        .as_deref()
        .expect("a retry with Proxy-Authorization");
    assert_eq!(
        v.valid,
        Some(true),
        "the MD5 proxy response is wrong: {auth}"
    );
    assert!(auth.contains("algorithm=MD5"), "{auth}");
    assert_eq!(v.invites, 2);
    assert!(v.bye_answered);
    assert_eq!(placed.outcome(), "answered", "{}", placed.json);
}

#[test]
fn digest_params_parse_quoted_and_bare_values() {
    let p = digest_params(
        "Digest username=\"a,b\", realm=\"r\", nc=00000001, qop=auth, response=\"x\\\"y\"",
    );
    assert_eq!(
        p,
        vec![
            ("username".to_string(), "a,b".to_string()),
            ("realm".into(), "r".into()),
            ("nc".into(), "00000001".into()),
            ("qop".into(), "auth".into()),
            ("response".into(), "x\"y".into()),
        ]
    );
    // The RFCs' HA1 for Mufasa, as a check of the hashes here: RFC 7616
    // §3.9.1 (SHA-256) and RFC 2617 §3.5 (MD5).
    assert_eq!(
        sha256_hex("Mufasa:http-auth@example.org:Circle of Life"),
        "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
    );
    assert_eq!(
        md5_hex("Mufasa:testrealm@host.com:Circle Of Life"),
        "939e7578ed9e3c518a452acee763bce9"
    );
}
