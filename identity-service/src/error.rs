//! Everything that can go wrong in a request, in OAuth's words, and the one place where it
//! becomes a response.
//!
//! The same [`Error`] answers in two shapes: JSON (`{"error", "error_description"}`, RFC 6749
//! 5.2) on the OAuth and admin endpoints ([`OAuthError`]), and an HTML page on the pages a
//! person sees ([`PageError`]). [`Error::code`] and [`Error::status`] decide both, so a mistake
//! has the same code and status whichever way it is shown (and in the `error` parameter of a
//! redirect back to a client). Faults of the service itself are logged in full and shown as a
//! bare "server_error": nothing internal reaches the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use thiserror::Error;

use crate::keys::KeyError;
use crate::pages;
use crate::password::PasswordError;
use crate::store::StoreError;
use crate::transient::TransientError;

/// What went wrong.
#[derive(Debug, Error)]
pub enum Error {
    /// A parameter is missing, repeated or malformed.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("there is no client '{0}'")]
    UnknownClient(String),
    /// The client did not prove who it is.
    #[error("client authentication failed: {0}")]
    ClientAuthentication(String),
    /// A code or refresh token that is unknown, spent, expired or someone else's.
    #[error("{0}")]
    InvalidGrant(String),
    /// The client may not use this grant type or ask this.
    #[error("{0}")]
    UnauthorizedClient(String),
    #[error("grant_type '{0}' is not supported")]
    UnsupportedGrantType(String),
    #[error("response_type '{0}' is not supported (only 'code' is)")]
    UnsupportedResponseType(String),
    #[error("{0}")]
    InvalidScope(String),
    /// The user said no.
    #[error("the user denied the request")]
    AccessDenied,
    /// No open redirects: an unknown client or an unregistered `redirect_uri` is shown to the
    /// user, never followed.
    #[error("the redirect_uri is not one registered for client '{0}'")]
    UnregisteredRedirect(String),
    /// A form without the anti-forgery token its page was given, or from another browser.
    #[error(
        "this form was not sent from the page this browser was given; start again from the application"
    )]
    Forgery,
    /// A sign-in or consent for a request that has expired or was answered already.
    #[error(
        "this sign-in request has expired or was already answered; start again from the application"
    )]
    RequestExpired,
    /// A missing, malformed, expired or revoked bearer token.
    #[error("{0}")]
    InvalidToken(String),
    /// The bearer may not do this.
    #[error(transparent)]
    Denied(#[from] access_policy::Denied),
    #[error("{0} was not found")]
    NotFound(String),
    #[error(transparent)]
    Store(StoreError),
    /// Too many failed sign-ins of one account from one address.
    #[error("too many failed sign-ins; try again in {retry_after} seconds")]
    Throttled { retry_after: u64 },
    #[error(transparent)]
    Transient(#[from] TransientError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// A dependency of the request (a client's JWKS, the FHIR server) did not answer.
    #[error("{0}")]
    Upstream(String),
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Exists(what) => Error::InvalidRequest(format!("{what} already exists")),
            other => Error::Store(other),
        }
    }
}

impl Error {
    /// The OAuth error code (RFC 6749 4.1.2.1 and 5.2, RFC 6750 3.1).
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidRequest(_) | Error::UnregisteredRedirect(_) | Error::RequestExpired => {
                "invalid_request"
            }
            Error::UnknownClient(_) | Error::ClientAuthentication(_) => "invalid_client",
            Error::InvalidGrant(_) => "invalid_grant",
            Error::UnauthorizedClient(_) => "unauthorized_client",
            Error::UnsupportedGrantType(_) => "unsupported_grant_type",
            Error::UnsupportedResponseType(_) => "unsupported_response_type",
            Error::InvalidScope(_) => "invalid_scope",
            Error::AccessDenied | Error::Forgery | Error::Denied(_) => "access_denied",
            Error::InvalidToken(_) => "invalid_token",
            Error::NotFound(_) => "not_found",
            Error::Throttled { .. } => "too_many_requests",
            Error::Transient(_) | Error::Upstream(_) => "temporarily_unavailable",
            Error::Store(_) | Error::Keys(_) | Error::Password(_) => "server_error",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::InvalidRequest(_)
            | Error::UnregisteredRedirect(_)
            | Error::RequestExpired
            | Error::InvalidGrant(_)
            | Error::UnauthorizedClient(_)
            | Error::UnsupportedGrantType(_)
            | Error::UnsupportedResponseType(_)
            | Error::InvalidScope(_)
            | Error::UnknownClient(_) => StatusCode::BAD_REQUEST,
            Error::ClientAuthentication(_) | Error::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Error::AccessDenied | Error::Forgery | Error::Denied(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Transient(_) | Error::Upstream(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Store(_) | Error::Keys(_) | Error::Password(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// What the client or user is told: the message, unless the fault is the service's.
    pub fn description(&self) -> String {
        match self {
            Error::Store(_) | Error::Keys(_) | Error::Password(_) => {
                "the server failed to process the request; the request id identifies it in the server log".to_owned()
            }
            Error::Transient(_) => {
                "the service cannot reach its session store; try again shortly".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// Logs faults of the service (once, where the response is made).
    fn log(&self) {
        if self.status().is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::info!(error = %self, code = self.code(), "request refused");
        }
    }

    /// Headers that go with the status: `WWW-Authenticate` on 401s, `Retry-After` on 429s.
    fn decorate(&self, response: &mut Response) {
        let headers = response.headers_mut();
        match self {
            Error::InvalidToken(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
            }
            Error::ClientAuthentication(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"wardline\""),
                );
            }
            Error::Throttled { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
    }
}

/// An error answered as OAuth JSON.
#[derive(Debug)]
pub struct OAuthError(pub Error);

impl<E: Into<Error>> From<E> for OAuthError {
    fn from(error: E) -> Self {
        OAuthError(error.into())
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let error = self.0;
        error.log();
        let body = serde_json::json!({
            "error": error.code(),
            "error_description": error.description(),
        });
        let mut response = (error.status(), axum::Json(body)).into_response();
        error.decorate(&mut response);
        response
    }
}

/// An error answered as an HTML page (the sign-in and consent pages' errors).
#[derive(Debug)]
pub struct PageError(pub Error);

impl<E: Into<Error>> From<E> for PageError {
    fn from(error: E) -> Self {
        PageError(error.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let error = self.0;
        error.log();
        let title = match &error {
            Error::Throttled { .. } => "Too many failed sign-ins",
            Error::Forgery => "Form refused",
            Error::AccessDenied | Error::Denied(_) => "Not allowed",
            other if other.status().is_server_error() => "Something went wrong",
            _ => "This request cannot be completed",
        };
        let mut response = pages::message(error.status(), title, &error.description());
        error.decorate(&mut response);
        response
    }
}
