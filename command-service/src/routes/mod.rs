//! The routes of the write API under `/fhir`, one file per interaction.

mod create;
mod delete;
mod patch;
mod unsupported;
mod update;

use std::net::SocketAddr;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{post, put};
use chrono::{DateTime, Utc};
use event_store::ResourceCommand;
use fhir_model::ResourceType;

use crate::AppState;
use crate::error::WriteError;
use crate::request::{commit_context, now};
use crate::response::{base_url, write_response};
use crate::write::{WriteOutcome, cache_version, execute};

pub(crate) fn router(state: AppState) -> Router {
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

/// The checks a resource body passes on create and update: its type is the URL's, and it is
/// valid against the R4 schema.
pub(crate) fn check_body(
    resource: &serde_json::Value,
    expected: fhir_model::ResourceType,
) -> Result<(), WriteError> {
    let Some(object) = resource.as_object() else {
        return Err(WriteError::Rule(
            "the body must be a FHIR resource (a JSON object)".to_owned(),
        ));
    };
    match object.get("resourceType").and_then(|value| value.as_str()) {
        Some(found) if found == expected.as_str() => {}
        Some(found) => {
            return Err(WriteError::Rule(format!(
                "the body is a {found} but the URL is for {expected}"
            )));
        }
        None => return Err(WriteError::Rule("the body has no resourceType".to_owned())),
    }
    fhir_model::check_resource(resource)
        .map(|_| ())
        .map_err(WriteError::Invalid)
}

/// One write on `resource_type/id`: runs the command `make` builds for this moment, stores the
/// new version in the read cache, and answers with the response `message` describes (for
/// `Prefer: return=OperationOutcome`). `fresh`: the id was just generated.
pub(crate) async fn perform(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    target: (ResourceType, &str),
    fresh: bool,
    make: impl FnOnce(DateTime<Utc>) -> ResourceCommand,
    message: impl FnOnce(&WriteOutcome) -> String,
) -> Result<Response, WriteError> {
    let (resource_type, id) = target;
    let at = now();
    let context = commit_context(headers, Some(peer), &state.settings.proxies, at);
    let outcome = execute(
        &state.store,
        state.settings.write_limits(),
        &context,
        resource_type.as_str(),
        id,
        make(at),
        fresh,
    )
    .await?;
    cache_version(&state.cache, resource_type.as_str(), id, &outcome).await;
    let base = base_url(&state.settings.public_url, headers);
    let message = message(&outcome);
    Ok(write_response(
        outcome,
        resource_type.as_str(),
        id,
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
