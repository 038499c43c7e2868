//! Who the client at the token, introspection and revocation endpoints is, and how it proved it.
//!
//! - `none`: a public client names itself (`client_id`); PKCE protects its codes.
//! - `client_secret_basic`: `Authorization: Basic` with the id and secret (RFC 6749 2.3.1),
//!   checked against the secret's Argon2 hash.
//! - `private_key_jwt` (RFC 7523, SMART Backend Services): a JWT signed RS384 or ES384 with a
//!   key of the client's registered JWK Set, `iss` = `sub` = the client id, `aud` = the token
//!   endpoint, expiring at most five minutes ahead, its `jti` never seen before.
//!
//! A confidential client must prove itself; naming it is not enough.

use std::time::Duration;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::AppState;
use crate::error::Error;
use crate::params::Params;
use crate::store::{Client, ClientKind};
use crate::transient::now;

/// The `client_assertion_type` of a JWT assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Algorithms a client may sign its assertion with (SMART Backend Services).
pub const ASSERTION_ALGORITHMS: [Algorithm; 2] = [Algorithm::RS384, Algorithm::ES384];
/// The furthest ahead an assertion may expire.
const MAX_ASSERTION_LIFETIME: i64 = 300;
/// Leeway for clocks a little apart.
const LEEWAY_SECONDS: i64 = 5;

/// How the client proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    None,
    SecretBasic,
    PrivateKeyJwt,
}

/// A client that has identified (and, if confidential, authenticated) itself.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub client: Client,
    pub method: Method,
}

impl Authenticated {
    /// Whether it proved it holds a secret or key.
    pub fn is_confidential(&self) -> bool {
        self.method != Method::None
    }
}

/// The client of a request to a client endpoint.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Authenticated, Error> {
    let named = params.get("client_id");
    let authenticated = if let Some((id, secret)) = basic_credentials(headers)? {
        let client = find(state, &id).await?;
        let verified = match &client.secret_hash {
            Some(hash) => state.passwords.verify(&secret, Some(hash)).await,
            None => false,
        };
        if !verified {
            return Err(Error::ClientAuthentication(
                "the client secret is wrong".to_owned(),
            ));
        }
        Authenticated {
            client,
            method: Method::SecretBasic,
        }
    } else if let Some(kind) = params.get("client_assertion_type") {
        if kind != JWT_BEARER {
            return Err(Error::ClientAuthentication(format!(
                "client_assertion_type must be {JWT_BEARER}"
            )));
        }
        let assertion = params.require("client_assertion")?;
        Authenticated {
            client: verify_assertion(state, assertion).await?,
            method: Method::PrivateKeyJwt,
        }
    } else if let Some(id) = named {
        let client = find(state, id).await?;
        if client.kind == ClientKind::Confidential {
            return Err(Error::ClientAuthentication(format!(
                "client '{id}' is confidential and must authenticate (private_key_jwt or client_secret_basic)"
            )));
        }
        Authenticated {
            client,
            method: Method::None,
        }
    } else {
        return Err(Error::ClientAuthentication(
            "the request names no client".to_owned(),
        ));
    };
    if let Some(id) = named
        && id != authenticated.client.client_id
    {
        return Err(Error::ClientAuthentication(
            "client_id is not the client that authenticated".to_owned(),
        ));
    }
    Ok(authenticated)
}

async fn find(state: &AppState, client_id: &str) -> Result<Client, Error> {
    state
        .store
        .client(client_id)
        .await?
        .ok_or_else(|| Error::ClientAuthentication(format!("there is no client '{client_id}'")))
}

/// The id and secret of `Authorization: Basic`, each form-urlencoded (RFC 6749 2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, Error> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || Error::ClientAuthentication("malformed Basic credentials".to_owned());
    let value = value.to_str().map_err(|_| bad())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |text: &str| {
        form_urlencoded::parse(format!("x={text}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// The claims a client assertion must carry.
#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    jti: Option<String>,
}

/// The client a `private_key_jwt` assertion proves, once all its checks pass.
async fn verify_assertion(state: &AppState, assertion: &str) -> Result<Client, Error> {
    let refused = |why: String| Error::ClientAuthentication(format!("client assertion: {why}"));
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| refused("not a well-formed JWT".to_owned()))?;
    if !ASSERTION_ALGORITHMS.contains(&header.alg) {
        return Err(refused(format!(
            "signed with {:?}; only RS384 and ES384 are accepted",
            header.alg
        )));
    }
    // Which client it claims to be decides which keys check it; nothing else is read before
    // the signature is verified.
    let claimed: AssertionClaims = jsonwebtoken::dangerous::insecure_decode_claims(assertion)
        .map_err(|_| refused("its claims are not readable".to_owned()))?;
    let client = find(state, &claimed.iss).await?;
    if client.kind != ClientKind::Confidential {
        return Err(refused(format!(
            "client '{}' is public and has no keys",
            client.client_id
        )));
    }
    let keys = client_keys(state, &client).await?;
    let candidates: Vec<&Jwk> = keys
        .keys
        .iter()
        .filter(|jwk| header.kid.is_none() || jwk.common.key_id == header.kid)
        .filter(|jwk| fits(jwk, header.alg))
        .collect();
    if candidates.is_empty() {
        return Err(refused(
            "no key of the client's JWK Set matches its kid and algorithm".to_owned(),
        ));
    }
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[&client.client_id]);
    validation.sub = Some(client.client_id.clone());
    validation.set_audience(&[state.endpoint("/token")]);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.leeway = LEEWAY_SECONDS as u64;
    let mut last_error = None;
    let mut verified = None;
    for jwk in candidates {
        let key = match DecodingKey::from_jwk(jwk) {
            Ok(key) => key,
            Err(error) => {
                last_error = Some(error.to_string());
                continue;
            }
        };
        match jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation) {
            Ok(data) => {
                verified = Some(data.claims);
                break;
            }
            Err(error) => last_error = Some(error.to_string()),
        }
    }
    let claims = verified.ok_or_else(|| {
        refused(format!(
            "not valid with the client's keys: {}",
            last_error.unwrap_or_default()
        ))
    })?;
    if claims.iss != claims.sub {
        return Err(refused("iss and sub must both be the client id".to_owned()));
    }
    let remaining = claims.exp - now();
    if remaining > MAX_ASSERTION_LIFETIME + LEEWAY_SECONDS {
        return Err(refused(format!(
            "exp is {remaining} s ahead; at most {MAX_ASSERTION_LIFETIME} s is accepted"
        )));
    }
    let jti = claims
        .jti
        .filter(|jti| !jti.is_empty() && jti.len() <= 256)
        .ok_or_else(|| refused("jti is required".to_owned()))?;
    let keep = Duration::from_secs(u64::try_from(remaining + LEEWAY_SECONDS).unwrap_or(1));
    if !state
        .transient
        .claim_assertion(&client.client_id, &jti, keep)
        .await?
    {
        return Err(refused(
            "this assertion (its jti) was used before".to_owned(),
        ));
    }
    Ok(client)
}

/// Whether `jwk` is a key of the kind `algorithm` signs with.
fn fits(jwk: &Jwk, algorithm: Algorithm) -> bool {
    match (&jwk.algorithm, algorithm) {
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => {
            ec.curve == EllipticCurve::P384
        }
        (AlgorithmParameters::RSA(_), Algorithm::RS384) => true,
        _ => false,
    }
}

/// The client's JWK Set: registered inline, or fetched from its `jwks_uri`.
async fn client_keys(state: &AppState, client: &Client) -> Result<JwkSet, Error> {
    let refused = |why: String| Error::ClientAuthentication(format!("client keys: {why}"));
    if let Some(jwks) = &client.jwks {
        return serde_json::from_value(jwks.clone())
            .map_err(|error| refused(format!("the registered JWK Set is unreadable: {error}")));
    }
    let Some(uri) = &client.jwks_uri else {
        return Err(refused("the client has no registered keys".to_owned()));
    };
    let response = state
        .http
        .get(uri)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| refused(format!("cannot fetch {uri}: {error}")))?;
    response
        .json::<JwkSet>()
        .await
        .map_err(|error| refused(format!("{uri} is not a JWK Set: {error}")))
}
