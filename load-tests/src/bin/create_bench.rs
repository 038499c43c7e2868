//! Benchmark of FHIR creates (`POST /fhir/Patient`) through the command service, beside two
//! baselines measured in the same run: a trivial axum handler (the cost of HTTP alone) and a
//! raw one-row-per-transaction `INSERT` of the same JSON into Postgres (the cost of a durable
//! write alone). Prints throughput and p50/p95/p99 latency at each concurrency, the ratios,
//! the memory of the process, and how long the outbox relay took to publish everything.
//!
//! Every request carries a backend client's token from an identity service in this process,
//! which the command service checks as deployed (the baselines ignore it).
//!
//! Run with `load-tests/run-create-bench.sh` (which starts the servers), or directly with
//! `DATABASE_URL` (a role with CREATEDB) and `NATS_URL` set.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use clap::Parser;
use load_tests::{Measurement, client_with_token, drive, print_table, resident_mib};
use serde_json::json;
use test_support::ServiceArgs;

#[derive(Debug, Parser)]
#[command(name = "create-bench")]
struct Args {
    /// Seconds measured per subject and concurrency.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of warm-up before each measurement.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Concurrent clients, comma-separated.
    #[arg(long, default_value = "1,16,64", value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Run the outbox relay in the command service during the measurement (as in production).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    relay: bool,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "load-tests/results/create-bench.json")]
    output: String,
}

fn patient_json(n: u64) -> String {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:bench", "value": format!("b{n}")}],
        "active": true,
        "name": [{"use": "official", "family": "Benchmark", "given": ["Load", "Test"]}],
        "telecom": [{"system": "phone", "value": "555-0100", "use": "home"}],
        "gender": "female",
        "birthDate": "1970-02-03",
        "address": [{"line": ["1 Test Street"], "city": "Springfield", "postalCode": "12345", "country": "US"}]
    })
    .to_string()
}

/// The same allocator as the services' binaries, since the command service runs in this process.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An operation for `drive`: POST a distinct Patient to `url`; success is 201.
fn post_patient(
    client: &reqwest::Client,
    url: String,
) -> impl Fn(u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
+ Send
+ Sync
+ 'static {
    let client = client.clone();
    move |n| {
        let request = client
            .post(url.clone())
            .header("content-type", "application/fhir+json")
            .body(patient_json(n));
        Box::pin(async move {
            request
                .send()
                .await
                .is_ok_and(|response| response.status() == 201)
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let warmup = Duration::from_secs(args.warmup);
    let duration = Duration::from_secs(args.seconds);
    let database = test_support::TestDatabase::create().await;
    let (stream, subject_prefix) = test_support::unique_stream();
    let nats_url = test_support::nats_url();
    println!("database {}, stream {stream}", database.name);
    let identity = load_tests::identity(&database.url).await;
    let token = load_tests::backend_token(&identity).await;

    // The subject: a command service in this process, relay on, validators warmed.
    let settings: command_service::Settings = service_kit::config::load_from(
        ServiceArgs::new("command-service", &database.url, 64)
            .events_on(&nats_url, &stream, &subject_prefix)
            .auth(identity.issuer(), &identity.jwks_url())
            .arg("--log-filter", "warn")
            .arg("--relay", if args.relay { "true" } else { "false" })
            .into_args(),
    )?;
    let application = command_service::Application::build(settings).await?;
    let command_port = application.port();
    tokio::spawn(application.run_until(std::future::pending()));

    // Baseline 1: a trivial axum handler.
    let trivial = axum::Router::new().route(
        "/echo",
        axum::routing::post(|| async { (axum::http::StatusCode::CREATED, "ok") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let trivial_port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, trivial).await });

    // Baseline 2: raw INSERTs of the same JSON, one row per transaction.
    let raw_pool = event_store::EventStore::connect(&database.url, 64).await?;
    sqlx::query("CREATE TABLE bench_raw (id bigserial PRIMARY KEY, body json NOT NULL)")
        .execute(&raw_pool)
        .await?;

    let client = client_with_token(&token);
    let memory_before = resident_mib();
    let mut results: Vec<Measurement> = Vec::new();
    for &concurrency in &args.concurrency {
        let trivial_url = format!("http://127.0.0.1:{trivial_port}/echo");
        results.push(
            drive(
                "trivial axum handler",
                concurrency,
                warmup,
                duration,
                post_patient(&client, trivial_url),
            )
            .await,
        );
        let pool = raw_pool.clone();
        results.push(
            drive(
                "raw INSERT (1 row/tx)",
                concurrency,
                warmup,
                duration,
                move |n| {
                    let pool = pool.clone();
                    async move {
                        sqlx::query("INSERT INTO bench_raw (body) VALUES ($1::json)")
                            .bind(patient_json(n))
                            .execute(&pool)
                            .await
                            .is_ok()
                    }
                },
            )
            .await,
        );
        let create_url = format!("http://127.0.0.1:{command_port}/fhir/Patient");
        results.push(
            drive(
                "FHIR create (POST Patient)",
                concurrency,
                warmup,
                duration,
                post_patient(&client, create_url),
            )
            .await,
        );
    }
    let memory_after = resident_mib();

    // How long until the relay has published every event to JetStream.
    let store = event_store::EventStore::new(database.pool.clone());
    let head = store.head_position().await?;
    let relay_started = Instant::now();
    let published = loop {
        let (position,): (Option<i64>,) = sqlx::query_as(
            "SELECT max(published_position) FROM fhir_outbox_cursor WHERE stream = $1",
        )
        .bind(&stream)
        .fetch_one(&database.pool)
        .await?;
        let position = position.unwrap_or(0);
        if !args.relay || position >= head || relay_started.elapsed() > Duration::from_secs(120) {
            break position;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    println!();
    print_table(&results);
    println!();
    println!("ratios (FHIR create / baseline):");
    for &concurrency in &args.concurrency {
        let of = |name: &str| {
            results
                .iter()
                .find(|m| m.name == name && m.concurrency == concurrency)
                .map_or(0.0, |m| m.per_second)
        };
        let create = of("FHIR create (POST Patient)");
        println!(
            "  {concurrency:>3} clients: {:>5.1}% of raw INSERT, {:>5.1}% of the trivial handler",
            100.0 * create / of("raw INSERT (1 row/tx)").max(1.0),
            100.0 * create / of("trivial axum handler").max(1.0),
        );
    }
    println!(
        "memory (RSS of the process: load driver + command service + relay): {:.0} MiB before, {:.0} MiB after",
        memory_before.unwrap_or(0.0),
        memory_after.unwrap_or(0.0)
    );
    println!(
        "outbox relay: {published} of {head} events published to JetStream; caught up {:.1} s after the load stopped",
        relay_started.elapsed().as_secs_f64()
    );
    if let Some(parent) = std::path::Path::new(&args.output).parent() {
        std::fs::create_dir_all(parent)?;
    }
    let report = json!({
        "recordedAt": chrono::Utc::now().to_rfc3339(),
        "measurements": results,
        "memoryMiB": {"before": memory_before, "after": memory_after},
        "relay": {"head": head, "published": published},
    });
    std::fs::write(&args.output, serde_json::to_string_pretty(&report)?)?;
    println!("results written to {}", args.output);
    test_support::delete_stream(&nats_url, &stream).await;
    Ok(())
}
