//! Stable 64-bit hashes of search values, stored beside them so the common equality lookups
//! (`code=system|value`, `identifier=...`, `url=...`) probe one narrow btree index.
//!
//! Writers (the projection service) and readers (the query service) must agree bit for bit,
//! across processes and releases: the hash is the first eight bytes of SHA-256 over the parts
//! joined by a unit separator, never Rust's randomised `Hash`. Changing it means a rebuild.

use sha2::{Digest, Sha256};

/// Hashes `parts` in order; a part's boundaries are kept, so `("ab","c")` and `("a","bc")` differ.
pub fn hash_parts(parts: &[&str]) -> i64 {
    let mut digest = Sha256::new();
    for (n, part) in parts.iter().enumerate() {
        if n > 0 {
            digest.update([0x1f]);
        }
        digest.update(part.as_bytes());
    }
    let bytes = digest.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes[..8]);
    i64::from_be_bytes(first)
}

/// Token `system|code` within one parameter of one resource type; an absent system hashes as "".
pub fn token_system_code(resource_type: &str, param: &str, system: &str, code: &str) -> i64 {
    hash_parts(&[resource_type, param, system, code])
}

/// Token code alone (`code=value` without a system).
pub fn token_code(resource_type: &str, param: &str, code: &str) -> i64 {
    hash_parts(&[resource_type, param, "", code, "code-only"])
}

/// A string parameter's exact (not normalised) value, for `:exact`.
pub fn string_exact(resource_type: &str, param: &str, exact: &str) -> i64 {
    hash_parts(&[resource_type, param, exact, "exact"])
}

/// A uri parameter's value.
pub fn uri(resource_type: &str, param: &str, uri: &str) -> i64 {
    hash_parts(&[resource_type, param, uri, "uri"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_boundaries_change_the_hash() {
        assert_ne!(hash_parts(&["ab", "c"]), hash_parts(&["a", "bc"]));
    }

    #[test]
    fn hash_is_stable_across_releases() {
        // Stored in every index row: this value must never change without a rebuild. It was
        // computed independently (Python's hashlib) from the documented construction.
        assert_eq!(
            token_system_code(
                "Patient",
                "gender",
                "http://hl7.org/fhir/administrative-gender",
                "female"
            ),
            -7_925_587_069_137_330_188
        );
        assert_ne!(
            token_code("Patient", "gender", "female"),
            token_system_code("Patient", "gender", "", "female")
        );
    }
}
