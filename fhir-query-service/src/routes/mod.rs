//! The read routes under `/fhir`.

mod format;
mod history;
mod metadata;
mod read;
mod search;
mod versions;

use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use event_store::EventStore;
use fhir_model::IssueCode;
use service_kit::fhir_response::FhirError;

use service_kit::resource_cache::ResourceCache;

use crate::search::Searcher;
use fhir_search::sql::checkpoint::Checkpoint;

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct AppState {
    pub store: EventStore,
    pub cache: ResourceCache,
    pub searcher: Searcher,
    pub checkpoint: Checkpoint,
    /// How long a search carrying a write's position waits for the projections.
    pub consistency_wait: Duration,
    /// Where links point: the configured public base URL, or one built from an allowed `Host`.
    pub public_url: service_kit::config::PublicUrlSettings,
    /// Proxies (the edge) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: std::sync::Arc<[ipnet::IpNet]>,
    /// Checks each request's access token.
    pub auth: service_kit::auth::Authenticator,
    /// Where clients reach the identity service, when configured (`--auth-public-url`).
    pub auth_public_url: Option<String>,
}

impl AppState {
    fn base_url(&self, headers: &HeaderMap) -> String {
        service_kit::fhir_response::base_url(&self.public_url, headers)
    }

    /// The FHIR base the caller reads: the live base, or the past it asked for under it.
    fn fhir_base(&self, caller: &crate::access::Caller) -> String {
        let base = self.base_url(&caller.headers);
        if let Some(sandbox) = &caller.sandbox {
            return service_kit::sandbox_path::sandbox_base(&base, &sandbox.name);
        }
        match caller.past {
            Some(past) => past.base(&base),
            None => base,
        }
    }
}

impl FromRef<AppState> for EventStore {
    fn from_ref(state: &AppState) -> Self {
        state.store.clone()
    }
}

/// Waits, up to the consistency wait, for the search indexes to reach `position`; 503 when
/// they do not.
pub(crate) async fn wait_for_index(state: &AppState, position: i64) -> Result<(), FhirError> {
    state
        .checkpoint
        .wait_for(position, state.consistency_wait)
        .await
        .map_err(|not_yet| {
            FhirError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                IssueCode::Timeout,
                not_yet.to_string(),
            )
        })
}

pub(crate) fn router(state: AppState) -> Router {
    // A sandbox's prefix and the past's segment are taken out of the path before the routes
    // are matched, so they wrap the routes as a service rather than being their layers.
    let routes = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn(service_kit::sandbox_path::route))
        .layer(axum::middleware::from_fn(crate::past::route))
        .service(routes(state));
    Router::new().fallback_service(routes)
}

fn routes(state: AppState) -> Router {
    Router::new()
        .route(
            "/fhir",
            get(search::system_get)
                .post(search::system_post)
                .fallback(method_not_allowed),
        )
        .route(
            "/fhir/",
            get(search::system_get)
                .post(search::system_post)
                .fallback(method_not_allowed),
        )
        .route(
            "/fhir/metadata",
            get(metadata::capability_statement).fallback(method_not_allowed),
        )
        .route(
            "/fhir/_history",
            get(history::system).fallback(method_not_allowed),
        )
        .route(
            "/fhir/{resource_type}/_history",
            get(history::by_type).fallback(method_not_allowed),
        )
        .route(
            "/fhir/{resource_type}/{id}/_history",
            get(history::instance).fallback(method_not_allowed),
        )
        .route(
            "/fhir/_search",
            post(search::system_post).fallback(method_not_allowed),
        )
        .route(
            "/fhir/{resource_type}",
            get(search::type_get).fallback(method_not_allowed),
        )
        .route(
            "/fhir/{resource_type}/_search",
            post(search::type_post).fallback(method_not_allowed),
        )
        .route(
            "/fhir/{resource_type}/{id}",
            get(read::read).fallback(method_not_allowed),
        )
        .route(
            "/fhir/{resource_type}/{id}/{compartment}",
            get(search::compartment_get).fallback(method_not_allowed),
        )
        .route(
            "/fhir/{resource_type}/{id}/_history/{version}",
            get(read::vread).fallback(method_not_allowed),
        )
        .fallback(elsewhere)
        .layer(axum::middleware::from_fn(format::negotiate))
        .with_state(state)
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

/// A path under `/fhir` that names no FHIR interaction (`Patient/1/_history/`,
/// `Patient/1/_history/1/extra`): 404, as for any other unknown resource path, since there is
/// nothing there to implement; methods other than reads are 405.
async fn no_interaction(method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed(method, uri).await;
    }
    FhirError::new(
        StatusCode::NOT_FOUND,
        IssueCode::NotFound,
        format!("{} names no FHIR interaction", uri.path()),
    )
    .into_response()
}

/// Any other path: under `/fhir` no FHIR interaction; elsewhere nothing.
async fn elsewhere(method: Method, uri: Uri) -> Response {
    if uri.path().starts_with("/fhir") {
        return no_interaction(method, uri).await;
    }
    FhirError::new(
        StatusCode::NOT_FOUND,
        IssueCode::NotFound,
        format!("no such endpoint: {}", uri.path()),
    )
    .into_response()
}
