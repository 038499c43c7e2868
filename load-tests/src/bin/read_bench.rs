//! Read-by-id benchmark of the query service, in one run on one machine: `GET /fhir/Patient/<id>`
//! through the Redis cache (cached) and with the cache unreachable (every read from Postgres),
//! beside two baselines measured in the same run: a trivial axum handler (HTTP alone) and the
//! raw `SELECT` of the same row by primary key from Rust (Postgres alone). Requests/s and
//! p50/p95/p99 at 1, 16 and 64 clients. Search benchmarks are still to come.
//!
//! Run with `load-tests/run-read-bench.sh` (which starts the servers).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use clap::Parser;
use futures::StreamExt;
use load_tests::{Measurement, drive, print_table, resident_mib};
use serde_json::json;
use test_support::ServiceArgs;

#[derive(Debug, Parser)]
#[command(name = "read-bench")]
struct Args {
    #[arg(long, default_value = "1,16,64", value_delimiter = ',')]
    concurrency: Vec<usize>,
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Patients written and read (ids cycle over them).
    #[arg(long, default_value_t = 2000)]
    patients: u64,
    #[arg(long, default_value = "load-tests/results/read-bench.json")]
    output: String,
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn query_service(database_url: &str, redis_url: &str) -> u16 {
    let settings: fhir_query_service::Settings = service_kit::config::load_from(
        ServiceArgs::new("fhir-query-service", database_url, 32)
            .arg("--redis-url", redis_url)
            .arg("--log-filter", "warn")
            .into_args(),
    )
    .unwrap();
    let application = fhir_query_service::Application::build(settings)
        .await
        .unwrap();
    let port = application.port();
    tokio::spawn(application.run_until(std::future::pending()));
    port
}

fn get(
    client: &reqwest::Client,
    base: String,
    patients: u64,
) -> impl Fn(u64) -> futures::future::BoxFuture<'static, bool> + Send + Sync + 'static {
    let client = client.clone();
    move |n| {
        let request = client.get(format!("{base}/p{}", n % patients));
        Box::pin(async move { request.send().await.is_ok_and(|r| r.status() == 200) })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (warmup, duration) = (
        Duration::from_secs(args.warmup),
        Duration::from_secs(args.seconds),
    );
    let database = test_support::TestDatabase::create().await;
    let (stream, subject_prefix) = test_support::unique_stream();
    let nats_url = test_support::nats_url();
    let command_settings: command_service::Settings = service_kit::config::load_from(
        ServiceArgs::new("command-service", &database.url, 32)
            .events_on(&nats_url, &stream, &subject_prefix)
            .arg("--log-filter", "warn")
            .into_args(),
    )?;
    let command = command_service::Application::build(command_settings).await?;
    let writes = format!("http://127.0.0.1:{}/fhir", command.port());
    tokio::spawn(command.run_until(std::future::pending()));
    let cached = query_service(&database.url, &test_support::redis_url()).await;
    // Nothing listens on port 1: every read goes to Postgres.
    let uncached = query_service(&database.url, "redis://127.0.0.1:1").await;
    let trivial = axum::Router::new().route(
        "/fhir/Patient/{id}",
        axum::routing::get(|| async { "{\"resourceType\":\"Patient\"}" }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let trivial_port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, trivial).await });

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    futures::stream::iter(0..args.patients)
        .for_each_concurrent(32, |n| {
            let request = client
                .put(format!("{writes}/Patient/p{n}"))
                .header("content-type", "application/fhir+json")
                .body(json!({"resourceType": "Patient", "id": format!("p{n}"), "gender": "female",
                    "birthDate": "1980-01-01", "name": [{"family": format!("Read{n}"), "given": ["Bench"]}]}).to_string());
            async move { assert!(request.send().await.unwrap().status().is_success()) }
        })
        .await;

    let pool = event_store::EventStore::connect(&database.url, 32).await?;
    let mut results: Vec<Measurement> = Vec::new();
    for &concurrency in &args.concurrency {
        let patients = args.patients;
        results.push(
            drive(
                "trivial axum handler",
                concurrency,
                warmup,
                duration,
                get(
                    &client,
                    format!("http://127.0.0.1:{trivial_port}/fhir/Patient"),
                    patients,
                ),
            )
            .await,
        );
        let raw = pool.clone();
        results.push(drive("raw SELECT by key", concurrency, warmup, duration, move |n| {
            let raw = raw.clone();
            async move {
                sqlx::query("SELECT resource::text FROM fhir_event WHERE resource_type = 'Patient' AND resource_id = $1 ORDER BY version DESC LIMIT 1")
                    .bind(format!("p{}", n % patients))
                    .fetch_optional(&raw)
                    .await
                    .is_ok_and(|row| row.is_some())
            }
        }).await);
        results.push(
            drive(
                "read by id, cached",
                concurrency,
                warmup,
                duration,
                get(
                    &client,
                    format!("http://127.0.0.1:{cached}/fhir/Patient"),
                    patients,
                ),
            )
            .await,
        );
        results.push(
            drive(
                "read by id, no cache",
                concurrency,
                warmup,
                duration,
                get(
                    &client,
                    format!("http://127.0.0.1:{uncached}/fhir/Patient"),
                    patients,
                ),
            )
            .await,
        );
    }
    print_table(&results);
    let rate = |name: &str, concurrency: usize| {
        results
            .iter()
            .find(|m| m.name == name && m.concurrency == concurrency)
            .map_or(0.0, |m| m.per_second)
    };
    println!();
    for &concurrency in &args.concurrency {
        println!(
            "{concurrency:>3} clients: cached / trivial handler {:.2}; no cache / raw SELECT {:.2}; cached / no cache {:.2}",
            rate("read by id, cached", concurrency) / rate("trivial axum handler", concurrency),
            rate("read by id, no cache", concurrency) / rate("raw SELECT by key", concurrency),
            rate("read by id, cached", concurrency) / rate("read by id, no cache", concurrency),
        );
    }
    println!(
        "resident memory (services and load generator): {:.0} MiB",
        resident_mib().unwrap_or(0.0)
    );
    if let Some(parent) = std::path::Path::new(&args.output).parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.output, serde_json::to_string_pretty(&results)?)?;
    test_support::delete_stream(&nats_url, &stream).await;
    Ok(())
}
