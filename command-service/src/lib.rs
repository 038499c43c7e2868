//! command-service: the write side of the FHIR API.
//!
//! Every write is a transaction of entries (ADR 0007). `POST/PUT/PATCH/DELETE /fhir/...` are
//! read into one entry each (`routes/`, `request.rs`), and `POST /fhir` Bundles into a list of
//! them (`bundle/`, `entry.rs`); `transaction.rs` runs them: the planner decides what each
//! entry means (`plan.rs`, with conditional matching over the projected indexes in
//! `conditional.rs`), and the commit loop decides each command on the resource aggregate and
//! appends the events to the event store in one database transaction (`commit.rs`). The
//! response carries the version, `ETag`, `Last-Modified`, `Location` and the global position
//! the write committed at (`response.rs`). The outbox relay runs alongside and publishes
//! committed events to JetStream. All errors leave through `error.rs`.

mod access;
mod bundle;
mod commit;
mod conditional;
mod entry;
mod error;
mod plan;
mod references;
mod request;
mod response;
mod routes;
mod sandbox;
mod scenario;
mod settings;
mod teaching;
mod transaction;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use event_store::store::migrate;
use event_store::{EventStore, OutboxRelay, RelaySettings};
use fhir_model::{ResourceType, ResourceValidator};
use fhir_search::sql::checkpoint::Checkpoint;
use secrecy::ExposeSecret;
use service_kit::auth::Authenticator;
use service_kit::health::DependencyCheck;
use service_kit::rate_limit::RateLimiter;
use service_kit::resource_cache::ResourceCache;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;

pub use settings::Settings;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub store: EventStore,
    pub settings: Arc<Settings>,
    /// The read cache (`fhir:resource:*`), updated before a write is acknowledged.
    pub cache: ResourceCache,
    /// Matches the criteria of conditional writes.
    pub matcher: conditional::Matcher,
    /// Checks each request's access token.
    pub auth: Authenticator,
    /// The teaching sandbox this request writes in (`/sandbox/<name>/fhir`); none for the live
    /// record.
    pub sandbox: Option<Arc<event_store::sandbox::Sandbox>>,
    /// The scenarios playing into sandboxes from this process.
    pub players: Arc<scenario::player::Players>,
}

impl axum::extract::FromRef<AppState> for Authenticator {
    fn from_ref(state: &AppState) -> Authenticator {
        state.auth.clone()
    }
}

/// A built, bound command service.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    http: service_kit::config::HttpSettings,
    relay: Option<OutboxRelay>,
}

impl Application {
    /// Connects to Postgres, applies the migrations, starts the relay, binds the port.
    ///
    /// Both sets: the event store's (writes) and the index schema's (conditional writes match
    /// with a search and wait for the projection checkpoint), which the projection service
    /// also applies; this service may start first.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = EventStore::connect(
            settings.database.database_url.expose_secret(),
            settings.database.database_max_connections,
        )
        .await
        .context("cannot connect to Postgres")?;
        migrate(&pool)
            .await
            .context("cannot apply the event store's migrations")?;
        fhir_search::schema::migrate(&pool)
            .await
            .context("cannot apply the index schema's migrations")?;
        let store = EventStore::new(pool);
        if settings.warm_validators {
            warm_up_validators();
        }

        let relay = settings.relay.then(|| {
            OutboxRelay::start(
                store.clone(),
                RelaySettings {
                    nats_url: settings.nats.nats_url.clone(),
                    stream: settings.nats.events_stream.clone(),
                    subject_prefix: settings.nats.events_subject_prefix.clone(),
                },
            )
        });
        let checks = readiness_checks(&store, relay.as_ref());
        let listener = service_kit::http::bind(settings.host, settings.port)
            .await
            .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.port))?;
        let matcher = conditional::Matcher::new(
            PgPoolOptions::new()
                .max_connections(settings.conditional_connections.max(1))
                .connect_lazy(settings.database.database_url.expose_secret())
                .context("invalid database URL")?,
            Checkpoint::follow(store.pool().clone()),
            settings.reference_base_url.clone(),
            Duration::from_millis(settings.conditional_wait_ms),
            Duration::from_millis(settings.conditional_statement_timeout_ms),
        );
        let http = settings.http.clone();
        let max_body_bytes = settings.max_body_bytes;
        let auth = Authenticator::from_settings(&settings.auth, &settings.redis.redis_url)
            .context("cannot set up access-token checks")?
            .with_rate_limits(
                RateLimiter::new(&settings.rate_limits, &settings.redis.redis_url, "wardline"),
                &settings.proxies,
            );
        let state = AppState {
            store,
            matcher,
            auth,
            cache: ResourceCache::new(Some(&settings.redis.redis_url)),
            settings: Arc::new(settings),
            sandbox: None,
            players: Arc::default(),
        };
        let router =
            service_kit::http::with_common_layers(service_kit::http::with_buffered_bodies(
                routes::router(state).merge(service_kit::health::routes("command-service", checks)),
                max_body_bytes,
            ));
        Ok(Application {
            listener,
            router,
            http,
            relay,
        })
    }

    /// The port actually bound (tests bind port 0).
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|address| address.port())
            .unwrap_or(0)
    }

    /// Serves until `shutdown` resolves, then drains requests and stops the relay.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        service_kit::http::serve(self.listener, self.router, &self.http, shutdown).await?;
        if let Some(relay) = self.relay {
            relay.stop().await;
        }
        Ok(())
    }
}

fn readiness_checks(store: &EventStore, relay: Option<&OutboxRelay>) -> Vec<DependencyCheck> {
    let mut checks = vec![service_kit::health::postgres_check(store.pool().clone())];
    if let Some(relay) = relay {
        // Not required: with NATS down, writes still succeed and the events wait in the outbox.
        let status = relay.status();
        checks.push(DependencyCheck::new(
            "nats-outbox-relay",
            false,
            move || {
                let status = status.clone();
                async move {
                    match (
                        status.is_connected(),
                        status.last_error(),
                        status.is_leader(),
                    ) {
                        (true, _, _) => Ok(()),
                        (false, Some(error), _) => Err(error),
                        (false, None, true) => Err("connecting to NATS".to_owned()),
                        // Standing by while another instance's relay publishes.
                        (false, None, false) => Ok(()),
                    }
                }
            },
        ));
    }
    checks
}

/// Compiles the JSON Schema validators in the background, so the first write of each type does
/// not pay for it.
fn warm_up_validators() {
    tokio::task::spawn_blocking(|| {
        let validator = ResourceValidator::global();
        for resource_type in ResourceType::all() {
            validator.validate(resource_type, &serde_json::json!({}));
        }
    });
}
