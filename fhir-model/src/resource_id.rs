//! `ResourceId`: a logical id as FHIR allows it (`[A-Za-z0-9\-\.]{1,64}`).

use std::fmt;

use thiserror::Error;

/// A valid FHIR logical id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId(String);

/// The text given cannot be a FHIR logical id.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("'{0}' is not a valid FHIR id: 1 to 64 characters from A-Z, a-z, 0-9, '-' and '.'")]
pub struct InvalidResourceId(pub String);

impl ResourceId {
    pub fn parse(text: &str) -> Result<Self, InvalidResourceId> {
        let valid = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if valid {
            Ok(ResourceId(text.to_owned()))
        } else {
            Err(InvalidResourceId(text.to_owned()))
        }
    }

    /// A fresh server-assigned id (a random UUID, which is a valid FHIR id).
    pub fn from_uuid(uuid: impl fmt::Display) -> Self {
        ResourceId(uuid.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_fhir_allows_and_rejects_the_rest() {
        for ok in ["a", "123", "example-1.2", &"x".repeat(64)] {
            assert!(ResourceId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a/b", "ä", "a_b", &"x".repeat(65)] {
            assert!(ResourceId::parse(bad).is_err(), "{bad}");
        }
    }
}
