//! What every Wardline service shares, so that the four of them start, configure, log, report
//! health and fail in the same way.
//!
//! - `auth`: the bearer token of every request checked, and refusals as OperationOutcomes.
//! - `config`: one typed settings struct per service, layered defaults < file < environment <
//!   command line, with `--help` listing every setting.
//! - `telemetry`: structured (JSON) log lines carrying the request id.
//! - `http`: request ids, tracing, the panic guard, binding, serving (with a header-read
//!   timeout), graceful shutdown.
//! - `forwarded`: the client's address behind trusted proxies.
//! - `rate_limit`: per-address and per-user request limits, counted in Redis across instances.
//! - `health`: `GET /health` (alive) and `GET /ready` (dependencies reachable).
//! - `fhir_response`: the one place an error becomes an HTTP response with an `OperationOutcome`.

pub mod auth;
pub mod config;
pub mod fhir_response;
pub mod forwarded;
pub mod health;
pub mod http;
pub mod rate_limit;
pub mod resource_cache;
pub mod sandbox_path;
pub mod telemetry;
