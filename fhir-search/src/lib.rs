//! FHIR R4 search parameters: which ones exist, and what values a resource gives each of them.
//!
//! The registry is built from the official SearchParameter definitions (embedded from
//! `schemas/fhir/search-parameters.json`), never written per resource type. Extraction
//! evaluates each parameter's FHIRPath expression on a resource and normalises the results the
//! way FHIR search compares them, into [`index::ResourceIndex`] rows that the projection service
//! stores in the `hfj_*` tables and the query service searches.
//!
//! - [`registry`]: the definitions, compiled once ([`Registry::r4`]); which apply to a type.
//! - [`extract`]: [`index_resource`], one module per parameter type.
//! - [`normalize`] and [`ucum`]: how values are compared (folded strings, date spans, canonical
//!   units). The query service applies the same functions to search values.
//! - [`index`] and [`hash`]: the rows and their hashes, the contract with the projection service.

pub mod extract;
pub mod hash;
pub mod index;
pub mod normalize;
pub mod query;
pub mod registry;
pub mod ucum;

pub use extract::{ExtractOptions, index_resource};
pub use index::ResourceIndex;
pub use registry::{ParamType, Registry, SearchParam};
