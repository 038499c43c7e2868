//! The tokens the app holds, and what it reads from them: the token endpoint's answer, who is
//! signed in (from the access token's claims), and when to refresh.
//!
//! The access token is a JWT whose payload is the identity service's claims (`sub`, `name`,
//! `role`, `fhirUser`, ...). The app reads them to show who is signed in; it does not check the
//! signature, because it trusts nothing on the strength of it: every FHIR server checks the
//! token on every request. The ID token's `nonce` is checked against the sign-in that asked
//! for it, so that a token response meant for another sign-in is not taken.
//!
//! Times are the browser's milliseconds (`Date.now()`); the lifetime is taken from
//! `expires_in`, relative, so a browser clock that is off does not matter.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The token endpoint's answer (RFC 6749 5.1), as much of it as the app uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// Seconds the access token lives.
    pub expires_in: i64,
    #[serde(default)]
    pub id_token: Option<String>,
}

impl TokenResponse {
    pub fn parse(json: &str) -> Option<TokenResponse> {
        serde_json::from_str(json).ok()
    }
}

/// An OAuth error answer (RFC 6749 5.2).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OAuthError {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
}

impl OAuthError {
    pub fn parse(json: &str) -> Option<OAuthError> {
        serde_json::from_str(json).ok()
    }

    /// Whether the session is gone for good (signed out, revoked, expired, or no cookie),
    /// rather than the server being unreachable for a while.
    pub fn session_ended(&self) -> bool {
        matches!(self.error.as_str(), "invalid_grant" | "invalid_request")
    }
}

/// The access token's claims the app reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Claims {
    /// The user name.
    pub sub: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(rename = "fhirUser", default)]
    pub fhir_user: Option<String>,
    /// The teaching classes the user belongs to: a student opens their sandboxes.
    #[serde(default)]
    pub classes: Vec<String>,
}

/// The payload of a JWT (`header.payload.signature`), unverified.
fn payload<T: DeserializeOwned>(jwt: &str) -> Option<T> {
    let mut parts = jwt.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl Claims {
    pub fn from_jwt(jwt: &str) -> Option<Claims> {
        payload(jwt)
    }
}

/// Whether the ID token was issued for the sign-in that sent `nonce`.
pub fn id_token_matches(id_token: &str, nonce: &str) -> bool {
    #[derive(Deserialize)]
    struct IdClaims {
        nonce: Option<String>,
    }
    payload::<IdClaims>(id_token).is_some_and(|claims| claims.nonce.as_deref() == Some(nonce))
}

/// Who is signed in, as the top bar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub username: String,
    /// The display name, or the user name when the account has none.
    pub name: String,
    pub role: Option<String>,
    pub classes: Vec<String>,
}

impl User {
    pub fn from_claims(claims: &Claims) -> User {
        User {
            username: claims.sub.clone(),
            name: claims
                .name
                .clone()
                .filter(|name| !name.trim().is_empty())
                .unwrap_or_else(|| claims.sub.clone()),
            role: claims.role.clone(),
            classes: claims.classes.clone(),
        }
    }

    /// Whether the user manages teaching (scenarios, sandboxes, plays): instructors and
    /// admins, as the server's policy has it.
    pub fn teaches(&self) -> bool {
        matches!(self.role.as_deref(), Some("instructor" | "admin"))
    }

    /// Whether the user is a student (who sees only their classes' sandboxes).
    pub fn is_student(&self) -> bool {
        self.role.as_deref() == Some("student")
    }
}

/// How long before the access token expires it is refreshed: a tenth of its lifetime, at
/// least 5 s (time for the request) and at most a minute.
pub fn refresh_margin_ms(lifetime_ms: f64) -> f64 {
    (lifetime_ms / 10.0).clamp(5_000.0, 60_000.0)
}

/// The access token in memory, and when it stops being worth using.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessToken {
    pub token: String,
    pub user: User,
    /// When it expires (ms).
    pub expires_at: f64,
    /// When to refresh it (ms): shortly before it expires.
    pub refresh_at: f64,
}

impl AccessToken {
    /// The access token of `response`, received at `now` (ms); `None` if it is not a JWT the
    /// app can read.
    pub fn new(response: &TokenResponse, now: f64) -> Option<AccessToken> {
        let claims = Claims::from_jwt(&response.access_token)?;
        let lifetime = (response.expires_in.max(0) as f64) * 1000.0;
        Some(AccessToken {
            token: response.access_token.clone(),
            user: User::from_claims(&claims),
            expires_at: now + lifetime,
            refresh_at: now + (lifetime - refresh_margin_ms(lifetime)).max(0.0),
        })
    }

    /// Milliseconds from `now` until it should be refreshed (0 when it is time already).
    pub fn refresh_in_ms(&self, now: f64) -> u32 {
        (self.refresh_at - now).clamp(0.0, f64::from(u32::MAX)) as u32
    }

    /// Whether it is still good at `now`, and not about to expire: what a new WebSocket
    /// (which the notifier closes when its token expires) should open with.
    pub fn is_fresh(&self, now: f64) -> bool {
        now < self.refresh_at
    }

    /// Whether it has expired at `now`.
    pub fn is_expired(&self, now: f64) -> bool {
        now >= self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An unsigned JWT with `claims` (the app never checks signatures).
    fn jwt(claims: serde_json::Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{header}.{payload}.c2lnbmF0dXJl")
    }

    fn response(claims: serde_json::Value, expires_in: i64) -> TokenResponse {
        TokenResponse {
            access_token: jwt(claims),
            expires_in,
            id_token: None,
        }
    }

    #[test]
    fn the_token_response_parses_without_a_refresh_token() {
        let parsed = TokenResponse::parse(
            r#"{"access_token":"a.b.c","token_type":"Bearer","expires_in":900,
                "scope":"openid","id_token":"i.d.t"}"#,
        )
        .unwrap();
        assert_eq!(parsed.expires_in, 900);
        assert_eq!(parsed.id_token.as_deref(), Some("i.d.t"));
        assert_eq!(TokenResponse::parse(r#"{"error":"invalid_grant"}"#), None);
    }

    #[test]
    fn who_is_signed_in_comes_from_the_access_tokens_claims() {
        let token = jwt(json!({
            "iss": "https://localhost:8443/auth", "sub": "nurse", "name": "Demo Nurse",
            "role": "nurse", "fhirUser": "Practitioner/demo-nurse", "exp": 1, "scope": "user/*.cruds"
        }));
        let claims = Claims::from_jwt(&token).unwrap();
        assert_eq!(claims.fhir_user.as_deref(), Some("Practitioner/demo-nurse"));
        assert_eq!(
            User::from_claims(&claims),
            User {
                username: "nurse".into(),
                name: "Demo Nurse".into(),
                role: Some("nurse".into()),
                classes: Vec::new(),
            }
        );
        let student = jwt(json!({"sub": "student", "role": "student", "classes": ["demo"]}));
        let student = User::from_claims(&Claims::from_jwt(&student).unwrap());
        assert_eq!(student.classes, ["demo"]);
        assert!(student.is_student() && !student.teaches());
        let instructor = jwt(json!({"sub": "instructor", "role": "instructor"}));
        assert!(User::from_claims(&Claims::from_jwt(&instructor).unwrap()).teaches());
        let nameless = Claims::from_jwt(&jwt(json!({"sub": "rsmith"}))).unwrap();
        let user = User::from_claims(&nameless);
        assert_eq!((user.name.as_str(), user.role), ("rsmith", None));
    }

    #[test]
    fn what_is_not_a_jwt_has_no_claims() {
        for token in [
            "",
            "opaque",
            "a.b",
            "a.b.c.d",
            "e30.!!!.x",
            &format!("e30.{}.x", URL_SAFE_NO_PAD.encode("[1]")),
        ] {
            assert_eq!(Claims::from_jwt(token), None, "{token}");
        }
        assert_eq!(
            AccessToken::new(
                &TokenResponse::parse(r#"{"access_token":"opaque","expires_in":9}"#).unwrap(),
                0.0
            ),
            None
        );
    }

    #[test]
    fn the_id_token_must_carry_the_sign_ins_nonce() {
        let id_token = jwt(json!({"sub": "nurse", "nonce": "n-1"}));
        assert!(id_token_matches(&id_token, "n-1"));
        assert!(!id_token_matches(&id_token, "n-2"));
        assert!(!id_token_matches(&jwt(json!({"sub": "nurse"})), "n-1"));
        assert!(!id_token_matches("garbage", "n-1"));
    }

    #[test]
    fn a_token_is_refreshed_a_minute_before_it_expires_or_a_tenth_of_its_life() {
        let claims = json!({"sub": "nurse"});
        let standard = AccessToken::new(&response(claims.clone(), 900), 1_000.0).unwrap();
        assert_eq!(standard.expires_at, 901_000.0);
        assert_eq!(standard.refresh_at, 841_000.0, "60 s before");
        assert_eq!(standard.refresh_in_ms(1_000.0), 840_000);
        assert!(standard.is_fresh(840_999.0));
        assert!(!standard.is_fresh(841_000.0));
        assert!(!standard.is_expired(900_999.0));
        assert!(standard.is_expired(901_000.0));

        let short = AccessToken::new(&response(claims.clone(), 120), 0.0).unwrap();
        assert_eq!(short.refresh_at, 108_000.0, "a tenth of two minutes");
        let tiny = AccessToken::new(&response(claims.clone(), 8), 0.0).unwrap();
        assert_eq!(tiny.refresh_at, 3_000.0, "at least 5 s before");
        let instant = AccessToken::new(&response(claims, 2), 0.0).unwrap();
        assert_eq!(instant.refresh_at, 0.0, "never before it was received");
        assert_eq!(instant.refresh_in_ms(500.0), 0, "overdue: now");
    }

    #[test]
    fn only_a_lost_session_sends_the_user_back_to_the_sign_in_page() {
        let ended = OAuthError::parse(r#"{"error":"invalid_grant","error_description":"x"}"#);
        assert!(ended.unwrap().session_ended());
        let unavailable = OAuthError::parse(r#"{"error":"temporarily_unavailable"}"#).unwrap();
        assert!(!unavailable.session_ended());
    }
}
