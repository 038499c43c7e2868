//! The FHIR API on the page's own origin (`/fhir`, behind the edge): reads and searches, as
//! JSON, each with the signed-in user's access token (`Authorization: Bearer`). Only the wasm
//! build has it; what the answers mean is decided by the pure modules.
//!
//! A 401 means the token was refused (expired in a tab that slept, or its session revoked):
//! the token is refreshed once and the request sent again; if the session has ended, the
//! session module tells the app, which shows the sign-in.

use std::fmt;

use gloo_net::http::Request;
use serde_json::Value;

use super::session;
use crate::fhir;

/// Where the edge serves the FHIR API.
const FHIR_BASE: &str = "/fhir";

/// A request that did not give a resource.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// No one is signed in (any more).
    SignedOut,
    /// The server was not reached, or its answer was not JSON.
    Network(String),
    /// The server answered with an error status; the text is the OperationOutcome's
    /// diagnostics when it has them.
    Status(u16, String),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::SignedOut => write!(f, "you are not signed in"),
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
    let token = session::access_token().await.ok_or(ApiError::SignedOut)?;
    let mut response = send(path, &token).await?;
    if response.status() == 401 && session::refresh().await {
        let token = session::access_token().await.ok_or(ApiError::SignedOut)?;
        response = send(path, &token).await?;
    }
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

async fn send(path: &str, token: &str) -> Result<gloo_net::http::Response, ApiError> {
    Request::get(&format!("{FHIR_BASE}/{path}"))
        .header("Accept", "application/fhir+json")
        .header("Authorization", &format!("Bearer {token}"))
        .send()
        .await
        .map_err(|error| ApiError::Network(error.to_string()))
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
