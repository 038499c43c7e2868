//! The mistakes a read request can make in its path, decided once for every route: an unknown
//! resource type is 404 (`not-supported`) and an invalid id 400 (`value`), the same statuses
//! and codes the write side answers for the same mistakes. Handlers take [`TypePath`] or
//! [`InstancePath`] instead of parsing the path themselves; what is not a path (a search
//! parameter, a version) is decided by the module that understands it.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path};
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

/// The route's named segments.
async fn segments<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
) -> Result<HashMap<String, String>, FhirError> {
    Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map(|Path(segments)| segments)
        .map_err(|rejection| {
            FhirError::new(
                StatusCode::BAD_REQUEST,
                IssueCode::Invalid,
                rejection.body_text(),
            )
        })
}

fn segment<'a>(segments: &'a HashMap<String, String>, name: &str) -> &'a str {
    segments.get(name).map_or("", String::as_str)
}

impl<S: Send + Sync> FromRequestParts<S> for TypePath {
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, FhirError> {
        let segments = segments(parts, state).await?;
        Ok(TypePath(resource_type(segment(
            &segments,
            "resource_type",
        ))?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for InstancePath {
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, FhirError> {
        let segments = segments(parts, state).await?;
        Ok(InstancePath(
            resource_type(segment(&segments, "resource_type"))?,
            resource_id(segment(&segments, "id"))?,
        ))
    }
}
