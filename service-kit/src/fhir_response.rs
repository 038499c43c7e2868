//! The one place where an error becomes an HTTP response: a status and an `OperationOutcome`
//! as `application/fhir+json`. Each service maps its domain errors to a `FhirError` in one
//! line each; nothing else writes error bodies.

use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fhir_model::{IssueCode, OperationOutcome, OutcomeIssue};

use crate::config::PublicUrlSettings;

/// The media type of FHIR JSON.
pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct FhirError {
    pub status: StatusCode,
    pub outcome: OperationOutcome,
    /// The `WWW-Authenticate` challenge of a 401 (RFC 6750), when there is one.
    pub challenge: Option<String>,
    /// `Retry-After` (seconds) of a 429 or 503, when the server knows.
    pub retry_after: Option<u64>,
}

impl FhirError {
    pub fn new(status: StatusCode, code: IssueCode, diagnostics: impl Into<String>) -> Self {
        FhirError {
            status,
            outcome: OperationOutcome::single(OutcomeIssue::error(code, diagnostics)),
            challenge: None,
            retry_after: None,
        }
    }

    pub fn with_issues(status: StatusCode, issues: Vec<OutcomeIssue>) -> Self {
        FhirError {
            status,
            outcome: OperationOutcome::new(issues),
            challenge: None,
            retry_after: None,
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
        let mut response = fhir_json(self.status, self.outcome.to_json().to_string());
        if let Some(challenge) = self
            .challenge
            .and_then(|challenge| HeaderValue::from_str(&challenge).ok())
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
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

/// The base of links when none is configured and the request's `Host` is not an allowed one:
/// the development edge's address.
pub const DEFAULT_BASE_URL: &str = "http://localhost:8080/fhir";

/// This server's FHIR base as the client sees it (for `Location`, `fullUrl` and links): the
/// configured one; else this request's `Host` (and `X-Forwarded-Proto`) + `/fhir` when that
/// host is allowed; else [`DEFAULT_BASE_URL`]. A `Host` header is whatever the client wrote, so
/// building links from any host would let a client put its own server into the links others
/// follow (and into cached pages).
pub fn base_url(settings: &PublicUrlSettings, headers: &HeaderMap) -> String {
    if let Some(base) = &settings.fhir_base_url {
        return base.trim_end_matches('/').to_owned();
    }
    let Some(authority) = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<Authority>().ok())
        .filter(|authority| !authority.as_str().contains('@'))
        .filter(|authority| host_allowed(&settings.allowed_hosts, authority.host()))
    else {
        return DEFAULT_BASE_URL.to_owned();
    };
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{authority}/fhir")
}

/// Whether `host` (as a `Host` header names it, IPv6 in brackets) is one of `allowed`.
fn host_allowed(allowed: &[String], host: &str) -> bool {
    let unbracketed = |name: &str| {
        name.trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned()
    };
    let host = unbracketed(host);
    allowed
        .iter()
        .any(|name| unbracketed(name).eq_ignore_ascii_case(&host))
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
    fn links_are_built_only_from_allowed_hosts() {
        let settings = PublicUrlSettings {
            fhir_base_url: None,
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()],
        };
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(*name, HeaderValue::from_static(value));
            }
            base_url(&settings, &headers)
        };
        assert_eq!(
            with(&[("host", "localhost:8080")]),
            "http://localhost:8080/fhir"
        );
        assert_eq!(with(&[("host", "LOCALHOST")]), "http://LOCALHOST/fhir");
        assert_eq!(with(&[("host", "[::1]:9000")]), "http://[::1]:9000/fhir");
        assert_eq!(
            with(&[("host", "127.0.0.1:1"), ("x-forwarded-proto", "https")]),
            "https://127.0.0.1:1/fhir"
        );
        for hostile in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "evil.example@localhost",
            "localhost/../evil",
            "",
        ] {
            assert_eq!(with(&[("host", hostile)]), DEFAULT_BASE_URL, "{hostile}");
        }
        assert_eq!(
            with(&[("host", "localhost"), ("x-forwarded-proto", "javascript")]),
            "http://localhost/fhir"
        );
        assert_eq!(with(&[]), DEFAULT_BASE_URL);
        let configured = PublicUrlSettings {
            fhir_base_url: Some("https://fhir.example.org/fhir/".into()),
            ..settings.clone()
        };
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("localhost"));
        assert_eq!(
            base_url(&configured, &headers),
            "https://fhir.example.org/fhir"
        );
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
