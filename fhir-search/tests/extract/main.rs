//! End-to-end extraction: inline resources through the registry and the FHIRPath evaluator,
//! and the Synthea sample bundles. One test binary (linking dominates build time).

// Test helpers outside `#[test]` functions panic on broken fixtures by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod composite;
mod location;
mod observation;
mod patient;
mod references;
mod robustness;
mod synthea;

use fhir_search::{ExtractOptions, Registry, ResourceIndex, index_resource};
use serde_json::Value;

/// The base URL the tests treat as this server's.
pub const BASE_URL: &str = "http://localhost:8080/fhir";

/// Indexes `resource` with the R4 registry and the test base URL.
pub fn index(resource: &Value) -> ResourceIndex {
    let options = ExtractOptions {
        base_url: Some(BASE_URL.to_owned()),
    };
    index_resource(Registry::r4(), &options, resource)
}

/// Indexes and fails the test on any problem.
pub fn index_cleanly(resource: &Value) -> ResourceIndex {
    let index = index(resource);
    assert!(index.problems.is_empty(), "problems: {:#?}", index.problems);
    index
}

/// `Some(text.to_owned())`.
pub fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}
