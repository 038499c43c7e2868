//! The command service's settings: `command-service --help` lists them all.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;
use service_kit::auth::AuthSettings;
use service_kit::config::{
    DatabaseSettings, HttpSettings, NatsSettings, ProxySettings, PublicUrlSettings, RedisSettings,
    TelemetrySettings,
};

use crate::commit::WriteLimits;

/// FHIR R4 writes: create, update, patch and delete become events in the event store, and the
/// outbox relay publishes them to NATS JetStream.
#[derive(Debug, Clone, Parser)]
#[command(name = "command-service", version)]
pub struct Settings {
    /// TOML file with settings (keys are the option names); the environment overrides it.
    #[arg(long, env = "COMMAND_SERVICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "COMMAND_SERVICE_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "COMMAND_SERVICE_PORT", default_value_t = 8081)]
    pub port: u16,
    /// The base that absolute references to this server start with, as the projection service
    /// indexes them (its `--fhir-base-url`); conditional writes match references against it.
    #[arg(
        long,
        env = "FHIR_REFERENCE_BASE_URL",
        default_value = "http://localhost:8080/fhir"
    )]
    pub reference_base_url: String,
    /// Longest a conditional write waits for the search indexes to reach the writes before it,
    /// in milliseconds; past it the answer is 503.
    #[arg(
        long,
        env = "COMMAND_SERVICE_CONDITIONAL_WAIT_MS",
        default_value_t = 5000
    )]
    pub conditional_wait_ms: u64,
    /// Connections for conditional writes' locks and matches, apart from the writes' own.
    #[arg(
        long,
        env = "COMMAND_SERVICE_CONDITIONAL_CONNECTIONS",
        default_value_t = 4
    )]
    pub conditional_connections: u32,
    /// Longest a conditional write may spend in Postgres matching its criteria, waiting for
    /// the lock of the same criteria included, in milliseconds; past it the answer is 503 and
    /// nothing is written (criteria that match costly are refused as a search past its
    /// budget is).
    #[arg(
        long,
        env = "COMMAND_SERVICE_CONDITIONAL_STATEMENT_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub conditional_statement_timeout_ms: u64,
    /// Largest request body accepted, in bytes (larger: 413).
    #[arg(long, env = "COMMAND_SERVICE_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Largest resource version accepted, in bytes of its JSON as stored (default 16 MiB, as the
    /// body limit), whichever way it was written (create, update, the result of a patch, each
    /// Bundle entry); larger: 413 and nothing is written. A patch is refused as soon as its
    /// result could pass this size.
    #[arg(long, env = "COMMAND_SERVICE_MAX_RESOURCE_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_resource_bytes: usize,
    /// Most operations in one JSON Patch document (more: 413).
    #[arg(
        long,
        env = "COMMAND_SERVICE_MAX_PATCH_OPERATIONS",
        default_value_t = 1000
    )]
    pub max_patch_operations: usize,
    /// Run the outbox relay in this process (one relay publishes at a time across instances).
    #[arg(long, env = "COMMAND_SERVICE_RELAY", default_value_t = true, action = clap::ArgAction::Set)]
    pub relay: bool,
    /// Compile the JSON Schema validators of every resource type at start-up, in the
    /// background, so no first write of a type waits for it.
    #[arg(long, env = "COMMAND_SERVICE_WARM_VALIDATORS", default_value_t = true, action = clap::ArgAction::Set)]
    pub warm_validators: bool,
    /// Where `Location` headers and a Bundle's `fullUrl`s point.
    #[command(flatten)]
    pub public_url: PublicUrlSettings,
    #[command(flatten)]
    pub http: HttpSettings,
    /// Whose `X-Forwarded-For` the audit metadata of each event believes.
    #[command(flatten)]
    pub proxies: ProxySettings,
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub nats: NatsSettings,
    /// The read cache, which each write updates before it is acknowledged.
    #[command(flatten)]
    pub redis: RedisSettings,
    /// How fast each client address and each user may send requests.
    #[command(flatten)]
    pub rate_limits: service_kit::rate_limit::RateLimitSettings,
    /// Where access tokens come from.
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub telemetry: TelemetrySettings,
}

impl Settings {
    /// The limits every write is held to.
    pub(crate) fn write_limits(&self) -> WriteLimits {
        WriteLimits {
            max_resource_bytes: self.max_resource_bytes,
            max_patch_operations: self.max_patch_operations,
        }
    }
}
