//! `POST /fhir/<Type>`: create with a server-assigned id.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use event_store::ResourceCommand;
use fhir_model::ResourceId;
use uuid::Uuid;

use super::{check_body, resource_type};
use crate::AppState;
use crate::error::WriteError;
use crate::request::{commit_context, now, read_json, require_resource_media_type};
use crate::response::{base_url, write_response};
use crate::write::{cache_version, execute};

pub(crate) async fn create(
    State(state): State<AppState>,
    Path(type_name): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WriteError> {
    let resource_type = resource_type(&type_name)?;
    if headers.contains_key("if-none-exist") {
        return Err(WriteError::ConditionalNotImplemented(
            "conditional create (If-None-Exist)",
        ));
    }
    require_resource_media_type(&headers)?;
    let mut resource = read_json(body, &headers, state.settings.max_body_bytes).await?;
    // The server assigns the id of a created resource; one sent by the client is ignored.
    if let Some(object) = resource.as_object_mut() {
        object.shift_remove("id");
    }
    check_body(&resource, resource_type)?;

    let id = ResourceId::from_uuid(Uuid::now_v7());
    let at = now();
    let context = commit_context(&headers, Some(peer), at);
    let command = ResourceCommand::Create {
        id: id.to_string(),
        resource,
        at,
    };
    let outcome = execute(
        &state.store,
        &context,
        resource_type.as_str(),
        id.as_str(),
        command,
        true,
    )
    .await?;
    cache_version(&state.cache, resource_type.as_str(), id.as_str(), &outcome).await;
    let base = base_url(state.settings.fhir_base_url.as_deref(), &headers);
    Ok(write_response(
        outcome,
        resource_type.as_str(),
        id.as_str(),
        &base,
        &headers,
        "created",
    ))
}
