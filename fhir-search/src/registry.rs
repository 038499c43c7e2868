//! The R4 search parameters, built from the official definitions embedded at compile time.

/// The search parameter types of FHIR R4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamType {
    Number,
    Date,
    String,
    Token,
    Reference,
    Composite,
    Quantity,
    Uri,
    Special,
}

/// One search parameter as defined.
#[derive(Debug, Clone)]
pub struct SearchParam {
    pub code: String,
    pub url: String,
    pub kind: ParamType,
    pub base: Vec<String>,
    pub expression: Option<String>,
}

/// All search parameters, by resource type.
#[derive(Debug, Default)]
pub struct Registry {}
