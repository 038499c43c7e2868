//! `POST /fhir/<Type>`: create with a server-assigned id; with `If-None-Exist`, only when no
//! resource matches the header's criteria.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path};
use axum::http::HeaderMap;
use axum::response::Response;

use super::{perform, resource_type};
use service_kit::auth::Caller;

use crate::entry::{Entry, Method, Target};
use crate::error::WriteError;
use crate::request::{read_json, require_resource_media_type};
use crate::sandbox::Scoped;

pub(crate) async fn create(
    Scoped(state): Scoped,
    Caller(principal): Caller,
    Path(type_name): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WriteError> {
    let resource_type = resource_type(&type_name)?;
    require_resource_media_type(&headers)?;
    let if_none_exist = if_none_exist(&headers)?;
    let resource = read_json(body, &headers, state.settings.max_body_bytes).await?;
    let entry = Entry {
        body: Some(resource),
        if_none_exist,
        ..Entry::request(Method::Post, Target::Type(resource_type))
    };
    perform(&state, &principal, &headers, peer, entry).await
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
