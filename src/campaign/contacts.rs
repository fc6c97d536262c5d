//! Contact lists: a CSV file with a header row, a `phone` column and any
//! other columns (the script's `call.vars`, the SMS template's `{keys}`),
//! and an optional `tz` column with the contact's IANA zone. Numbers become
//! E.164 with the libphonenumber metadata and a default country. A row that
//! cannot be called (bad number, bad zone, a number already seen) is left
//! out and reported with its line; a file that cannot be read as a list at
//! all is an error naming the file and the line. Nothing here panics on any
//! bytes. See docs/campaigns.md, "Contacts".

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use phonenumber::country::Id;

/// Numbers longer than this are not parsed (no real number comes close).
const MAX_NUMBER_LEN: usize = 64;

/// A country for national numbers (ISO 3166 alpha-2, e.g. `US`, `KE`),
/// one the libphonenumber metadata knows; or none, when every number must
/// be written internationally (a list with no `--country` is not read as
/// any one country's: a wrong guess would dial wrong numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Country(Option<Id>);

impl Country {
    /// Numbers must start with `+`.
    pub const NONE: Country = Country(None);
}

/// The text is not a country the metadata knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a known ISO 3166 alpha-2 country (e.g. US, KE, GB)")]
pub struct BadCountry(pub String);

impl FromStr for Country {
    type Err = BadCountry;

    fn from_str(s: &str) -> Result<Country, BadCountry> {
        let up = s.trim().to_ascii_uppercase();
        let bad = || BadCountry(s.to_string());
        let id = Id::from_str(&up).map_err(|_| bad())?;
        // The parser unwraps the metadata of the country it is given.
        if phonenumber::metadata::DATABASE.by_id(id.as_ref()).is_none() {
            return Err(bad());
        }
        Ok(Country(Some(id)))
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_ref().map_or("none", |id| id.as_ref()))
    }
}

/// Why a number cannot be called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadNumber {
    #[error("no number")]
    Empty,
    #[error("not a phone number")]
    NotANumber,
    #[error("not a valid number")]
    Invalid,
    #[error("has an extension, which cannot be dialed")]
    Extension,
    #[error("written nationally, and no country was given (--country)")]
    NoCountry,
}

/// The E.164 form (`+254712345678`) of `raw`, a number written nationally
/// for `country` or internationally with a `+`.
pub fn normalize(raw: &str, country: Country) -> Result<String, BadNumber> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(BadNumber::Empty);
    }
    if raw.len() > MAX_NUMBER_LEN {
        return Err(BadNumber::NotANumber);
    }
    // The parser is not ours; a panic in it is still a rejected number, not
    // a failed import.
    if country.0.is_none() && !raw.starts_with('+') {
        return Err(BadNumber::NoCountry);
    }
    let parsed = std::panic::catch_unwind(|| phonenumber::parse(country.0, raw))
        .map_err(|_| BadNumber::NotANumber)?
        .map_err(|_| BadNumber::NotANumber)?;
    if parsed.extension().is_some() {
        return Err(BadNumber::Extension);
    }
    if !parsed.is_valid() {
        return Err(BadNumber::Invalid);
    }
    Ok(parsed.format().mode(phonenumber::Mode::E164).to_string())
}

/// One contact to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The line of the CSV file its row starts on (the header is line 1).
    pub line: u64,
    /// E.164.
    pub phone: String,
    /// The contact's IANA zone (canonical name), if its row gave one.
    pub tz: Option<String>,
    /// The other columns, in header order: `(name, value)`.
    pub fields: Vec<(String, String)>,
}

/// Why a row was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    Number(BadNumber),
    /// The same E.164 number as the contact on `first_line`.
    Duplicate {
        first_line: u64,
    },
    /// The `tz` cell is not an IANA zone name.
    Zone,
    /// The row has a different number of cells than the header.
    Cells {
        got: usize,
        want: usize,
    },
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Number(b) => b.fmt(f),
            Why::Duplicate { first_line } => write!(f, "duplicate of line {first_line}"),
            Why::Zone => f.write_str("not an IANA time zone (e.g. Africa/Nairobi)"),
            Why::Cells { got, want } => write!(f, "{got} cells, the header has {want}"),
        }
    }
}

/// A row left out: its line, the cell at fault (the phone, or the zone),
/// and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub line: u64,
    pub value: String,
    pub why: Why,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {:?}: {}", self.line, self.value, self.why)
    }
}

/// What an import found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Import {
    /// The columns other than `phone` and `tz`, in header order.
    pub columns: Vec<String>,
    pub contacts: Vec<Contact>,
    pub rejected: Vec<Rejected>,
}

impl Import {
    /// Rows left out as duplicates.
    pub fn duplicates(&self) -> usize {
        self.rejected
            .iter()
            .filter(|r| matches!(r.why, Why::Duplicate { .. }))
            .count()
    }

    /// One line: `1000 contacts, 3 invalid, 2 duplicates`.
    pub fn summary(&self) -> String {
        let dups = self.duplicates();
        format!(
            "{} contact{}, {} invalid, {} duplicate{}",
            self.contacts.len(),
            plural(self.contacts.len()),
            self.rejected.len() - dups,
            dups,
            plural(dups)
        )
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Why a file is not a contact list.
#[derive(Debug, thiserror::Error)]
pub enum ImportErrorKind {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no header row (the first line names the columns, one of them `phone`)")]
    NoHeader,
    #[error("no `phone` column in the header")]
    NoPhoneColumn,
    #[error("column {0:?} appears twice in the header")]
    DuplicateColumn(String),
    #[error("column {0} of the header has no name")]
    UnnamedColumn(usize),
    #[error("not UTF-8 text")]
    NotUtf8,
    #[error("{0}")]
    Csv(String),
}

/// A file that is not a contact list, and where it went wrong (line 0: the
/// file as a whole).
#[derive(Debug, thiserror::Error)]
pub struct ImportError {
    pub file: String,
    pub line: u64,
    pub kind: ImportErrorKind,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.kind)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.kind)
        }
    }
}

/// Reads the contact list at `path`.
pub fn import_file(path: &std::path::Path, country: Country) -> Result<Import, ImportError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ImportError {
        file: file.clone(),
        line: 0,
        kind: e.into(),
    })?;
    import(&file, &bytes, country)
}

/// Reads a contact list; `file` names it in errors.
pub fn import(file: &str, bytes: &[u8], country: Country) -> Result<Import, ImportError> {
    let err = |line: u64, kind: ImportErrorKind| ImportError {
        file: file.to_string(),
        line,
        kind,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = rdr.byte_records();
    let header = match records.next() {
        None => return Err(err(0, ImportErrorKind::NoHeader)),
        Some(Err(e)) => return Err(err(csv_line(&e), ImportErrorKind::Csv(e.to_string()))),
        Some(Ok(h)) => h,
    };
    // The csv crate's own line count skips blank lines; count from the
    // byte offset instead.
    let mut lines = Lines::default();
    let header_line = lines.of(bytes, header.position());
    let names = header
        .iter()
        .map(|c| std::str::from_utf8(c).map(|s| s.trim().to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| err(header_line, ImportErrorKind::NotUtf8))?;
    let mut phone_col = None;
    let mut tz_col = None;
    let mut columns = Vec::new();
    let mut field_cols = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(err(header_line, ImportErrorKind::UnnamedColumn(i + 1)));
        }
        let dup = || err(header_line, ImportErrorKind::DuplicateColumn(name.clone()));
        if name.eq_ignore_ascii_case("phone") {
            if phone_col.replace(i).is_some() {
                return Err(dup());
            }
        } else if name.eq_ignore_ascii_case("tz") {
            if tz_col.replace(i).is_some() {
                return Err(dup());
            }
        } else if columns.contains(name) {
            return Err(dup());
        } else {
            columns.push(name.clone());
            field_cols.push(i);
        }
    }
    let phone_col = phone_col.ok_or_else(|| err(header_line, ImportErrorKind::NoPhoneColumn))?;

    let mut out = Import {
        columns,
        ..Import::default()
    };
    let mut seen: HashMap<String, u64> = HashMap::new();
    for rec in records {
        let rec = rec.map_err(|e| err(csv_line(&e), ImportErrorKind::Csv(e.to_string())))?;
        let line = lines.of(bytes, rec.position());
        let cells = rec
            .iter()
            .map(std::str::from_utf8)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| err(line, ImportErrorKind::NotUtf8))?;
        let cell = |i: usize| cells.get(i).copied().unwrap_or("");
        let reject = |value: &str, why| Rejected {
            line,
            value: value.to_string(),
            why,
        };
        if cells.len() != names.len() {
            out.rejected.push(reject(
                cell(phone_col),
                Why::Cells {
                    got: cells.len(),
                    want: names.len(),
                },
            ));
            continue;
        }
        let raw = cell(phone_col);
        let phone = match normalize(raw, country) {
            Ok(p) => p,
            Err(b) => {
                out.rejected.push(reject(raw, Why::Number(b)));
                continue;
            }
        };
        let tz = match tz_col.map(|i| cell(i).trim()).filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => match chrono_tz::Tz::from_str(t) {
                Ok(z) => Some(z.name().to_string()),
                Err(_) => {
                    out.rejected.push(reject(t, Why::Zone));
                    continue;
                }
            },
        };
        if let Some(&first_line) = seen.get(&phone) {
            out.rejected
                .push(reject(raw, Why::Duplicate { first_line }));
            continue;
        }
        seen.insert(phone.clone(), line);
        let fields = out
            .columns
            .iter()
            .zip(&field_cols)
            .map(|(name, &i)| (name.clone(), cell(i).to_string()))
            .collect();
        out.contacts.push(Contact {
            line,
            phone,
            tz,
            fields,
        });
    }
    Ok(out)
}

/// Line numbers of record starts, counted incrementally (records come in
/// order). A line ends with LF, CRLF or a lone CR, as for the csv crate.
#[derive(Default)]
struct Lines {
    at: usize,
    line: u64,
}

impl Lines {
    fn of(&mut self, bytes: &[u8], pos: Option<&csv::Position>) -> u64 {
        let Some(pos) = pos else {
            return 0;
        };
        let mut end = usize::try_from(pos.byte())
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        // A record never starts with a line end; the offset may point at
        // the blank lines skipped before it.
        while matches!(bytes.get(end), Some(b'\r' | b'\n')) {
            end += 1;
        }
        if end < self.at {
            return self.line + 1;
        }
        for (i, b) in bytes.iter().enumerate().take(end).skip(self.at) {
            if *b == b'\n' || (*b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
                self.line += 1;
            }
        }
        self.at = end;
        self.line + 1
    }
}

fn csv_line(e: &csv::Error) -> u64 {
    e.position().map_or(0, |p| p.line())
}

/// Fills an SMS template from a contact's fields: `{name}` becomes the
/// value of column `name` (exact, case-sensitive); `{{` and `}}` are a
/// literal `{` and `}`. A `{key}` that names no field is left as written,
/// so a mistake shows in the text rather than vanishing; check templates
/// up front with [`template_keys`].
pub fn fill_template(template: &str, fields: &[(String, String)]) -> String {
    let mut out = String::with_capacity(template.len());
    walk_template(template, |piece| match piece {
        Piece::Text(t) => out.push_str(t),
        Piece::Key(k) => match fields.iter().find(|(n, _)| n == k) {
            Some((_, v)) => out.push_str(v),
            None => {
                out.push('{');
                out.push_str(k);
                out.push('}');
            }
        },
    });
    out
}

/// The `{keys}` a template names, in order, each once.
pub fn template_keys(template: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    walk_template(template, |piece| {
        if let Piece::Key(k) = piece {
            if !keys.iter().any(|x| x == k) {
                keys.push(k.to_string());
            }
        }
    });
    keys
}

enum Piece<'a> {
    Text(&'a str),
    Key(&'a str),
}

fn walk_template<'a>(t: &'a str, mut f: impl FnMut(Piece<'a>)) {
    let mut rest = t;
    while let Some(i) = rest.find(['{', '}']) {
        f(Piece::Text(&rest[..i]));
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            f(Piece::Text("{"));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            f(Piece::Text("}"));
            rest = after;
        } else if let Some((key, after)) = tail.strip_prefix('{').and_then(|k| {
            let j = k.find(['{', '}'])?;
            let after = k[j..].strip_prefix('}')?;
            Some((&k[..j], after))
        }) {
            f(Piece::Key(key));
            rest = after;
        } else {
            // A lone brace (one ASCII byte) is itself.
            let (brace, after) = tail.split_at(1);
            f(Piece::Text(brace));
            rest = after;
        }
    }
    f(Piece::Text(rest));
}

#[cfg(test)]
#[path = "contacts_tests.rs"]
mod tests;
