//! `DELETE /fhir/<Type>/<id>`: a logical delete, recorded as a new version.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use event_store::ResourceCommand;

use super::{resource_id, resource_type};
use crate::AppState;
use crate::error::WriteError;
use crate::request::{commit_context, if_match, now};
use crate::response::{base_url, write_response};
use crate::write::{cache_version, execute};

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path((type_name, id_text)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, WriteError> {
    let resource_type = resource_type(&type_name)?;
    let id = resource_id(&id_text)?;
    let expected_version = if_match(&headers)?;
    let at = now();
    let context = commit_context(&headers, Some(peer), at);
    let command = ResourceCommand::Delete {
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
        format!("deleted {resource_type}/{id} (version {})", outcome.version)
    } else {
        format!("{resource_type}/{id} was already deleted; nothing changed")
    };
    Ok(write_response(
        outcome,
        resource_type.as_str(),
        id.as_str(),
        &base,
        &headers,
        &message,
    ))
}

/// `DELETE /fhir/<Type>?criteria`: needs search to find the matches.
pub(crate) async fn conditional_delete(
    Path(type_name): Path<String>,
) -> Result<Response, WriteError> {
    resource_type(&type_name)?;
    Err(WriteError::ConditionalNotImplemented(
        "conditional delete (DELETE with search criteria)",
    ))
}
