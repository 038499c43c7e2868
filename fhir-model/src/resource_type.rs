//! `ResourceType`: a name that is one of the 146 concrete FHIR R4 resource types.
//!
//! The list is `schemas/fhir/resource-types.txt`, taken from the official StructureDefinitions,
//! so a type the specification does not define can never reach a handler or a table.

use std::fmt;
use std::sync::OnceLock;

use thiserror::Error;

const RESOURCE_TYPES_TXT: &str = include_str!("../../schemas/fhir/resource-types.txt");

fn all_types() -> &'static [&'static str] {
    static TYPES: OnceLock<Vec<&'static str>> = OnceLock::new();
    TYPES.get_or_init(|| {
        let mut types: Vec<&'static str> = RESOURCE_TYPES_TXT
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect();
        types.sort_unstable();
        types
    })
}

/// A concrete FHIR R4 resource type such as `Patient` or `Observation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceType(&'static str);

/// The name given is not a FHIR R4 resource type.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("'{0}' is not a FHIR R4 resource type")]
pub struct UnknownResourceType(pub String);

impl ResourceType {
    /// Parses a type name exactly as FHIR spells it (case-sensitive, as in URLs and JSON).
    pub fn parse(name: &str) -> Result<Self, UnknownResourceType> {
        let types = all_types();
        types
            .binary_search(&name)
            .map(|index| ResourceType(types[index]))
            .map_err(|_| UnknownResourceType(name.to_owned()))
    }

    /// Every R4 resource type, in alphabetical order.
    pub fn all() -> impl Iterator<Item = ResourceType> {
        all_types().iter().map(|name| ResourceType(name))
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_r4_types_and_nothing_else() {
        assert_eq!(ResourceType::all().count(), 146);
        assert_eq!(ResourceType::parse("Patient").unwrap().as_str(), "Patient");
        assert!(ResourceType::parse("patient").is_err());
        assert!(
            ResourceType::parse("Project").is_err(),
            "server-specific types are not FHIR"
        );
        assert!(
            ResourceType::parse("DomainResource").is_err(),
            "abstract types are not addressable"
        );
        assert!(ResourceType::parse("").is_err());
    }
}
