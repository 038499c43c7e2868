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
    /// The teaching classes the user belongs to (the token's `classes`), whose sandboxes a
    /// student may write in; empty for a backend service and a user in no class.
    pub classes: Vec<String>,
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
            classes: claims.classes,
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
            classes: Vec::new(),
        }
    }

    /// Whether this is a backend service rather than a person.
    pub fn is_service(&self) -> bool {
        self.role.is_none()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn claims(classes: &[&str]) -> AccessClaims {
        AccessClaims {
            iss: "https://identity.test/auth".to_owned(),
            sub: "student".to_owned(),
            aud: "https://localhost:8443/fhir".to_owned(),
            exp: 2_000_000_000,
            iat: 1_999_999_100,
            nbf: 1_999_999_100,
            jti: "jti".to_owned(),
            client_id: "wardline-web".to_owned(),
            scope: "user/*.cruds openid".to_owned(),
            sid: "sid".to_owned(),
            role: Some("student".to_owned()),
            fhir_user: Some("Practitioner/demo-student".to_owned()),
            patient: None,
            name: None,
            classes: classes.iter().map(|&class| class.to_owned()).collect(),
        }
    }

    #[test]
    fn the_principal_carries_the_tokens_classes() {
        let principal = Principal::from_claims(claims(&["demo", "ward-7"])).unwrap();
        assert_eq!(principal.classes, ["demo", "ward-7"]);
        assert_eq!(principal.role, Some(Role::Student));
        assert!(
            Principal::from_claims(claims(&[]))
                .unwrap()
                .classes
                .is_empty()
        );
        assert!(Principal::unchecked().classes.is_empty());
    }

    #[test]
    fn classes_are_optional_in_a_token() {
        let mut json = serde_json::to_value(claims(&[])).unwrap();
        assert!(json.get("classes").is_none(), "an empty list is left out");
        json["classes"] = serde_json::json!(["demo"]);
        let decoded: AccessClaims = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(decoded.classes, ["demo"]);
        json.as_object_mut().unwrap().remove("classes");
        let older: AccessClaims = serde_json::from_value(json).unwrap();
        assert!(older.classes.is_empty(), "a token from before the claim");
    }
}
