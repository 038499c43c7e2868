//! The read routes under `/fhir`.

mod read;

use axum::Router;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use event_store::EventStore;
use fhir_model::IssueCode;
use service_kit::fhir_response::FhirError;

pub(crate) fn router(store: EventStore) -> Router {
    Router::new()
        .route(
            "/fhir/{resource_type}/{id}",
            get(read::read).fallback(method_not_allowed),
        )
        .route(
            "/fhir/{resource_type}/{id}/_history/{version}",
            get(read::vread).fallback(method_not_allowed),
        )
        .fallback(elsewhere)
        .with_state(store)
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let message = if method == Method::GET || method == Method::HEAD {
        format!("{method} is not supported on {}", uri.path())
    } else {
        format!(
            "{method} {} is a write: writes are served by the command service (port 8081, or the edge)",
            uri.path()
        )
    };
    FhirError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        IssueCode::NotSupported,
        message,
    )
    .into_response()
}

async fn not_yet(method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed(method, uri).await;
    }
    FhirError::new(
        StatusCode::NOT_IMPLEMENTED,
        IssueCode::NotSupported,
        format!(
            "{} is not implemented yet: this server answers read and vread so far",
            uri.path()
        ),
    )
    .into_response()
}

/// Any other path: under `/fhir` an interaction not served yet; elsewhere nothing.
async fn elsewhere(method: Method, uri: Uri) -> Response {
    if uri.path().starts_with("/fhir") {
        return not_yet(method, uri).await;
    }
    FhirError::new(
        StatusCode::NOT_FOUND,
        IssueCode::NotFound,
        format!("no such endpoint: {}", uri.path()),
    )
    .into_response()
}
