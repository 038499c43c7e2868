//! The APIs on the page's own origin (behind the edge), each request with the signed-in user's
//! access token (`Authorization: Bearer`): FHIR reads and searches against a base (`/fhir`, a
//! past `/fhir/_asof/<instant>` or a sandbox's `/sandbox/<name>/fhir`, see
//! [`crate::view::View`]), and the teaching API's JSON (`/teaching/...`). Only the wasm build
//! has it; what the answers mean is decided by the pure modules.
//!
//! A 401 means the token was refused (expired in a tab that slept, or its session revoked):
//! the token is refreshed once and the request sent again; if the session has ended, the
//! session module tells the app, which shows the sign-in.

use std::fmt;

use gloo_net::http::{Method, Request, Response};
use serde_json::Value;

use super::session;
use crate::fhir;

/// The live record's FHIR base.
pub const LIVE: &str = "/fhir";

/// A request that did not give what was asked.
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
                write!(f, "the server could not be reached ({problem})")
            }
            ApiError::Status(404, text) if text.is_empty() => write!(f, "not found"),
            ApiError::Status(410, _) => write!(f, "deleted"),
            ApiError::Status(status, text) if text.is_empty() => {
                write!(f, "the server answered {status}")
            }
            ApiError::Status(status, text) => write!(f, "the server answered {status}: {text}"),
        }
    }
}

/// `GET <base>/<path>` as FHIR JSON.
pub async fn get(base: &str, path: &str) -> Result<Value, ApiError> {
    let url = format!("{base}/{path}");
    let response = with_token(|token| {
        Request::get(&url)
            .header("Accept", "application/fhir+json")
            .header("Authorization", &format!("Bearer {token}"))
            .build()
    })
    .await?;
    json_of(response).await
}

/// The resources a search finds (including `_include`d ones), first page only: every search
/// the app makes asks for a page larger than what it expects.
pub async fn search(base: &str, path: &str) -> Result<Vec<Value>, ApiError> {
    let bundle = get(base, path).await?;
    Ok(fhir::bundle_resources(&bundle).cloned().collect())
}

/// A teaching API request (`/teaching/...`) with an optional JSON body; its JSON answer, or
/// `null` for an answer without a body (a delete's 204).
pub async fn teaching(method: Method, path: &str, body: Option<&Value>) -> Result<Value, ApiError> {
    let response = with_token(|token| {
        let request = Request::get(path)
            .method(method.clone())
            .header("Accept", "application/json")
            .header("Authorization", &format!("Bearer {token}"));
        match body {
            Some(body) => request.json(body),
            None => request.build(),
        }
    })
    .await?;
    json_of(response).await
}

/// Sends the request `build` makes with the current token; once more with a refreshed token
/// if the first is refused with 401.
async fn with_token(
    build: impl Fn(&str) -> Result<Request, gloo_net::Error>,
) -> Result<Response, ApiError> {
    let send = |token: String| {
        let request = build(&token);
        async move {
            request
                .map_err(|error| ApiError::Network(error.to_string()))?
                .send()
                .await
                .map_err(|error| ApiError::Network(error.to_string()))
        }
    };
    let token = session::access_token().await.ok_or(ApiError::SignedOut)?;
    let response = send(token).await?;
    if response.status() == 401 && session::refresh().await {
        let token = session::access_token().await.ok_or(ApiError::SignedOut)?;
        return send(token).await;
    }
    Ok(response)
}

async fn json_of(response: Response) -> Result<Value, ApiError> {
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|error| ApiError::Network(error.to_string()))?;
    let body: Value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).map_err(|error| ApiError::Network(error.to_string()))?
    };
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        Err(ApiError::Status(status, diagnostics(&body)))
    }
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
