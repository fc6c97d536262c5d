//! HTTP Digest authentication as SIP uses it (RFC 3261 §22, RFC 7616,
//! RFC 8760): parsing `WWW-Authenticate` / `Proxy-Authenticate`
//! challenges, choosing the strongest algorithm offered, and building the
//! `Authorization` / `Proxy-Authorization` value. Written here rather than
//! taken from rsip, whose auth types mis-parse `SHA-256` and quote
//! parameters RFC 7616 §3.4 says must not be quoted (`algorithm`, `qop`,
//! `nc`). Pure functions plus a small per-nonce counter; the UAC core
//! decides when to retry.

use md5::Md5;
use sha2::{Digest as _, Sha256, Sha512_256};

/// A digest algorithm, weakest first (the order `choose` ranks by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    Sha512_256,
    Sha512_256Sess,
}

impl Algorithm {
    fn parse(s: &str) -> Option<Algorithm> {
        Some(match s.to_ascii_uppercase().as_str() {
            "MD5" => Algorithm::Md5,
            "MD5-SESS" => Algorithm::Md5Sess,
            "SHA-256" => Algorithm::Sha256,
            "SHA-256-SESS" => Algorithm::Sha256Sess,
            "SHA-512-256" => Algorithm::Sha512_256,
            "SHA-512-256-SESS" => Algorithm::Sha512_256Sess,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// Lowercase hex of the hash of `data`.
    pub fn hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(data)),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(data)),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => hex(&Sha512_256::digest(data)),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Quality of protection rivr can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    Auth,
    AuthInt,
}

/// One `Digest` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// The qop values offered that rivr supports (empty: RFC 2069 style).
    pub qop: Vec<Qop>,
    /// `stale=true`: the nonce expired but the credentials were fine.
    pub stale: bool,
    pub userhash: bool,
}

/// Why a challenge was not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("not a Digest challenge")]
    NotDigest,
    #[error("Digest challenge without {0}")]
    Missing(&'static str),
    #[error("unsupported Digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("Digest challenge offers only qop values rivr does not support: {0:?}")]
    UnsupportedQop(String),
    #[error("malformed Digest challenge")]
    Malformed,
}

impl Challenge {
    /// Parses one header value (`Digest realm="…", nonce="…", …`).
    pub fn parse(value: &str) -> Result<Challenge, ChallengeError> {
        let value = value.trim();
        let (scheme, rest) = value
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(ChallengeError::NotDigest);
        }
        let params = parse_params(rest).ok_or(ChallengeError::Malformed)?;
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        let realm = get("realm").ok_or(ChallengeError::Missing("realm"))?;
        let nonce = get("nonce").ok_or(ChallengeError::Missing("nonce"))?;
        let algorithm = match get("algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(a)
                .ok_or_else(|| ChallengeError::UnsupportedAlgorithm(a.to_string()))?,
        };
        let qop = match get("qop") {
            None => Vec::new(),
            Some(list) => {
                let q: Vec<Qop> = list
                    .split(',')
                    .filter_map(|t| match t.trim().to_ascii_lowercase().as_str() {
                        "auth" => Some(Qop::Auth),
                        "auth-int" => Some(Qop::AuthInt),
                        _ => None,
                    })
                    .collect();
                if q.is_empty() {
                    return Err(ChallengeError::UnsupportedQop(list.to_string()));
                }
                q
            }
        };
        Ok(Challenge {
            realm: realm.to_string(),
            nonce: nonce.to_string(),
            opaque: get("opaque").map(str::to_string),
            algorithm,
            qop,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
            userhash: get("userhash").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }
}

/// The strongest usable challenge among all the header values of a 401 or
/// 407 (RFC 8760 §2.4: a UAC picks the strongest algorithm it supports);
/// when `realm` is given, only challenges for that realm count.
pub fn choose<'a>(
    values: impl IntoIterator<Item = &'a str>,
    realm: Option<&str>,
) -> Option<Challenge> {
    values
        .into_iter()
        .filter_map(|v| Challenge::parse(v).ok())
        .filter(|c| realm.is_none_or(|r| r == c.realm))
        .max_by_key(|c| c.algorithm)
}

/// `name=value` / `name="quoted"` pairs separated by commas.
fn parse_params(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let name = rest.get(..eq)?.trim();
        if name.is_empty() || name.contains([',', '"', ' ']) {
            return None;
        }
        rest = rest.get(eq + 1..)?.trim_start();
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => v.push(chars.next()?.1),
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = q.get(end? + 1..)?;
        } else {
            let stop = rest.find(',').unwrap_or(rest.len());
            value = rest.get(..stop)?.trim().to_string();
            rest = rest.get(stop..)?;
        }
        out.push((name.to_string(), value));
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.is_empty() {
            return None;
        }
    }
    Some(out)
}

/// The credentials of a trunk.
#[derive(Debug, Clone)]
pub struct Credentials<'a> {
    pub username: &'a str,
    pub password: &'a str,
}

/// What is being authorized.
#[derive(Debug, Clone)]
pub struct RequestLine<'a> {
    pub method: &'a str,
    /// The Request-URI, as sent (`digest-uri`).
    pub uri: &'a str,
    pub body: &'a [u8],
}

/// Builds the `Authorization`/`Proxy-Authorization` value for `req` in
/// answer to `ch`. `nc` is the nonce count (1 for the first use of a
/// nonce), `cnonce` a fresh client nonce.
pub fn authorization(
    ch: &Challenge,
    creds: &Credentials<'_>,
    req: &RequestLine<'_>,
    nc: u32,
    cnonce: &str,
) -> String {
    let alg = ch.algorithm;
    let mut ha1 = alg.hex(format!("{}:{}:{}", creds.username, ch.realm, creds.password).as_bytes());
    if alg.is_sess() {
        ha1 = alg.hex(format!("{ha1}:{}:{cnonce}", ch.nonce).as_bytes());
    }
    // auth when offered; auth-int only when it is all that is offered.
    let qop = if ch.qop.contains(&Qop::Auth) {
        Some(Qop::Auth)
    } else {
        ch.qop.first().copied()
    };
    let ha2 = match qop {
        Some(Qop::AuthInt) => {
            alg.hex(format!("{}:{}:{}", req.method, req.uri, alg.hex(req.body)).as_bytes())
        }
        _ => alg.hex(format!("{}:{}", req.method, req.uri).as_bytes()),
    };
    let nc_text = format!("{nc:08x}");
    let response = match qop {
        Some(q) => alg.hex(
            format!(
                "{ha1}:{}:{nc_text}:{cnonce}:{}:{ha2}",
                ch.nonce,
                if q == Qop::Auth { "auth" } else { "auth-int" }
            )
            .as_bytes(),
        ),
        None => alg.hex(format!("{ha1}:{}:{ha2}", ch.nonce).as_bytes()),
    };
    let username = if ch.userhash {
        alg.hex(format!("{}:{}", creds.username, ch.realm).as_bytes())
    } else {
        creds.username.to_string()
    };
    let mut v = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={}",
        quote(&username),
        quote(&ch.realm),
        quote(&ch.nonce),
        quote(req.uri),
        alg.name()
    );
    if let Some(o) = &ch.opaque {
        v.push_str(&format!(", opaque={}", quote(o)));
    }
    if let Some(q) = qop {
        v.push_str(&format!(
            ", qop={}, nc={nc_text}, cnonce={}",
            if q == Qop::Auth { "auth" } else { "auth-int" },
            quote(cnonce)
        ));
    }
    if ch.userhash {
        v.push_str(", userhash=true");
    }
    v
}

/// A quoted-string (RFC 3261 §25.1): `"` and `\` escaped.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// Nonce counts: the first use of a nonce is 1, each further use +1; a new
/// nonce starts again at 1 (RFC 7616 §3.4).
#[derive(Debug, Default, Clone)]
pub struct NonceCounter {
    nonce: String,
    count: u32,
}

impl NonceCounter {
    pub fn next(&mut self, nonce: &str) -> u32 {
        if self.nonce != nonce {
            self.nonce = nonce.to_string();
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC7616_CHALLENGES: [&str; 2] = [
        "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=SHA-256, \
         nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
         opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
        "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=MD5, \
         nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
         opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
    ];
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    fn mufasa() -> Credentials<'static> {
        // RFC 7616 erratum 4495: "of" is lower case.
        Credentials {
            username: "Mufasa",
            password: "Circle of Life",
        }
    }

    fn get() -> RequestLine<'static> {
        RequestLine {
            method: "GET",
            uri: "/dir/index.html",
            body: b"",
        }
    }

    fn param<'a>(v: &'a str, name: &str) -> &'a str {
        let at = v.find(&format!("{name}=")).unwrap() + name.len() + 1;
        let rest = &v[at..];
        rest.split(", ").next().unwrap()
    }

    #[test]
    fn rfc7616_3_9_1_md5_and_sha256_vectors() {
        let md5 = Challenge::parse(RFC7616_CHALLENGES[1]).unwrap();
        assert_eq!(md5.algorithm, Algorithm::Md5);
        assert_eq!(md5.qop, vec![Qop::Auth, Qop::AuthInt]);
        let v = authorization(&md5, &mufasa(), &get(), 1, CNONCE);
        assert_eq!(
            param(&v, "response"),
            "\"8ca523f5e9506fed4657c9700eebdbec\""
        );
        let sha = Challenge::parse(RFC7616_CHALLENGES[0]).unwrap();
        let v = authorization(&sha, &mufasa(), &get(), 1, CNONCE);
        assert_eq!(
            param(&v, "response"),
            "\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\""
        );
        // RFC 7616 §3.4: algorithm, qop and nc are tokens, never quoted.
        assert_eq!(param(&v, "algorithm"), "SHA-256");
        assert_eq!(param(&v, "qop"), "auth");
        assert_eq!(param(&v, "nc"), "00000001");
        assert_eq!(
            param(&v, "opaque"),
            "\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        );
        assert!(v.starts_with("Digest username=\"Mufasa\", realm=\"http-auth@example.org\""));
    }

    #[test]
    fn sha512_256_with_userhash_matches_an_independent_implementation() {
        // RFC 7616 §3.9.2's own figures are under erratum 4897; these come
        // from Python's hashlib (OpenSSL) on the same inputs.
        let ch = Challenge::parse(
            "Digest realm=\"api@example.org\", qop=\"auth\", algorithm=SHA-512-256, \
             nonce=\"5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK\", \
             opaque=\"HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS\", charset=UTF-8, userhash=true",
        )
        .unwrap();
        assert_eq!(ch.algorithm, Algorithm::Sha512_256);
        let v = authorization(
            &ch,
            &Credentials {
                username: "J\u{e4}s\u{f8}n Doe",
                password: "Secret, or not?",
            },
            &RequestLine {
                method: "GET",
                uri: "/doe.json",
                body: b"",
            },
            1,
            "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
        );
        assert_eq!(
            param(&v, "username"),
            "\"793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b\""
        );
        assert_eq!(
            param(&v, "response"),
            "\"3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5\""
        );
        assert!(v.ends_with("userhash=true"));
    }

    #[test]
    fn the_strongest_algorithm_across_all_headers_wins() {
        let sha512 = "Digest realm=\"r\", nonce=\"n3\", algorithm=SHA-512-256, qop=\"auth\"";
        let picked = choose(
            [
                RFC7616_CHALLENGES[1],
                sha512,
                RFC7616_CHALLENGES[0],
                "Basic realm=\"x\"",
            ],
            None,
        )
        .unwrap();
        assert_eq!(picked.algorithm, Algorithm::Sha512_256);
        let picked = choose(RFC7616_CHALLENGES, None).unwrap();
        assert_eq!(picked.algorithm, Algorithm::Sha256);
        // An unknown algorithm is skipped, not fatal.
        let picked = choose(
            [
                "Digest realm=\"r\", nonce=\"n\", algorithm=SHA3-512",
                RFC7616_CHALLENGES[1],
            ],
            None,
        )
        .unwrap();
        assert_eq!(picked.algorithm, Algorithm::Md5);
        // A configured realm filters.
        assert!(choose(RFC7616_CHALLENGES, Some("other")).is_none());
        assert!(choose(RFC7616_CHALLENGES, Some("http-auth@example.org")).is_some());
    }

    #[test]
    fn no_qop_is_rfc2069_style_and_stale_is_read() {
        let ch = Challenge::parse("Digest realm=\"asterisk\",nonce=\"1cb2\",stale=TRUE").unwrap();
        assert!(ch.stale);
        assert_eq!(ch.algorithm, Algorithm::Md5);
        assert!(ch.qop.is_empty());
        let req = RequestLine {
            method: "INVITE",
            uri: "sip:100@example.org",
            body: b"",
        };
        let v = authorization(
            &ch,
            &Credentials {
                username: "u",
                password: "p",
            },
            &req,
            1,
            "c",
        );
        let ha1 = Algorithm::Md5.hex(b"u:asterisk:p");
        let ha2 = Algorithm::Md5.hex(b"INVITE:sip:100@example.org");
        let expect = Algorithm::Md5.hex(format!("{ha1}:1cb2:{ha2}").as_bytes());
        assert_eq!(param(&v, "response"), format!("\"{expect}\""));
        assert!(!v.contains("qop=") && !v.contains("nc=") && !v.contains("cnonce="));
    }

    #[test]
    fn auth_int_only_when_it_is_all_that_is_offered() {
        let ch = Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"").unwrap();
        let req = RequestLine {
            method: "INVITE",
            uri: "sip:1@h",
            body: b"v=0\r\n",
        };
        let v = authorization(
            &ch,
            &Credentials {
                username: "u",
                password: "p",
            },
            &req,
            2,
            "c",
        );
        assert_eq!(param(&v, "qop"), "auth-int");
        assert_eq!(param(&v, "nc"), "00000002");
        let ha1 = Algorithm::Md5.hex(b"u:r:p");
        let ha2 = Algorithm::Md5
            .hex(format!("INVITE:sip:1@h:{}", Algorithm::Md5.hex(b"v=0\r\n")).as_bytes());
        let expect = Algorithm::Md5.hex(format!("{ha1}:n:00000002:c:auth-int:{ha2}").as_bytes());
        assert_eq!(param(&v, "response"), format!("\"{expect}\""));
    }

    #[test]
    fn nonce_count_per_nonce() {
        let mut n = NonceCounter::default();
        assert_eq!((n.next("a"), n.next("a"), n.next("a")), (1, 2, 3));
        assert_eq!((n.next("b"), n.next("b")), (1, 2));
    }

    #[test]
    fn malformed_challenges_are_errors() {
        for bad in [
            "",
            "Digest",
            "Digest realm=\"r\"",
            "Digest nonce=\"n\"",
            "Digest realm=\"r, nonce=\"n\"",
            "Digest realm=\"r\" nonce=\"n\"",
            "Digest realm=\"r\", nonce=\"n\", qop=\"auth-conf\"",
            "Digest =x, realm=\"r\", nonce=\"n\"",
            "Basic realm=\"r\"",
        ] {
            assert!(Challenge::parse(bad).is_err(), "{bad:?}");
        }
        // Quoted-pair escapes are honoured.
        let ch = Challenge::parse(r#"Digest realm="a\"b", nonce="n""#).unwrap();
        assert_eq!(ch.realm, "a\"b");
        let v = authorization(
            &ch,
            &Credentials {
                username: "u",
                password: "p",
            },
            &get(),
            1,
            "c",
        );
        assert!(v.contains(r#"realm="a\"b""#), "{v}");
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(s in ".{0,300}") {
            let _ = Challenge::parse(&s);
            let _ = Challenge::parse(&format!("Digest {s}"));
        }
    }
}
