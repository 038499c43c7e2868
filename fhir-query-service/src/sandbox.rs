//! Reads of teaching sandboxes: `/sandbox/<name>/fhir/...` is a full FHIR base (ADR 0014).
//!
//! `service_kit::sandbox_path` takes the prefix off the path; the `Caller` extractor looks the
//! sandbox up once the token is checked (an unknown one is 404). Its reads then go to the
//! sandbox's streams (`event_store::Record::Sandbox`), its searches to its view of the index
//! (`fhir_search::sql::View::Sandbox`); neither touches the read cache, which holds the live
//! record only.

use event_store::sandbox::{self, Sandbox};
use service_kit::fhir_response::FhirError;
use service_kit::sandbox_path::unknown_sandbox;

use crate::routes::AppState;

/// The sandbox `name`, or the 404 of one that does not exist.
pub async fn resolve(state: &AppState, name: &str) -> Result<Sandbox, FhirError> {
    if !sandbox::valid_name(name) {
        return Err(unknown_sandbox(name));
    }
    sandbox::find(state.store.pool(), name)
        .await
        .map_err(FhirError::internal)?
        .ok_or_else(|| unknown_sandbox(name))
}
