//! Words for `_text` and `_content`: the narrative and the resource's strings folded like
//! string search (lowercase, accents removed) and split at every character that is not a
//! letter or a digit, each word once.
//!
//! The projector stores these words as a tsvector (`array_to_tsvector`, no parsing in the
//! database) and the query service folds the searched words with the same function, so the
//! two meet without depending on a text-search configuration.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Longer "words" (base64, long identifiers) are not words anyone searches for.
const MAX_WORD_BYTES: usize = 100;

/// The distinct folded words of `text`, sorted.
pub fn words(text: &str) -> Vec<String> {
    let folded: String = if text.is_ascii() {
        text.to_ascii_lowercase()
    } else {
        text.nfd()
            .filter(|&ch| !is_combining_mark(ch))
            .nfc()
            .flat_map(char::to_lowercase)
            .collect()
    };
    let mut words: Vec<String> = folded
        .split(|ch: char| !ch.is_alphanumeric())
        .filter(|word| !word.is_empty() && word.len() <= MAX_WORD_BYTES)
        .map(str::to_owned)
        .collect();
    words.sort_unstable();
    words.dedup();
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_splits_and_deduplicates() {
        assert_eq!(
            words("Diabetes mellitus type 2 (disorder); DIABETES, Zoë's"),
            vec!["2", "diabetes", "disorder", "mellitus", "s", "type", "zoe"]
        );
        assert!(words("  ,;  ").is_empty());
        assert_eq!(words(&"x".repeat(200)), Vec::<String>::new());
    }
}
