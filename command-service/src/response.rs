//! The response to a successful write: status, `Location`, `ETag`, `Last-Modified`, the
//! committed position, and the body the client asked for with `Prefer: return=`.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fhir_model::{OperationOutcome, OutcomeIssue};
use service_kit::fhir_response::{EVENT_POSITION_HEADER, etag, fhir_json, http_date};

use crate::commit::WriteOutcome;
use crate::request::{ReturnPreference, return_preference};

pub use service_kit::fhir_response::base_url;

/// Builds the response for `outcome` of a write on `resource_type/id`.
pub fn write_response(
    outcome: WriteOutcome,
    resource_type: &str,
    id: &str,
    base: &str,
    request_headers: &HeaderMap,
    message: &str,
) -> Response {
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let preference = if outcome.deleted
        && return_preference(request_headers) == ReturnPreference::Representation
    {
        // A deleted resource has no representation; say what happened instead.
        ReturnPreference::OperationOutcome
    } else {
        return_preference(request_headers)
    };
    let mut response = match preference {
        ReturnPreference::Minimal => status.into_response(),
        ReturnPreference::Representation => fhir_json(status, outcome.resource_json),
        ReturnPreference::OperationOutcome => fhir_json(
            status,
            OperationOutcome::single(OutcomeIssue::information(message))
                .to_json()
                .to_string(),
        ),
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag(outcome.version));
    headers.insert(header::LAST_MODIFIED, http_date(outcome.last_updated));
    if !outcome.deleted {
        let location = format!("{base}/{resource_type}/{id}/_history/{}", outcome.version);
        if let Ok(value) = HeaderValue::from_str(&location) {
            headers.insert(header::LOCATION, value.clone());
            if outcome.created {
                headers.insert(header::CONTENT_LOCATION, value);
            }
        }
    }
    if let Some(position) = outcome.position {
        headers.insert(EVENT_POSITION_HEADER, HeaderValue::from(position));
    }
    response
}
