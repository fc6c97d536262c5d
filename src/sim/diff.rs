//! A readable line diff (longest common subsequence) for a failed
//! expectation: `  ` lines both have, `- ` expected only, `+ ` got only.

/// The diff of `expected` and `got`, one marked line each.
pub fn lines(expected: &[String], got: &[String]) -> Vec<String> {
    let (n, m) = (expected.len(), got.len());
    // lcs[i][j]: the longest common subsequence of expected[i..], got[j..].
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if expected[i] == got[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = Vec::with_capacity(n.max(m));
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && expected[i] == got[j] {
            out.push(format!("  {}", expected[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(format!("- {}", expected[i]));
            i += 1;
        } else {
            out.push(format!("+ {}", got[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn marks_what_is_missing_and_what_is_extra() {
        let d = lines(
            &v(&["main_menu", "info_menu", "health_info", "goodbye"]),
            &v(&["main_menu", "info_menu", "water_info", "goodbye"]),
        );
        assert_eq!(
            d,
            v(&[
                "  main_menu",
                "  info_menu",
                "- health_info",
                "+ water_info",
                "  goodbye"
            ])
        );
        assert_eq!(lines(&v(&[]), &v(&["a"])), v(&["+ a"]));
        assert_eq!(lines(&v(&["a"]), &v(&[])), v(&["- a"]));
    }
}
