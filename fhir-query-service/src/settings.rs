//! The query service's settings: `fhir-query-service --help` lists them all.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser};
use service_kit::config::{
    DatabaseSettings, HttpSettings, ProxySettings, PublicUrlSettings, RedisSettings,
    TelemetrySettings,
};

/// FHIR R4 reads: read through the Redis read cache, vread and history from the event store,
/// search over the projections.
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
    /// The edge, whose `X-Forwarded-For` names the client a search's result lists count under.
    #[command(flatten)]
    pub proxies: ProxySettings,
    /// What one search may cost.
    #[command(flatten)]
    pub search: SearchSettings,
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// The read cache (`fhir:resource:<Type>/<id>`).
    #[command(flatten)]
    pub redis: RedisSettings,
    /// How fast each client address and each user may send requests.
    #[command(flatten)]
    pub rate_limits: service_kit::rate_limit::RateLimitSettings,
    /// Where access tokens come from.
    #[command(flatten)]
    pub auth: service_kit::auth::AuthSettings,
    #[command(flatten)]
    pub telemetry: TelemetrySettings,
}

/// The budget of one search and of the result lists kept for paging. A search beyond a limit
/// is refused with 400 (`too-costly`) naming it, before any SQL runs.
#[derive(Debug, Clone, Args)]
pub struct SearchSettings {
    /// Most parameters in one search request.
    #[arg(long, env = "FHIR_SEARCH_MAX_PARAMETERS", default_value_t = 100)]
    pub search_max_parameters: usize,
    /// Most OR values (`a,b,c`) of one parameter.
    #[arg(
        long,
        env = "FHIR_SEARCH_MAX_VALUES_PER_PARAMETER",
        default_value_t = 200
    )]
    pub search_max_values_per_parameter: usize,
    /// Most OR values of all the parameters of one search together.
    #[arg(long, env = "FHIR_SEARCH_MAX_VALUES", default_value_t = 1_000)]
    pub search_max_values: usize,
    /// Most `_sort` keys.
    #[arg(long, env = "FHIR_SEARCH_MAX_SORT_KEYS", default_value_t = 8)]
    pub search_max_sort_keys: usize,
    /// Most distinct `_include`s and `_revinclude`s together (repeats count once).
    #[arg(long, env = "FHIR_SEARCH_MAX_INCLUDES", default_value_t = 20)]
    pub search_max_includes: usize,
    /// Rounds `:iterate` includes are followed (further ones are not followed).
    #[arg(long, env = "FHIR_SEARCH_INCLUDE_ITERATE_DEPTH", default_value_t = 4)]
    pub search_include_iterate_depth: usize,
    /// Most hops of one chain (`subject:Patient.organization.name` has 2).
    #[arg(long, env = "FHIR_SEARCH_MAX_CHAIN_DEPTH", default_value_t = 4)]
    pub search_max_chain_depth: usize,
    /// Deepest nesting of `_has` in one parameter.
    #[arg(long, env = "FHIR_SEARCH_MAX_HAS_DEPTH", default_value_t = 4)]
    pub search_max_has_depth: usize,
    /// Most bind parameters in the SQL statement of one search.
    #[arg(
        long,
        env = "FHIR_SEARCH_MAX_BIND_PARAMETERS",
        default_value_t = 10_000
    )]
    pub search_max_bind_parameters: usize,
    /// Longest one statement of a search may run, in milliseconds; past it the statement is
    /// cancelled and the search answers 503 (`timeout`).
    #[arg(
        long,
        env = "FHIR_SEARCH_STATEMENT_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub search_statement_timeout_ms: u64,
    /// How long a kept result list (the pages of a search) lives, in seconds; a page link to an
    /// older one answers 410.
    #[arg(long, env = "FHIR_SEARCH_RESULT_TTL_SECS", default_value_t = 3_600)]
    pub search_result_ttl_secs: u64,
    /// How often expired result lists are deleted, in seconds.
    #[arg(
        long,
        env = "FHIR_SEARCH_RESULT_CLEANUP_INTERVAL_SECS",
        default_value_t = 60
    )]
    pub search_result_cleanup_interval_secs: u64,
    /// Most result lists kept per client address; a client's oldest are dropped past it (their
    /// page links answer 410).
    #[arg(long, env = "FHIR_SEARCH_RESULTS_PER_CLIENT", default_value_t = 200)]
    pub search_results_per_client: i64,
}

impl SearchSettings {
    /// The parser's budget.
    pub fn limits(&self) -> fhir_search::query::Limits {
        fhir_search::query::Limits {
            parameters: self.search_max_parameters,
            values_per_parameter: self.search_max_values_per_parameter,
            values: self.search_max_values,
            sort_keys: self.search_max_sort_keys,
            includes: self.search_max_includes,
            iterate_depth: self.search_include_iterate_depth,
            chain_depth: self.search_max_chain_depth,
            has_depth: self.search_max_has_depth,
            bind_parameters: self.search_max_bind_parameters,
        }
    }
}
