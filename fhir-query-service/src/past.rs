//! The record as it was: `/fhir/_asof/<position or instant>/...`, a read-only FHIR base for any
//! past moment (ADR 0013).
//!
//! **Routing.** A layer in front of the router takes the `_asof/<at>` segment out of the path,
//! so that every read route (read, vread, history, search, compartments, `$everything`,
//! paging, metadata) serves the past as it serves the present, and leaves a [`PastRequested`]
//! in the request. Writes there are 405 before anything else happens: the past cannot change.
//!
//! **Resolution.** The caller is authenticated first (nothing about the record, not even how
//! many events it holds, is told to a request without a token); then [`resolve`] turns the
//! segment into a position. A position is taken as written; an instant, at whatever precision
//! (as in `_lastUpdated`), names the record once every event recorded before the end of that
//! period was applied. A position beyond the newest event, or an instant still to come, is 404:
//! there is no such past yet. The answer waits for the projections to reach the position, as a
//! search that presents a write's position does.
//!
//! Links in the answers (`fullUrl`, paging, history) name the resolved position, not the
//! instant, so a page fetched later is cut from the same past even if events recorded before
//! the instant were still arriving.

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use fhir_model::IssueCode;
use fhir_search::query::DateValue;
use fhir_search::sql::View;
use service_kit::fhir_response::FhirError;

use crate::routes::AppState;

/// The path segment that introduces a past base under `/fhir`.
pub const SEGMENT: &str = "_asof";

/// The `<at>` of a request to a past base, before it is resolved.
#[derive(Debug, Clone)]
pub struct PastRequested(pub String);

/// A resolved past: the event position whose record the request reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Past {
    pub position: i64,
}

impl Past {
    /// The search view of this past.
    pub fn view(self) -> View {
        View::AsOf(self.position)
    }

    /// The base of this past under the live base `base` (`.../fhir`).
    pub fn base(self, base: &str) -> String {
        format!("{base}/{SEGMENT}/{}", self.position)
    }
}

/// Takes `/fhir/_asof/<at>` out of the path of a request to the past (leaving `/fhir/...`) and
/// refuses writes there; other requests pass unchanged.
pub async fn route(mut request: Request, next: Next) -> Response {
    let Some((at, rest)) = split(request.uri().path()) else {
        return next.run(request).await;
    };
    let (at, rest) = (at.to_owned(), rest.to_owned());
    if !is_read(request.method(), &rest) {
        return FhirError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            IssueCode::NotSupported,
            format!(
                "{} {}: the record at a past moment is read-only; write to the live base (/fhir) \
                 or to a sandbox",
                request.method(),
                request.uri().path()
            ),
        )
        .into_response();
    }
    if let Err(refused) = service_kit::sandbox_path::set_path(&mut request, &format!("/fhir{rest}"))
    {
        return refused.into_response();
    }
    request.extensions_mut().insert(PastRequested(at));
    next.run(request).await
}

/// `("<at>", "/rest")` of `/fhir/_asof/<at>/rest` (the rest may be empty).
fn split(path: &str) -> Option<(&str, &str)> {
    let after = path.strip_prefix("/fhir/")?.strip_prefix(SEGMENT)?;
    let after = after.strip_prefix('/')?;
    let (at, rest) = after
        .find('/')
        .map_or((after, ""), |end| after.split_at(end));
    Some((at, rest))
}

/// Reads: GET and HEAD, and POST to `_search` (a search with a form body) or to the base itself
/// (a system search).
fn is_read(method: &Method, rest: &str) -> bool {
    if method == Method::GET || method == Method::HEAD {
        return true;
    }
    method == Method::POST
        && (rest.is_empty() || rest == "/" || rest == "/_search" || rest.ends_with("/_search"))
}

/// The position `at` names: a position as written, or the record's position at an instant.
pub async fn resolve(state: &AppState, at: &str) -> Result<Past, FhirError> {
    let position = if !at.is_empty() && at.bytes().all(|byte| byte.is_ascii_digit()) {
        let position: i64 = at.parse().map_err(|_| not_a_past(at))?;
        let head = state
            .store
            .head_position()
            .await
            .map_err(FhirError::internal)?;
        if position > head {
            return Err(FhirError::new(
                StatusCode::NOT_FOUND,
                IssueCode::NotFound,
                format!("position {position} is beyond the newest event of the record"),
            ));
        }
        position
    } else {
        let instant = DateValue::parse(at).map_err(|_| not_a_past(at))?;
        if instant.high > Utc::now() {
            return Err(FhirError::new(
                StatusCode::NOT_FOUND,
                IssueCode::NotFound,
                format!("{at} has not ended yet: the past is served up to the present"),
            ));
        }
        state
            .store
            .position_at(instant.high)
            .await
            .map_err(FhirError::internal)?
    };
    let horizon = state
        .searcher
        .history_horizon()
        .await
        .map_err(FhirError::internal)?;
    if position < horizon {
        return Err(FhirError::new(
            StatusCode::NOT_FOUND,
            IssueCode::NotFound,
            format!(
                "the search indexes keep the past from position {horizon} on (they were built \
                 before they kept it); rebuild the projections to serve earlier positions"
            ),
        ));
    }
    crate::routes::wait_for_index(state, position).await?;
    Ok(Past { position })
}

fn not_a_past(at: &str) -> FhirError {
    FhirError::new(
        StatusCode::BAD_REQUEST,
        IssueCode::Invalid,
        format!(
            "`{at}` names no past: /fhir/{SEGMENT}/ takes an event position (a whole number) or \
             an instant as in _lastUpdated (2026-12-01T02:00:00Z)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_segment_and_the_rest_are_split() {
        assert_eq!(
            split("/fhir/_asof/12/Patient/1"),
            Some(("12", "/Patient/1"))
        );
        assert_eq!(split("/fhir/_asof/12"), Some(("12", "")));
        assert_eq!(split("/fhir/_asof/12/"), Some(("12", "/")));
        assert_eq!(
            split("/fhir/_asof/2026-12-01T02:00:00Z/Observation"),
            Some(("2026-12-01T02:00:00Z", "/Observation"))
        );
        assert_eq!(split("/fhir/Patient/1"), None);
        assert_eq!(split("/fhir/_asofx/1"), None);
        assert_eq!(split("/fhir/_asof"), None);
    }

    #[test]
    fn only_reads_pass() {
        assert!(is_read(&Method::GET, "/Patient/1"));
        assert!(is_read(&Method::HEAD, "/Patient/1"));
        assert!(is_read(&Method::POST, "/Patient/_search"));
        assert!(is_read(&Method::POST, ""));
        assert!(!is_read(&Method::POST, "/Patient"));
        assert!(!is_read(&Method::PUT, "/Patient/1"));
        assert!(!is_read(&Method::DELETE, "/Patient/1"));
        assert!(!is_read(&Method::PATCH, "/Patient/1"));
    }
}
