//! `[[sms_route]]` (an inbound SMS to a script, by the number it was sent
//! to and/or its first word; first match wins; one default route with
//! neither) and `[sms]` (the sessions' lifetime, the opt-out and opt-in
//! keywords and their replies). Errors name the key and its line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::trunk::Err;
use super::ConfigError;
use crate::campaign::contacts::Country;
use crate::sms::flow::keyword;

/// One `[[sms_route]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsRoute {
    /// Sessions and results are kept under this name: `name`, else the
    /// script as written.
    pub name: String,
    /// The number the SMS was sent to (a leading `+` ignored).
    pub number: Option<String>,
    /// Its first word, normalized (`sms::flow::keyword`).
    pub keyword: Option<String>,
    pub script: PathBuf,
}

/// `[sms]`: two-way SMS behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsFlowConfig {
    /// `[[sms_route]]`, in the file's order.
    pub routes: Vec<SmsRoute>,
    /// A session not touched for this long starts over.
    pub session_ttl: Duration,
    /// Whole-message keywords (normalized) that put the sender on the
    /// do-not-contact list, and those that take them off.
    pub opt_out_keywords: Vec<String>,
    pub opt_in_keywords: Vec<String>,
    /// Confirmations sent back ("" sends none).
    pub opt_out_reply: String,
    pub opt_in_reply: String,
    /// The country of senders' numbers written nationally (for the list's
    /// E.164 form).
    pub country: Country,
}

/// Standard opt-out words: the CTIA/Twilio set and their common French,
/// Spanish, Portuguese, German, Italian and Swahili counterparts.
pub const DEFAULT_OPT_OUT: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPTOUT",
    "REVOKE",
    "ARRET",
    "ARRETER",
    "DESABONNER",
    "ALTO",
    "PARAR",
    "BAJA",
    "CANCELAR",
    "SAIR",
    "STOPP",
    "ABMELDEN",
    "BASTA",
    "ACHA",
    "SITISHA",
];
pub const DEFAULT_OPT_IN: &[&str] = &["START", "UNSTOP", "SUBSCRIBE", "INICIO", "REPRENDRE"];
pub const DEFAULT_OPT_OUT_REPLY: &str =
    "You will receive no more messages from us. Reply START to subscribe again.";
pub const DEFAULT_OPT_IN_REPLY: &str = "You are subscribed again. Reply STOP to unsubscribe.";
pub const DEFAULT_SESSION_TTL_S: u64 = 86_400;

impl Default for SmsFlowConfig {
    fn default() -> Self {
        let words = |l: &[&str]| l.iter().map(|w| keyword::normalize(w)).collect();
        SmsFlowConfig {
            routes: Vec::new(),
            session_ttl: Duration::from_secs(DEFAULT_SESSION_TTL_S),
            opt_out_keywords: words(DEFAULT_OPT_OUT),
            opt_in_keywords: words(DEFAULT_OPT_IN),
            opt_out_reply: DEFAULT_OPT_OUT_REPLY.into(),
            opt_in_reply: DEFAULT_OPT_IN_REPLY.into(),
            country: Country::NONE,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmsRoute {
    name: Option<Spanned<String>>,
    number: Option<Spanned<String>>,
    keyword: Option<Spanned<String>>,
    script: Spanned<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSms {
    session_ttl_s: Option<Spanned<u64>>,
    opt_out_keywords: Option<Spanned<Vec<Spanned<String>>>>,
    opt_in_keywords: Option<Spanned<Vec<Spanned<String>>>>,
    opt_out_reply: Option<Spanned<String>>,
    opt_in_reply: Option<Spanned<String>>,
    country: Option<Spanned<String>>,
}

fn keywords(
    list: Option<Spanned<Vec<Spanned<String>>>>,
    key: &str,
    default: &[&str],
    err: Err<'_>,
) -> Result<Vec<String>, ConfigError> {
    let Some(list) = list else {
        return Ok(default.iter().map(|w| keyword::normalize(w)).collect());
    };
    let mut out: Vec<String> = Vec::new();
    for w in list.into_inner() {
        let n = keyword::whole(w.get_ref());
        if n.is_empty() {
            return Err(err(
                Some(w.span()),
                format!("sms.{key}: {:?} has no letters or digits", w.get_ref()),
            ));
        }
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

pub(super) fn parse_sms(
    raw: Option<RawSms>,
    routes: Vec<RawSmsRoute>,
    base_dir: &Path,
    err: Err<'_>,
) -> Result<SmsFlowConfig, ConfigError> {
    let raw = raw.unwrap_or_default();
    let session_ttl_s = match &raw.session_ttl_s {
        None => DEFAULT_SESSION_TTL_S,
        Some(v) if (60..=90 * 86_400).contains(v.get_ref()) => *v.get_ref(),
        Some(v) => {
            return Err(err(
                Some(v.span()),
                format!(
                    "sms.session_ttl_s: {} is out of range (60 to 7776000 seconds)",
                    v.get_ref()
                ),
            ))
        }
    };
    let opt_out_keywords = keywords(
        raw.opt_out_keywords,
        "opt_out_keywords",
        DEFAULT_OPT_OUT,
        err,
    )?;
    let opt_in_span = raw.opt_in_keywords.as_ref().map(|l| l.span());
    let opt_in_keywords = keywords(raw.opt_in_keywords, "opt_in_keywords", DEFAULT_OPT_IN, err)?;
    if let Some(w) = opt_in_keywords
        .iter()
        .find(|w| opt_out_keywords.contains(w))
    {
        return Err(err(
            opt_in_span,
            format!("sms.opt_in_keywords: {w:?} is also an opt-out keyword"),
        ));
    }
    let country = match &raw.country {
        None => Country::NONE,
        Some(c) => c
            .get_ref()
            .parse()
            .map_err(|e| err(Some(c.span()), format!("sms.country: {e}")))?,
    };
    let mut out: Vec<SmsRoute> = Vec::new();
    let mut seen_default = false;
    for r in routes {
        let span = r.script.span();
        if seen_default {
            return Err(err(
                Some(span),
                "sms_route: never reached: the default route (no number, no keyword) above it takes every SMS; put it last".into(),
            ));
        }
        let number = match &r.number {
            None => None,
            Some(n) => {
                let digits = n.get_ref().trim().trim_start_matches('+');
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(err(
                        Some(n.span()),
                        format!(
                            "sms_route.number: {:?} is not a number or short code",
                            n.get_ref()
                        ),
                    ));
                }
                Some(digits.to_string())
            }
        };
        let keyword = match &r.keyword {
            None => None,
            Some(k) => {
                let n = keyword::normalize(k.get_ref());
                if n.is_empty() || k.get_ref().split_whitespace().count() != 1 {
                    return Err(err(
                        Some(k.span()),
                        format!("sms_route.keyword: {:?} is not one word", k.get_ref()),
                    ));
                }
                Some(n)
            }
        };
        if number.is_none() && keyword.is_none() {
            seen_default = true;
        }
        if let Some(prev) = out
            .iter()
            .find(|p| p.number == number && p.keyword == keyword)
        {
            return Err(err(
                Some(span),
                format!(
                    "sms_route: the same number and keyword as the route to {} (it would never be reached)",
                    prev.script.display()
                ),
            ));
        }
        let name = match r.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                return Err(err(Some(n.span()), "sms_route.name: empty".into()))
            }
            Some(n) => n.into_inner(),
            None => r.script.get_ref().clone(),
        };
        out.push(SmsRoute {
            name,
            number,
            keyword,
            script: base_dir.join(r.script.into_inner()),
        });
    }
    Ok(SmsFlowConfig {
        routes: out,
        session_ttl: Duration::from_secs(session_ttl_s),
        opt_out_keywords,
        opt_in_keywords,
        opt_out_reply: raw
            .opt_out_reply
            .map(Spanned::into_inner)
            .unwrap_or_else(|| DEFAULT_OPT_OUT_REPLY.into()),
        opt_in_reply: raw
            .opt_in_reply
            .map(Spanned::into_inner)
            .unwrap_or_else(|| DEFAULT_OPT_IN_REPLY.into()),
        country,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;
    use std::time::Duration;

    fn parse(s: &str) -> Result<Config, String> {
        Config::parse(s, "rivr.toml", Path::new("/etc/rivr")).map_err(|e| e.to_string())
    }

    #[test]
    fn routes_and_defaults() {
        let c = parse(
            "[[sms_route]]\nnumber = \"+2001\"\nkeyword = \"Sondage\"\nscript = \"s.rhai\"\n\
             [[sms_route]]\nname = \"all\"\nscript = \"d.rhai\"\n",
        )
        .unwrap()
        .sms;
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.routes[0].number.as_deref(), Some("2001"));
        assert_eq!(c.routes[0].keyword.as_deref(), Some("SONDAGE"));
        assert_eq!(c.routes[0].name, "s.rhai");
        assert_eq!(c.routes[0].script, Path::new("/etc/rivr/s.rhai"));
        assert_eq!(c.routes[1].name, "all");
        assert_eq!(c.session_ttl, Duration::from_secs(86_400));
        assert!(c.opt_out_keywords.contains(&"ARRET".to_string()));
        assert!(c.opt_in_keywords.contains(&"START".to_string()));
        let c = parse("[sms]\nsession_ttl_s = 600\nopt_out_keywords = [\"Arrêt\", \"stop\"]\nopt_in_reply = \"\"\ncountry = \"ke\"\n")
            .unwrap()
            .sms;
        assert_eq!(c.session_ttl, Duration::from_secs(600));
        assert_eq!(c.opt_out_keywords, vec!["ARRET", "STOP"]);
        assert_eq!(c.opt_in_reply, "");
        assert_eq!(c.country.to_string(), "KE");
    }

    #[test]
    fn errors_name_key_and_line() {
        for (text, want) in [
            ("[sms]\n\nsession_ttl_s = 5\n", "rivr.toml:3: sms.session_ttl_s"),
            ("[sms]\nopt_out_keywords = [\"!!\"]\n", "rivr.toml:2: sms.opt_out_keywords"),
            ("[sms]\ncountry = \"XX\"\n", "rivr.toml:2: sms.country"),
            (
                "[[sms_route]]\nkeyword = \"two words\"\nscript = \"a\"\n",
                "rivr.toml:2: sms_route.keyword",
            ),
            (
                "[[sms_route]]\nnumber = \"12 34\"\nscript = \"a\"\n",
                "rivr.toml:2: sms_route.number",
            ),
            (
                "[[sms_route]]\nscript = \"a\"\n[[sms_route]]\nkeyword = \"X\"\nscript = \"b\"\n",
                "rivr.toml:5: sms_route: never reached",
            ),
            (
                "[[sms_route]]\nkeyword = \"x\"\nscript = \"a\"\n[[sms_route]]\nkeyword = \"X\"\nscript = \"b\"\n",
                "rivr.toml:6: sms_route: the same number and keyword",
            ),
            ("[[sms_route]]\nscript = \"a\"\nkeywrd = \"X\"\n", "rivr.toml:3:"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }
}
