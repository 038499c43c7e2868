//! Bounded keys: how values that search compares whole are stored in btree-indexed columns
//! (token systems, uris, reference targets and identifiers, tags, workflow codes and ids).
//!
//! A btree index entry holds at most about 2.7 kB, so one resource with a 3 kB identifier
//! system would make Postgres refuse its rows. A value longer than [`MAX_KEY_CHARS`] characters
//! is therefore stored as its first [`MAX_KEY_CHARS`] characters, a `#` and 16 hex digits of a
//! hash of the whole value. Shorter values are stored as they are, so the two kinds never meet
//! (a bounded key is longer than any value stored whole). The query service passes search
//! values through the same functions: equality stays exact ([`key`]), and so does a prefix
//! match (`:below`) for prefixes up to [`MAX_KEY_CHARS`] characters; a longer prefix is
//! compared on its first [`MAX_KEY_CHARS`] characters ([`key_prefix`]) and may also match long
//! values that differ only after them, as HAPI's truncated columns do. Hash columns
//! ([`crate::hash`]) are computed over whole values and are unaffected.

use std::borrow::Cow;

/// Longest value stored whole in a key column, in characters (HAPI cuts strings to 200).
pub const MAX_KEY_CHARS: usize = 200;

/// The key under which `value` is stored and searched.
pub fn key(value: &str) -> Cow<'_, str> {
    match cut(value) {
        None => Cow::Borrowed(value),
        Some(head) => {
            let hash = crate::hash::hash_parts(&[value, "key"]) as u64;
            Cow::Owned(format!("{head}#{hash:016x}"))
        }
    }
}

/// What the keys of values starting with `prefix` start with: `prefix` itself when it is
/// short enough to be kept whole, else its first [`MAX_KEY_CHARS`] characters and the `#`.
pub fn key_prefix(prefix: &str) -> Cow<'_, str> {
    match cut(prefix) {
        None => Cow::Borrowed(prefix),
        Some(head) => Cow::Owned(format!("{head}#")),
    }
}

/// Bounds every key of an optional value in place.
pub fn bound(value: &mut Option<String>) {
    if let Some(text) = value
        && let Cow::Owned(bounded) = key(text)
    {
        *text = bounded;
    }
}

/// The first [`MAX_KEY_CHARS`] characters of `value`, when it is longer than that.
fn cut(value: &str) -> Option<&str> {
    if value.len() <= MAX_KEY_CHARS {
        return None;
    }
    value
        .char_indices()
        .nth(MAX_KEY_CHARS)
        .map(|(at, _)| &value[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_their_own_keys() {
        assert_eq!(key("http://loinc.org"), "http://loinc.org");
        let edge = "é".repeat(MAX_KEY_CHARS);
        assert_eq!(key(&edge), edge.as_str());
        assert_eq!(key_prefix(&edge), edge.as_str());
    }

    #[test]
    fn long_values_keep_their_head_and_a_hash_of_the_whole() {
        let a = format!("http://example.org/{}", "a".repeat(3000));
        let b = format!("{a}b");
        let (key_a, key_b) = (key(&a), key(&b));
        assert_ne!(key_a, key_b, "values differing after the cut differ");
        assert_eq!(key_a, key(&a), "the same value, the same key");
        assert_eq!(key_a.chars().count(), MAX_KEY_CHARS + 17);
        assert!(key_a.starts_with(&a[..MAX_KEY_CHARS]));
        assert!(
            key_a.chars().count() > MAX_KEY_CHARS,
            "never equal to a short value"
        );
        let wide = "日".repeat(1000);
        assert!(key(&wide).starts_with(&"日".repeat(MAX_KEY_CHARS)));
    }

    #[test]
    fn prefixes_match_the_keys_of_the_values_they_start() {
        let long = format!("http://example.org/{}", "x".repeat(500));
        for prefix in [
            "http://example.org/",
            &long[..MAX_KEY_CHARS],
            &long[..300],
            &long,
        ] {
            assert!(
                key(&long).starts_with(key_prefix(prefix).as_ref()),
                "{prefix}"
            );
        }
        let short = "http://example.org/short";
        assert!(key(short).starts_with(key_prefix("http://example.org/").as_ref()));
        assert!(!key(short).starts_with(key_prefix(&long[..300]).as_ref()));
    }

    #[test]
    fn bounds_in_place() {
        let mut none = None;
        bound(&mut none);
        assert_eq!(none, None);
        let mut long = Some("z".repeat(1000));
        bound(&mut long);
        assert_eq!(long.as_deref().map(str::len), Some(MAX_KEY_CHARS + 17));
    }
}
