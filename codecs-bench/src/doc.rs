//! Rewrites a generated section of a Markdown document (`docs/quality.md`)
//! between `<!-- NAME:begin -->` and `<!-- NAME:end -->`, leaving the rest
//! of the document as written by people.

use std::path::Path;

/// Why a section could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// Reading or writing the file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The markers are missing or out of order.
    #[error("no `<!-- {0}:begin -->` … `<!-- {0}:end -->` markers")]
    NoMarkers(String),
}

/// `text` with the section `name` replaced by `body`, or `None` if the
/// markers are missing or out of order.
pub fn replace_section(text: &str, name: &str, body: &str) -> Option<String> {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let (head, rest) = text.split_once(&begin)?;
    let (_, tail) = rest.split_once(&end)?;
    let newline = if body.ends_with('\n') { "" } else { "\n" };
    Some(format!("{head}{begin}\n{body}{newline}{end}{tail}"))
}

/// [`replace_section`] on a file, in place.
pub fn replace_file_section(path: &Path, name: &str, body: &str) -> Result<(), DocError> {
    let text = std::fs::read_to_string(path)?;
    let updated =
        replace_section(&text, name, body).ok_or_else(|| DocError::NoMarkers(name.to_owned()))?;
    std::fs::write(path, updated)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_section_changes() {
        let doc = "# T\n<!-- a:begin -->\nold\n<!-- a:end -->\nkeep\n<!-- b:begin -->\nb\n<!-- b:end -->\n";
        let new = replace_section(doc, "a", "new 1\nnew 2").expect("markers");
        assert_eq!(
            new,
            "# T\n<!-- a:begin -->\nnew 1\nnew 2\n<!-- a:end -->\nkeep\n<!-- b:begin -->\nb\n<!-- b:end -->\n"
        );
        // Idempotent: writing the same body again changes nothing.
        assert_eq!(
            replace_section(&new, "a", "new 1\nnew 2\n").as_deref(),
            Some(new.as_str())
        );
    }

    #[test]
    fn missing_or_reversed_markers_are_refused() {
        assert!(replace_section("no markers", "a", "x").is_none());
        assert!(replace_section("<!-- a:end --> <!-- a:begin -->", "a", "x").is_none());
        assert!(replace_section("<!-- a:begin --> only", "a", "x").is_none());
    }
}
