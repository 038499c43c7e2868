//! `DELETE /fhir/<Type>/<id>`: a logical delete, recorded as a new version; and
//! `DELETE /fhir/<Type>?...`, which deletes the one resource the criteria match (none: 200
//! saying nothing was deleted, as HAPI FHIR answers; several: 412, this server deletes one
//! resource at a time).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, RawQuery};
use axum::http::HeaderMap;
use axum::response::Response;

use super::{perform, required_criteria, resource_id, resource_type};
use service_kit::auth::Caller;

use crate::entry::{Entry, Method, Target};
use crate::error::WriteError;
use crate::request::if_match;
use crate::sandbox::Scoped;

pub(crate) async fn delete(
    Scoped(state): Scoped,
    Caller(principal): Caller,
    Path((type_name, id_text)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, WriteError> {
    let target = Target::Instance(resource_type(&type_name)?, resource_id(&id_text)?);
    let entry = Entry {
        if_match: if_match(&headers)?,
        ..Entry::request(Method::Delete, target)
    };
    perform(&state, &principal, &headers, peer, entry).await
}

pub(crate) async fn conditional_delete(
    Scoped(state): Scoped,
    Caller(principal): Caller,
    Path(type_name): Path<String>,
    RawQuery(query): RawQuery,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, WriteError> {
    let resource_type = resource_type(&type_name)?;
    let target = Target::Criteria(resource_type, required_criteria(query, "a delete")?);
    let entry = Entry {
        if_match: if_match(&headers)?,
        ..Entry::request(Method::Delete, target)
    };
    perform(&state, &principal, &headers, peer, entry).await
}
