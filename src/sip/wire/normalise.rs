//! Rewrites the values of the structured header fields rivr relies on (Via,
//! From, To, Contact, CSeq) into the compact spelling rsip's typed parsers
//! accept: LWS around `;` `=` `/` `,` removed, runs of LWS collapsed, and
//! comma-separated Via/Contact values split into one field each
//! (RFC 3261 §7.3.1 says both forms are equivalent).
//!
//! One normalisation loses data, on purpose: rsip 0.4 reads only token-valued
//! parameters, so Contact parameters with a quoted value (`+sip.instance=
//! "<urn:…>"`, `methods="INVITE, BYE"`, RFC 3840 / RFC 5626 feature tags that
//! Linphone, Snom and Yealink send) are dropped from the Contact handed to
//! rsip. They describe the registering device to a registrar; a UAS uses only
//! the Contact URI (RFC 3261 §12.1.1) and `expires`/`q`, which are kept.

use super::raw::is_token_byte;
use super::shape::{quoted_len, split_outside_quotes};

/// Collapses LWS outside quoted strings and `<...>`, dropping it next to the
/// separators in `tight`. Quoted strings and bracketed URIs are copied as is.
pub(crate) fn compact_lws(value: &str, tight: &[char]) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    let mut pending_space = false;
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => pending_space = true,
            '"' => {
                flush_space(&mut out, &mut pending_space, tight, c);
                out.push(c);
                while let Some(q) = chars.next() {
                    out.push(q);
                    if q == '\\' {
                        if let Some(escaped) = chars.next() {
                            out.push(escaped);
                        }
                    } else if q == '"' {
                        break;
                    }
                }
            }
            '<' => {
                // A display name and `<` are separated by one SP (RFC 4475
                // §3.1.1.6 asks to accept the form without it).
                if !out.is_empty() && !out.ends_with([';', ',']) {
                    pending_space = true;
                }
                flush_space(&mut out, &mut pending_space, tight, ' ');
                out.push(c);
                for q in chars.by_ref() {
                    out.push(q);
                    if q == '>' {
                        break;
                    }
                }
            }
            _ => {
                flush_space(&mut out, &mut pending_space, tight, c);
                out.push(c);
            }
        }
    }
    out
}

fn flush_space(out: &mut String, pending: &mut bool, tight: &[char], next: char) {
    if *pending && !out.is_empty() && !tight.contains(&next) && !out.ends_with(tight) {
        out.push(' ');
    }
    *pending = false;
}

/// Splits at commas that are outside quoted strings and `<...>`.
pub(crate) fn split_top_level_commas(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quote = false;
    let mut in_angle = false;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        if in_quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quote = false;
            }
            continue;
        }
        match c {
            '"' => in_quote = true,
            '<' => in_angle = true,
            '>' => in_angle = false,
            ',' if !in_angle => {
                parts.push(value.get(start..i).unwrap_or_default());
                start = i.saturating_add(1);
            }
            _ => {}
        }
    }
    parts.push(value.get(start..).unwrap_or_default());
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// The normalised value(s) a field becomes; most fields pass through.
pub(crate) fn normalise_field(name: &str, value: &str) -> Vec<String> {
    match name {
        "Via" => split_top_level_commas(&compact_lws(value, &[';', '=', '/', ',']))
            .into_iter()
            .map(str::to_owned)
            .collect(),
        "Contact" => split_top_level_commas(&compact_lws(value, &[';', '=', ',']))
            .into_iter()
            .map(drop_quoted_params)
            .collect(),
        "From" | "To" => vec![compact_lws(value, &[';', '='])],
        "CSeq" | "Max-Forwards" | "Content-Length" => vec![compact_lws(value, &[])],
        _ => vec![value.to_owned()],
    }
}

/// Index just past the `>` that closes a name-addr's URI (quotes skipped).
fn name_addr_end(value: &str) -> Option<usize> {
    let (mut in_quote, mut escaped, mut in_angle) = (false, false, false);
    for (i, c) in value.char_indices() {
        match (in_quote, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') if !in_angle => in_quote = !in_quote,
            (false, _, '<') => in_angle = true,
            (false, _, '>') if in_angle => return Some(i.saturating_add(1)),
            _ => {}
        }
    }
    None
}

/// Removes header parameters with a well-formed quoted value from one
/// (compacted) Contact value; everything else, malformed parameters
/// included, is kept for the shape check to judge.
fn drop_quoted_params(value: &str) -> String {
    let split_at = match name_addr_end(value) {
        Some(end) => end,
        None => value.find(';').unwrap_or(value.len()),
    };
    let address = value.get(..split_at).unwrap_or(value);
    let params = value.get(split_at..).unwrap_or_default();
    let Some(params) = params.strip_prefix(';') else {
        return value.to_owned();
    };
    let mut out = address.to_owned();
    for param in split_outside_quotes(params, ';') {
        let quoted = param.split_once('=').is_some_and(|(name, v)| {
            !name.is_empty()
                && name.bytes().all(is_token_byte)
                && v.starts_with('"')
                && quoted_len(v) == Some(v.len())
        });
        if !quoted {
            out.push(';');
            out.push_str(param);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_from_rfc4475_wsinv_is_compacted_and_split() {
        let v = "SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8  , SIP  /    2.0   / UDP  192.168.255.111   ; branch= z9hG4bK30239";
        assert_eq!(
            normalise_field("Via", v),
            vec![
                "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8".to_owned(),
                "SIP/2.0/UDP 192.168.255.111;branch=z9hG4bK30239".to_owned(),
            ]
        );
    }

    #[test]
    fn quoted_display_names_are_kept_and_separated_from_the_uri() {
        let v = r#""J Rosenberg \\\""       <sip:jdrosen@example.com>   ;   tag = 98asjd8"#;
        assert_eq!(
            normalise_field("From", v),
            vec![r#""J Rosenberg \\\"" <sip:jdrosen@example.com>;tag=98asjd8"#.to_owned()]
        );
        assert_eq!(
            normalise_field("From", "caller<sip:c@e>;tag=1"),
            vec!["caller <sip:c@e>;tag=1".to_owned()]
        );
    }

    #[test]
    fn commas_inside_quotes_and_brackets_do_not_split() {
        assert_eq!(
            split_top_level_commas(r#""a, b" <sip:x@y;p=1,2>, <sip:z@w>"#),
            vec![r#""a, b" <sip:x@y;p=1,2>"#, "<sip:z@w>"]
        );
    }

    #[test]
    fn quoted_contact_params_are_dropped_others_kept() {
        assert_eq!(
            normalise_field(
                "Contact",
                "<sip:j@192.0.2.1;transport=udp>;expires=3600;+sip.instance=\"<urn:uuid:1-2>\";methods=\"INVITE, BYE\";+g.oma.sip-im",
            ),
            vec!["<sip:j@192.0.2.1;transport=udp>;expires=3600;+g.oma.sip-im".to_owned()]
        );
        assert_eq!(
            normalise_field("Contact", "sip:a@b;q=0.5;x=\"y\""),
            vec!["sip:a@b;q=0.5".to_owned()]
        );
        // malformed parameters stay for the shape check to refuse
        assert_eq!(
            normalise_field("Contact", "\"Joe\" <sip:joe@example.org>;;;;"),
            vec!["\"Joe\" <sip:joe@example.org>;;;;".to_owned()]
        );
        assert_eq!(
            normalise_field("Contact", "<sip:a@b>;x=\"open"),
            vec!["<sip:a@b>;x=\"open".to_owned()]
        );
        assert_eq!(normalise_field("Contact", "*"), vec!["*".to_owned()]);
    }

    #[test]
    fn cseq_whitespace_collapses() {
        assert_eq!(
            normalise_field("CSeq", "0009 \t  INVITE"),
            vec!["0009 INVITE".to_owned()]
        );
    }
}
