//! wardline: the operators' command line. Each command is a module with a library entry
//! point, so that tests and benchmarks run exactly what the command runs.
//!
//! - [`import`]: Synthea output and FHIR NDJSON, through the FHIR API, resumable.
//! - `projections rebuild`: the projection service's rebuild (`projection_service::run_rebuild`).

pub mod import;
