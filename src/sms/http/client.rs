//! The one HTTP client of the SMS transport: ureq (the client the script
//! `http_*` verbs use) over rustls, run on tokio's blocking pool. Trusts the
//! system's CA bundle plus `ca_file`, and tells a request that cannot have
//! reached the provider (no connection, TLS refused) from one that may have.

use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use crate::sms::config::HttpSmsConfig;

/// Where Debian, Fedora/RHEL, Alpine/openSUSE and macOS keep the system's
/// CA bundle; `SSL_CERT_FILE` wins, as for OpenSSL.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// One request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// Content type and bytes; none for GET.
    pub body: Option<(String, Vec<u8>)>,
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Answer {
        status: u16,
        body: String,
    },
    /// Nothing reached the provider (connection or TLS refused, DNS).
    NotSent(String),
    /// It may have reached the provider (written, then no whole answer).
    Lost(String),
}

#[derive(Clone)]
pub(crate) struct Client {
    agent: ureq::Agent,
}

/// The largest answer read: a bulk send's answer is a few KB.
const MAX_ANSWER: u64 = 1 << 20;

impl Client {
    /// The client `cfg` describes; the error names `sms_http.ca_file`.
    pub fn new(cfg: &HttpSmsConfig) -> Result<Client, String> {
        let mut tls = TlsConfig::builder();
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("sms_http.ca_file {}: {e}", path.display()))?;
            let mut roots = system_roots();
            roots.extend(certificates(&pem));
            tls = tls.root_certs(RootCerts::Specific(Arc::new(roots)));
        } else if let Some(roots) = Some(system_roots()).filter(|r| !r.is_empty()) {
            tls = tls.root_certs(RootCerts::Specific(Arc::new(roots)));
        }
        let agent = ureq::Agent::config_builder()
            // The transport reads every status itself (429 and 5xx retry).
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_millis(cfg.timeout_ms.max(1))))
            .user_agent(concat!("rivr/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build()
            .into();
        Ok(Client { agent })
    }

    /// Sends `req` on the blocking pool (ureq blocks; the driver must not).
    pub async fn send(&self, req: Request) -> Reply {
        let agent = self.agent.clone();
        match tokio::task::spawn_blocking(move || send_blocking(&agent, req)).await {
            Ok(r) => r,
            Err(e) => Reply::Lost(format!("request task: {e}")),
        }
    }
}

fn certificates(pem: &[u8]) -> Vec<Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|i| match i {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}

/// The system's CA certificates; empty when no bundle is found (ureq then
/// falls back to Mozilla's roots, unless `ca_file` is set).
fn system_roots() -> Vec<Certificate<'static>> {
    let env = std::env::var("SSL_CERT_FILE").ok();
    let paths = env
        .iter()
        .map(String::as_str)
        .chain(SYSTEM_BUNDLES.iter().copied());
    for p in paths {
        if let Ok(pem) = std::fs::read(p) {
            let certs = certificates(&pem);
            if !certs.is_empty() {
                return certs;
            }
        }
    }
    tracing::warn!("sms http: no system CA bundle found; only ca_file is trusted");
    Vec::new()
}

fn send_blocking(agent: &ureq::Agent, req: Request) -> Reply {
    let result = match req.body {
        None => {
            let mut rb = agent.get(&req.url);
            for (k, v) in &req.headers {
                rb = rb.header(k, v);
            }
            rb.call()
        }
        Some((ct, bytes)) => {
            let mut rb = agent.post(&req.url);
            for (k, v) in &req.headers {
                rb = rb.header(k, v);
            }
            rb.header("content-type", ct).send(&bytes[..])
        }
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => return failure(e),
    };
    let status = resp.status().as_u16();
    match resp
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_vec()
    {
        Ok(b) => Reply::Answer {
            status,
            body: String::from_utf8_lossy(&b).into_owned(),
        },
        // The status line came: the provider has the request.
        Err(e) => Reply::Answer {
            status,
            body: format!("(body unreadable: {e})"),
        },
    }
}

fn failure(e: ureq::Error) -> Reply {
    use std::io::ErrorKind;
    use ureq::Timeout;
    match e {
        ureq::Error::HostNotFound => Reply::NotSent("host not found (DNS)".into()),
        ureq::Error::ConnectionFailed => Reply::NotSent("connection failed".into()),
        ureq::Error::Timeout(Timeout::Resolve | Timeout::Connect) => {
            Reply::NotSent("timed out connecting".into())
        }
        ureq::Error::Rustls(t) => Reply::NotSent(format!("TLS: {t}")),
        ureq::Error::Tls(t) => Reply::NotSent(format!("TLS: {t}")),
        ureq::Error::Io(io) if io.kind() == ErrorKind::ConnectionRefused => {
            Reply::NotSent("connection refused".into())
        }
        ureq::Error::Io(io) if io.kind() == ErrorKind::InvalidData => {
            // rustls reports a refused certificate as invalid data.
            Reply::NotSent(format!("TLS: {io}"))
        }
        ureq::Error::Timeout(_) => Reply::Lost("timed out".into()),
        other => Reply::Lost(other.to_string()),
    }
}
