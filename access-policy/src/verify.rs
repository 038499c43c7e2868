//! Checking an access token, as every service does on every request: the ES256 signature
//! against the identity service's published keys (fetched once, fetched again only for a `kid`
//! not seen before), the issuer, the audience and the validity window; then that the token's
//! session is still alive in Redis, so that signing out or revoking a token ends it on every
//! instance at once.
//!
//! Asking Redis on every request would cost a round trip per read. Instead a session seen
//! alive is remembered for a short time, and forgotten the moment the identity service
//! announces its end on the `session:revoked` channel. While that subscription is down
//! nothing is remembered, so a missed announcement can never keep a dead session alive.
//!
//! Checking an ES256 signature costs far more CPU than serving a cached read (with the
//! RustCrypto backend, five to nine times the rest of the request in `read-bench`), and a
//! client sends the same token with every request for its lifetime. So a token that checked
//! out is remembered by its exact text until it expires: the same bytes again are the same
//! signature over the same claims, and need only the time checked. The session is still
//! checked on every request, and a token whose key the identity service no longer publishes is
//! forgotten when the key set is fetched again, as it was before.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use thiserror::Error;
use tokio::sync::Mutex;

use crate::claims::AccessClaims;
use crate::principal::{Principal, PrincipalError};

/// The Redis key that exists for as long as session `sid` is alive.
pub fn session_key(sid: &str) -> String {
    format!("session:{sid}")
}

/// The Redis channel on which the identity service announces each ended session's id.
pub const REVOCATION_CHANNEL: &str = "session:revoked";

/// The only signature algorithm accepted on access tokens.
pub const ACCESS_TOKEN_ALGORITHM: Algorithm = Algorithm::ES256;

/// Leeway on `exp` and `nbf`, for clocks a little apart.
const LEEWAY_SECONDS: u64 = 5;
/// The key set is fetched again for an unknown `kid` at most this often, so a stream of forged
/// `kid`s cannot turn into a stream of requests to the identity service.
const JWKS_COOLDOWN: Duration = Duration::from_secs(5);
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
/// Tokens remembered as checked, at most (each about a kilobyte and a half, with its principal):
/// past it the expired ones are dropped, and if that is not enough all are (checking them again
/// costs CPU, nothing else).
const CHECKED_TOKENS: usize = 4_096;

/// How an access token of `issuer` for one of `audiences` is checked: ES256, the registered
/// claims required, `exp` and `nbf` with a little leeway. The identity service checks its own
/// tokens (admin API, introspection) with the same rules.
pub fn access_token_validation(issuer: &str, audiences: &[String]) -> Validation {
    let mut validation = Validation::new(ACCESS_TOKEN_ALGORITHM);
    validation.set_issuer(&[issuer]);
    validation.set_audience(audiences);
    validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    validation.leeway = LEEWAY_SECONDS;
    validation
}

/// Where tokens come from and whom they are for.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// The identity service's issuer URL, exactly as in the tokens' `iss`.
    pub issuer: String,
    /// The FHIR bases a token may name as its `aud`.
    pub audiences: Vec<String>,
    /// The identity service's JWKS.
    pub jwks_url: String,
    /// How long a session seen alive is remembered (while revocations are being heard).
    pub session_cache: Duration,
}

/// Why a bearer token was not accepted (a 401), or could not be checked (a 503).
#[derive(Debug, Error)]
pub enum TokenError {
    #[error("the request has no bearer token")]
    Missing,
    #[error("the bearer token is not a well-formed JWT: {0}")]
    Malformed(String),
    #[error("the token is signed with {0:?}; only ES256 is accepted")]
    Algorithm(Algorithm),
    #[error("the token names no signing key, or one the identity service does not publish")]
    UnknownKey,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the token's claims make no sense: {0}")]
    Claims(#[from] PrincipalError),
    #[error("the token's session has ended (signed out or revoked)")]
    SessionEnded,
    #[error("the token cannot be checked right now: {0}")]
    Unavailable(String),
}

impl TokenError {
    /// Whether the fault is ours (the identity service or Redis unreachable), not the token's.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, TokenError::Unavailable(_))
    }
}

/// Checks access tokens; cheap to clone (one per service, shared by every request).
#[derive(Clone)]
pub struct TokenVerifier(Arc<Inner>);

struct Inner {
    settings: VerifierSettings,
    validation: Validation,
    http: reqwest::Client,
    keys: RwLock<HashMap<String, Arc<DecodingKey>>>,
    last_fetch: Mutex<Option<Instant>>,
    /// Tokens whose signature and claims checked out, by their exact text.
    checked: RwLock<HashMap<Box<str>, Checked>>,
    sessions: Sessions,
}

/// A token that checked out: whom it names, and the key that signed it.
struct Checked {
    principal: Principal,
    kid: String,
}

impl TokenVerifier {
    /// A verifier for tokens from `settings.issuer`, with sessions in the Redis at `redis_url`.
    /// Nothing is fetched or connected until the first token arrives; the revocation listener
    /// starts at once (on the current Tokio runtime).
    pub fn new(settings: VerifierSettings, redis_url: &str) -> Result<TokenVerifier, TokenError> {
        let client = redis::Client::open(redis_url)
            .map_err(|error| TokenError::Unavailable(format!("bad Redis URL: {error}")))?;
        let validation = access_token_validation(&settings.issuer, &settings.audiences);
        let sessions = Sessions::new(client, settings.session_cache);
        let verifier = TokenVerifier(Arc::new(Inner {
            settings,
            validation,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .map_err(|error| TokenError::Unavailable(error.to_string()))?,
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
            checked: RwLock::new(HashMap::new()),
            sessions,
        }));
        tokio::spawn(listen_for_revocations(Arc::downgrade(&verifier.0)));
        Ok(verifier)
    }

    /// The principal a bearer token stands for, or why it is refused.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let principal = match self.remembered(token) {
            Some(principal) => principal,
            None => self.check(token).await?,
        };
        self.0.sessions.check(&principal.session_id).await?;
        Ok(principal)
    }

    /// The signature, the key, the issuer, the audience and the validity window of a token not
    /// remembered; remembers it if it passes.
    async fn check(&self, token: &str) -> Result<Principal, TokenError> {
        let header =
            decode_header(token).map_err(|error| TokenError::Malformed(error.to_string()))?;
        if header.alg != ACCESS_TOKEN_ALGORITHM {
            return Err(TokenError::Algorithm(header.alg));
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.key(&kid).await?;
        let claims = decode::<AccessClaims>(token, &key, &self.0.validation)
            .map_err(|error| TokenError::Invalid(error.to_string()))?
            .claims;
        let principal = Principal::from_claims(claims)?;
        self.remember(token, &principal, kid);
        Ok(principal)
    }

    /// The principal of a token that checked out before and has not expired since (with the
    /// same leeway as the full check; `nbf` passed then, so it still has).
    fn remembered(&self, token: &str) -> Option<Principal> {
        let checked = self
            .0
            .checked
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = checked.get(token)?;
        let now = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap_or(i64::MAX);
        (entry.principal.expires_at >= now.saturating_sub(LEEWAY_SECONDS as i64))
            .then(|| entry.principal.clone())
    }

    fn remember(&self, token: &str, principal: &Principal, kid: String) {
        let mut checked = self
            .0
            .checked
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if checked.len() >= CHECKED_TOKENS {
            let now = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap_or(i64::MAX);
            let cutoff = now.saturating_sub(LEEWAY_SECONDS as i64);
            checked.retain(|_, entry| entry.principal.expires_at >= cutoff);
            if checked.len() >= CHECKED_TOKENS {
                checked.clear();
            }
        }
        checked.insert(
            token.into(),
            Checked {
                principal: principal.clone(),
                kid,
            },
        );
    }

    /// Whether revocations are being heard (until then, and whenever the subscription drops,
    /// every check asks Redis).
    pub fn hears_revocations(&self) -> bool {
        self.0.sessions.listening.load(Ordering::Acquire)
    }

    /// Whether session `sid` is still alive (false when that cannot be told).
    pub async fn session_alive(&self, sid: &str) -> bool {
        self.0.sessions.check(sid).await.is_ok()
    }

    async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, TokenError> {
        if let Some(key) = self.cached_key(kid) {
            return Ok(key);
        }
        let mut last_fetch = self.0.last_fetch.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(key) = self.cached_key(kid) {
            return Ok(key);
        }
        if last_fetch.is_some_and(|at| at.elapsed() < JWKS_COOLDOWN) {
            return Err(TokenError::UnknownKey);
        }
        let fetched = self.fetch_keys().await;
        *last_fetch = Some(Instant::now());
        let keys = fetched?;
        // Tokens signed with a key no longer published are checked again (and refused).
        self.0
            .checked
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, entry| keys.contains_key(&entry.kid));
        *self.0.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
        self.cached_key(kid).ok_or(TokenError::UnknownKey)
    }

    fn cached_key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.0
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(kid)
            .cloned()
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, Arc<DecodingKey>>, TokenError> {
        let unavailable = |error: reqwest::Error| {
            TokenError::Unavailable(format!("cannot fetch the identity service's keys: {error}"))
        };
        let set: JwkSet = self
            .0
            .http
            .get(&self.0.settings.jwks_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    keys.insert(kid, Arc::new(key));
                }
                Err(error) => tracing::warn!(%kid, %error, "ignoring a key the JWKS publishes"),
            }
        }
        Ok(keys)
    }
}

/// Which sessions are alive, asked of Redis and remembered while revocations are heard.
struct Sessions {
    client: redis::Client,
    connection: Mutex<Option<ConnectionManager>>,
    alive: RwLock<HashMap<String, Instant>>,
    max_age: Duration,
    /// Whether the revocation subscription is up: nothing is remembered while it is not.
    listening: AtomicBool,
    /// Bumped on every revocation: a check that straddles one does not remember its answer.
    revocations: AtomicU64,
}

impl Sessions {
    fn new(client: redis::Client, max_age: Duration) -> Sessions {
        Sessions {
            client,
            connection: Mutex::new(None),
            alive: RwLock::new(HashMap::new()),
            max_age,
            listening: AtomicBool::new(false),
            revocations: AtomicU64::new(0),
        }
    }

    async fn check(&self, sid: &str) -> Result<(), TokenError> {
        if sid.is_empty() {
            return Err(TokenError::SessionEnded);
        }
        let remembered = self
            .alive
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sid)
            .is_some_and(|seen| seen.elapsed() < self.max_age);
        if remembered && self.listening.load(Ordering::Acquire) {
            return Ok(());
        }
        let before = self.revocations.load(Ordering::Acquire);
        if !self.exists(sid).await? {
            return Err(TokenError::SessionEnded);
        }
        if self.listening.load(Ordering::Acquire)
            && self.revocations.load(Ordering::Acquire) == before
        {
            let mut alive = self.alive.write().unwrap_or_else(PoisonError::into_inner);
            // Forget expired entries now and then, so the map stays the size of the live set.
            if alive.len() > 10_000 {
                let max_age = self.max_age;
                alive.retain(|_, seen| seen.elapsed() < max_age);
            }
            alive.insert(sid.to_owned(), Instant::now());
        }
        Ok(())
    }

    async fn exists(&self, sid: &str) -> Result<bool, TokenError> {
        let unavailable = |error: String| {
            TokenError::Unavailable(format!("cannot reach the session store: {error}"))
        };
        let mut guard = self.connection.lock().await;
        let connection = match guard.as_ref() {
            Some(connection) => connection.clone(),
            None => {
                let connection =
                    tokio::time::timeout(REDIS_TIMEOUT * 4, self.client.get_connection_manager())
                        .await
                        .map_err(|_| unavailable("timed out connecting".to_owned()))?
                        .map_err(|error| unavailable(error.to_string()))?;
                *guard = Some(connection.clone());
                connection
            }
        };
        drop(guard);
        let mut connection = connection;
        tokio::time::timeout(
            REDIS_TIMEOUT,
            connection.exists::<_, bool>(session_key(sid)),
        )
        .await
        .map_err(|_| unavailable("timed out".to_owned()))?
        .map_err(|error| unavailable(error.to_string()))
    }

    fn forget(&self, sid: Option<&str>) {
        self.revocations.fetch_add(1, Ordering::AcqRel);
        let mut alive = self.alive.write().unwrap_or_else(PoisonError::into_inner);
        match sid {
            Some(sid) => {
                alive.remove(sid);
            }
            None => alive.clear(),
        }
    }
}

/// Listens on the revocation channel for as long as the verifier lives, reconnecting after a
/// failure (and forgetting every remembered session whenever the subscription drops).
async fn listen_for_revocations(verifier: std::sync::Weak<Inner>) {
    loop {
        let Some(inner) = verifier.upgrade() else {
            return;
        };
        let client = inner.sessions.client.clone();
        drop(inner);
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if let Err(error) = pubsub.subscribe(REVOCATION_CHANNEL).await {
                    tracing::warn!(%error, "cannot subscribe to session revocations");
                } else {
                    if let Some(inner) = verifier.upgrade() {
                        inner.sessions.listening.store(true, Ordering::Release);
                    }
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let Some(inner) = verifier.upgrade() else {
                            return;
                        };
                        let sid: Option<String> = message.get_payload().ok();
                        inner
                            .sessions
                            .forget(Some(sid.as_deref().unwrap_or_default()));
                    }
                }
            }
            Err(error) => tracing::debug!(%error, "session revocations: cannot reach Redis"),
        }
        let Some(inner) = verifier.upgrade() else {
            return;
        };
        inner.sessions.listening.store(false, Ordering::Release);
        inner.sessions.forget(None);
        drop(inner);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
