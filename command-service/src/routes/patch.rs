//! `PATCH /fhir/<Type>/<id>` with a JSON Patch (RFC 6902) document; and `PATCH /fhir/<Type>?...`,
//! which patches the one resource the criteria match (none: 404; several: 412).

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use event_store::ResourceCommand;
use fhir_model::ResourceType;
use serde_json::Value;

use super::{perform, required_criteria, resource_id, resource_type};
use crate::AppState;
use crate::error::WriteError;
use crate::request::{if_match, read_json, require_patch_media_type};

pub(crate) async fn patch(
    State(state): State<AppState>,
    Path((type_name, id_text)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WriteError> {
    let resource_type = resource_type(&type_name)?;
    let id = resource_id(&id_text)?;
    let patch = read_patch(&state, &headers, body).await?;
    apply(&state, &headers, peer, resource_type, id.as_str(), patch).await
}

pub(crate) async fn conditional_patch(
    State(state): State<AppState>,
    Path(type_name): Path<String>,
    RawQuery(query): RawQuery,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WriteError> {
    let resource_type = resource_type(&type_name)?;
    let criteria = required_criteria(query, "a patch")?;
    let patch = read_patch(&state, &headers, body).await?;
    let (session, matched) = state
        .matcher
        .find(&state.store, resource_type, &criteria)
        .await?;
    let response = match matched.single()? {
        Some(id) => apply(&state, &headers, peer, resource_type, id, patch).await,
        None => Err(WriteError::NoMatch(matched.criteria.clone())),
    };
    session.release().await;
    response
}

/// The request's JSON Patch document, checked to be one (and `If-Match`, if sent, to be valid).
async fn read_patch(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Value, WriteError> {
    require_patch_media_type(headers)?;
    if_match(headers)?;
    let patch = read_json(body, headers, state.settings.max_body_bytes).await?;
    if let Err(error) = serde_json::from_value::<json_patch::Patch>(patch.clone()) {
        return Err(WriteError::Rule(format!(
            "the body is not a JSON Patch document: {error}"
        )));
    }
    Ok(patch)
}

async fn apply(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    resource_type: ResourceType,
    id: &str,
    patch: Value,
) -> Result<Response, WriteError> {
    let expected_version = if_match(headers)?;
    perform(
        state,
        headers,
        peer,
        (resource_type, id),
        false,
        |at| ResourceCommand::Patch {
            patch,
            if_match: expected_version,
            at,
        },
        |outcome| {
            if outcome.recorded {
                "patched".to_owned()
            } else {
                "no change: the patch leaves the resource as it was".to_owned()
            }
        },
    )
    .await
}
