//! `PUT /fhir/<Type>/<id>`: update, or create with the client's id; and `PUT /fhir/<Type>?...`,
//! the conditional form, which updates the one resource the criteria match (the rules of both
//! are the planner's).

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery};
use axum::http::HeaderMap;
use axum::response::Response;

use super::{perform, required_criteria, resource_id, resource_type};
use service_kit::auth::Caller;

use crate::AppState;
use crate::entry::{Entry, Method, Target};
use crate::error::WriteError;
use crate::request::{if_match, read_json, require_resource_media_type};
use crate::sandbox::Scoped;

pub(crate) async fn update(
    Scoped(state): Scoped,
    Caller(principal): Caller,
    Path((type_name, id_text)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WriteError> {
    let target = Target::Instance(resource_type(&type_name)?, resource_id(&id_text)?);
    let entry = read_update(&state, &headers, body, target).await?;
    perform(&state, &principal, &headers, peer, entry).await
}

pub(crate) async fn conditional_update(
    Scoped(state): Scoped,
    Caller(principal): Caller,
    Path(type_name): Path<String>,
    RawQuery(query): RawQuery,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WriteError> {
    let resource_type = resource_type(&type_name)?;
    let target = Target::Criteria(resource_type, required_criteria(query, "an update")?);
    let entry = read_update(&state, &headers, body, target).await?;
    perform(&state, &principal, &headers, peer, entry).await
}

/// The entry of an update request: its resource and `If-Match`.
async fn read_update(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    target: Target,
) -> Result<Entry, WriteError> {
    require_resource_media_type(headers)?;
    let if_match = if_match(headers)?;
    let resource = read_json(body, headers, state.settings.max_body_bytes).await?;
    Ok(Entry {
        body: Some(resource),
        if_match,
        ..Entry::request(Method::Put, target)
    })
}
