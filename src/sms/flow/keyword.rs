//! Keywords as people type them: `Stop`, `ARRÊT`, ` stop. `, `Sí` all
//! compare by one form — upper case, accents dropped (Unicode NFD without
//! its combining marks), surrounding punctuation trimmed.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The form keywords are compared in.
pub fn normalize(word: &str) -> String {
    word.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_uppercase)
        .collect::<String>()
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_string()
}

/// The first word of a message, normalized ("" for a message with none).
pub fn first_word(text: &str) -> String {
    text.split_whitespace()
        .map(normalize)
        .find(|w| !w.is_empty())
        .unwrap_or_default()
}

/// The whole message as one keyword: an opt-out is a message that is only
/// the keyword (as Twilio and the CTIA handbook read it), so "stop sending
/// the survey to my father" does not unsubscribe the sender.
pub fn whole(text: &str) -> String {
    let words: Vec<String> = text
        .split_whitespace()
        .map(normalize)
        .filter(|w| !w.is_empty())
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_accents_and_punctuation_do_not_matter() {
        assert_eq!(normalize("Arrêt"), "ARRET");
        assert_eq!(normalize("stop."), "STOP");
        assert_eq!(normalize("¡Alto!"), "ALTO");
        assert_eq!(normalize("Désinscription"), "DESINSCRIPTION");
        assert_eq!(normalize("SÍ"), "SI");
        assert_eq!(normalize("straße"), "STRASSE");
        assert_eq!(normalize("..."), "");
    }

    #[test]
    fn first_word_skips_blanks_and_lone_punctuation() {
        assert_eq!(first_word("  survey 3 please"), "SURVEY");
        assert_eq!(first_word("- Sondage"), "SONDAGE");
        assert_eq!(first_word(""), "");
        assert_eq!(first_word("\n\t"), "");
    }

    #[test]
    fn whole_message_keywords() {
        assert_eq!(whole(" Stop "), "STOP");
        assert_eq!(whole("stop all"), "STOP ALL");
        assert_eq!(whole("Stop sending this"), "STOP SENDING THIS");
        assert_eq!(whole("ARRÊT !"), "ARRET");
    }
}
