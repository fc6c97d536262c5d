//! Which `[[sms_route]]` an inbound SMS goes to: the first, in the file's
//! order, whose number (if it has one) is the one the SMS was sent to and
//! whose keyword (if it has one) is the message's first word — except
//! that a sender in the middle of a conversation (a live session) stays
//! on its route, unless the message starts with another route's keyword:
//! "SURVEY" starts a survey, and the answers "4", "yes" that follow go to
//! the survey, not to the default route.

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

/// [`route_for`], with the routes the sender has a live session on (most
/// recent first) taking the message when no keyword route does.
pub fn pick<'a>(
    routes: &'a [SmsRoute],
    to: &str,
    keyword: &str,
    live: &[String],
) -> Option<&'a SmsRoute> {
    let first = route_for(routes, to, keyword);
    if first.is_some_and(|r| r.keyword.is_some()) {
        return first;
    }
    live.iter()
        .find_map(|name| {
            routes
                .iter()
                .find(|r| &r.name == name && r.number.as_deref().is_none_or(|n| n == bare(to)))
        })
        .or(first)
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
    fn a_live_session_keeps_the_sender_on_its_route() {
        let r = routes(
            "[[sms_route]]\nname = \"survey\"\nkeyword = \"SURVEY\"\nscript = \"a\"\n\
             [[sms_route]]\nname = \"quiz\"\nnumber = \"3000\"\nkeyword = \"QUIZ\"\nscript = \"b\"\n\
             [[sms_route]]\nname = \"default\"\nscript = \"d\"\n",
        );
        let live = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let p =
            |to: &str, kw: &str, l: &[&str]| pick(&r, to, kw, &live(l)).map(|r| r.name.as_str());
        assert_eq!(p("2001", "4", &["survey"]), Some("survey"));
        assert_eq!(p("2001", "4", &[]), Some("default"));
        assert_eq!(p("2001", "SURVEY", &["survey"]), Some("survey"));
        // Another route's keyword wins over the conversation.
        assert_eq!(p("3000", "QUIZ", &["survey"]), Some("quiz"));
        // A route for another number does not take it.
        assert_eq!(p("2001", "4", &["quiz", "survey"]), Some("survey"));
        assert_eq!(p("2001", "4", &["quiz"]), Some("default"));
        assert_eq!(p("2001", "4", &["gone-from-config"]), Some("default"));
    }

    #[test]
    fn no_default_means_no_route() {
        let r = routes("[[sms_route]]\nkeyword = \"JOIN\"\nscript = \"a\"\n");
        assert_eq!(name(&r, "1", "join now"), Some("a"));
        assert_eq!(name(&r, "1", "joint"), None);
        assert_eq!(name(&[], "1", "join"), None);
    }
}
