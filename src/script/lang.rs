//! The call's language and how it picks prompts: `play("menu")` in a call
//! whose language is `pt-BR` plays the first of `pt-BR/menu`, `pt/menu`,
//! `menu` found under the prompts directory (docs/scripts.md, "Several
//! languages").

/// Longest language tag accepted (BCP 47 tags in practice are far shorter).
const MAX_TAG_LEN: usize = 35;

/// Checks a language tag: letters, digits and `-` only, starting with 2–3
/// letters (`en`, `fr-CA`, `pt-BR`, `yue`); "" means "no language". The
/// tag becomes a directory name, so nothing else gets through.
pub fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Ok(());
    }
    let primary = tag.split('-').next().unwrap_or("");
    let ok = tag.len() <= MAX_TAG_LEN
        && (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && tag
            .split('-')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{tag:?} is not a language tag (like \"en\", \"fr\" or \"pt-BR\")"
        ))
    }
}

/// The prompt names to try for `name` in language `tag`, most specific
/// first, ending with `name` itself. Generated and recorded sounds
/// (`tone:…`, `rec:…`: any name with a `:` scheme) have no language.
pub fn candidates(tag: &str, name: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(3);
    if !tag.is_empty() && !name.contains(':') {
        out.push(format!("{tag}/{name}"));
        if let Some((primary, _)) = tag.split_once('-') {
            out.push(format!("{primary}/{name}"));
        }
    }
    out.push(name.to_owned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_that_can_name_a_directory_only() {
        for good in ["", "en", "fr", "pt-BR", "yue", "zh-Hant-TW", "es-419"] {
            assert!(check_tag(good).is_ok(), "{good}");
        }
        for bad in [
            "e", "english", "../en", "en/", "en-", "-en", "fr_CA", "en us", "12", "en\n",
        ] {
            assert!(check_tag(bad).is_err(), "{bad:?}");
        }
        assert!(check_tag(&format!("en-{}", "a".repeat(40))).is_err());
    }

    #[test]
    fn most_specific_first_then_the_base_prompt() {
        assert_eq!(candidates("", "menu"), ["menu"]);
        assert_eq!(candidates("fr", "menu"), ["fr/menu", "menu"]);
        assert_eq!(
            candidates("pt-BR", "digits/1"),
            ["pt-BR/digits/1", "pt/digits/1", "digits/1"]
        );
        assert_eq!(candidates("fr", "tone:beep"), ["tone:beep"]);
        assert_eq!(candidates("fr", "rec:c1-1"), ["rec:c1-1"]);
    }
}
