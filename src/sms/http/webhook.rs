//! The provider webhooks rivr serves (`/webhooks/sms/infobip`,
//! `/webhooks/sms/vonage`): who may post (Vonage's signature, else the
//! shared `webhook_secret`) and what the request says. Sans-IO: the HTTP
//! layer hands in the request's parts and `now`, and stores the events.

use subtle::ConstantTimeEq;

use super::{infobip, vonage, Event};
use crate::sms::config::{HttpSmsConfig, Provider};

/// What the HTTP layer read off a webhook request.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    pub query: Option<&'a str>,
    pub content_type: &'a str,
    /// The `X-Webhook-Secret` header, if any.
    pub secret_header: Option<&'a str>,
    pub body: &'a [u8],
}

/// Why a webhook was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not this server's provider, or no way to check who posts.
    NotConfigured(String),
    /// The check failed.
    Forbidden(String),
}

/// The shared secret, from `?secret=` or the `X-Webhook-Secret` header.
fn secret_ok(cfg: &HttpSmsConfig, req: &WebhookRequest<'_>) -> Result<(), Refusal> {
    let given = req.secret_header.map(str::to_string).or_else(|| {
        req.query.and_then(|q| {
            super::template::parse_form(q)
                .into_iter()
                .find(|(k, _)| k == "secret")
                .map(|(_, v)| v)
        })
    });
    match given {
        Some(g) if bool::from(g.as_bytes().ct_eq(cfg.webhook_secret.0.as_bytes())) => Ok(()),
        Some(_) => Err(Refusal::Forbidden("webhook secret does not match".into())),
        None => Err(Refusal::Forbidden(
            "no webhook secret (?secret= or X-Webhook-Secret)".into(),
        )),
    }
}

/// Checks and reads a webhook for `provider`. `now_secs`: Unix time, for
/// Vonage's signature timestamp.
pub fn read(
    cfg: Option<&HttpSmsConfig>,
    provider: Provider,
    req: &WebhookRequest<'_>,
    now_secs: i64,
) -> Result<Vec<Event>, Refusal> {
    let Some(cfg) = cfg.filter(|c| c.provider == provider) else {
        return Err(Refusal::NotConfigured(format!(
            "[sms_http] provider is not {:?}",
            provider.name()
        )));
    };
    match provider {
        Provider::Infobip => {
            if cfg.webhook_secret.0.is_empty() {
                return Err(Refusal::NotConfigured(
                    "sms_http.webhook_secret is not set: Infobip does not sign its webhooks, so rivr takes none without the secret".into(),
                ));
            }
            secret_ok(cfg, req)?;
            Ok(infobip::parse_events(req.body))
        }
        Provider::Vonage => {
            let mut params = vonage::params(req.query, req.content_type, req.body);
            if !cfg.signature_secret.0.is_empty() {
                // Our own query parameter is not one Vonage signed.
                params.remove("secret");
                vonage::check_signature(
                    &params,
                    &cfg.signature_secret.0,
                    cfg.signature_method,
                    now_secs,
                )
                .map_err(Refusal::Forbidden)?;
            } else if !cfg.webhook_secret.0.is_empty() {
                secret_ok(cfg, req)?;
            } else {
                return Err(Refusal::NotConfigured(
                    "neither sms_http.signature_secret nor sms_http.webhook_secret is set".into(),
                ));
            }
            Ok(vonage::parse_event(&params).into_iter().collect())
        }
        Provider::Template => Err(Refusal::NotConfigured(
            "the template provider has no webhook".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sms::config::{Secret, SignatureMethod};
    use crate::sms::http::infobip::tests::cfg;

    fn req<'a>(
        query: Option<&'a str>,
        header: Option<&'a str>,
        body: &'a [u8],
    ) -> WebhookRequest<'a> {
        WebhookRequest {
            query,
            content_type: "application/json",
            secret_header: header,
            body,
        }
    }

    const REPORT: &[u8] =
        br#"{"results":[{"messageId":"m1","status":{"groupName":"DELIVERED","name":"DELIVERED_TO_HANDSET"}}]}"#;

    #[test]
    fn infobip_needs_the_shared_secret() {
        let c = cfg(Provider::Infobip);
        let ok = read(
            Some(&c),
            Provider::Infobip,
            &req(Some("secret=x"), None, REPORT),
            0,
        )
        .unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(
            read(
                Some(&c),
                Provider::Infobip,
                &req(None, Some("x"), REPORT),
                0
            )
            .map(|e| e.len()),
            Ok(1)
        );
        assert!(matches!(
            read(
                Some(&c),
                Provider::Infobip,
                &req(Some("secret=y"), None, REPORT),
                0
            ),
            Err(Refusal::Forbidden(_))
        ));
        assert!(matches!(
            read(Some(&c), Provider::Infobip, &req(None, None, REPORT), 0),
            Err(Refusal::Forbidden(_))
        ));
        let mut open = c.clone();
        open.webhook_secret = Secret(String::new());
        assert!(matches!(
            read(Some(&open), Provider::Infobip, &req(None, None, REPORT), 0),
            Err(Refusal::NotConfigured(_))
        ));
        // Not this server's provider, or no provider at all.
        assert!(matches!(
            read(
                Some(&c),
                Provider::Vonage,
                &req(Some("secret=x"), None, b""),
                0
            ),
            Err(Refusal::NotConfigured(_))
        ));
        assert!(matches!(
            read(
                None,
                Provider::Infobip,
                &req(Some("secret=x"), None, REPORT),
                0
            ),
            Err(Refusal::NotConfigured(_))
        ));
    }

    #[test]
    fn vonage_checks_its_signature_first() {
        let mut c = cfg(Provider::Vonage);
        c.signature_secret = Secret("sig".into());
        c.signature_method = SignatureMethod::Sha256Hmac;
        let mut p: std::collections::BTreeMap<String, String> = [
            ("messageId", "id1"),
            ("status", "delivered"),
            ("timestamp", "1000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let sig = vonage::signature(&p, "sig", SignatureMethod::Sha256Hmac);
        p.insert("sig".into(), sig);
        let q: String = p
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let r = WebhookRequest {
            content_type: "",
            ..req(Some(&q), None, b"")
        };
        assert_eq!(
            read(Some(&c), Provider::Vonage, &r, 1000).map(|e| e.len()),
            Ok(1)
        );
        // The shared secret does not stand in for a signature.
        let r = WebhookRequest {
            content_type: "",
            ..req(Some("messageId=id1&status=delivered&secret=x"), None, b"")
        };
        assert!(matches!(
            read(Some(&c), Provider::Vonage, &r, 1000),
            Err(Refusal::Forbidden(_))
        ));
        // Without a signature secret, the shared one is checked.
        c.signature_secret = Secret(String::new());
        assert_eq!(
            read(Some(&c), Provider::Vonage, &r, 1000).map(|e| e.len()),
            Ok(1)
        );
        c.webhook_secret = Secret(String::new());
        assert!(matches!(
            read(Some(&c), Provider::Vonage, &r, 1000),
            Err(Refusal::NotConfigured(_))
        ));
    }
}
