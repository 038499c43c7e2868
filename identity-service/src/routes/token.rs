//! `POST /auth/token`: codes, refresh tokens and client credentials become tokens.
//!
//! - `authorization_code`: single use; the client, the `redirect_uri` and the PKCE verifier
//!   must match what the code was issued for. A code presented twice ends the session the
//!   first exchange started (RFC 6749 4.1.2: a replay means it leaked).
//! - `refresh_token`: rotates on every use. A spent token presented again ends the whole
//!   session, the tokens of its rotation included. A refresh may ask for fewer scopes than
//!   were granted, never more.
//! - `client_credentials`: a confidential client (a backend service) gets `system/` scopes
//!   within what it may have, in a session as long as its token.
//!
//! The web app (`wardline-web`) never sees its refresh token: the answer sets it as the
//! HttpOnly `wl_refresh` cookie (`routes::cookies`) instead of putting it in the JSON, and a
//! refresh from the web app without a `refresh_token` parameter takes the cookie's. Such a
//! refresh must come from the page's own origin (`Sec-Fetch-Site`, where the browser sends
//! it): another site on the same host could otherwise have the browser spend the cookie. A
//! refresh from the cookie that fails removes the cookie.
//!
//! Every answer, errors included, says `Cache-Control: no-store`.

use access_policy::ScopeSet;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::client_auth::{self, Authenticated};
use crate::directory::WEB_CLIENT;
use crate::error::{Error, OAuthError};
use crate::ids::pkce_challenge;
use crate::params::Params;
use crate::routes::{cookies, no_store};
use crate::scopes;
use crate::tokens::{self, SignInFacts, TokenResponse};
use crate::transient::{Redeemed, RefreshGrant, Session, now, until};

pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    no_store(match exchange(&state, &headers, &body).await {
        Ok(granted) => granted.into_response(),
        Err(refused) => refused.into_response(),
    })
}

/// Tokens issued to a client.
struct Granted {
    tokens: TokenResponse,
    /// When the refresh token (if any) stops working: the session's end.
    refresh_expires: i64,
    /// Whether the refresh token goes into the `wl_refresh` cookie (the web app).
    in_cookie: bool,
}

impl IntoResponse for Granted {
    fn into_response(self) -> Response {
        let mut tokens = self.tokens;
        let cookie = if self.in_cookie {
            tokens
                .refresh_token
                .take()
                .map(|token| cookies::set_refresh(&token, until(self.refresh_expires)))
        } else {
            None
        };
        let mut response = Json(tokens).into_response();
        if let Some(cookie) = cookie {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        response
    }
}

/// A refused request, and whether the web app's refresh cookie is spent with it.
struct Refused {
    error: OAuthError,
    clear_cookie: bool,
}

impl<E: Into<OAuthError>> From<E> for Refused {
    fn from(error: E) -> Self {
        Refused {
            error: error.into(),
            clear_cookie: false,
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut response = self.error.into_response();
        if self.clear_cookie {
            response
                .headers_mut()
                .append(header::SET_COOKIE, cookies::clear_refresh());
        }
        response
    }
}

async fn exchange(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Granted, Refused> {
    let params = Params::parse(body)?;
    let grant_type = params.require("grant_type")?;
    let client = client_auth::authenticate(state, headers, &params).await?;
    let in_cookie = client.client.client_id == WEB_CLIENT;
    let (tokens, refresh_expires) = match grant_type {
        "authorization_code" => authorization_code(state, &client, &params).await?,
        "refresh_token" => {
            let (token, from_cookie) = match params.get("refresh_token") {
                Some(token) => (token, false),
                None if in_cookie => (cookie_refresh_token(headers)?, true),
                None => {
                    return Err(Error::InvalidRequest(
                        "the parameter 'refresh_token' is required".to_owned(),
                    )
                    .into());
                }
            };
            refresh_token(state, &client, &params, token)
                .await
                .map_err(|error| Refused {
                    // A token the server will never take again is no use to keep.
                    clear_cookie: from_cookie && matches!(error.0, Error::InvalidGrant(_)),
                    error,
                })?
        }
        "client_credentials" => client_credentials(state, &client, &params).await?,
        other => return Err(Error::UnsupportedGrantType(other.to_owned()).into()),
    };
    Ok(Granted {
        tokens,
        refresh_expires,
        in_cookie,
    })
}

/// The web app's refresh token, from its cookie, provided the request comes from a page of
/// the same origin.
fn cookie_refresh_token(headers: &HeaderMap) -> Result<&str, Error> {
    let site = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok());
    if site.is_some_and(|site| site != "same-origin") {
        return Err(Error::InvalidRequest(
            "the web app's refresh token is only used from its own origin".to_owned(),
        ));
    }
    cookies::get(headers, cookies::REFRESH).ok_or_else(|| {
        Error::InvalidGrant("no refresh token: the browser has no session to resume".to_owned())
    })
}

/// Tokens for a code, and when the session (and so its refresh token) ends.
async fn authorization_code(
    state: &AppState,
    client: &Authenticated,
    params: &Params,
) -> Result<(TokenResponse, i64), OAuthError> {
    let code = params.require("code")?;
    let redirect_uri = params.require("redirect_uri")?;
    let verifier = params.require("code_verifier")?;
    let grant = match state.transient.redeem_code(code).await? {
        Redeemed::Fresh(grant) => grant,
        Redeemed::Spent(grant) => {
            state.transient.end_session(&grant.sid).await?;
            tracing::warn!(client = %grant.client_id, "a code was presented twice; its session is ended");
            return Err(Error::InvalidGrant(
                "the code was used already; the tokens issued for it are revoked".to_owned(),
            )
            .into());
        }
        Redeemed::Unknown => {
            return Err(
                Error::InvalidGrant("the code is unknown or has expired".to_owned()).into(),
            );
        }
    };
    let mismatch = if grant.client_id != client.client.client_id {
        Some("the code was issued to another client")
    } else if grant.redirect_uri != redirect_uri {
        Some("redirect_uri is not the one the code was issued for")
    } else if !(43..=128).contains(&verifier.len())
        || pkce_challenge(verifier) != grant.code_challenge
    {
        Some("the code_verifier does not match the code_challenge")
    } else {
        None
    };
    if let Some(reason) = mismatch {
        // The code is spent either way; its session must not outlive it.
        state.transient.end_session(&grant.sid).await?;
        return Err(Error::InvalidGrant(reason.to_owned()).into());
    }
    let session = state
        .transient
        .session(&grant.sid)
        .await?
        .ok_or_else(|| Error::InvalidGrant("the session of this code has ended".to_owned()))?;
    if !state
        .transient
        .confirm_session(&grant.sid, &session)
        .await?
    {
        return Err(Error::InvalidGrant("the session of this code has ended".to_owned()).into());
    }
    let scope = ScopeSet::parse(&session.scopes).unwrap_or_default();
    let refresh = if tokens::wants_refresh(&scope) {
        Some(
            state
                .transient
                .issue_refresh(&RefreshGrant {
                    sid: grant.sid.clone(),
                    client_id: session.client.clone(),
                    scope: session.scopes.clone(),
                    expires: session.expires,
                })
                .await?,
        )
    } else {
        None
    };
    let facts = SignInFacts {
        auth_time: grant.auth_time,
        nonce: grant.nonce.clone(),
    };
    let tokens = tokens::issue(state, &grant.sid, &session, &scope, refresh, Some(&facts))?;
    Ok((tokens, session.expires))
}

/// Tokens for refresh token `token`, and when the session ends.
async fn refresh_token(
    state: &AppState,
    client: &Authenticated,
    params: &Params,
    token: &str,
) -> Result<(TokenResponse, i64), OAuthError> {
    // The checks that do not spend the token come first: a refused scope leaves it usable.
    if let Some(current) = state.transient.refresh(token).await? {
        if current.client_id != client.client.client_id {
            return Err(Error::InvalidGrant(
                "the refresh token was issued to another client".to_owned(),
            )
            .into());
        }
        if let Some(requested) = params.get("scope") {
            narrowed(&current, requested)?;
        }
    }
    let grant = match state.transient.redeem_refresh(token).await? {
        Redeemed::Fresh(grant) => grant,
        Redeemed::Spent(grant) => {
            state.transient.end_session(&grant.sid).await?;
            tracing::warn!(client = %grant.client_id, "a spent refresh token was presented; its session is ended");
            return Err(Error::InvalidGrant(
                "the refresh token was used already; its session is ended".to_owned(),
            )
            .into());
        }
        Redeemed::Unknown => {
            return Err(Error::InvalidGrant(
                "the refresh token is unknown or has expired".to_owned(),
            )
            .into());
        }
    };
    if grant.client_id != client.client.client_id {
        return Err(Error::InvalidGrant(
            "the refresh token was issued to another client".to_owned(),
        )
        .into());
    }
    let scope = match params.get("scope") {
        Some(requested) => narrowed(&grant, requested)?,
        None => ScopeSet::parse(&grant.scope).unwrap_or_default(),
    };
    let session = state
        .transient
        .session(&grant.sid)
        .await?
        .ok_or_else(|| Error::InvalidGrant("the session has ended".to_owned()))?;
    let next = state
        .transient
        .issue_refresh(&RefreshGrant {
            sid: grant.sid.clone(),
            client_id: grant.client_id.clone(),
            scope: grant.scope.clone(),
            expires: grant.expires,
        })
        .await?;
    let tokens = tokens::issue(state, &grant.sid, &session, &scope, Some(next), None)?;
    Ok((tokens, grant.expires))
}

/// The scopes of a refresh that asks for `requested`: covered by the grant, or `invalid_scope`.
fn narrowed(grant: &RefreshGrant, requested: &str) -> Result<ScopeSet, Error> {
    let requested =
        ScopeSet::parse(requested).map_err(|error| Error::InvalidScope(error.to_string()))?;
    let granted = ScopeSet::parse(&grant.scope).unwrap_or_default();
    if granted.covers(&requested) {
        Ok(requested)
    } else {
        Err(Error::InvalidScope(
            "a refresh may not ask for scopes beyond those granted".to_owned(),
        ))
    }
}

/// A backend service's token (never with a refresh token), and when it expires.
async fn client_credentials(
    state: &AppState,
    client: &Authenticated,
    params: &Params,
) -> Result<(TokenResponse, i64), OAuthError> {
    if !client.is_confidential() {
        return Err(Error::UnauthorizedClient(
            "client_credentials is for confidential clients".to_owned(),
        )
        .into());
    }
    let requested = params
        .get("scope")
        .map(ScopeSet::parse)
        .transpose()
        .map_err(|error| Error::InvalidScope(error.to_string()))?;
    let allowed = ScopeSet::parse(&client.client.allowed_scopes).unwrap_or_default();
    let scope = scopes::for_service(requested.as_ref(), &allowed).map_err(Error::InvalidScope)?;
    if scope.resources.is_empty() {
        return Err(Error::InvalidScope(
            "this client may not be granted any system/ scope".to_owned(),
        )
        .into());
    }
    let aud = match params.get("aud") {
        Some(aud) => state
            .settings
            .audiences
            .iter()
            .find(|known| known.trim_end_matches('/') == aud.trim_end_matches('/'))
            .cloned()
            .ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "aud '{aud}' is not a FHIR server this issuer serves"
                ))
            })?,
        None => state.default_audience().to_owned(),
    };
    let created = now();
    let ttl = state.access_token_ttl();
    let session = Session {
        user: client.client.client_id.clone(),
        role: None,
        client: client.client.client_id.clone(),
        scopes: scope.to_string(),
        patient: None,
        encounter: None,
        fhir_user: None,
        name: None,
        classes: Vec::new(),
        need_patient_banner: false,
        aud,
        created,
        expires: created.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
    };
    let sid = state.transient.start_session(&session, ttl).await?;
    tracing::info!(client = %session.client, scope = %session.scopes, "client credentials granted");
    let tokens = tokens::issue(state, &sid, &session, &scope, None, None)?;
    Ok((tokens, session.expires))
}
