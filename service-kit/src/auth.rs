//! Authentication at every service's door: the bearer token of each request checked with
//! `access_policy::TokenVerifier`, the caller handed to handlers as a [`Caller`], and refusals
//! turned into OperationOutcomes (401 with a `WWW-Authenticate` challenge, 403, or 503 when the
//! token cannot be checked). What a caller may then do is decided by `access_policy::policy`,
//! never here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use access_policy::{Denied, Principal, TokenError, TokenVerifier, VerifierSettings};
use axum::extract::{ConnectInfo, FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clap::Args;
use fhir_model::IssueCode;
use ipnet::IpNet;

use crate::config::ProxySettings;
use crate::fhir_response::FhirError;
use crate::forwarded::client_address;
use crate::rate_limit::RateLimiter;

/// Where tokens come from. Every service that serves clients flattens this into its settings.
#[derive(Debug, Clone, Args)]
pub struct AuthSettings {
    /// The identity service's issuer URL, exactly as tokens name it in `iss`.
    #[arg(
        id = "auth_issuer",
        long = "auth-issuer",
        env = "AUTH_ISSUER",
        default_value = "https://localhost:8443/auth"
    )]
    pub auth_issuer: String,
    /// The identity service's key set (JWKS), fetched once and again for an unknown key id.
    #[arg(
        id = "auth_jwks_url",
        long = "auth-jwks-url",
        env = "AUTH_JWKS_URL",
        default_value = "http://127.0.0.1:8085/.well-known/jwks.json"
    )]
    pub auth_jwks_url: String,
    /// The FHIR bases (comma-separated) a token may be for (its `aud`).
    #[arg(
        id = "auth_audiences",
        long = "auth-audience",
        env = "AUTH_AUDIENCES",
        value_delimiter = ',',
        default_value = "https://localhost:8443/fhir,http://localhost:8080/fhir,http://127.0.0.1:8080/fhir"
    )]
    pub auth_audiences: Vec<String>,
    /// How long a session seen alive is trusted without asking Redis again, in milliseconds
    /// (revocations announced by the identity service end it at once regardless).
    #[arg(
        id = "auth_session_cache_ms",
        long = "auth-session-cache-ms",
        env = "AUTH_SESSION_CACHE_MS",
        default_value_t = 5_000
    )]
    pub auth_session_cache_ms: u64,
    /// Where clients reach the identity service (`https://host/auth`), as the
    /// CapabilityStatement names its endpoints; by default the FHIR base's origin + `/auth`
    /// (the edge's routing).
    #[arg(
        id = "auth_public_url",
        long = "auth-public-url",
        env = "AUTH_PUBLIC_URL"
    )]
    pub auth_public_url: Option<String>,
    /// The Redis holding the identity service's sessions, when it is not the service's own
    /// (`--redis-url`).
    #[arg(
        id = "auth_redis_url",
        long = "auth-redis-url",
        env = "AUTH_REDIS_URL",
        hide_env_values = true
    )]
    pub auth_redis_url: Option<String>,
    /// Serve everyone without a token, as an unrestricted backend. For measuring what
    /// authorisation costs, never for a server anyone else can reach.
    #[arg(id = "auth_disabled", long = "auth-disabled", env = "AUTH_DISABLED")]
    pub auth_disabled: bool,
}

/// Checks callers, and counts their requests; one per service, cloned into the router's state.
#[derive(Clone)]
pub struct Authenticator {
    /// `None` when authorisation is switched off.
    verifier: Option<TokenVerifier>,
    limiter: RateLimiter,
    /// Proxies whose `X-Forwarded-For` names the client (for the per-address limit).
    trusted_proxies: Arc<[IpNet]>,
}

impl Authenticator {
    /// Must run inside the Tokio runtime (the verifier starts its revocation listener).
    /// Sessions are looked up in `redis_url` unless the settings name another Redis.
    pub fn from_settings(settings: &AuthSettings, redis_url: &str) -> anyhow::Result<Self> {
        if settings.auth_disabled {
            tracing::warn!(
                "authorisation is switched off: every request is served as an unrestricted backend"
            );
            return Ok(Authenticator {
                verifier: None,
                limiter: RateLimiter::off(),
                trusted_proxies: Arc::from([]),
            });
        }
        let verifier = TokenVerifier::new(
            VerifierSettings {
                issuer: settings.auth_issuer.clone(),
                audiences: settings.auth_audiences.clone(),
                jwks_url: settings.auth_jwks_url.clone(),
                session_cache: Duration::from_millis(settings.auth_session_cache_ms),
            },
            settings.auth_redis_url.as_deref().unwrap_or(redis_url),
        )?;
        Ok(Authenticator {
            verifier: Some(verifier),
            limiter: RateLimiter::off(),
            trusted_proxies: Arc::from([]),
        })
    }

    /// Counts every authenticated request against the per-address and per-user limits, the
    /// client's address read behind `proxies`.
    pub fn with_rate_limits(mut self, limiter: RateLimiter, proxies: &ProxySettings) -> Self {
        self.limiter = limiter;
        self.trusted_proxies = proxies.trusted_proxies.clone().into();
        self
    }

    /// The caller of a request (its bearer token), charged against the rate limits: by address
    /// whatever its token, and by user once the token checks out. 429 past a limit.
    pub async fn authenticate_request(&self, parts: &Parts) -> Result<Principal, FhirError> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| client_address(*peer, &parts.headers, &self.trusted_proxies));
        let principal = self.authenticate(&parts.headers).await;
        if let Some(address) = address {
            let user = principal
                .as_ref()
                .ok()
                .map(|principal| principal.subject.as_str());
            self.limiter
                .check(address, user)
                .await
                .map_err(|throttled| FhirError {
                    retry_after: Some(throttled.retry_after.as_secs().max(1)),
                    ..FhirError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        IssueCode::Throttled,
                        "too many requests: slow down and try again after the time Retry-After gives",
                    )
                })?;
        }
        principal
    }

    /// The caller a request's `Authorization: Bearer` header stands for.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, FhirError> {
        let Some(verifier) = &self.verifier else {
            return Ok(Principal::unchecked());
        };
        let token = bearer_token(headers).ok_or(TokenError::Missing);
        match token {
            Ok(token) => self.verify(verifier, token).await,
            Err(error) => Err(token_refused(&error)),
        }
    }

    /// The caller a token given some other way stands for (a WebSocket's first message).
    pub async fn authenticate_token(&self, token: &str) -> Result<Principal, FhirError> {
        match &self.verifier {
            None => Ok(Principal::unchecked()),
            Some(verifier) => self.verify(verifier, token).await,
        }
    }

    async fn verify(&self, verifier: &TokenVerifier, token: &str) -> Result<Principal, FhirError> {
        verifier.verify(token).await.map_err(|error| {
            if !error.is_unavailable() {
                tracing::info!(%error, "bearer token refused");
            }
            token_refused(&error)
        })
    }

    /// Operations on the service itself (metrics, rebuilds): allowed to an admin's token, or to
    /// a connection straight from this machine that no proxy forwarded (the edge always adds
    /// `X-Forwarded-For`, so nothing that came through it counts as local).
    pub async fn authorize_operator(
        &self,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Result<(), FhirError> {
        let local = peer.is_some_and(|peer| peer.ip().is_loopback())
            && !headers.contains_key("x-forwarded-for")
            && !headers.contains_key("forwarded");
        if local {
            return Ok(());
        }
        let principal = self.authenticate(headers).await?;
        access_policy::policy::authorize_admin(&principal).map_err(|denied| forbidden(&denied))
    }

    /// Whether the session of a principal checked earlier is still alive (for connections that
    /// outlive a request). Always true when authorisation is off; false when it cannot be told.
    pub async fn session_alive(&self, principal: &Principal) -> bool {
        match &self.verifier {
            None => true,
            Some(verifier) => verifier.session_alive(&principal.session_id).await,
        }
    }

    /// Whether tokens are checked at all.
    pub fn is_enabled(&self) -> bool {
        self.verifier.is_some()
    }
}

/// Middleware for a service's own operations (`/metrics`, `/status`, `/admin/...`): only an
/// admin's token, or a direct connection from this machine, passes.
pub async fn operators_only(
    State(auth): State<Authenticator>,
    request: axum::extract::Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    match auth.authorize_operator(request.headers(), peer).await {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A refused or uncheckable token as the client sees it.
pub fn token_refused(error: &TokenError) -> FhirError {
    match error {
        TokenError::Unavailable(_) => FhirError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            IssueCode::Transient,
            "the access token cannot be checked right now: try again shortly",
        ),
        TokenError::Missing => FhirError {
            challenge: Some(r#"Bearer realm="wardline""#.to_owned()),
            ..FhirError::new(
                StatusCode::UNAUTHORIZED,
                IssueCode::Login,
                "this request needs an access token (Authorization: Bearer <token>): sign in at /auth",
            )
        },
        other => {
            let description = other.to_string().replace(['"', '\\'], "'");
            FhirError {
                challenge: Some(format!(
                    r#"Bearer realm="wardline", error="invalid_token", error_description="{description}""#
                )),
                ..FhirError::new(
                    StatusCode::UNAUTHORIZED,
                    IssueCode::Login,
                    other.to_string(),
                )
            }
        }
    }
}

/// A refusal by the policy (403).
pub fn forbidden(denied: &Denied) -> FhirError {
    let mut error = FhirError::new(
        StatusCode::FORBIDDEN,
        IssueCode::Forbidden,
        denied.to_string(),
    );
    if matches!(denied, Denied::Scope { .. }) {
        error.challenge = Some(r#"Bearer realm="wardline", error="insufficient_scope""#.to_owned());
    }
    error
}

/// The authenticated caller of a request. Extracting it checks the token once per request
/// (the principal is kept in the request's extensions for later extractors).
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl<S> FromRequestParts<S> for Caller
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(Caller(principal.clone()));
        }
        let principal = Authenticator::from_ref(state)
            .authenticate_request(parts)
            .await?;
        parts.extensions.insert(principal.clone());
        Ok(Caller(principal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc.def"),
        );
        assert_eq!(bearer_token(&headers), Some("abc.def"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&headers), None);
    }
}
