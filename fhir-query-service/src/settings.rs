//! The query service's settings: `fhir-query-service --help` lists them all.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;
use service_kit::config::{DatabaseSettings, TelemetrySettings};

/// FHIR R4 reads. For now: read and vread, served from the event store itself.
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
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub telemetry: TelemetrySettings,
}
