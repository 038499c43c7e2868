//! Read-by-id benchmark of the query service, in one run on one machine: `GET /fhir/Patient/<id>`
//! through the Redis cache (cached) and with the cache unreachable (every read from Postgres),
//! beside two baselines measured in the same run: a trivial axum handler (HTTP alone) and the
//! raw `SELECT` of the same row by primary key from Rust (Postgres alone). Requests/s and
//! p50/p95/p99 at 1, 16 and 64 clients.
//!
//! Every request carries a backend client's token (`system/*.cruds`) from an identity service
//! in this process, which the query service checks as deployed. What that costs is the
//! authorisation benchmark: the same cached reads against a query service started with
//! `--auth-disabled`, measured next to them, and the ratio printed (aim: at least 0.90); and
//! the same again with a nurse's token (signed in through the authorization-code flow), whose
//! role is checked as well as its scopes.
//!
//! Run with `load-tests/run-read-bench.sh` (which starts the servers).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use clap::Parser;
use futures::StreamExt;
use load_tests::{Measurement, client_with_token, drive, print_table, resident_mib};
use serde_json::json;
use test_support::ServiceArgs;
use test_support::identity::TestIdentity;

/// The subjects, as the table names them.
const CACHED: &str = "read by id, cached";
const UNCACHED: &str = "read by id, no cache";
const NO_AUTH: &str = "cached, auth disabled";
const NURSE: &str = "cached, nurse's token";
const TRIVIAL: &str = "trivial axum handler";
const RAW: &str = "raw SELECT by key";
/// The authorisation benchmark's aim: reads with a token at least this share of reads without.
const AUTH_AIM: f64 = 0.90;

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
    /// Also read with a nurse's token (beside the backend client's).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    user_token: bool,
    #[arg(long, default_value = "load-tests/results/read-bench.json")]
    output: String,
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A query service over `database_url` with its cache in `redis_url`, checking the tokens of
/// `identity`, or nobody's (`--auth-disabled`) when there is none.
async fn query_service(
    database_url: &str,
    redis_url: &str,
    identity: Option<&TestIdentity>,
) -> u16 {
    let args = ServiceArgs::new("fhir-query-service", database_url, 32)
        .arg("--redis-url", redis_url)
        .arg("--log-filter", "warn");
    let args = match identity {
        Some(identity) => args.auth(identity.issuer(), &identity.jwks_url()),
        None => args.flag("--auth-disabled"),
    };
    let settings: fhir_query_service::Settings =
        service_kit::config::load_from(args.into_args()).unwrap();
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
) -> impl Fn(u64) -> futures::future::BoxFuture<'static, bool> + Send + Sync + use<> {
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
    let identity = load_tests::identity(&database.url).await;
    let token = load_tests::backend_token(&identity).await;
    let command_settings: command_service::Settings = service_kit::config::load_from(
        ServiceArgs::new("command-service", &database.url, 32)
            .events_on(&nats_url, &stream, &subject_prefix)
            .auth(identity.issuer(), &identity.jwks_url())
            .arg("--log-filter", "warn")
            .into_args(),
    )?;
    let command = command_service::Application::build(command_settings).await?;
    let writes = format!("http://127.0.0.1:{}/fhir", command.port());
    tokio::spawn(command.run_until(std::future::pending()));
    let cached = query_service(&database.url, &test_support::redis_url(), Some(&identity)).await;
    // Nothing listens on port 1: every read goes to Postgres.
    let uncached = query_service(&database.url, "redis://127.0.0.1:1", Some(&identity)).await;
    let unchecked = query_service(&database.url, &test_support::redis_url(), None).await;
    let trivial = axum::Router::new().route(
        "/fhir/Patient/{id}",
        axum::routing::get(|| async { "{\"resourceType\":\"Patient\"}" }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let trivial_port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, trivial).await });

    // Every subject gets the same request, token included (the baselines and the service with
    // authorisation off ignore it), so only what is done with it differs.
    let client = client_with_token(&token);
    let nurse = if args.user_token {
        let token = identity.user_token("nurse", "user/*.rs", None).await;
        Some(client_with_token(&token.access_token))
    } else {
        None
    };
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
    let patients = args.patients;
    let base = |port: u16| format!("http://127.0.0.1:{port}/fhir/Patient");
    let mut results: Vec<Measurement> = Vec::new();
    for &concurrency in &args.concurrency {
        let read = |name: &'static str, client: &reqwest::Client, port: u16| {
            let operation = get(client, base(port), patients);
            drive(name, concurrency, warmup, duration, operation)
        };
        results.push(read(TRIVIAL, &client, trivial_port).await);
        let raw = pool.clone();
        results.push(drive(RAW, concurrency, warmup, duration, move |n| {
            let raw = raw.clone();
            async move {
                sqlx::query("SELECT resource::text FROM fhir_event WHERE resource_type = 'Patient' AND resource_id = $1 ORDER BY version DESC LIMIT 1")
                    .bind(format!("p{}", n % patients))
                    .fetch_optional(&raw)
                    .await
                    .is_ok_and(|row| row.is_some())
            }
        }).await);
        // The authorisation rows one after the other, so that the machine's mood changes as
        // little as possible between them.
        results.push(read(NO_AUTH, &client, unchecked).await);
        results.push(read(CACHED, &client, cached).await);
        if let Some(nurse) = &nurse {
            results.push(read(NURSE, nurse, cached).await);
        }
        results.push(read(UNCACHED, &client, uncached).await);
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
            rate(CACHED, concurrency) / rate(TRIVIAL, concurrency),
            rate(UNCACHED, concurrency) / rate(RAW, concurrency),
            rate(CACHED, concurrency) / rate(UNCACHED, concurrency),
        );
    }
    println!(
        "\nauthorisation: cached reads with a token / the same with authorisation off (aim {AUTH_AIM:.2})"
    );
    for &concurrency in &args.concurrency {
        let with_token = rate(CACHED, concurrency) / rate(NO_AUTH, concurrency);
        let mut line = format!(
            "{concurrency:>3} clients: backend token {with_token:.2} {}",
            if with_token >= AUTH_AIM { "ok" } else { "MISS" }
        );
        if nurse.is_some() {
            let nurse = rate(NURSE, concurrency) / rate(NO_AUTH, concurrency);
            line.push_str(&format!(
                "; nurse's token {nurse:.2} {}",
                if nurse >= AUTH_AIM { "ok" } else { "MISS" }
            ));
        }
        println!("{line}");
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
