//! The identity service's settings: `identity-service --help` lists them all.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, ValueEnum};
use service_kit::config::{
    DatabaseSettings, HttpSettings, ProxySettings, RedisSettings, TelemetrySettings,
};

/// OAuth 2.0 authorization server and SMART App Launch server: sign-in, consent, tokens.
#[derive(Debug, Clone, Parser)]
#[command(name = "identity-service", version)]
pub struct Settings {
    /// TOML file with settings (keys are the option names); the environment overrides it.
    #[arg(long, env = "IDENTITY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "IDENTITY_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "IDENTITY_PORT", default_value_t = 8085)]
    pub port: u16,
    /// `development` seeds demo users (one per role, passwords printed on the sign-in page) and
    /// the demo clients; `production` has only the users and clients of --directory and the
    /// admin API.
    #[arg(long, env = "IDENTITY_MODE", value_enum, default_value_t = Mode::Development)]
    pub mode: Mode,
    /// The issuer URL, as clients reach it (tokens' `iss`; endpoints are below it).
    #[arg(
        long,
        env = "IDENTITY_ISSUER",
        default_value = "https://localhost:8443/auth"
    )]
    pub issuer: String,
    /// FHIR bases a client may name as `aud` (comma-separated); the first is the audience of
    /// tokens whose request named none (client credentials, refreshes). The web app names its
    /// own origin's, so each address it is served at belongs here (and in the services'
    /// `--auth-audience`).
    #[arg(
        long,
        env = "IDENTITY_AUDIENCES",
        value_delimiter = ',',
        default_value = "https://localhost:8443/fhir,http://localhost:8080/fhir,http://127.0.0.1:8080/fhir"
    )]
    pub audiences: Vec<String>,
    /// Directory holding the signing keys (and, in development, the `wardline-cli` client's key).
    #[arg(long, env = "IDENTITY_DATA_DIR", default_value = ".dev/identity")]
    pub data_dir: PathBuf,
    /// A TOML file of users and clients created or updated at start (`[[users]]`, `[[clients]]`).
    #[arg(long, env = "IDENTITY_DIRECTORY")]
    pub directory: Option<PathBuf>,
    /// FHIR base the patient picker searches, from inside (the query service).
    #[arg(
        long,
        env = "IDENTITY_INTERNAL_FHIR_BASE",
        default_value = "http://127.0.0.1:8082/fhir"
    )]
    pub internal_fhir_base: String,
    #[command(flatten)]
    pub tokens: TokenSettings,
    #[command(flatten)]
    pub passwords: PasswordSettings,
    #[command(flatten)]
    pub sign_in: SignInSettings,
    #[command(flatten)]
    pub http: HttpSettings,
    /// The edge, whose `X-Forwarded-For` names the client the sign-in throttle counts under.
    #[command(flatten)]
    pub proxies: ProxySettings,
    /// Users and clients.
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// Sessions, codes, refresh tokens and the sign-in throttle.
    #[command(flatten)]
    pub redis: RedisSettings,
    #[command(flatten)]
    pub telemetry: TelemetrySettings,
}

/// Whether demo users and clients exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Development,
    Production,
}

/// How long what the service issues lives.
#[derive(Debug, Clone, Args)]
pub struct TokenSettings {
    /// Lifetime of access tokens and ID tokens, in seconds.
    #[arg(long, env = "IDENTITY_ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub access_token_ttl_secs: u64,
    /// Lifetime of a session with a refresh token (`online_access`), in seconds.
    #[arg(long, env = "IDENTITY_REFRESH_TOKEN_TTL_SECS", default_value_t = 8 * 3600)]
    pub refresh_token_ttl_secs: u64,
    /// Lifetime of a session granted `offline_access`, in seconds.
    #[arg(
        long,
        env = "IDENTITY_OFFLINE_REFRESH_TOKEN_TTL_SECS",
        default_value_t = 30 * 24 * 3600
    )]
    pub offline_refresh_token_ttl_secs: u64,
}

/// Argon2id cost of password and client-secret hashes (OWASP's minimum by default; tests pass
/// tiny values so that hashing is cheap).
#[derive(Debug, Clone, Args)]
pub struct PasswordSettings {
    /// Memory per hash, in KiB.
    #[arg(long, env = "IDENTITY_ARGON2_MEMORY_KIB", default_value_t = 19_456)]
    pub argon2_memory_kib: u32,
    /// Passes over the memory.
    #[arg(long, env = "IDENTITY_ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,
    /// Degree of parallelism.
    #[arg(long, env = "IDENTITY_ARGON2_LANES", default_value_t = 1)]
    pub argon2_lanes: u32,
}

/// The sign-in throttle and the browser's remembered sign-in.
#[derive(Debug, Clone, Args)]
pub struct SignInSettings {
    /// Failed sign-ins of one account from one address after which further attempts are
    /// refused (429) until the window has passed.
    #[arg(long, env = "IDENTITY_SIGNIN_MAX_FAILURES", default_value_t = 5)]
    pub signin_max_failures: u32,
    /// The throttle's window, in seconds, from the first attempt since the last success.
    #[arg(long, env = "IDENTITY_SIGNIN_WINDOW_SECS", default_value_t = 15 * 60)]
    pub signin_window_secs: u64,
    /// How long a browser stays signed in (a second authorization skips the password), in
    /// seconds.
    #[arg(long, env = "IDENTITY_BROWSER_SESSION_TTL_SECS", default_value_t = 8 * 3600)]
    pub browser_session_ttl_secs: u64,
    /// Prefix of the throttle's Redis counters (`<prefix>:signin-failures:...`), so that
    /// services or tests sharing a Redis do not share counts.
    #[arg(long, env = "IDENTITY_THROTTLE_PREFIX", default_value = "identity")]
    pub throttle_prefix: String,
}
