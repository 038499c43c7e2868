//! identity-service: Wardline's OAuth 2.0 authorization server and SMART App Launch 2.2 server.
//!
//! People sign in here (authorization code with PKCE, a sign-in page, a consent page with a
//! patient picker); backend services authenticate with signed assertions (client credentials,
//! `private_key_jwt`). What comes out is an ES256 JWT whose payload is exactly
//! `access_policy::AccessClaims`, checked by every other service against the keys published at
//! `/.well-known/jwks.json`, and a session in Redis that it lives no longer than: signing out,
//! revoking a token or replaying a spent refresh token ends the session, and the resource
//! servers hear of it on the `session:revoked` channel.
//!
//! The pieces:
//! - [`routes`]: the endpoints, one file each; [`error`] is the one place errors become
//!   responses (OAuth JSON, or an HTML page where a person is looking);
//! - [`keys`]: the signing keys, their rotation and the JWKS;
//! - [`store`]: users and clients in Postgres; [`transient`]: sessions, codes, refresh tokens,
//!   throttle counters in Redis;
//! - [`client_auth`], [`bearer`], [`tokens`], [`scopes`]: who is asking, and what they get;
//! - [`directory`]: the demo users and clients of development mode, the users and clients file
//!   of production;
//! - [`pages`], [`picker`]: what a person sees, and the patient search behind the picker.

pub mod bearer;
pub mod client_auth;
pub mod directory;
pub mod error;
pub mod ids;
pub mod keys;
pub mod pages;
pub mod params;
pub mod password;
pub mod picker;
pub mod routes;
pub mod scopes;
pub mod settings;
pub mod store;
pub mod tokens;
pub mod transient;

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ipnet::IpNet;
use secrecy::ExposeSecret;
use service_kit::config::HttpSettings;
use service_kit::health::DependencyCheck;
use tokio::net::TcpListener;

pub use settings::{Mode, Settings};
pub use tokens::TokenResponse;

use crate::keys::KeyRing;
use crate::password::Passwords;
use crate::picker::Picker;
use crate::store::Store;
use crate::transient::Transient;

/// What every request handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The service's parts and settings.
pub struct Shared {
    pub settings: Settings,
    pub store: Store,
    pub transient: Transient,
    pub keys: KeyRing,
    pub passwords: Passwords,
    pub picker: Picker,
    /// Client JWKS (`jwks_uri`) are fetched with it.
    pub http: reqwest::Client,
    pub trusted_proxies: Vec<IpNet>,
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Shared {
    /// An endpoint's URL: the issuer and `path` (`/token`).
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.settings.issuer.trim_end_matches('/'))
    }

    /// The audience of tokens whose request named none.
    pub fn default_audience(&self) -> &str {
        self.settings
            .audiences
            .first()
            .map_or("http://localhost:8080/fhir", String::as_str)
    }

    pub fn access_token_ttl(&self) -> Duration {
        Duration::from_secs(self.settings.tokens.access_token_ttl_secs.max(1))
    }

    /// Whether cookies may only travel over HTTPS: in production behind an HTTPS issuer (in
    /// development the edge is also reached over plain HTTP on port 8080).
    pub fn secure_cookies(&self) -> bool {
        self.settings.mode == Mode::Production && self.settings.issuer.starts_with("https://")
    }
}

/// A built, bound service.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    http: HttpSettings,
    state: AppState,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = Store::connect(
            settings.database.database_url.expose_secret(),
            settings.database.database_max_connections,
        )
        .await
        .context("cannot connect to Postgres")?;
        store
            .migrate()
            .await
            .context("cannot apply the identity service's migrations")?;
        let transient =
            Transient::connect(&settings.redis.redis_url, &settings.sign_in.throttle_prefix)
                .await
                .context("cannot connect to Redis")?;
        let keys = KeyRing::open(
            &settings.data_dir,
            Duration::from_secs(settings.tokens.access_token_ttl_secs.max(1)),
        )
        .context("cannot load the signing keys")?;
        let passwords = Passwords::new(&settings.passwords)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build an HTTP client")?;
        let picker = Picker::new(http.clone(), &settings.internal_fhir_base);
        let listener = service_kit::http::bind(settings.host, settings.port)
            .await
            .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.port))?;
        let state = AppState(Arc::new(Shared {
            trusted_proxies: settings.proxies.trusted_proxies.clone(),
            http: http.clone(),
            settings: settings.clone(),
            store: store.clone(),
            transient: transient.clone(),
            keys,
            passwords,
            picker,
        }));
        if settings.mode == Mode::Development {
            directory::seed_development(&state)
                .await
                .context("cannot create the demo users and clients")?;
        }
        if let Some(path) = &settings.directory {
            directory::load_file(&state, path)
                .await
                .with_context(|| format!("cannot load the directory {}", path.display()))?;
        }
        let checks = vec![
            service_kit::health::postgres_check(store.pool().clone()),
            DependencyCheck::new("redis", true, move || {
                let transient = transient.clone();
                async move { transient.ping().await.map_err(|error| error.to_string()) }
            }),
        ];
        let router = routes::router(state.clone())
            .merge(service_kit::health::routes("identity-service", checks));
        Ok(Application {
            listener,
            router: service_kit::http::with_common_layers(router),
            http: settings.http,
            state,
        })
    }

    /// The port actually bound (tests bind port 0).
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|address| address.port())
            .unwrap_or(0)
    }

    /// The service's shared parts, for a process that embeds it (tests re-point the patient
    /// picker with `state().picker.set_base`).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves, then lets requests in flight finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        service_kit::http::serve(self.listener, self.router, &self.http, shutdown).await?;
        Ok(())
    }
}
