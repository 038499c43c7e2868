//! `PUT /fhir/<Type>/<id>`: update, or create with the client's id; and the conditional form.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use event_store::ResourceCommand;

use super::{check_body, resource_id, resource_type};
use crate::AppState;
use crate::error::WriteError;
use crate::request::{commit_context, if_match, now, read_json, require_resource_media_type};
use crate::response::{base_url, write_response};
use crate::write::{cache_version, execute};

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
    match resource.get("id").and_then(|value| value.as_str()) {
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

    let at = now();
    let context = commit_context(&headers, Some(peer), at);
    let command = ResourceCommand::Update {
        id: id.to_string(),
        resource,
        if_match: expected_version,
        at,
    };
    let outcome = execute(
        &state.store,
        &context,
        resource_type.as_str(),
        id.as_str(),
        command,
        false,
    )
    .await?;
    cache_version(&state.cache, resource_type.as_str(), id.as_str(), &outcome).await;
    let base = base_url(state.settings.fhir_base_url.as_deref(), &headers);
    let message = if outcome.recorded {
        "updated"
    } else {
        "no change: the content equals the current version"
    };
    Ok(write_response(
        outcome,
        resource_type.as_str(),
        id.as_str(),
        &base,
        &headers,
        message,
    ))
}

/// `PUT /fhir/<Type>?criteria`: needs search to find the match.
pub(crate) async fn conditional_update(
    Path(type_name): Path<String>,
    Query(criteria): Query<HashMap<String, String>>,
) -> Result<Response, WriteError> {
    resource_type(&type_name)?;
    if criteria.is_empty() {
        return Err(WriteError::Rule(
            "an update needs an id in the URL (PUT /<Type>/<id>) or search criteria (PUT /<Type>?...)".to_owned(),
        ));
    }
    Err(WriteError::ConditionalNotImplemented(
        "conditional update (PUT with search criteria)",
    ))
}
