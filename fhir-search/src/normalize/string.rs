//! String folding for `hfj_spidx_string.value_normalized` and token `:text`.
//!
//! FHIR's default string search is case- and accent-insensitive and matches a prefix
//! (search.html, "string"). The index therefore stores the value lowercased, with accents
//! removed (Unicode NFD, then every combining mark dropped, then NFC again so scripts whose
//! letters decompose without being accents, such as Hangul, come back whole) and runs of
//! whitespace collapsed to one space; control characters other than whitespace (NUL above all,
//! which a database text column rejects) are dropped. HAPI truncates the folded value to 200
//! characters; so do we, counted in characters, never splitting one. The exact value is kept
//! whole beside it ([`crate::index::StringRow::exact`]): HAPI cuts it to 200 characters too,
//! but `:exact` must compare the whole value (and `hash::string_exact` hashes the whole value),
//! so a long value cut short would match values it differs from.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Longest folded value stored, in characters (HAPI's `ResourceIndexedSearchParamString`).
pub const MAX_NORMALIZED_CHARS: usize = 200;

/// Folds `value` for comparison: lowercase, accents removed, whitespace collapsed and trimmed,
/// truncated to [`MAX_NORMALIZED_CHARS`] characters.
pub fn normalize(value: &str) -> String {
    if value.is_ascii() {
        return collapse_and_truncate(value.split_ascii_whitespace(), |word, out| {
            for byte in word.bytes().filter(|b| !b.is_ascii_control()) {
                out.push(char::from(byte.to_ascii_lowercase()));
            }
        });
    }
    let without_marks: String = value
        .nfd()
        .filter(|&ch| kept(ch))
        .nfc()
        .flat_map(char::to_lowercase)
        .collect();
    collapse_and_truncate(without_marks.split_whitespace(), |word, out| {
        out.push_str(word)
    })
}

/// Neither an accent (combining mark) nor a control character other than whitespace.
fn kept(ch: char) -> bool {
    !is_combining_mark(ch) && (ch.is_whitespace() || !ch.is_control())
}

/// Joins `words` with single spaces, writing each through `push`, and stops at the limit.
fn collapse_and_truncate<'a>(
    words: impl Iterator<Item = &'a str>,
    push: impl Fn(&str, &mut String),
) -> String {
    let mut out = String::new();
    for word in words {
        if !out.is_empty() {
            out.push(' ');
        }
        push(word, &mut out);
        if out.len() > MAX_NORMALIZED_CHARS {
            // Byte length over the limit: the character count may be too.
            if let Some((cut, _)) = out.char_indices().nth(MAX_NORMALIZED_CHARS) {
                out.truncate(cut);
                break;
            }
        }
    }
    // A cut may leave a trailing space between two words.
    while out.ends_with(' ') {
        out.pop();
    }
    out
}

/// True when `value` has nothing but whitespace: such values are not indexed (as HAPI).
pub fn is_blank(value: &str) -> bool {
    value.trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_accents_and_whitespace() {
        let cases = [
            ("Smith", "smith"),
            ("  Anne   Marie\t\nSmith ", "anne marie smith"),
            ("Müller", "muller"),
            ("Zoë Saldaña", "zoe saldana"),
            ("ÉCOLE", "ecole"),
            ("Ångström", "angstrom"),
            // Precomposed and decomposed forms fold alike.
            ("Jose\u{301}", "jose"),
            ("Jos\u{e9}", "jose"),
            // No decomposition: kept as the lowercase letter.
            ("Øre", "øre"),
            ("Straße", "straße"),
            // Hangul syllables come back whole after the NFD round trip.
            ("한국", "한국"),
            ("İstanbul", "istanbul"),
            ("nul\u{0}byte\u{7}", "nulbyte"),
            ("ünï\u{0}cödé", "unicode"),
            ("", ""),
            ("   ", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize(input), expected, "normalize({input:?})");
        }
    }

    #[test]
    fn truncates_to_200_characters_without_splitting_one() {
        let long = "é".repeat(300);
        let folded = normalize(&long);
        assert_eq!(folded.chars().count(), MAX_NORMALIZED_CHARS);
        assert!(folded.chars().all(|c| c == 'e'));

        let ascii = "ab ".repeat(150);
        let folded = normalize(&ascii);
        assert!(folded.chars().count() <= MAX_NORMALIZED_CHARS);
        assert!(!folded.ends_with(' '));
        assert!(folded.starts_with("ab ab"));

        let wide = "日".repeat(250);
        assert_eq!(normalize(&wide).chars().count(), MAX_NORMALIZED_CHARS);
    }

    #[test]
    fn blank_means_whitespace_only() {
        assert!(is_blank(""));
        assert!(is_blank(" \t\n"));
        assert!(!is_blank(" a "));
    }
}
