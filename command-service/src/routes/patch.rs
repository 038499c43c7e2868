//! `PATCH /fhir/<Type>/<id>` with a JSON Patch (RFC 6902) document.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use event_store::ResourceCommand;

use super::{resource_id, resource_type};
use crate::AppState;
use crate::error::WriteError;
use crate::request::{commit_context, if_match, now, read_json, require_patch_media_type};
use crate::response::{base_url, write_response};
use crate::write::{cache_version, execute};

pub(crate) async fn patch(
    State(state): State<AppState>,
    Path((type_name, id_text)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WriteError> {
    let resource_type = resource_type(&type_name)?;
    let id = resource_id(&id_text)?;
    require_patch_media_type(&headers)?;
    let expected_version = if_match(&headers)?;
    let patch = read_json(body, &headers, state.settings.max_body_bytes).await?;
    if let Err(error) = serde_json::from_value::<json_patch::Patch>(patch.clone()) {
        return Err(WriteError::Rule(format!(
            "the body is not a JSON Patch document: {error}"
        )));
    }

    let at = now();
    let context = commit_context(&headers, Some(peer), at);
    let command = ResourceCommand::Patch {
        patch,
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
        "patched"
    } else {
        "no change: the patch leaves the resource as it was"
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

/// `PATCH /fhir/<Type>?criteria`: needs search to find the match.
pub(crate) async fn conditional_patch(
    Path(type_name): Path<String>,
) -> Result<Response, WriteError> {
    resource_type(&type_name)?;
    Err(WriteError::ConditionalNotImplemented(
        "conditional patch (PATCH with search criteria)",
    ))
}
