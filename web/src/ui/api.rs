//! The FHIR API on the page's own origin (`/fhir`, behind the edge): reads and searches, as
//! JSON. Only the wasm build has it; what the answers mean is decided by the pure modules.

use std::fmt;

use gloo_net::http::Request;
use serde_json::Value;

use crate::fhir;

/// Where the edge serves the FHIR API.
const FHIR_BASE: &str = "/fhir";

/// A request that did not give a resource.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// The server was not reached, or its answer was not JSON.
    Network(String),
    /// The server answered with an error status; the text is the OperationOutcome's
    /// diagnostics when it has them.
    Status(u16, String),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Network(problem) => {
                write!(f, "the FHIR server could not be reached ({problem})")
            }
            ApiError::Status(404, _) => write!(f, "not found"),
            ApiError::Status(410, _) => write!(f, "deleted"),
            ApiError::Status(status, text) if text.is_empty() => {
                write!(f, "the FHIR server answered {status}")
            }
            ApiError::Status(status, text) => {
                write!(f, "the FHIR server answered {status}: {text}")
            }
        }
    }
}

/// `GET /fhir/<path>` as JSON.
pub async fn get(path: &str) -> Result<Value, ApiError> {
    let response = Request::get(&format!("{FHIR_BASE}/{path}"))
        .header("Accept", "application/fhir+json")
        .send()
        .await
        .map_err(|error| ApiError::Network(error.to_string()))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|error| ApiError::Network(error.to_string()))?;
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        Err(ApiError::Status(status, diagnostics(&body)))
    }
}

/// The resources a search finds (including `_include`d ones), first page only: every search
/// the app makes asks for a page larger than what it expects.
pub async fn search(path: &str) -> Result<Vec<Value>, ApiError> {
    let bundle = get(path).await?;
    Ok(fhir::bundle_resources(&bundle).cloned().collect())
}

/// What an OperationOutcome says went wrong.
fn diagnostics(outcome: &Value) -> String {
    outcome["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|issue| issue["diagnostics"].as_str())
        .collect::<Vec<_>>()
        .join("; ")
}
