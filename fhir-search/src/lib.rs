//! FHIR R4 search: which parameters exist, what values a resource gives each of them, the
//! tables those values are kept in, and (feature `sql`) searching those tables.
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
//! - [`query`]: a search's parameters parsed into criteria; [`compartment`]: the Patient
//!   compartment that compartment searches filter by.
//! - [`schema`]: the tables the projection fills and the services search, their migrations
//!   (run with `schema::migrate`, feature `sql`) and the names statements use for their
//!   columns, so that every statement over them names them one way.
//! - `sql` (feature `sql`): a parsed search as one statement over the `hfj_*` tables, and the
//!   projection checkpoint a reader waits on to see its writes. The query service searches
//!   with it; the command service matches conditional writes with it, so both agree on what a
//!   search finds.
//!
//! Without the `sql` feature the crate does no I/O: the registry, extraction, normalisation and
//! query parsing are pure functions, unit-tested without a database. With it, it talks to
//! Postgres: it migrates the index schema and runs searches and the checkpoint wait.

pub mod compartment;
pub mod extract;
pub mod hash;
pub mod index;
pub mod normalize;
pub mod query;
pub mod registry;
pub mod schema;
#[cfg(feature = "sql")]
pub mod sql;
pub mod ucum;

pub use extract::{ExtractOptions, index_resource};
pub use index::ResourceIndex;
pub use registry::{ParamType, Registry, SearchParam};
