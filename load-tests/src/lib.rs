//! What the benchmarks share: a closed-loop load driver that records every latency, the table
//! they print, and the identity service whose tokens every request carries. Each benchmark
//! measures its subject beside baselines taken in the same run on the same machine, and reports
//! ratios: machines are noisy, ratios less so.

// A benchmark harness that cannot build its histograms or join its tasks has nothing to report:
// it stops there.
#![allow(clippy::print_stdout, clippy::expect_used)]

pub mod clinical;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use test_support::identity::TestIdentity;

/// How long the benchmarks' access tokens live: twelve hours, where a deployment gives fifteen
/// minutes, so that no run (the search benchmark loads for minutes) outlives its token. What a
/// service does to check a token does not depend on how long it lives.
pub const TOKEN_TTL_SECS: u64 = 12 * 3600;

/// The scopes of the benchmarks' backend client: everything, as the importer has.
pub const BACKEND_SCOPES: &str = "system/*.cruds";

/// An identity service in this process over `database_url` (its tables are created there), as
/// deployed but for the tokens' lifetime ([`TOKEN_TTL_SECS`]). The services under test check
/// tokens against it: `ServiceArgs::auth(identity.issuer(), &identity.jwks_url())`.
pub async fn identity(database_url: &str) -> TestIdentity {
    TestIdentity::spawn_with(
        database_url,
        &[("--access-token-ttl-secs", &TOKEN_TTL_SECS.to_string())],
    )
    .await
}

/// A backend service's access token ([`BACKEND_SCOPES`]), obtained as such a client obtains
/// one: registered with a key, then `client_credentials` with an assertion signed by that key.
pub async fn backend_token(identity: &TestIdentity) -> String {
    identity.system_token(BACKEND_SCOPES).await.access_token
}

/// An HTTP client that sends `token` as its bearer token with every request, keeping as many
/// idle connections as the benchmarks have clients.
pub fn client_with_token(token: &str) -> reqwest::Client {
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
        .expect("a token is a valid header value");
    value.set_sensitive(true);
    reqwest::Client::builder()
        .default_headers(reqwest::header::HeaderMap::from_iter([(
            reqwest::header::AUTHORIZATION,
            value,
        )]))
        .pool_max_idle_per_host(256)
        .build()
        .expect("an HTTP client")
}

/// The figures of one measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub name: String,
    pub concurrency: usize,
    pub operations: u64,
    pub errors: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Runs `operation` from `concurrency` tasks in a closed loop for `duration` (after `warmup`,
/// whose results are dropped), and measures throughput and latency.
pub async fn drive<F, Fut>(
    name: &str,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    operation: F,
) -> Measurement
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let operation = Arc::new(operation);
    let start = Instant::now();
    let measure_from = start + warmup;
    let stop_at = measure_from + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let operation = operation.clone();
        tasks.push(tokio::spawn(async move {
            let mut histogram =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let mut errors = 0u64;
            let mut n = 0u64;
            loop {
                let began = Instant::now();
                if began >= stop_at {
                    break;
                }
                let ok = operation((worker as u64) << 40 | n).await;
                n += 1;
                if began >= measure_from {
                    if ok {
                        let micros = began.elapsed().as_micros().max(1) as u64;
                        let _ = histogram.record(micros.min(60_000_000));
                    } else {
                        errors += 1;
                    }
                }
            }
            (histogram, errors)
        }));
    }
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    let mut errors = 0;
    for task in tasks {
        let (part, part_errors) = task.await.expect("load task");
        histogram.add(part).expect("histograms of the same bounds");
        errors += part_errors;
    }
    let seconds = duration.as_secs_f64();
    let millis = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
    Measurement {
        name: name.to_owned(),
        concurrency,
        operations: histogram.len(),
        errors,
        seconds,
        per_second: histogram.len() as f64 / seconds,
        p50_ms: millis(0.50),
        p95_ms: millis(0.95),
        p99_ms: millis(0.99),
        max_ms: histogram.max() as f64 / 1000.0,
    }
}

/// Prints measurements as a table.
pub fn print_table(measurements: &[Measurement]) {
    println!(
        "{:<28} {:>5} {:>10} {:>7} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "subject", "conc", "ops", "errors", "ops/s", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    for m in measurements {
        println!(
            "{:<28} {:>5} {:>10} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            m.name,
            m.concurrency,
            m.operations,
            m.errors,
            m.per_second,
            m.p50_ms,
            m.p95_ms,
            m.p99_ms,
            m.max_ms
        );
    }
}

/// Resident memory of this process, in MiB (Linux), for the memory figure of in-process runs.
pub fn resident_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Writes `levels` of resources (as `test_support::synthea::load_levels` gives them) through the
/// command service at `writes` (`http://host/fhir`), one `PUT` each, `concurrency` at a time
/// within a level, a level after the one before.
pub async fn put_levels(
    client: &reqwest::Client,
    writes: &str,
    levels: &[Vec<serde_json::Value>],
    concurrency: usize,
) {
    use futures::StreamExt;
    for level in levels {
        futures::stream::iter(level)
            .for_each_concurrent(concurrency, |resource| {
                let request = client
                    .put(format!(
                        "{writes}/{}/{}",
                        resource["resourceType"].as_str().unwrap_or_default(),
                        resource["id"].as_str().unwrap_or_default()
                    ))
                    .header("content-type", "application/fhir+json")
                    .body(resource.to_string());
                async move {
                    let response = request.send().await.expect("the command service answers");
                    assert!(
                        response.status().is_success(),
                        "a write failed: {}",
                        response.status()
                    );
                }
            })
            .await;
    }
}

/// Waits until the projections have applied every event in the store.
pub async fn wait_indexed(pool: &sqlx::PgPool) {
    let head = event_store::EventStore::new(pool.clone())
        .head_position()
        .await
        .expect("the store's head");
    loop {
        let checkpoint = fhir_search::sql::checkpoint::position(pool)
            .await
            .expect("the projection checkpoint");
        if checkpoint.unwrap_or(0) >= head {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
