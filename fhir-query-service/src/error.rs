//! The mistakes a read request can make in its path, decided once for every route: an unknown
//! resource type is 404 (`not-supported`) and an invalid id 400 (`value`), the same statuses
//! and codes the write side answers for the same mistakes. Handlers take [`TypePath`] or
//! [`InstancePath`] instead of parsing the path themselves; what is not a path (a search
//! parameter, a version) is decided by the module that understands it.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::StatusCode;
use axum::http::request::Parts;
use fhir_model::{IssueCode, ResourceId, ResourceType};
use service_kit::fhir_response::FhirError;

/// A path that names no resource this server could hold.
#[derive(Debug)]
pub enum ReadError {
    UnknownType(String),
    InvalidId(String),
}

impl From<ReadError> for FhirError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::UnknownType(name) => FhirError::new(
                StatusCode::NOT_FOUND,
                IssueCode::NotSupported,
                format!("'{name}' is not a FHIR R4 resource type this server knows"),
            ),
            ReadError::InvalidId(message) => {
                FhirError::new(StatusCode::BAD_REQUEST, IssueCode::Value, message)
            }
        }
    }
}

/// The resource type `name` names.
pub fn resource_type(name: &str) -> Result<ResourceType, ReadError> {
    ResourceType::parse(name).map_err(|_| ReadError::UnknownType(name.to_owned()))
}

/// The id `text` is.
pub fn resource_id(text: &str) -> Result<ResourceId, ReadError> {
    ResourceId::parse(text).map_err(|error| ReadError::InvalidId(error.to_string()))
}

/// The route's `{resource_type}`, parsed.
pub struct TypePath(pub ResourceType);

/// The route's `{resource_type}/{id}`, parsed.
pub struct InstancePath(pub ResourceType, pub ResourceId);

/// The route's `{resource_type}/{id}` parsed, and its `{version}` as sent (vread decides what
/// a version that is not one means).
pub struct VersionPath(pub ResourceType, pub ResourceId, pub String);

/// The route's named segments, percent-decoded, read from the request's path beside the route
/// that matched it. Bytes that are not UTF-8 are replaced, so such a segment fails the type or
/// id rules below (404 or 400 like any other bad name) instead of being refused by the router
/// with a status of its own.
fn segments(parts: &Parts) -> Result<HashMap<String, String>, FhirError> {
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .ok_or_else(|| {
            FhirError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                IssueCode::Exception,
                "a path extractor ran outside a route",
            )
        })?
        .as_str();
    Ok(route
        .split('/')
        .zip(parts.uri.path().split('/'))
        .filter_map(|(template, raw)| {
            let name = template.strip_prefix('{')?.strip_suffix('}')?;
            let value = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
            Some((name.to_owned(), value.into_owned()))
        })
        .collect())
}

fn segment<'a>(segments: &'a HashMap<String, String>, name: &str) -> &'a str {
    segments.get(name).map_or("", String::as_str)
}

impl<S: Send + Sync> FromRequestParts<S> for TypePath {
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, FhirError> {
        let segments = segments(parts)?;
        Ok(TypePath(resource_type(segment(
            &segments,
            "resource_type",
        ))?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for InstancePath {
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, FhirError> {
        let segments = segments(parts)?;
        Ok(InstancePath(
            resource_type(segment(&segments, "resource_type"))?,
            resource_id(segment(&segments, "id"))?,
        ))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for VersionPath {
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, FhirError> {
        let segments = segments(parts)?;
        Ok(VersionPath(
            resource_type(segment(&segments, "resource_type"))?,
            resource_id(segment(&segments, "id"))?,
            segment(&segments, "version").to_owned(),
        ))
    }
}
