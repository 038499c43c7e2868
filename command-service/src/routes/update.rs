//! `PUT /fhir/<Type>/<id>`: update, or create with the client's id; and `PUT /fhir/<Type>?...`,
//! the conditional form, which updates the one resource the criteria match.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use event_store::ResourceCommand;
use fhir_model::{ResourceId, ResourceType};
use serde_json::Value;
use uuid::Uuid;

use super::{check_body, perform, required_criteria, resource_id, resource_type};
use crate::AppState;
use crate::error::WriteError;
use crate::request::{if_match, read_json, require_resource_media_type};

pub(crate) async fn update(
    State(state): State<AppState>,
    Path((type_name, id_text)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WriteError> {
    let resource_type = resource_type(&type_name)?;
    let id = resource_id(&id_text)?;
    require_resource_media_type(&headers)?;
    let expected_version = if_match(&headers)?;
    let resource = read_json(body, &headers, state.settings.max_body_bytes).await?;
    match body_id(&resource)? {
        Some(body_id) if body_id == id.as_str() => {}
        Some(body_id) => {
            return Err(WriteError::Rule(format!(
                "the body's id '{body_id}' does not match the id in the URL '{id}'"
            )));
        }
        None => {
            return Err(WriteError::Rule(
                "an update must carry the resource's id, equal to the id in the URL".to_owned(),
            ));
        }
    }
    check_body(&resource, resource_type)?;
    apply(
        &state,
        &headers,
        peer,
        resource_type,
        id.as_str(),
        resource,
        expected_version,
    )
    .await
}

/// `PUT /fhir/<Type>?criteria`. No match: the resource is created, under the body's id if it
/// has one (update as create) or a new one. One match: it is updated; a body id naming another
/// resource is refused. Several: 412.
pub(crate) async fn conditional_update(
    State(state): State<AppState>,
    Path(type_name): Path<String>,
    RawQuery(query): RawQuery,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WriteError> {
    let resource_type = resource_type(&type_name)?;
    let criteria = required_criteria(query, "an update")?;
    require_resource_media_type(&headers)?;
    let expected_version = if_match(&headers)?;
    let mut resource = read_json(body, &headers, state.settings.max_body_bytes).await?;
    let body_id = body_id(&resource)?.map(str::to_owned);
    check_body(&resource, resource_type)?;
    let (session, matched) = state
        .matcher
        .find(&state.store, resource_type, &criteria)
        .await?;
    let target = match (matched.single()?, body_id) {
        (Some(found), Some(body_id)) if found != body_id => {
            return Err(WriteError::Rule(format!(
                "the body's id '{body_id}' is not the id of the resource {} matches ({resource_type}/{found})",
                matched.criteria
            )));
        }
        (Some(found), _) => found.to_owned(),
        (None, Some(body_id)) => {
            let existing = state.store.latest(resource_type.as_str(), &body_id).await?;
            if existing.is_some_and(|head| !head.is_delete()) {
                return Err(WriteError::Rule(format!(
                    "{resource_type}/{body_id} exists but does not match {}; update it by id, or fix the criteria",
                    matched.criteria
                )));
            }
            body_id
        }
        (None, None) => ResourceId::from_uuid(Uuid::now_v7()).to_string(),
    };
    if let Some(object) = resource.as_object_mut() {
        object.insert("id".to_owned(), Value::String(target.clone()));
    }
    let response = apply(
        &state,
        &headers,
        peer,
        resource_type,
        &target,
        resource,
        expected_version,
    )
    .await;
    session.release().await;
    response
}

/// Updates (or creates) `resource_type/id` with `resource`, whose id is already `id`.
async fn apply(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    resource_type: ResourceType,
    id: &str,
    resource: Value,
    expected_version: Option<u32>,
) -> Result<Response, WriteError> {
    perform(
        state,
        headers,
        peer,
        (resource_type, id),
        false,
        |at| ResourceCommand::Update {
            id: id.to_owned(),
            resource,
            if_match: expected_version,
            at,
        },
        |outcome| {
            if outcome.recorded {
                "updated".to_owned()
            } else {
                "no change: the content equals the current version".to_owned()
            }
        },
    )
    .await
}

/// The body's `id`, checked to be a valid one.
fn body_id(resource: &Value) -> Result<Option<&str>, WriteError> {
    match resource.get("id") {
        None => Ok(None),
        Some(Value::String(id)) => resource_id(id).map(|_| Some(id.as_str())),
        Some(_) => Err(WriteError::Rule(
            "the body's id must be a string".to_owned(),
        )),
    }
}
