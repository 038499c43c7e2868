//! The query service's settings: `fhir-query-service --help` lists them all.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;
use service_kit::config::{
    DatabaseSettings, HttpSettings, PublicUrlSettings, RedisSettings, TelemetrySettings,
};

/// FHIR R4 reads: read and vread from the event store, search over the projections.
#[derive(Debug, Clone, Parser)]
#[command(name = "fhir-query-service", version)]
pub struct Settings {
    /// TOML file with settings (keys are the option names); the environment overrides it.
    #[arg(long, env = "FHIR_QUERY_SERVICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "FHIR_QUERY_SERVICE_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "FHIR_QUERY_SERVICE_PORT", default_value_t = 8082)]
    pub port: u16,
    /// The base that absolute references to this server start with, as the projection service
    /// indexes them (its `--fhir-base-url`).
    #[arg(
        long,
        env = "FHIR_REFERENCE_BASE_URL",
        default_value = "http://localhost:8080/fhir"
    )]
    pub reference_base_url: String,
    /// Longest a search carrying `X-Event-Position` waits for the projections, in
    /// milliseconds; past it the answer is 503.
    #[arg(long, env = "FHIR_QUERY_CONSISTENCY_WAIT_MS", default_value_t = 5000)]
    pub consistency_wait_ms: u64,
    /// Where `fullUrl`s and page links point.
    #[command(flatten)]
    pub public_url: PublicUrlSettings,
    #[command(flatten)]
    pub http: HttpSettings,
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// The read cache (`fhir:resource:<Type>/<id>`).
    #[command(flatten)]
    pub redis: RedisSettings,
    #[command(flatten)]
    pub telemetry: TelemetrySettings,
}
