//! The routes of the write API under `/fhir`, one file per interaction. Each only reads its
//! HTTP request (media type, body, headers) into an [`Entry`] and renders what became of it:
//! what the entry means is decided by the planner, for REST requests and Bundles alike.

mod create;
mod delete;
mod patch;
mod unsupported;
mod update;

use std::net::SocketAddr;

use access_policy::Principal;
use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{post, put};
use fhir_model::{OperationOutcome, OutcomeIssue};
use service_kit::fhir_response::fhir_json;

use crate::AppState;
use crate::entry::{Entry, Method};
use crate::error::WriteError;
use crate::plan::Scope;
use crate::request::{commit_context, now};
use crate::response::write_response;
use crate::transaction::{self, EntryResult};

pub(crate) fn router(state: AppState) -> Router {
    // A sandbox's prefix is taken off the path before the FHIR routes are matched, so it wraps
    // them as a service; the teaching API is beside them.
    let fhir = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn(service_kit::sandbox_path::route))
        .service(fhir_routes(state.clone()));
    crate::teaching::router(state).fallback_service(fhir)
}

fn fhir_routes(state: AppState) -> Router {
    Router::new()
        .route(
            "/fhir",
            post(crate::bundle::post).fallback(unsupported::method),
        )
        // Clients that keep the base with its trailing slash post Bundles here.
        .route(
            "/fhir/",
            post(crate::bundle::post).fallback(unsupported::method),
        )
        .route(
            "/fhir/{resource_type}",
            post(create::create)
                .put(update::conditional_update)
                .delete(delete::conditional_delete)
                .patch(patch::conditional_patch)
                .fallback(unsupported::method),
        )
        .route(
            "/fhir/{resource_type}/{id}",
            put(update::update)
                .patch(patch::patch)
                .delete(delete::delete)
                .fallback(unsupported::method),
        )
        .fallback(unsupported::elsewhere)
        .with_state(state)
}

/// Parses the type in the URL: unknown types are 404.
pub(crate) fn resource_type(name: &str) -> Result<fhir_model::ResourceType, WriteError> {
    fhir_model::ResourceType::parse(name).map_err(|_| WriteError::UnknownType(name.to_owned()))
}

/// Parses the id in the URL.
pub(crate) fn resource_id(text: &str) -> Result<fhir_model::ResourceId, WriteError> {
    fhir_model::ResourceId::parse(text).map_err(|error| WriteError::InvalidId(error.to_string()))
}

/// Runs a REST request's entry as a transaction of one, and answers it: the status, headers
/// and body `write_response` makes of what it did (or an `OperationOutcome` where it did
/// nothing to a resource).
pub(crate) async fn perform(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    peer: SocketAddr,
    entry: Entry,
) -> Result<Response, WriteError> {
    let mut context = commit_context(
        principal,
        headers,
        Some(peer),
        &state.settings.proxies,
        now(),
    );
    context.metadata.sandbox = state.sandbox_tag();
    let result = transaction::run_one(state, principal, &context, entry, Scope::Request)
        .await
        .map_err(|failure| failure.error)?;
    let EntryResult {
        method,
        status,
        resource_type,
        id,
        outcome,
        message,
        ..
    } = result;
    let Some((outcome, id)) = outcome.zip(id) else {
        let outcome =
            OperationOutcome::single(OutcomeIssue::information(message.unwrap_or_default()));
        return Ok(fhir_json(status, outcome.to_json().to_string()));
    };
    let message = message.unwrap_or_else(|| {
        match method {
            _ if outcome.created => "created",
            Method::Patch => "patched",
            _ => "updated",
        }
        .to_owned()
    });
    let base = state.fhir_base(headers);
    Ok(write_response(
        outcome,
        resource_type.as_str(),
        &id,
        &base,
        headers,
        &message,
    ))
}

/// The criteria of `PUT`, `PATCH` or `DELETE /<Type>?criteria`; none is the client's mistake.
pub(crate) fn required_criteria(
    query: Option<String>,
    interaction: &str,
) -> Result<String, WriteError> {
    query.filter(|query| !query.trim().is_empty()).ok_or_else(|| {
        WriteError::Rule(format!(
            "{interaction} needs an id in the URL (/<Type>/<id>) or search criteria (/<Type>?...)"
        ))
    })
}
