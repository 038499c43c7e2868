//! fhir-query-service: the read side of the FHIR API.
//!
//! Reads by id (`read`, `vread`) are answered from the event store itself, so they are strongly
//! consistent: a client that got `201 Created` and then reads gets the resource, every time.
//! Search is answered from the projection service's `hfj_*` tables (module `search`), waiting
//! for the client's own writes when it presents their position (`fhir_search::sql::checkpoint`).

mod routes;
pub mod search;
mod settings;

use std::future::Future;

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
}

impl Application {
    /// Connects to Postgres, applies the migrations, binds the port.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = EventStore::connect(
            settings.database.database_url.expose_secret(),
            settings.database.database_max_connections,
        )
        .await
        .context("cannot connect to Postgres")?;
        migrate(&pool)
            .await
            .context("cannot apply the migrations")?;
        let store = EventStore::new(pool.clone());
        let cache =
            service_kit::resource_cache::ResourceCache::new(Some(&settings.redis.redis_url));
        let state = routes::AppState {
            store,
            cache: cache.clone(),
            searcher: search::Searcher::new(
                pool.clone(),
                settings.reference_base_url.clone(),
                cache,
                search::Budget {
                    limits: settings.search.limits(),
                    statement_timeout: std::time::Duration::from_millis(
                        settings.search.search_statement_timeout_ms,
                    ),
                },
            ),
            checkpoint: fhir_search::sql::checkpoint::Checkpoint::follow(pool.clone()),
            consistency_wait: std::time::Duration::from_millis(settings.consistency_wait_ms),
            base_url: settings.fhir_base_url.clone(),
        };
        let listener = service_kit::http::bind(settings.host, settings.port)
            .await
            .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.port))?;
        let checks = vec![service_kit::health::postgres_check(pool)];
        let router = service_kit::http::with_common_layers(
            routes::router(state).merge(service_kit::health::routes("fhir-query-service", checks)),
        );
        Ok(Application { listener, router })
    }

    /// The port actually bound (tests bind port 0).
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|address| address.port())
            .unwrap_or(0)
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}
