//! notifier: streams clinical events to WebSocket clients (ward dashboards).
//!
//! So far it is the service's frame: configuration, `/health` and `/ready` (NATS and Redis
//! reachable). The WebSocket endpoint arrives with the real-time work.

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use service_kit::config::{NatsSettings, RedisSettings, TelemetrySettings};
use service_kit::health::tcp_check;
use tokio::net::TcpListener;

/// Events to WebSocket clients: live ward dashboards.
#[derive(Debug, Clone, Parser)]
#[command(name = "notifier", version)]
pub struct Settings {
    /// TOML file with settings (keys are the option names); the environment overrides it.
    #[arg(long, env = "NOTIFIER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "NOTIFIER_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "NOTIFIER_PORT", default_value_t = 8084)]
    pub port: u16,
    #[command(flatten)]
    pub nats: NatsSettings,
    #[command(flatten)]
    pub redis: RedisSettings,
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
        let checks = vec![
            tcp_check("nats", true, &settings.nats.nats_url),
            tcp_check("redis", true, &settings.redis.redis_url),
        ];
        let listener = service_kit::http::bind(settings.host, settings.port)
            .await
            .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.port))?;
        let router =
            service_kit::http::with_common_layers(service_kit::health::routes("notifier", checks));
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
