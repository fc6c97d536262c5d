//! Which `[[sms_route]]` an inbound SMS goes to: the first, in the file's
//! order, whose number (if it has one) is the one the SMS was sent to and
//! whose keyword (if it has one) is the message's first word.

use crate::config::SmsRoute;

/// `to` without a leading `+` (routes store numbers that way).
fn bare(to: &str) -> &str {
    to.trim().trim_start_matches('+')
}

/// The route for an SMS sent to `to` whose first word (normalized) is
/// `keyword`.
pub fn route_for<'a>(routes: &'a [SmsRoute], to: &str, keyword: &str) -> Option<&'a SmsRoute> {
    routes.iter().find(|r| {
        r.number.as_deref().is_none_or(|n| n == bare(to))
            && r.keyword.as_deref().is_none_or(|k| k == keyword)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn routes(toml: &str) -> Vec<SmsRoute> {
        Config::parse(toml, "t.toml", Path::new("/"))
            .unwrap_or_else(|e| panic!("{e}"))
            .sms
            .routes
    }

    fn name<'a>(r: &'a [SmsRoute], to: &str, text: &str) -> Option<&'a str> {
        route_for(r, to, &super::super::keyword::first_word(text)).map(|r| r.name.as_str())
    }

    #[test]
    fn first_match_wins_and_the_default_takes_the_rest() {
        let r = routes(
            "[[sms_route]]\nname = \"survey-2001\"\nnumber = \"2001\"\nkeyword = \"SURVEY\"\nscript = \"a\"\n\
             [[sms_route]]\nname = \"any-2001\"\nnumber = \"+2001\"\nscript = \"b\"\n\
             [[sms_route]]\nname = \"sondage\"\nkeyword = \"sondage\"\nscript = \"c\"\n\
             [[sms_route]]\nname = \"default\"\nscript = \"d\"\n",
        );
        assert_eq!(name(&r, "2001", "survey"), Some("survey-2001"));
        assert_eq!(name(&r, "+2001", "Survey please"), Some("survey-2001"));
        assert_eq!(name(&r, "2001", "hello"), Some("any-2001"));
        assert_eq!(name(&r, "2002", "SONDAGE"), Some("sondage"));
        assert_eq!(
            name(&r, "2001", "sondage"),
            Some("any-2001"),
            "number route first"
        );
        assert_eq!(name(&r, "2002", "Sondagé!"), Some("sondage"));
        assert_eq!(name(&r, "2002", "survey"), Some("default"));
        assert_eq!(name(&r, "2002", ""), Some("default"));
    }

    #[test]
    fn no_default_means_no_route() {
        let r = routes("[[sms_route]]\nkeyword = \"JOIN\"\nscript = \"a\"\n");
        assert_eq!(name(&r, "1", "join now"), Some("a"));
        assert_eq!(name(&r, "1", "joint"), None);
        assert_eq!(name(&[], "1", "join"), None);
    }
}
