//! Every way a write can fail, and the one mapping from each to a status and an
//! `OperationOutcome`. Nothing is written when any of these is returned.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use event_store::{ResourceError, StoreError};
use fhir_model::{IssueCode, OutcomeIssue};
use service_kit::fhir_response::FhirError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum WriteError {
    #[error("'{0}' is not a FHIR R4 resource type this server knows")]
    UnknownType(String),
    #[error("{0}")]
    InvalidId(String),
    #[error("content type {found:?} is not supported here; send {expected}")]
    UnsupportedMediaType {
        found: Option<String>,
        expected: &'static str,
    },
    #[error("the request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the resource would take {size} bytes; the limit is {limit} bytes")]
    ResourceTooLarge { size: usize, limit: usize },
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the resource is not valid")]
    Invalid(Vec<OutcomeIssue>),
    #[error("{0}")]
    Rule(String),
    #[error("header {name}: {problem}")]
    BadHeader { name: &'static str, problem: String },
    /// The search criteria of a conditional write cannot be used.
    #[error("conditional write: {0}")]
    Criteria(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("no resource matches {0}")]
    NoMatch(String),
    #[error("the criteria {0} match more than one resource; make them more selective")]
    MultipleMatches(String),
    /// The search indexes did not reach the store's head within the bound.
    #[error("conditional write: {0}")]
    IndexBehind(String),
    /// Matching the criteria of a conditional write took longer than its bound.
    #[error(
        "conditional write: matching {0} took longer than {1} ms; make the criteria more selective or try again"
    )]
    MatchTimeout(String, u64),
    #[error("{0} is not implemented yet")]
    NotImplemented(&'static str),
    #[error(transparent)]
    Resource(#[from] ResourceError),
    #[error("the resource kept changing under this write; try again")]
    Contended,
    #[error(transparent)]
    Store(StoreError),
    /// The policy refused the caller this interaction.
    #[error(transparent)]
    Forbidden(access_policy::Denied),
    /// The policy allowed the interaction, but not on this resource.
    #[error("{0}")]
    NotPermitted(String),
}

/// Why a transaction failed: the error, and the entry (its index in the Bundle) it is about,
/// when one entry is to blame.
#[derive(Debug)]
pub struct EntryError {
    pub index: Option<usize>,
    pub error: WriteError,
}

impl EntryError {
    /// Blames entry `index` for an error.
    pub fn at<E: Into<WriteError>>(index: usize) -> impl Fn(E) -> EntryError {
        move |error| EntryError {
            index: Some(index),
            error: error.into(),
        }
    }

    /// An error no one entry is to blame for.
    pub fn any(error: impl Into<WriteError>) -> EntryError {
        EntryError {
            index: None,
            error: error.into(),
        }
    }
}

impl From<StoreError> for WriteError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { .. } => WriteError::Contended,
            other => WriteError::Store(other),
        }
    }
}

impl From<WriteError> for FhirError {
    fn from(error: WriteError) -> Self {
        use StatusCode as S;
        let message = error.to_string();
        match error {
            WriteError::UnknownType(_) => {
                FhirError::new(S::NOT_FOUND, IssueCode::NotSupported, message)
            }
            WriteError::Forbidden(denied) => service_kit::auth::forbidden(&denied),
            WriteError::NotPermitted(_) => {
                FhirError::new(S::FORBIDDEN, IssueCode::Forbidden, message)
            }
            WriteError::InvalidId(_) => FhirError::new(S::BAD_REQUEST, IssueCode::Value, message),
            WriteError::UnsupportedMediaType { .. } => {
                FhirError::new(S::UNSUPPORTED_MEDIA_TYPE, IssueCode::NotSupported, message)
            }
            WriteError::TooLarge { .. } | WriteError::ResourceTooLarge { .. } => {
                FhirError::new(S::PAYLOAD_TOO_LARGE, IssueCode::TooLong, message)
            }
            WriteError::MalformedJson(_) => {
                FhirError::new(S::BAD_REQUEST, IssueCode::Structure, message)
            }
            WriteError::Invalid(issues) => FhirError::with_issues(S::BAD_REQUEST, issues),
            WriteError::Rule(_) => FhirError::new(S::BAD_REQUEST, IssueCode::Invalid, message),
            WriteError::BadHeader { .. } => {
                FhirError::new(S::BAD_REQUEST, IssueCode::Value, message)
            }
            WriteError::Criteria(_) => FhirError::new(S::BAD_REQUEST, IssueCode::Invalid, message),
            WriteError::PreconditionFailed(_) => {
                FhirError::new(S::PRECONDITION_FAILED, IssueCode::Conflict, message)
            }
            WriteError::NoMatch(_) => FhirError::new(S::NOT_FOUND, IssueCode::NotFound, message),
            WriteError::MultipleMatches(_) => {
                FhirError::new(S::PRECONDITION_FAILED, IssueCode::MultipleMatches, message)
            }
            WriteError::IndexBehind(_) => {
                FhirError::new(S::SERVICE_UNAVAILABLE, IssueCode::Transient, message)
            }
            WriteError::MatchTimeout(..) => {
                FhirError::new(S::SERVICE_UNAVAILABLE, IssueCode::Timeout, message)
            }
            WriteError::NotImplemented(_) => {
                FhirError::new(S::NOT_IMPLEMENTED, IssueCode::NotSupported, message)
            }
            WriteError::Resource(ResourceError::AlreadyExists) => {
                FhirError::new(S::CONFLICT, IssueCode::Duplicate, message)
            }
            WriteError::Resource(ResourceError::NotFound) => {
                FhirError::new(S::NOT_FOUND, IssueCode::NotFound, message)
            }
            WriteError::Resource(ResourceError::Gone { .. }) => {
                FhirError::new(S::GONE, IssueCode::Deleted, message)
            }
            WriteError::Resource(ResourceError::VersionConflict { .. }) => {
                FhirError::new(S::PRECONDITION_FAILED, IssueCode::Conflict, message)
            }
            WriteError::Resource(
                ResourceError::PatchFailed(_) | ResourceError::PatchChangesIdentity(_),
            ) => FhirError::new(S::UNPROCESSABLE_ENTITY, IssueCode::Processing, message),
            WriteError::Resource(ResourceError::PatchTooCostly(_)) => {
                FhirError::new(S::PAYLOAD_TOO_LARGE, IssueCode::TooCostly, message)
            }
            WriteError::Resource(ResourceError::Invalid(issues)) => {
                FhirError::with_issues(S::UNPROCESSABLE_ENTITY, issues)
            }
            WriteError::Contended => FhirError::new(S::CONFLICT, IssueCode::Conflict, message),
            WriteError::Store(store) => FhirError::internal(store),
        }
    }
}

impl IntoResponse for WriteError {
    fn into_response(self) -> Response {
        FhirError::from(self).into_response()
    }
}
