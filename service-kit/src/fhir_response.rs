//! The one place where an error becomes an HTTP response: a status and an `OperationOutcome`
//! as `application/fhir+json`. Each service maps its domain errors to a `FhirError` in one
//! line each; nothing else writes error bodies.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fhir_model::{IssueCode, OperationOutcome, OutcomeIssue};

/// The media type of FHIR JSON.
pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct FhirError {
    pub status: StatusCode,
    pub outcome: OperationOutcome,
}

impl FhirError {
    pub fn new(status: StatusCode, code: IssueCode, diagnostics: impl Into<String>) -> Self {
        FhirError {
            status,
            outcome: OperationOutcome::single(OutcomeIssue::error(code, diagnostics)),
        }
    }

    pub fn with_issues(status: StatusCode, issues: Vec<OutcomeIssue>) -> Self {
        FhirError {
            status,
            outcome: OperationOutcome::new(issues),
        }
    }

    /// A server fault: logged in full here, reported to the client without internals.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        FhirError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            IssueCode::Exception,
            "the server failed to process the request; the request id identifies it in the server log",
        )
    }
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        fhir_json(self.status, self.outcome.to_json().to_string())
    }
}

/// A FHIR JSON body with its status.
pub fn fhir_json(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}

/// The response header that carries the global position a write committed at. A later read
/// that sends it back (same header) can ask to see at least that position.
pub const EVENT_POSITION_HEADER: &str = "x-event-position";

/// This server's FHIR base as the client sees it (for `Location`, `fullUrl` and links):
/// configured, or this request's `Host` (and `X-Forwarded-Proto`) + `/fhir`.
pub fn base_url(configured: Option<&str>, headers: &HeaderMap) -> String {
    if let Some(base) = configured {
        return base.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("http");
    format!("{scheme}://{host}/fhir")
}

/// `ETag` of a resource version, as FHIR writes it: `W/"<versionId>"`.
pub fn etag(version: impl std::fmt::Display) -> HeaderValue {
    HeaderValue::from_str(&format!("W/\"{version}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("W/\"0\""))
}

/// `Last-Modified` (an HTTP date) of an instant.
pub fn http_date(at: chrono::DateTime<chrono::Utc>) -> HeaderValue {
    HeaderValue::from_str(&at.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"))
}

/// Parses an `If-Match` (or `ETag`) value naming a version: `W/"3"`, `"3"` or `3`.
pub fn parse_version_tag(value: &str) -> Option<u32> {
    let value = value.trim();
    let value = value.strip_prefix("W/").unwrap_or(value);
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    value.parse().ok().filter(|version| *version > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_tags() {
        assert_eq!(parse_version_tag("W/\"3\""), Some(3));
        assert_eq!(parse_version_tag("\"12\""), Some(12));
        assert_eq!(parse_version_tag(" 7 "), Some(7));
        assert_eq!(parse_version_tag("W/\"x\""), None);
        assert_eq!(parse_version_tag("W/\"0\""), None);
        assert_eq!(etag(4), HeaderValue::from_static("W/\"4\""));
    }

    #[test]
    fn http_dates() {
        use chrono::TimeZone;
        let at = chrono::Utc.with_ymd_and_hms(2024, 3, 5, 6, 7, 8).unwrap();
        assert_eq!(
            http_date(at),
            HeaderValue::from_static("Tue, 05 Mar 2024 06:07:08 GMT")
        );
    }
}
