//! `[sms_http]`: an HTTP SMS provider — the Infobip or Vonage preset or
//! the generic template (docs/sms.md). Every error names the key and line.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::trunk::Err;
use super::ConfigError;
use crate::sms::config::{HttpSmsConfig, Provider, Secret, SignatureMethod};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmsHttp {
    provider: Option<Spanned<String>>,
    base_url: Option<Spanned<String>>,
    api_key: Option<Spanned<String>>,
    api_secret: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    webhook_url: Option<Spanned<String>>,
    webhook_secret: Option<Spanned<String>>,
    signature_secret: Option<Spanned<String>>,
    signature_method: Option<Spanned<String>>,
    reports_poll_secs: Option<Spanned<u64>>,
    url: Option<Spanned<String>>,
    method: Option<Spanned<String>>,
    body: Option<String>,
    content_type: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    message_id: Option<String>,
    from: Option<Spanned<String>>,
    timeout_ms: Option<Spanned<u64>>,
    #[serde(default, deserialize_with = "crate::sms::config::prefixes")]
    prefixes: Vec<String>,
}

fn text(v: &Option<Spanned<String>>) -> String {
    v.as_ref().map(|s| s.get_ref().clone()).unwrap_or_default()
}

/// `http://` or `https://` with a host: what the client can reach.
fn check_url(v: &Option<Spanned<String>>, key: &str, err: Err<'_>) -> Result<(), ConfigError> {
    let Some(u) = v else { return Ok(()) };
    let s = u.get_ref();
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(()),
        _ => Err(err(
            Some(u.span()),
            format!("sms_http.{key}: {s:?} is not an http:// or https:// URL"),
        )),
    }
}

pub(super) fn parse_sms_http(
    raw: Spanned<RawSmsHttp>,
    base_dir: &Path,
    err: Err<'_>,
) -> Result<HttpSmsConfig, ConfigError> {
    let table = raw.span();
    let r = raw.into_inner();
    let provider = match r.provider.as_ref().map(|p| p.get_ref().as_str()) {
        None | Some("template") => Provider::Template,
        Some("infobip") => Provider::Infobip,
        Some("vonage") | Some("nexmo") => Provider::Vonage,
        Some(other) => {
            return Err(err(
                r.provider.as_ref().map(|p| p.span()),
                format!(
                    "sms_http.provider: {other:?} is not \"infobip\", \"vonage\" or \"template\""
                ),
            ))
        }
    };
    let need = |v: &Option<Spanned<String>>, key: &str| -> Result<(), ConfigError> {
        match v {
            Some(s) if !s.get_ref().trim().is_empty() => Ok(()),
            Some(s) => Err(err(
                Some(s.span()),
                format!(
                    "sms_http.{key}: empty (provider {:?} needs it)",
                    provider.name()
                ),
            )),
            None => Err(err(
                Some(table.clone()),
                format!(
                    "sms_http: `{key}` is missing (provider {:?} needs it)",
                    provider.name()
                ),
            )),
        }
    };
    // A key that only another provider reads is a mistake worth naming.
    let refuse = |v: &Option<Spanned<String>>, key: &str| -> Result<(), ConfigError> {
        match v {
            Some(s) => Err(err(
                Some(s.span()),
                format!("sms_http.{key}: not used by provider {:?}", provider.name()),
            )),
            None => Ok(()),
        }
    };
    match provider {
        Provider::Template => {
            need(&r.url, "url")?;
            refuse(&r.base_url, "base_url")?;
            refuse(&r.api_key, "api_key")?;
            refuse(&r.api_secret, "api_secret")?;
            refuse(&r.signature_secret, "signature_secret")?;
        }
        Provider::Infobip => {
            need(&r.base_url, "base_url")?;
            need(&r.api_key, "api_key")?;
            refuse(&r.api_secret, "api_secret")?;
            refuse(&r.url, "url")?;
            refuse(&r.signature_secret, "signature_secret")?;
        }
        Provider::Vonage => {
            // Optional: Vonage has one public endpoint.
            if r.base_url.is_some() {
                need(&r.base_url, "base_url")?;
            }
            need(&r.api_key, "api_key")?;
            need(&r.api_secret, "api_secret")?;
            // Vonage refuses a message without one (status 2).
            need(&r.from, "from")?;
            refuse(&r.url, "url")?;
        }
    }
    check_url(&r.base_url, "base_url", err)?;
    check_url(&r.url, "url", err)?;
    check_url(&r.webhook_url, "webhook_url", err)?;
    let method = r
        .method
        .as_ref()
        .map(|m| m.get_ref().to_ascii_uppercase())
        .unwrap_or_else(|| "POST".into());
    if method != "GET" && method != "POST" {
        return Err(err(
            r.method.as_ref().map(|m| m.span()),
            format!("sms_http.method: {method:?} is not \"GET\" or \"POST\""),
        ));
    }
    let ca_file = match &r.ca_file {
        Some(f) => {
            let path = base_dir.join(f.get_ref());
            let pem = std::fs::read(&path).map_err(|e| {
                err(
                    Some(f.span()),
                    format!("sms_http.ca_file: {}: {e}", path.display()),
                )
            })?;
            let certs = ureq::tls::parse_pem(&pem)
                .filter(|i| matches!(i, Ok(ureq::tls::PemItem::Certificate(_))))
                .count();
            if certs == 0 {
                return Err(err(
                    Some(f.span()),
                    format!(
                        "sms_http.ca_file: {} holds no PEM certificate",
                        path.display()
                    ),
                ));
            }
            Some(path)
        }
        None => None,
    };
    let signature_method = match r.signature_method.as_ref().map(|m| m.get_ref().as_str()) {
        None | Some("md5hash") => SignatureMethod::Md5Hash,
        Some("md5") => SignatureMethod::Md5Hmac,
        Some("sha1") => SignatureMethod::Sha1Hmac,
        Some("sha256") => SignatureMethod::Sha256Hmac,
        Some("sha512") => SignatureMethod::Sha512Hmac,
        Some(other) => {
            return Err(err(
                r.signature_method.as_ref().map(|m| m.span()),
                format!(
                    "sms_http.signature_method: {other:?} is not \"md5hash\", \"md5\", \"sha1\", \"sha256\" or \"sha512\""
                ),
            ))
        }
    };
    let positive = |v: &Option<Spanned<u64>>, key: &str, default: u64| match v {
        Some(n) if *n.get_ref() == 0 => Err(err(
            Some(n.span()),
            format!("sms_http.{key}: must be at least 1"),
        )),
        Some(n) => Ok(*n.get_ref()),
        None => Ok(default),
    };
    let base_url = match (provider, &r.base_url) {
        (Provider::Vonage, None) => "https://rest.nexmo.com".to_string(),
        _ => text(&r.base_url),
    };
    Ok(HttpSmsConfig {
        provider,
        base_url: base_url.trim_end_matches('/').to_string(),
        api_key: Secret(text(&r.api_key)),
        api_secret: Secret(text(&r.api_secret)),
        ca_file,
        webhook_url: text(&r.webhook_url),
        webhook_secret: Secret(text(&r.webhook_secret)),
        signature_secret: Secret(text(&r.signature_secret)),
        signature_method,
        reports_poll_secs: positive(&r.reports_poll_secs, "reports_poll_secs", 10)?,
        url: text(&r.url),
        method,
        body: r.body.unwrap_or_default(),
        content_type: r
            .content_type
            .unwrap_or_else(|| "application/x-www-form-urlencoded".into()),
        headers: r.headers.unwrap_or_default(),
        message_id: r.message_id.unwrap_or_else(|| "body".into()),
        from: text(&r.from),
        timeout_ms: positive(&r.timeout_ms, "timeout_ms", 10_000)?,
        prefixes: r.prefixes,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::sms::config::{Provider, SignatureMethod};
    use std::path::Path;

    fn parse(s: &str) -> Result<Config, String> {
        Config::parse(s, "rivr.toml", Path::new("/")).map_err(|e| e.to_string())
    }

    #[test]
    fn template_stays_the_default() {
        let c = parse(
            "[sms_http]\nurl = \"http://127.0.0.1:1/send?to={to}\"\nmethod = \"GET\"\nmessage_id = \"json:id\"\n",
        )
        .unwrap();
        let h = c.sms_http.unwrap();
        assert_eq!(
            (h.provider, h.message_id.as_str()),
            (Provider::Template, "json:id")
        );
    }

    #[test]
    fn presets_parse_and_hide_secrets() {
        let c = parse(
            "[sms_http]\nprovider = \"infobip\"\nbase_url = \"https://x.api.infobip.com/\"\napi_key = \"k3y\"\nfrom = \"CLINIC\"\nwebhook_url = \"https://r.example.org/webhooks/sms/infobip?secret=s\"\n",
        )
        .unwrap();
        let h = c.sms_http.unwrap();
        assert_eq!(h.base_url, "https://x.api.infobip.com");
        assert!(!format!("{h:?}").contains("k3y"));
        let c = parse(
            "[sms_http]\nprovider = \"vonage\"\napi_key = \"a\"\napi_secret = \"b\"\nfrom = \"CLINIC\"\nsignature_secret = \"s\"\nsignature_method = \"sha256\"\n",
        )
        .unwrap();
        let h = c.sms_http.unwrap();
        assert_eq!(h.base_url, "https://rest.nexmo.com");
        assert_eq!(h.signature_method, SignatureMethod::Sha256Hmac);
    }

    #[test]
    fn errors_name_key_and_line() {
        let e = parse("[sms_http]\nprovider = \"infobop\"\n").unwrap_err();
        assert!(
            e.contains("rivr.toml:2:") && e.contains("sms_http.provider"),
            "{e}"
        );
        let e = parse("[sms_http]\nprovider = \"vonage\"\napi_key = \"a\"\n").unwrap_err();
        assert!(
            e.contains("api_secret") && e.contains("rivr.toml:1:"),
            "{e}"
        );
        let e =
            parse("[sms_http]\nprovider = \"infobip\"\napi_key = \"a\"\nbase_url = \"ftp://x\"\n")
                .unwrap_err();
        assert!(
            e.contains("rivr.toml:4:") && e.contains("sms_http.base_url"),
            "{e}"
        );
        let e = parse(
            "[sms_http]\nprovider = \"infobip\"\nbase_url = \"https://x\"\napi_key = \"a\"\nca_file = \"/nonexistent/ca.pem\"\n",
        )
        .unwrap_err();
        assert!(
            e.contains("rivr.toml:5:") && e.contains("sms_http.ca_file"),
            "{e}"
        );
        let e = parse("[sms_http]\nprovider = \"infobip\"\nbase_url = \"https://x\"\napi_key = \"a\"\nurl = \"http://y\"\n")
            .unwrap_err();
        assert!(e.contains("rivr.toml:5:") && e.contains("not used"), "{e}");
        let e = parse("[sms_http]\nurl = \"http://y\"\nsignature_method = \"crc\"\n").unwrap_err();
        assert!(
            e.contains("rivr.toml:3:") && e.contains("signature_method"),
            "{e}"
        );
    }

    #[test]
    fn prefixes_are_digits_and_name_their_line() {
        let base = "[sms_http]\nurl = \"http://127.0.0.1:1/send\"\n";
        let c = parse(&format!("{base}prefixes = [\"+254\", \"1555\"]\n")).unwrap();
        assert_eq!(c.sms_http.unwrap().prefixes, ["254", "1555"]);
        assert!(parse(base).unwrap().sms_http.unwrap().prefixes.is_empty());
        let e = parse(&format!("{base}prefixes = [\"25x\"]\n")).unwrap_err();
        assert!(e.contains("rivr.toml:3") && e.contains("prefixes"), "{e}");
    }
}
