//! The payload of a Wardline access token (a JWT signed by the identity service with ES256).
//! This struct is the contract: the identity service serialises it, the services deserialise
//! and check it, so the two can never disagree on a claim's name.

use serde::{Deserialize, Serialize};

/// What an access token asserts. Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The identity service's issuer URL.
    pub iss: String,
    /// The user's id (`nurse`), or the client id for a backend service's token.
    pub sub: String,
    /// The FHIR base the token is for.
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    /// This token's id.
    pub jti: String,
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// The granted scopes, space-separated, as in the token response.
    pub scope: String,
    /// The session (sign-in or client grant) the token belongs to: `session:<sid>` in Redis
    /// exists for as long as the session is alive, so signing out or revoking it ends every
    /// token of the session on every instance.
    pub sid: String,
    /// The user's role (`nurse`); absent on a backend service's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The user's FHIR resource (`Practitioner/<id>`), as SMART's `fhirUser`.
    #[serde(rename = "fhirUser", default, skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    /// The patient in context (SMART `launch/patient`), when the grant chose one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// The user's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The teaching classes the user belongs to (`demo`): a student writes only inside the
    /// sandboxes of these classes. Absent (empty) on a backend service's token, for a user in
    /// no class, and on tokens issued before the claim existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
}
