//! What the write API answers for everything it does not do (yet), always as an
//! `OperationOutcome`.

use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use fhir_model::IssueCode;
use service_kit::fhir_response::FhirError;

/// A method this service does not serve on this path: reads belong to the query service.
pub(crate) async fn method(method: Method, uri: Uri) -> Response {
    let message = if method == Method::GET || method == Method::HEAD {
        format!(
            "{method} {} is a read: reads are served by the query service (port 8082, or the edge)",
            uri.path()
        )
    } else {
        format!("{method} is not supported on {}", uri.path())
    };
    FhirError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        IssueCode::NotSupported,
        message,
    )
    .into_response()
}

/// Any other path: under `/fhir` it is an interaction this service does not serve (a read, a
/// history, an operation); elsewhere there is nothing.
pub(crate) async fn elsewhere(method: Method, uri: Uri) -> Response {
    if uri.path().starts_with("/fhir/") {
        return self::method(method, uri).await;
    }
    FhirError::new(
        StatusCode::NOT_FOUND,
        IssueCode::NotFound,
        format!("no such endpoint: {}", uri.path()),
    )
    .into_response()
}
