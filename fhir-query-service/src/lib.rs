//! fhir-query-service: the read side of the FHIR API.
//!
//! A read by id is answered from the Redis read cache when it holds the resource, else from
//! the event store (and the cache is given what was read); vread and history come from the
//! event store. The command service puts each committed version in the cache before it
//! acknowledges the write, so a client that got `201 Created` and then reads gets the resource
//! (`service_kit::resource_cache` documents the one narrow exception, when Redis refuses the
//! writer's store but takes a concurrent reader's older one). Search is
//! answered from the projection service's `hfj_*` tables (module `search`), waiting for the
//! client's own writes when it presents their position (`fhir_search::sql::checkpoint`). A path
//! that names no resource this server could hold is refused in one place (`error.rs`).

mod access;
mod error;
mod past;
mod routes;
mod sandbox;
pub mod search;
mod settings;

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use event_store::EventStore;
use event_store::store::migrate;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

pub use settings::{SearchSettings, Settings};

/// A built, bound query service.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    http: service_kit::config::HttpSettings,
    searcher: search::Searcher,
    cleanup_interval: Duration,
}

impl Application {
    /// Connects to Postgres, applies the migrations, binds the port.
    ///
    /// Both sets: the event store's (reads by id) and the index schema's (searches), which the
    /// projection service also applies; this service may start first, and then finds nothing
    /// until the projection has caught up, rather than failing.
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
        let store = EventStore::new(pool.clone());
        let cache =
            service_kit::resource_cache::ResourceCache::new(Some(&settings.redis.redis_url));
        let searcher = search::Searcher::new(
            store.clone(),
            settings.reference_base_url.clone(),
            cache.clone(),
            search::Budget {
                limits: settings.search.limits(),
                statement_timeout: Duration::from_millis(
                    settings.search.search_statement_timeout_ms,
                ),
                result_ttl: Duration::from_secs(settings.search.search_result_ttl_secs),
                results_per_client: settings.search.search_results_per_client,
            },
        );
        let state = routes::AppState {
            store,
            cache: cache.clone(),
            searcher: searcher.clone(),
            checkpoint: fhir_search::sql::checkpoint::Checkpoint::follow(pool.clone()),
            consistency_wait: std::time::Duration::from_millis(settings.consistency_wait_ms),
            public_url: settings.public_url.clone(),
            trusted_proxies: settings.proxies.trusted_proxies.clone().into(),
            auth_public_url: settings.auth.auth_public_url.clone(),
            auth: service_kit::auth::Authenticator::from_settings(
                &settings.auth,
                &settings.redis.redis_url,
            )
            .context("cannot set up access-token checks")?
            .with_rate_limits(
                service_kit::rate_limit::RateLimiter::new(
                    &settings.rate_limits,
                    &settings.redis.redis_url,
                    "wardline",
                ),
                &settings.proxies,
            ),
        };
        let listener = service_kit::http::bind(settings.host, settings.port)
            .await
            .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.port))?;
        let checks = vec![service_kit::health::postgres_check(pool)];
        let router = service_kit::http::with_common_layers(
            routes::router(state).merge(service_kit::health::routes("fhir-query-service", checks)),
        );
        Ok(Application {
            listener,
            router,
            http: settings.http,
            searcher,
            cleanup_interval: Duration::from_secs(
                settings.search.search_result_cleanup_interval_secs.max(1),
            ),
        })
    }

    /// The port actually bound (tests bind port 0).
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|address| address.port())
            .unwrap_or(0)
    }

    /// Serves until `shutdown` resolves, then drains; meanwhile deletes expired result lists
    /// on schedule.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let cleanup = tokio::spawn(delete_expired_results(self.searcher, self.cleanup_interval));
        let served =
            service_kit::http::serve(self.listener, self.router, &self.http, shutdown).await;
        cleanup.abort();
        served?;
        Ok(())
    }
}

/// Deletes expired result lists every `interval`, for as long as the service runs.
async fn delete_expired_results(searcher: search::Searcher, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match searcher.delete_expired().await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "expired result lists deleted"),
            Err(error) => tracing::warn!(%error, "cannot delete expired result lists"),
        }
    }
}
