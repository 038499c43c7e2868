//! `POST /fhir/<Type>`: create with a server-assigned id; with `If-None-Exist`, only when no
//! resource matches the header's criteria.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use event_store::ResourceCommand;
use fhir_model::{ResourceId, ResourceType};
use serde_json::Value;
use uuid::Uuid;

use super::{check_body, perform, resource_type};
use crate::AppState;
use crate::error::WriteError;
use crate::request::{read_json, require_resource_media_type};
use crate::response::{base_url, write_response};
use crate::write::WriteOutcome;

pub(crate) async fn create(
    State(state): State<AppState>,
    Path(type_name): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WriteError> {
    let resource_type = resource_type(&type_name)?;
    require_resource_media_type(&headers)?;
    let condition = if_none_exist(&headers)?;
    let mut resource = read_json(body, &headers, state.settings.max_body_bytes).await?;
    // The server assigns the id of a created resource; one sent by the client is ignored.
    if let Some(object) = resource.as_object_mut() {
        object.shift_remove("id");
    }
    check_body(&resource, resource_type)?;
    let Some(criteria) = condition else {
        return create_new(&state, &headers, peer, resource_type, resource).await;
    };
    let (session, matched) = state
        .matcher
        .find(&state.store, resource_type, &criteria)
        .await?;
    let response = match matched.single()? {
        None => create_new(&state, &headers, peer, resource_type, resource).await,
        Some(id) => {
            let message = format!(
                "{resource_type}/{id} matches If-None-Exist ({}); nothing was created",
                matched.criteria
            );
            existing(&state, &headers, resource_type, id, &message).await
        }
    };
    session.release().await;
    response
}

/// Creates `resource` under a new id.
pub(crate) async fn create_new(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    resource_type: ResourceType,
    resource: Value,
) -> Result<Response, WriteError> {
    let id = ResourceId::from_uuid(Uuid::now_v7());
    perform(
        state,
        headers,
        peer,
        (resource_type, id.as_str()),
        true,
        |at| ResourceCommand::Create {
            id: id.to_string(),
            resource,
            at,
        },
        |_| "created".to_owned(),
    )
    .await
}

/// The answer to a conditional create that found its resource: 200 with the resource as it
/// stands, nothing written.
async fn existing(
    state: &AppState,
    headers: &HeaderMap,
    resource_type: ResourceType,
    id: &str,
    message: &str,
) -> Result<Response, WriteError> {
    let head = state
        .store
        .latest(resource_type.as_str(), id)
        .await?
        .ok_or(WriteError::Resource(event_store::ResourceError::NotFound))?;
    let base = base_url(&state.settings.public_url, headers);
    Ok(write_response(
        WriteOutcome::current(head),
        resource_type.as_str(),
        id,
        &base,
        headers,
        message,
    ))
}

/// The `If-None-Exist` header's criteria, if it was sent.
fn if_none_exist(headers: &HeaderMap) -> Result<Option<String>, WriteError> {
    let Some(value) = headers.get("if-none-exist") else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| WriteError::BadHeader {
        name: "If-None-Exist",
        problem: "it is not visible ASCII text".to_owned(),
    })?;
    if text.trim().is_empty() {
        return Err(WriteError::BadHeader {
            name: "If-None-Exist",
            problem: "it is empty; send search criteria such as identifier=system|value".to_owned(),
        });
    }
    Ok(Some(text.to_owned()))
}
