//! `DELETE /fhir/<Type>/<id>`: a logical delete, recorded as a new version; and
//! `DELETE /fhir/<Type>?...`, which deletes the one resource the criteria match.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use event_store::ResourceCommand;
use fhir_model::{OperationOutcome, OutcomeIssue, ResourceType};
use service_kit::fhir_response::fhir_json;

use super::{perform, required_criteria, resource_id, resource_type};
use crate::AppState;
use crate::error::WriteError;
use crate::request::if_match;

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path((type_name, id_text)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, WriteError> {
    let resource_type = resource_type(&type_name)?;
    let id = resource_id(&id_text)?;
    apply(&state, &headers, peer, resource_type, id.as_str()).await
}

/// `DELETE /fhir/<Type>?criteria`. No match: 200 saying nothing was deleted (as HAPI FHIR
/// answers). One: it is deleted. Several: 412 (this server deletes one resource at a time).
pub(crate) async fn conditional_delete(
    State(state): State<AppState>,
    Path(type_name): Path<String>,
    RawQuery(query): RawQuery,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, WriteError> {
    let resource_type = resource_type(&type_name)?;
    let criteria = required_criteria(query, "a delete")?;
    if_match(&headers)?;
    let (session, matched) = state
        .matcher
        .find(&state.store, resource_type, &criteria)
        .await?;
    let response = match matched.single()? {
        Some(id) => apply(&state, &headers, peer, resource_type, id).await,
        None => Ok(fhir_json(
            StatusCode::OK,
            OperationOutcome::single(OutcomeIssue::information(format!(
                "no resource matches {}; nothing was deleted",
                matched.criteria
            )))
            .to_json()
            .to_string(),
        )),
    };
    session.release().await;
    response
}

async fn apply(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    resource_type: ResourceType,
    id: &str,
) -> Result<Response, WriteError> {
    let expected_version = if_match(headers)?;
    perform(
        state,
        headers,
        peer,
        (resource_type, id),
        false,
        |at| ResourceCommand::Delete {
            if_match: expected_version,
            at,
        },
        |outcome| {
            if outcome.recorded {
                format!("deleted {resource_type}/{id} (version {})", outcome.version)
            } else {
                format!("{resource_type}/{id} was already deleted; nothing changed")
            }
        },
    )
    .await
}
