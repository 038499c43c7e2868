//! The index rows one resource yields: one vector per `hfj_*` table.
//!
//! Values are already normalised the way search compares them, so the projection service only
//! stores them and the query service only compares. Every row names its search parameter by
//! `param` (the parameter's `code`, such as `birthdate`). Rows that are parts of a composite
//! parameter carry `composite`: their `param` is then the composite's code, and rows of the same
//! `group` come from the same element, so `code-value-quantity` matches a code and a value of
//! the same Observation component.

use chrono::{DateTime, Utc};

/// Where a row sits inside a composite parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CompositePart {
    /// Index of the component in the composite's definition (0 for the first).
    pub component: i16,
    /// Rows with the same group come from the same element of the resource.
    pub group: i32,
}

/// Everything the search indexes hold for one version of one resource.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceIndex {
    pub strings: Vec<StringRow>,
    pub tokens: Vec<TokenRow>,
    pub dates: Vec<DateRow>,
    pub numbers: Vec<NumberRow>,
    pub quantities: Vec<QuantityRow>,
    pub uris: Vec<UriRow>,
    pub links: Vec<LinkRow>,
    pub coords: Vec<CoordsRow>,
    pub tags: Vec<TagRow>,
    /// Narrative (`text.div` without markup), for `_text`.
    pub narrative: String,
    /// Every string value of the resource, for `_content`.
    pub content: String,
    /// Expressions that failed on this resource: logged, never fatal to the other parameters.
    pub problems: Vec<String>,
}

/// `hfj_spidx_string`: one per string value (each part of a HumanName or Address separately).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StringRow {
    pub param: String,
    pub composite: Option<CompositePart>,
    /// Case- and accent-folded, whitespace-collapsed: FHIR's default (prefix) match.
    pub normalized: String,
    /// The value as written, for `:exact`.
    pub exact: String,
}

/// `hfj_spidx_token`: codes, identifiers, booleans, ContactPoints, ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenRow {
    pub param: String,
    pub composite: Option<CompositePart>,
    pub system: Option<String>,
    pub code: Option<String>,
    /// Display text (Coding.display, CodeableConcept.text, Identifier.type.text), folded like
    /// a string, for `:text`.
    pub text: Option<String>,
    /// For Identifiers: one coding of `Identifier.type`, for `:of-type`.
    pub type_system: Option<String>,
    pub type_code: Option<String>,
}

/// `hfj_spidx_date`: a value as the instants it covers at its precision. `2020` covers
/// `[2020-01-01T00:00Z, 2021-01-01T00:00Z)`. `None` is an open end (a Period without start or
/// end).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DateRow {
    pub param: String,
    pub composite: Option<CompositePart>,
    /// Inclusive lower bound.
    pub low: Option<DateTime<Utc>>,
    /// Exclusive upper bound.
    pub high: Option<DateTime<Utc>>,
}

/// `hfj_spidx_number`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NumberRow {
    pub param: String,
    pub composite: Option<CompositePart>,
    /// The decimal as written (its precision matters to `eq`).
    pub value: String,
}

/// `hfj_spidx_quantity`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuantityRow {
    pub param: String,
    pub composite: Option<CompositePart>,
    pub value: String,
    pub comparator: Option<String>,
    pub system: Option<String>,
    pub code: Option<String>,
    pub unit: Option<String>,
    /// The value in canonical UCUM units (`g` for `mg`, `K` for `Cel` and `[degF]`), where the
    /// unit is UCUM and convertible.
    pub canonical_value: Option<String>,
    pub canonical_code: Option<String>,
}

/// `hfj_spidx_uri`: uri, url and canonical values.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UriRow {
    pub param: String,
    pub composite: Option<CompositePart>,
    pub uri: String,
}

/// How a reference names its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinkKind {
    /// `Patient/123`, or an absolute URL on this server's base: target type and id are set.
    Local,
    /// `#p1`: a resource contained in this one; target type set, target id is the local id.
    Contained,
    /// An absolute URL elsewhere, or a canonical: only `target_url` is set (and the type when
    /// the URL shows it).
    External,
    /// Only `Reference.identifier`: the target is known by identifier alone.
    Logical,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Contained => "contained",
            Self::External => "external",
            Self::Logical => "logical",
        }
    }
}

/// `hfj_res_link`: one per reference a reference parameter finds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkRow {
    pub param: String,
    pub composite: Option<CompositePart>,
    /// The element path, as HAPI records it (`Observation.subject`).
    pub source_path: String,
    pub kind: LinkKind,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub target_version: Option<String>,
    pub target_url: Option<String>,
    /// `Reference.identifier`, for `:identifier`.
    pub identifier_system: Option<String>,
    pub identifier_value: Option<String>,
}

/// `hfj_spidx_coords`: special `near` parameters (Location.position).
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub struct CoordsRow {
    pub param: String,
    pub latitude: f64,
    pub longitude: f64,
}

/// Which list of `meta` a tag row comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TagKind {
    Tag,
    Profile,
    Security,
}

impl TagKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tag => "tag",
            Self::Profile => "profile",
            Self::Security => "security",
        }
    }
}

/// `hfj_res_tag`: `meta.tag`, `meta.profile` (code holds the profile URL) and `meta.security`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagRow {
    pub kind: TagKind,
    pub system: Option<String>,
    pub code: Option<String>,
    pub display: Option<String>,
}
