//! The CDR query as text arrives from a user — `rivr cdr list`'s options,
//! the HTTP API's query string — checked into a [`CdrQuery`] in one place,
//! with the parameter at fault named in each error.

use serde::Deserialize;

use super::cdr::{CdrQuery, MAX_LIMIT};
use crate::call::outcome::Outcome;

/// The query's parameters as given; every one optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdrParams {
    /// RFC 3339: legs started at or after.
    pub since: Option<String>,
    /// RFC 3339: legs started before.
    pub until: Option<String>,
    pub number: Option<String>,
    pub campaign: Option<String>,
    /// An outcome name (`answered`, `busy`, …).
    pub outcome: Option<String>,
    pub limit: Option<u32>,
    /// A previous page's next cursor.
    pub after: Option<String>,
}

/// A parameter that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BadParam {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: String) -> BadParam {
    BadParam { field, message }
}

fn time(field: &'static str, v: &Option<String>) -> Result<Option<i64>, BadParam> {
    v.as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.timestamp_millis())
                .map_err(|e| {
                    bad(
                        field,
                        format!("{s:?} is not an RFC 3339 time ({e}; e.g. 2024-05-01T08:00:00Z)"),
                    )
                })
        })
        .transpose()
}

impl CdrParams {
    pub fn to_query(&self) -> Result<CdrQuery, BadParam> {
        let since = time("since", &self.since)?;
        let until = time("until", &self.until)?;
        let outcome = self
            .outcome
            .as_deref()
            .map(|o| {
                Outcome::parse(o).ok_or_else(|| {
                    let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
                    bad(
                        "outcome",
                        format!("{o:?} is not an outcome (one of {})", names.join(", ")),
                    )
                })
            })
            .transpose()?;
        if let Some(l) = self.limit.filter(|l| !(1..=MAX_LIMIT).contains(l)) {
            return Err(bad(
                "limit",
                format!("{l} is out of range (1 to {MAX_LIMIT})"),
            ));
        }
        let after = self
            .after
            .as_deref()
            .map(|a| a.parse().map_err(|e| bad("after", e)))
            .transpose()?;
        let text = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        Ok(CdrQuery {
            since,
            until,
            number: text(&self.number),
            campaign: text(&self.campaign),
            outcome,
            limit: self.limit,
            after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_params_become_a_query() {
        let q = CdrParams {
            since: Some("2024-05-01T00:00:00Z".into()),
            until: Some("2024-05-01T03:00:00+03:00".into()),
            number: Some("+254700000001".into()),
            campaign: Some("c-1".into()),
            outcome: Some("no_answer".into()),
            limit: Some(10),
            after: Some("42".into()),
        }
        .to_query()
        .unwrap();
        assert_eq!(q.since, Some(1_714_521_600_000));
        assert_eq!(q.until, q.since);
        assert_eq!(q.outcome, Some(Outcome::NoAnswer));
        assert_eq!(q.after.map(|c| c.to_string()), Some("42".into()));
        assert_eq!(
            CdrParams::default().to_query().unwrap(),
            CdrQuery::default()
        );
    }

    #[test]
    fn each_bad_param_is_named() {
        type Set = fn(&mut CdrParams);
        let cases: [(Set, &str); 5] = [
            (|p| p.since = Some("yesterday".into()), "since"),
            (|p| p.until = Some("2024-05-01".into()), "until"),
            (|p| p.outcome = Some("picked_up".into()), "outcome"),
            (|p| p.limit = Some(0), "limit"),
            (|p| p.after = Some("abc".into()), "after"),
        ];
        for (set, field) in cases {
            let mut p = CdrParams::default();
            set(&mut p);
            assert_eq!(p.to_query().unwrap_err().field, field);
        }
    }
}
