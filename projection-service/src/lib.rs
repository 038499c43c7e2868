//! projection-service: turns the event stream into read models, the `hfj_*` FHIR search indexes
//! and the clinical workflow tables, which the query service searches.
//!
//! Events arrive from a durable JetStream consumer shared by all instances ([`consumer`]); each
//! batch is applied in one transaction by the version rule of [`apply`], which makes redelivery,
//! reordering and several instances harmless. [`rebuild`] replays the event store into fresh
//! tables and swaps them in. `/status` and `/metrics` report how far behind the store the
//! tables are.

pub mod apply;
pub mod cache;
pub mod change;
pub mod consumer;
pub mod rebuild;
pub mod sandbox;
pub mod status;
pub mod tables;
pub mod workflow;

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clap::{Parser, Subcommand};
use fhir_search::{ExtractOptions, Registry};
use secrecy::{ExposeSecret, SecretString};
use service_kit::config::{
    DatabaseSettings, HttpSettings, NatsSettings, RedisSettings, TelemetrySettings,
};
use service_kit::health::{DependencyCheck, tcp_check};
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::consumer::{Consumer, ConsumerSettings};

/// Events to read models: FHIR search indexes and clinical workflow tables.
#[derive(Debug, Clone, Parser)]
#[command(name = "projection-service", version)]
pub struct Settings {
    /// TOML file with settings (keys are the option names); the environment overrides it.
    #[arg(long, env = "PROJECTION_SERVICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "PROJECTION_SERVICE_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PROJECTION_SERVICE_PORT", default_value_t = 8083)]
    pub port: u16,
    /// The durable JetStream consumer; every instance uses the same one and shares the work.
    #[arg(long, env = "PROJECTION_CONSUMER", default_value = "projection-search")]
    pub consumer: String,
    /// Most events applied in one transaction.
    #[arg(long, env = "PROJECTION_BATCH_SIZE", default_value_t = 500)]
    pub batch_size: usize,
    /// This server's public FHIR base URL: absolute references starting with it are indexed
    /// as local references.
    #[arg(
        long,
        env = "FHIR_BASE_URL",
        default_value = "http://localhost:8080/fhir"
    )]
    pub fhir_base_url: String,
    #[command(flatten)]
    pub http: HttpSettings,
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub nats: NatsSettings,
    #[command(flatten)]
    pub redis: RedisSettings,
    /// Where the access tokens of operators (admins) come from.
    #[command(flatten)]
    pub auth: service_kit::auth::AuthSettings,
    #[command(flatten)]
    pub telemetry: TelemetrySettings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do instead of serving.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Replay the whole event store into fresh tables while the current ones keep serving, then
    /// swap them in. Prints a JSON report.
    Rebuild,
}

impl Settings {
    fn extract_options(&self) -> ExtractOptions {
        ExtractOptions {
            base_url: Some(self.fhir_base_url.clone()),
        }
    }
}

/// Connects to Postgres and applies the migrations (the event store's, which it reads, and the
/// index schema's, which it writes) and the views.
pub async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    let pool = event_store::EventStore::connect(
        settings.database.database_url.expose_secret(),
        settings.database.database_max_connections,
    )
    .await
    .context("cannot connect to Postgres")?;
    event_store::store::migrate(&pool)
        .await
        .context("cannot apply the event store's migrations")?;
    fhir_search::schema::migrate(&pool)
        .await
        .context("cannot apply the index schema's migrations")?;
    // Instances starting together would otherwise race on the views' catalogue rows; the swap
    // lock also keeps a rebuild from swapping tables under the views being created.
    let mut transaction = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(apply::SWAP_LOCK)
        .execute(&mut *transaction)
        .await?;
    workflow::install_views(&mut transaction)
        .await
        .context("cannot create the workflow views")?;
    transaction.commit().await?;
    Ok(pool)
}

/// Runs a rebuild (the `rebuild` command).
pub async fn run_rebuild(settings: &Settings) -> anyhow::Result<rebuild::RebuildReport> {
    let pool = connect(settings).await?;
    let report = rebuild::rebuild(
        &pool,
        settings.database.database_url.expose_secret(),
        Registry::r4(),
        &settings.extract_options(),
    )
    .await?;
    Ok(report)
}

/// A built, bound service.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    http: HttpSettings,
    consumer: Consumer,
}

#[derive(Clone)]
struct AdminState {
    pool: PgPool,
    database_url: SecretString,
    options: ExtractOptions,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = connect(&settings).await?;
        let consumer = Consumer::start(
            pool.clone(),
            ConsumerSettings {
                nats_url: settings.nats.nats_url.clone(),
                stream: settings.nats.events_stream.clone(),
                subject_prefix: settings.nats.events_subject_prefix.clone(),
                consumer: settings.consumer.clone(),
                batch_size: settings.batch_size.max(1),
                redis_url: settings.redis.redis_url.clone(),
                extract: settings.extract_options(),
            },
        );
        let status = consumer.status();
        tokio::spawn(drop_ended_sandbox_runs(pool.clone()));
        let checks = vec![
            service_kit::health::postgres_check(pool.clone()),
            DependencyCheck::new("jetstream-consumer", true, {
                let status = status.clone();
                move || {
                    let status = status.clone();
                    async move {
                        if status.is_connected() {
                            Ok(())
                        } else {
                            Err(status
                                .last_error()
                                .unwrap_or_else(|| "not connected yet".to_owned()))
                        }
                    }
                }
            }),
            tcp_check("redis", false, &settings.redis.redis_url),
        ];
        let admin = axum::Router::new()
            .route("/admin/rebuild", post(rebuild_now))
            .with_state(AdminState {
                pool: pool.clone(),
                database_url: settings.database.database_url.clone(),
                options: settings.extract_options(),
            });
        let auth = service_kit::auth::Authenticator::from_settings(
            &settings.auth,
            &settings.redis.redis_url,
        )
        .context("cannot set up access-token checks")?;
        let operations =
            status::routes(pool, status)
                .merge(admin)
                .layer(axum::middleware::from_fn_with_state(
                    auth,
                    service_kit::auth::operators_only,
                ));
        let router = service_kit::health::routes("projection-service", checks).merge(operations);
        let listener = service_kit::http::bind(settings.host, settings.port)
            .await
            .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.port))?;
        Ok(Application {
            listener,
            router: service_kit::http::with_common_layers(router),
            http: settings.http.clone(),
            consumer,
        })
    }

    /// The port actually bound (tests bind port 0).
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|address| address.port())
            .unwrap_or(0)
    }

    /// Serves until `shutdown` resolves, then stops consuming.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let served =
            service_kit::http::serve(self.listener, self.router, &self.http, shutdown).await;
        self.consumer.stop().await;
        served?;
        Ok(())
    }
}

/// Drops the index rows of ended sandbox runs now and then, for as long as the process runs.
async fn drop_ended_sandbox_runs(pool: PgPool) {
    let mut every = tokio::time::interval(sandbox::DROP_ENDED_RUNS_EVERY);
    loop {
        every.tick().await;
        if let Err(error) = sandbox::drop_ended_runs(&pool).await {
            tracing::warn!(%error, "dropping the rows of ended sandbox runs failed; retrying later");
        }
    }
}

/// `POST /admin/rebuild`: runs a rebuild and answers with its report when it is done.
async fn rebuild_now(State(state): State<AdminState>) -> Response {
    match rebuild::rebuild(
        &state.pool,
        state.database_url.expose_secret(),
        Registry::r4(),
        &state.options,
    )
    .await
    {
        Ok(report) => Json(report).into_response(),
        Err(rebuild::RebuildError::AlreadyRunning) => (
            StatusCode::CONFLICT,
            Json(serde_json::json!({"error": "another rebuild is running"})),
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "rebuild failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({"error": "rebuild failed; the live tables are unchanged"})),
            )
                .into_response()
        }
    }
}
