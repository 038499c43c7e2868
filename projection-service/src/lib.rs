//! projection-service: turns the event stream into read models (the hfj_* search indexes and the clinical workflow tables).
//!
//! So far it is the service's frame: configuration, migrations, `/health` and `/ready`
//! (Postgres and NATS reachable). The projectors arrive with the projections work.

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use service_kit::config::{DatabaseSettings, NatsSettings, TelemetrySettings};
use service_kit::health::tcp_check;
use tokio::net::TcpListener;

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
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub nats: NatsSettings,
    #[command(flatten)]
    pub telemetry: TelemetrySettings,
}

/// A built, bound service.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = event_store::EventStore::connect(
            secrecy::ExposeSecret::expose_secret(&settings.database.database_url),
            settings.database.database_max_connections,
        )
        .await
        .context("cannot connect to Postgres")?;
        event_store::store::migrate(&pool)
            .await
            .context("cannot apply the migrations")?;
        let checks = vec![
            service_kit::health::DependencyCheck::new("postgres", true, move || {
                let pool = pool.clone();
                async move {
                    sqlx::query("SELECT 1")
                        .execute(&pool)
                        .await
                        .map(|_| ())
                        .map_err(|error| error.to_string())
                }
            }),
            tcp_check("nats", true, &settings.nats.nats_url),
        ];
        let listener = service_kit::http::bind(settings.host, settings.port)
            .await
            .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.port))?;
        let router = service_kit::http::with_common_layers(service_kit::health::routes(
            "projection-service",
            checks,
        ));
        Ok(Application { listener, router })
    }

    /// The port actually bound (tests bind port 0).
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|address| address.port())
            .unwrap_or(0)
    }

    /// Serves until `shutdown` resolves.
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
