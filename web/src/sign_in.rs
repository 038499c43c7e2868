//! Signing in from the browser: the OAuth 2.0 authorization-code flow with PKCE (S256) against
//! the identity service on the page's own origin, as the public client `wardline-web`.
//!
//! Before the browser leaves for `/auth/authorize`, the app keeps a [`PendingSignIn`] (the
//! PKCE verifier, the `state`, the OpenID `nonce`, and the page to come back to) in the tab's
//! `sessionStorage`; the identity service sends the browser back to the app's origin with
//! `?code=...&state=...`, and [`complete`] accepts the code only when the `state` is the one
//! this tab sent. The code is then exchanged at `/auth/token` with the verifier. None of this
//! needs a browser, so it is tested here; `ui::session` only stores, redirects and fetches.
//!
//! The tokens themselves never touch storage: the access token lives in memory, and the
//! refresh token in an HttpOnly cookie the identity service sets, which scripts cannot read.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::route::{Route, encode, query_value};

/// The web app's client id at the identity service.
pub const CLIENT_ID: &str = "wardline-web";

/// What the web app asks for: who the user is (`openid fhirUser`), to stay signed in across
/// reloads (`offline_access`: a refresh token, kept in the cookie), and the user's own access
/// to the record (`user/*.cruds`, narrowed by their role at every request).
pub const SCOPE: &str = "openid fhirUser offline_access user/*.cruds";

pub const AUTHORIZE_PATH: &str = "/auth/authorize";
pub const TOKEN_PATH: &str = "/auth/token";
pub const LOGOUT_PATH: &str = "/auth/logout";

/// The `sessionStorage` key of the pending sign-in.
pub const PENDING_KEY: &str = "wardline.pending-sign-in";

/// Where the identity service sends the browser back: the app's origin and `/`.
pub fn redirect_uri(origin: &str) -> String {
    format!("{}/", origin.trim_end_matches('/'))
}

/// The FHIR base the tokens are for (their `aud`): `/fhir` on the app's origin.
pub fn audience(origin: &str) -> String {
    format!("{}/fhir", origin.trim_end_matches('/'))
}

/// A secret made of 32 random bytes, base64url without padding: 43 characters, the shortest
/// PKCE verifier RFC 7636 allows, with 256 bits of entropy.
pub fn secret(random: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(random)
}

/// The S256 code challenge of a verifier: base64url(SHA-256(verifier)).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A sign-in under way: what the tab remembers while the browser is at the identity service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignIn {
    /// Sent as `state`, and must come back unchanged: a code that arrives with another state
    /// was not asked for by this tab (a forged or replayed redirect).
    pub state: String,
    pub verifier: String,
    /// Sent as `nonce`; the ID token must carry it.
    pub nonce: String,
    /// The page to show once signed in (a URL fragment the app routes, `#/ward/ward-b`).
    pub return_to: String,
}

impl PendingSignIn {
    /// A sign-in from three random secrets, coming back to the page of fragment `hash`.
    pub fn new(random: [[u8; 32]; 3], hash: &str) -> PendingSignIn {
        let [state, verifier, nonce] = random;
        PendingSignIn {
            state: secret(&state),
            verifier: secret(&verifier),
            nonce: secret(&nonce),
            // Parsed and written again, so only a page of the app can come out.
            return_to: Route::parse(hash).href(),
        }
    }

    /// The address of the authorization request (relative to the origin, where the edge
    /// serves the identity service).
    pub fn authorize_url(&self, origin: &str) -> String {
        let params = [
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", &redirect_uri(origin)),
            ("scope", SCOPE),
            ("state", &self.state),
            ("nonce", &self.nonce),
            ("aud", &audience(origin)),
            ("code_challenge", &pkce_challenge(&self.verifier)),
            ("code_challenge_method", "S256"),
        ];
        format!("{AUTHORIZE_PATH}?{}", form(&params))
    }

    /// The token request's body that exchanges `code`.
    pub fn token_request(&self, origin: &str, code: &str) -> String {
        form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect_uri(origin)),
            ("client_id", CLIENT_ID),
            ("code_verifier", &self.verifier),
        ])
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(json: &str) -> Option<PendingSignIn> {
        serde_json::from_str(json).ok()
    }
}

/// The refresh request's body: no `refresh_token`, the identity service takes the cookie's.
pub fn refresh_request() -> String {
    form(&[("grant_type", "refresh_token"), ("client_id", CLIENT_ID)])
}

/// `application/x-www-form-urlencoded` of `params`.
fn form(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// What the page's query string says about a sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback {
    /// An ordinary visit: no answer from the identity service.
    None,
    /// The identity service sends a code.
    Code { code: String, state: Option<String> },
    /// The identity service reports that the sign-in failed (or the user denied it).
    Refused {
        error: String,
        description: Option<String>,
        state: Option<String>,
    },
}

impl Callback {
    /// Reads `location.search` (with or without its `?`).
    pub fn parse(search: &str) -> Callback {
        let query = search.strip_prefix('?').unwrap_or(search);
        let state = query_value(query, "state");
        if let Some(error) = query_value(query, "error") {
            return Callback::Refused {
                error,
                description: query_value(query, "error_description"),
                state,
            };
        }
        match query_value(query, "code") {
            Some(code) if !code.is_empty() => Callback::Code { code, state },
            _ => Callback::None,
        }
    }
}

/// Why the answer of the identity service was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInError {
    /// This tab started no sign-in (or has finished it already): a code it did not ask for.
    NotStarted,
    /// The `state` is not the one this tab sent.
    StateMismatch,
    /// The identity service refused: its error code and description.
    Refused(String),
}

impl std::fmt::Display for SignInError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignInError::NotStarted => write!(f, "this page did not start a sign-in"),
            SignInError::StateMismatch => {
                write!(f, "the answer of the sign-in page was not for this page")
            }
            SignInError::Refused(why) => write!(f, "the sign-in failed: {why}"),
        }
    }
}

/// The code to exchange, if `callback` answers `pending` (taken from storage, so that an
/// answer is used once). `Ok(None)` for an ordinary visit.
pub fn complete(
    pending: Option<&PendingSignIn>,
    callback: &Callback,
) -> Result<Option<String>, SignInError> {
    let (state, code) = match callback {
        Callback::None => return Ok(None),
        Callback::Code { code, state } => (state, Some(code)),
        Callback::Refused { state, .. } => (state, None),
    };
    let pending = pending.ok_or(SignInError::NotStarted)?;
    if !state
        .as_deref()
        .is_some_and(|state| same(state, &pending.state))
    {
        return Err(SignInError::StateMismatch);
    }
    match (code, callback) {
        (Some(code), _) => Ok(Some(code.clone())),
        (
            None,
            Callback::Refused {
                error, description, ..
            },
        ) => Err(SignInError::Refused(match description {
            Some(description) => format!("{error} ({description})"),
            None => error.clone(),
        })),
        (None, _) => Ok(None),
    }
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |difference, (x, y)| difference | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "http://localhost:8080";

    fn pending() -> PendingSignIn {
        PendingSignIn::new([[1; 32], [2; 32], [3; 32]], "#/ward/ward-b")
    }

    #[test]
    fn the_pkce_challenge_is_rfc_7636s_example() {
        // RFC 7636, appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            pkce_challenge(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn secrets_are_43_base64url_characters() {
        let secret = secret(&[0xfb; 32]);
        assert_eq!(secret.len(), 43);
        assert!(
            secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{secret}"
        );
        assert_ne!(super::secret(&[0; 32]), super::secret(&[1; 32]));
    }

    #[test]
    fn the_authorization_request_names_the_client_origin_and_challenge() {
        let pending = pending();
        let url = pending.authorize_url(ORIGIN);
        let query = url.strip_prefix("/auth/authorize?").unwrap();
        let value = |name| query_value(query, name).unwrap();
        assert_eq!(value("response_type"), "code");
        assert_eq!(value("client_id"), "wardline-web");
        assert_eq!(value("redirect_uri"), "http://localhost:8080/");
        assert_eq!(value("aud"), "http://localhost:8080/fhir");
        assert_eq!(
            value("scope"),
            "openid fhirUser offline_access user/*.cruds"
        );
        assert_eq!(value("state"), pending.state);
        assert_eq!(value("nonce"), pending.nonce);
        assert_eq!(value("code_challenge"), pkce_challenge(&pending.verifier));
        assert_eq!(value("code_challenge_method"), "S256");
        assert!(
            query_value(query, "code_verifier").is_none(),
            "the verifier stays home"
        );
    }

    #[test]
    fn the_code_is_exchanged_with_the_verifier() {
        let pending = pending();
        let body = pending.token_request("https://ward.example/", "c0de/+");
        assert_eq!(
            body,
            format!(
                "grant_type=authorization_code&code=c0de%2F%2B\
                 &redirect_uri=https%3A%2F%2Fward.example%2F&client_id=wardline-web\
                 &code_verifier={}",
                pending.verifier
            )
        );
        assert_eq!(
            refresh_request(),
            "grant_type=refresh_token&client_id=wardline-web"
        );
    }

    #[test]
    fn the_page_to_return_to_is_always_a_page_of_the_app() {
        assert_eq!(pending().return_to, "#/ward/ward-b");
        for hash in [
            "",
            "#",
            "#/elsewhere",
            "#//evil.example",
            "javascript:alert(1)",
        ] {
            let pending = PendingSignIn::new([[0; 32]; 3], hash);
            assert!(
                pending.return_to == "#/ward/ward-a" || pending.return_to == "#/",
                "{hash}: {}",
                pending.return_to
            );
        }
    }

    #[test]
    fn a_pending_sign_in_survives_storage() {
        let pending = pending();
        assert_eq!(PendingSignIn::from_json(&pending.to_json()), Some(pending));
        assert_eq!(PendingSignIn::from_json("{}"), None);
    }

    #[test]
    fn callbacks_parse_from_the_query() {
        assert_eq!(Callback::parse(""), Callback::None);
        assert_eq!(Callback::parse("?name=x"), Callback::None);
        assert_eq!(
            Callback::parse("?code=abc&state=s%2B1"),
            Callback::Code {
                code: "abc".into(),
                state: Some("s+1".into())
            }
        );
        assert_eq!(
            Callback::parse("error=access_denied&error_description=the+user+denied&state=s"),
            Callback::Refused {
                error: "access_denied".into(),
                description: Some("the user denied".into()),
                state: Some("s".into())
            }
        );
    }

    #[test]
    fn a_code_is_taken_only_with_this_tabs_state() {
        let pending = pending();
        let answer = |state: &str| Callback::Code {
            code: "abc".into(),
            state: Some(state.into()),
        };
        assert_eq!(
            complete(Some(&pending), &answer(&pending.state)),
            Ok(Some("abc".into()))
        );
        assert_eq!(
            complete(Some(&pending), &answer("forged")),
            Err(SignInError::StateMismatch)
        );
        let without_state = Callback::Code {
            code: "abc".into(),
            state: None,
        };
        assert_eq!(
            complete(Some(&pending), &without_state),
            Err(SignInError::StateMismatch)
        );
        assert_eq!(
            complete(None, &answer(&pending.state)),
            Err(SignInError::NotStarted),
            "a code this tab did not ask for"
        );
        assert_eq!(complete(None, &Callback::None), Ok(None));
        assert_eq!(complete(Some(&pending), &Callback::None), Ok(None));
    }

    #[test]
    fn a_refusal_is_reported_only_with_this_tabs_state() {
        let pending = pending();
        let refused = |state: &str| Callback::Refused {
            error: "access_denied".into(),
            description: Some("the user denied the request".into()),
            state: Some(state.into()),
        };
        assert_eq!(
            complete(Some(&pending), &refused(&pending.state)),
            Err(SignInError::Refused(
                "access_denied (the user denied the request)".into()
            ))
        );
        assert_eq!(
            complete(Some(&pending), &refused("other")),
            Err(SignInError::StateMismatch)
        );
    }
}
