//! How the command line signs in: as a backend service (OAuth 2.0 `client_credentials` with a
//! signed client assertion, SMART Backend Services), or with a token it is given. The token is
//! kept for the run and fetched again shortly before it expires, so a long import outlives the
//! 15 minutes an access token lives.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Where the command line gets its access token.
#[derive(Clone, clap::Args)]
pub struct Credentials {
    /// An access token to use as it is (instead of signing in).
    #[arg(long, env = "WARDLINE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The identity service's token endpoint.
    #[arg(
        long,
        env = "WARDLINE_TOKEN_URL",
        default_value = "http://127.0.0.1:8085/auth/token"
    )]
    pub token_url: String,
    /// The backend client to sign in as.
    #[arg(long, env = "WARDLINE_CLIENT_ID", default_value = "wardline-cli")]
    pub client_id: String,
    /// The client's private key (PEM, ES384), whose public half the identity service holds
    /// (`./deploy/dev up` makes one for `wardline-cli`).
    #[arg(long, env = "WARDLINE_CLIENT_KEY")]
    pub client_key: Option<PathBuf>,
    /// The scopes to ask for.
    #[arg(long, env = "WARDLINE_SCOPE", default_value = "system/*.cruds")]
    pub scope: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_key", &self.client_key)
            .field("scope", &self.scope)
            .finish()
    }
}

/// A token, and when to fetch the next.
struct Held {
    token: String,
    renew_at: Instant,
}

/// Gives a current access token; cheap to clone.
#[derive(Clone)]
pub struct TokenSource {
    credentials: Arc<Credentials>,
    http: reqwest::Client,
    held: Arc<Mutex<Option<Held>>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token itself.
        f.debug_struct("TokenSource")
            .field("client_id", &self.credentials.client_id)
            .field("token_url", &self.credentials.token_url)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    pub fn new(credentials: Credentials) -> TokenSource {
        TokenSource {
            credentials: Arc::new(credentials),
            http: reqwest::Client::new(),
            held: Arc::new(Mutex::new(None)),
        }
    }

    /// The access token to send now.
    pub async fn bearer(&self) -> anyhow::Result<String> {
        if let Some(token) = &self.credentials.token {
            return Ok(token.clone());
        }
        let mut held = self.held.lock().await;
        if let Some(current) = held.as_ref().filter(|held| Instant::now() < held.renew_at) {
            return Ok(current.token.clone());
        }
        let (token, lifetime) = self.sign_in().await?;
        // A minute early (or at half its life, for short ones), so no request carries a token
        // that expires on the way.
        let margin = Duration::from_secs(60).min(lifetime / 2);
        *held = Some(Held {
            token: token.clone(),
            renew_at: Instant::now() + lifetime - margin,
        });
        Ok(token)
    }

    /// The token endpoint as the identity service names it (its `smart-configuration`), which
    /// is what a client assertion's `aud` must say: the URL the command line posts to may be
    /// another way to the same service (`http://127.0.0.1:8085/auth/token` behind the edge's
    /// `https://localhost:8443/auth/token`). The URL posted to, when discovery fails.
    async fn token_endpoint(&self) -> String {
        let posted = &self.credentials.token_url;
        let discovery = match posted.find("/auth/") {
            Some(index) => format!("{}/.well-known/smart-configuration", &posted[..index]),
            None => return posted.clone(),
        };
        let advertised = async {
            let configuration: Value = self
                .http
                .get(&discovery)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            configuration["token_endpoint"].as_str().map(str::to_owned)
        };
        advertised.await.unwrap_or_else(|| posted.clone())
    }

    async fn sign_in(&self) -> anyhow::Result<(String, Duration)> {
        let credentials = &self.credentials;
        let key_path = credentials.client_key.as_ref().context(
            "no access token: give --token, or --client-key with the backend client's private key",
        )?;
        let pem = std::fs::read(key_path)
            .with_context(|| format!("cannot read the client key {}", key_path.display()))?;
        let key = EncodingKey::from_ec_pem(&pem)
            .with_context(|| format!("{} is not an EC private key in PEM", key_path.display()))?;
        let audience = self.token_endpoint().await;
        let now = chrono::Utc::now().timestamp();
        let assertion = jsonwebtoken::encode(
            &Header::new(Algorithm::ES384),
            &json!({
                "iss": credentials.client_id,
                "sub": credentials.client_id,
                "aud": audience,
                "iat": now,
                "exp": now + 240,
                "jti": uuid::Uuid::new_v4().to_string(),
            }),
            &key,
        )
        .context("cannot sign the client assertion")?;
        let response = self
            .http
            .post(&credentials.token_url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", credentials.scope.as_str()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
            ])
            .send()
            .await
            .with_context(|| {
                format!("cannot reach the token endpoint {}", credentials.token_url)
            })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        anyhow::ensure!(
            status.is_success(),
            "signing in as {} was refused ({status}): {}",
            credentials.client_id,
            body["error_description"]
                .as_str()
                .or(body["error"].as_str())
                .unwrap_or("no reason given")
        );
        let token = body["access_token"]
            .as_str()
            .context("the token response has no access_token")?
            .to_owned();
        let lifetime = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(300).max(2));
        Ok((token, lifetime))
    }
}
