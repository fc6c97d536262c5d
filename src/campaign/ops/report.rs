//! The campaign report: one row per contact in list order, read a page at
//! a time with the CSV line as the cursor, shaped as JSON objects or CSV
//! records whose columns are the same on every page.

use super::{campaign, OpError};
use crate::store::{Campaign, ReportRow, Store};

/// The most rows a page may ask for.
pub const MAX_PAGE: u32 = 1000;

/// Rows after a cursor, and the cursor of the next page.
#[derive(Debug, Clone)]
pub struct ReportPage {
    pub campaign: Campaign,
    pub rows: Vec<ReportRow>,
    /// The `after` of the next page; None when this page is the last.
    pub next_after: Option<u64>,
}

/// The rows of campaign `id` after CSV line `after`, at most `limit`
/// (1 to [`MAX_PAGE`]; the caller checks it).
pub async fn report_page(
    store: &Store,
    id: &str,
    after: u64,
    limit: u32,
) -> Result<ReportPage, OpError> {
    let campaign = campaign(store, id).await?;
    let limit = limit.clamp(1, MAX_PAGE);
    // One row more than asked says whether another page follows, so the
    // last page never points at an empty one.
    let mut rows = store.campaign_report(id, after, limit + 1).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_after = more.then(|| rows.last().map(|r| r.line)).flatten();
    Ok(ReportPage {
        campaign,
        rows,
        next_after,
    })
}

/// Who answered the contact's latest attempt that ran AMD (`human`,
/// `machine`, `unsure`): the `answered_by` result a campaign with `amd`
/// (or a script's `detect_machine()`) stores.
fn answered_by(r: &ReportRow) -> Option<String> {
    r.results
        .as_ref()
        .and_then(|m| m.get(ANSWERED_BY))
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

const ANSWERED_BY: &str = crate::script::verbs::amd::RESULT_KEY;

/// One report row as JSON (`rivr campaign report --format json`).
pub fn row_json(r: &ReportRow) -> serde_json::Value {
    let fields: serde_json::Map<String, serde_json::Value> = r
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
        .collect();
    serde_json::json!({
        "phone": r.phone,
        "line": r.line,
        "fields": fields,
        "attempts": r.attempts,
        "outcome": r.outcome.map(|o| o.as_str()),
        "refined_outcome": r.refined_outcome,
        "answered_by": answered_by(r),
        "sip_status": r.sip_status,
        "q850": r.q850,
        "talk_s": r.talk_ms as f64 / 1000.0,
        "results": r.results.clone().unwrap_or_default(),
        "sms_id": r.sms_id,
        "sms_state": r.sms_state.map(|s| s.to_string()),
    })
}

/// The CSV report's columns: phone, the list's columns, the attempt
/// columns, one per `set_result` key, the SMS columns.
#[derive(Debug, Clone)]
pub struct ReportLayout {
    columns: Vec<String>,
    result_keys: Vec<String>,
}

/// The CSV columns of campaign `c`'s report, from its whole list, so every
/// page has the same ones.
pub async fn report_layout(store: &Store, c: &Campaign) -> Result<ReportLayout, OpError> {
    Ok(ReportLayout {
        columns: c.settings.columns.clone(),
        // `answered_by` has its own column.
        result_keys: store
            .campaign_result_keys(&c.id)
            .await?
            .into_iter()
            .filter(|k| k != ANSWERED_BY)
            .collect(),
    })
}

impl ReportLayout {
    pub fn header(&self) -> Vec<String> {
        let mut head = vec!["phone".to_string()];
        head.extend(self.columns.iter().cloned());
        head.extend(
            [
                "attempts",
                "outcome",
                "refined_outcome",
                "answered_by",
                "sip_status",
                "q850",
                "talk_s",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        head.extend(self.result_keys.iter().cloned());
        head.extend(["sms_id".to_string(), "sms_state".to_string()]);
        head
    }

    pub fn record(&self, r: &ReportRow) -> Vec<String> {
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut rec = vec![r.phone.clone()];
        for col in &self.columns {
            rec.push(
                r.fields
                    .iter()
                    .find(|(k, _)| k == col)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
            );
        }
        rec.push(r.attempts.to_string());
        rec.push(
            r.outcome
                .map(|o| o.as_str().to_string())
                .unwrap_or_default(),
        );
        rec.push(r.refined_outcome.clone().unwrap_or_default());
        rec.push(answered_by(r).unwrap_or_default());
        rec.push(r.sip_status.map(|s| s.to_string()).unwrap_or_default());
        rec.push(r.q850.map(|s| s.to_string()).unwrap_or_default());
        rec.push(format!("{:.1}", r.talk_ms as f64 / 1000.0));
        for k in &self.result_keys {
            rec.push(
                r.results
                    .as_ref()
                    .and_then(|m| m.get(k))
                    .map(text)
                    .unwrap_or_default(),
            );
        }
        rec.push(r.sms_id.clone().unwrap_or_default());
        rec.push(r.sms_state.map(|s| s.to_string()).unwrap_or_default());
        rec
    }

    /// The header and `rows` as CSV text.
    pub fn csv(&self, rows: &[ReportRow]) -> Result<String, csv::Error> {
        let mut buf = Vec::new();
        {
            let mut w = csv::Writer::from_writer(&mut buf);
            w.write_record(self.header())?;
            for r in rows {
                w.write_record(self.record(r))?;
            }
            w.flush()?;
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}
