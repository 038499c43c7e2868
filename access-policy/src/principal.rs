//! The bearer of a checked access token, as a service sees it.

use thiserror::Error;

use crate::claims::AccessClaims;
use crate::role::{Role, UnknownRole};
use crate::scope::{ScopeError, ScopeSet};

/// Who is asking: a signed-in user (with a role) or a backend service (a client alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's id, or the client id of a backend service.
    pub subject: String,
    /// `None` for a backend service.
    pub role: Option<Role>,
    pub fhir_user: Option<String>,
    pub name: Option<String>,
    pub client_id: String,
    pub scopes: ScopeSet,
    /// The patient in the launch context, which `patient/` scopes speak for.
    pub patient: Option<String>,
    pub session_id: String,
    pub token_id: String,
    /// When the token expires (seconds since the epoch).
    pub expires_at: i64,
}

/// A token whose signature checked out but whose claims make no sense.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PrincipalError {
    #[error(transparent)]
    Role(#[from] UnknownRole),
    #[error(transparent)]
    Scope(#[from] ScopeError),
}

impl Principal {
    pub fn from_claims(claims: AccessClaims) -> Result<Principal, PrincipalError> {
        Ok(Principal {
            role: claims.role.as_deref().map(str::parse).transpose()?,
            scopes: ScopeSet::parse(&claims.scope)?,
            subject: claims.sub,
            fhir_user: claims.fhir_user,
            name: claims.name,
            client_id: claims.client_id,
            patient: claims.patient,
            session_id: claims.sid,
            token_id: claims.jti,
            expires_at: claims.exp,
        })
    }

    /// Everyone, when a service runs with authorisation switched off (the baseline of the
    /// authorisation benchmark, never a default): a backend with `system/*.cruds`.
    pub fn unchecked() -> Principal {
        Principal {
            subject: "anonymous".to_owned(),
            role: None,
            fhir_user: None,
            name: None,
            client_id: "anonymous".to_owned(),
            scopes: ScopeSet::parse("system/*.cruds").unwrap_or_default(),
            patient: None,
            session_id: String::new(),
            token_id: String::new(),
            expires_at: i64::MAX,
        }
    }

    /// Whether this is a backend service rather than a person.
    pub fn is_service(&self) -> bool {
        self.role.is_none()
    }
}
