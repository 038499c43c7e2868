//! Benchmark of the projection service, in one run on one machine:
//!
//! 1. **Indexing rate.** The Synthea sample set is written through the command service with
//!    the projection stopped (the write rate is printed as the first baseline); then the
//!    projection service starts and the time it takes to index the whole backlog gives events
//!    indexed per second. The second baseline is the command service's closed-loop create rate
//!    for small Patients at 64 clients, measured in the same run: indexing should keep up
//!    with the fastest the write side can go.
//! 2. **Lag under steady load.** With the projection running, Observations are written at a
//!    fixed rate (open loop, 200/s and 500/s by default) and, for each, the time from the
//!    write's acknowledgement to the moment the projection checkpoint passes its position is
//!    recorded (from the notification the projector sends when the checkpoint moves). Prints p50/p95/p99/max lag and the
//!    write rate actually achieved.
//!
//! Every write carries a backend client's token from an identity service in this process,
//! which both services check as deployed.
//!
//! Run with `load-tests/run-projection-bench.sh` (which starts the servers), or directly with
//! `DATABASE_URL` (a role with CREATEDB), `NATS_URL` and `REDIS_URL` set.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use load_tests::{drive, print_table, resident_mib};
use serde_json::json;
use sqlx::PgPool;
use test_support::ServiceArgs;
use tokio::sync::Mutex;

#[derive(Debug, Parser)]
#[command(name = "projection-bench")]
struct Args {
    /// Write rates (creates per second) at which to measure projection lag, comma-separated.
    #[arg(long, default_value = "200,500", value_delimiter = ',')]
    rates: Vec<u32>,
    /// Seconds of steady load per rate.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent writers while loading the Synthea set.
    #[arg(long, default_value_t = 32)]
    load_concurrency: usize,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "load-tests/results/projection-bench.json")]
    output: String,
}

/// The same allocator as the services' binaries, since both services run in this process.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Services {
    database_url: String,
    stream: String,
    subject_prefix: String,
    issuer: String,
    jwks_url: String,
}

impl Services {
    fn projection_settings(&self) -> projection_service::Settings {
        service_kit::config::load_from(
            ServiceArgs::new("projection-service", &self.database_url, 8)
                .events_on(
                    &test_support::nats_url(),
                    &self.stream,
                    &self.subject_prefix,
                )
                .redis()
                .auth(&self.issuer, &self.jwks_url)
                .arg("--log-filter", "warn")
                .into_args(),
        )
        .unwrap()
    }
}

async fn checkpoint(pool: &PgPool) -> i64 {
    fhir_search::sql::checkpoint::position(pool)
        .await
        .unwrap()
        .expect("the projection checkpoint row")
}

async fn head(pool: &PgPool) -> i64 {
    event_store::EventStore::new(pool.clone())
        .head_position()
        .await
        .unwrap()
}

fn millis(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let synthea = test_support::synthea::data_dir();
    let database = test_support::TestDatabase::create().await;
    let (stream, subject_prefix) = test_support::unique_stream();
    let nats_url = test_support::nats_url();
    println!("database {}, stream {stream}", database.name);
    let identity = load_tests::identity(&database.url).await;
    let token = load_tests::backend_token(&identity).await;
    let services = Services {
        database_url: database.url.clone(),
        stream: stream.clone(),
        subject_prefix: subject_prefix.clone(),
        issuer: identity.issuer().to_owned(),
        jwks_url: identity.jwks_url(),
    };

    let command_settings: command_service::Settings = service_kit::config::load_from(
        ServiceArgs::new("command-service", &database.url, 64)
            .events_on(&nats_url, &stream, &subject_prefix)
            .auth(identity.issuer(), &identity.jwks_url())
            .arg("--log-filter", "warn")
            .into_args(),
    )?;
    let command = command_service::Application::build(command_settings).await?;
    let writes = format!("http://127.0.0.1:{}/fhir", command.port());
    tokio::spawn(command.run_until(std::future::pending()));
    let client = load_tests::client_with_token(&token);
    let pool = database.pool.clone();
    let memory_start = resident_mib();

    // 1a. The Synthea set, written with no projection running.
    let levels = test_support::synthea::load_levels(&synthea);
    let resources: usize = levels.iter().map(Vec::len).sum();
    let started = Instant::now();
    load_tests::put_levels(&client, &writes, &levels, args.load_concurrency).await;
    let load_seconds = started.elapsed().as_secs_f64();
    let events = head(&pool).await;

    // 1b. The projection indexes the backlog.
    let started = Instant::now();
    let projection = projection_service::Application::build(services.projection_settings()).await?;
    tokio::spawn(projection.run_until(std::future::pending()));
    while checkpoint(&pool).await < events {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let index_seconds = started.elapsed().as_secs_f64();
    let memory_indexed = resident_mib();

    // 1c. The command service's closed-loop create rate, same run.
    let create_url = format!("{writes}/Patient");
    let creates = drive(
        "command service: POST Patient",
        64,
        Duration::from_secs(2),
        Duration::from_secs(8),
        {
            let client = client.clone();
            move |n| {
                let request = client
                    .post(create_url.clone())
                    .header("content-type", "application/fhir+json")
                    .body(
                        json!({"resourceType": "Patient", "name": [{"family": format!("Bench{n}")}],
                            "gender": "female", "birthDate": "1970-02-03"})
                        .to_string(),
                    );
                Box::pin(async move {
                    request
                        .send()
                        .await
                        .is_ok_and(|response| response.status() == 201)
                })
            }
        },
    )
    .await;
    print_table(std::slice::from_ref(&creates));
    // Let the projection catch up before measuring lag.
    let target = head(&pool).await;
    while checkpoint(&pool).await < target {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    println!();
    println!("Indexing the Synthea set ({resources} resources, {events} events)");
    let written_rate = resources as f64 / load_seconds;
    let indexed_rate = events as f64 / index_seconds;
    println!(
        "  written through the command service: {load_seconds:.1} s, {written_rate:.0} resources/s ({} writers)",
        args.load_concurrency
    );
    println!(
        "  indexed by the projection service:   {index_seconds:.1} s, {indexed_rate:.0} events/s"
    );
    println!(
        "  indexing / Synthea write rate: {:.2}; indexing / closed-loop Patient create rate ({:.0}/s): {:.2}",
        indexed_rate / written_rate,
        creates.per_second,
        indexed_rate / creates.per_second
    );

    // 2. Lag at fixed write rates.
    let patient = "bench-patient";
    let response = client
        .put(format!("{writes}/Patient/{patient}"))
        .header("content-type", "application/fhir+json")
        .body(json!({"resourceType": "Patient", "id": patient}).to_string())
        .send()
        .await?;
    assert!(response.status().is_success());
    let mut lag_rows = Vec::new();
    for &rate in &args.rates {
        let acked: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
        let passed: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
        let polling = Arc::new(std::sync::atomic::AtomicBool::new(true));
        // The projector notifies `projection_checkpoint` ("search:<position>") each time the
        // checkpoint moves; listening costs the database nothing, where polling every
        // millisecond would load the machine being measured.
        let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
        listener
            .listen(fhir_search::schema::CHECKPOINT_CHANNEL)
            .await?;
        let poller = tokio::spawn({
            let (passed, polling) = (passed.clone(), polling.clone());
            let prefix = format!("{}:", fhir_search::schema::SEARCH_CHECKPOINT);
            async move {
                while polling.load(std::sync::atomic::Ordering::Relaxed) {
                    let Ok(Ok(notification)) =
                        tokio::time::timeout(Duration::from_millis(50), listener.recv()).await
                    else {
                        continue;
                    };
                    let at = Instant::now();
                    if let Some(position) = notification
                        .payload()
                        .strip_prefix(prefix.as_str())
                        .and_then(|position| position.parse::<i64>().ok())
                    {
                        passed.lock().await.push((position, at));
                    }
                }
            }
        });
        let total = rate as u64 * args.seconds;
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let limit = Arc::new(tokio::sync::Semaphore::new(512));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(total as usize);
        for n in 0..total {
            ticks.tick().await;
            let permit = limit.clone().acquire_owned().await.unwrap();
            let request = client
                .post(format!("{writes}/Observation"))
                .header("content-type", "application/fhir+json")
                .body(
                    json!({"resourceType": "Observation", "status": "final",
                        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
                        "subject": {"reference": format!("Patient/{patient}")},
                        "effectiveDateTime": "2024-05-01T10:00:00Z",
                        "valueQuantity": {"value": 60 + n % 60, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}})
                    .to_string(),
                );
            let acked = acked.clone();
            tasks.push(tokio::spawn(async move {
                let response = request.send().await.unwrap();
                let at = Instant::now();
                let position = response
                    .headers()
                    .get("x-event-position")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<i64>().ok());
                drop(permit);
                if let Some(position) = position {
                    acked.lock().await.push((position, at));
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let write_seconds = started.elapsed().as_secs_f64();
        let target = head(&pool).await;
        while checkpoint(&pool).await < target {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        polling.store(false, std::sync::atomic::Ordering::Relaxed);
        poller.await.unwrap();

        let passed = passed.lock().await;
        let acked = acked.lock().await;
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).unwrap();
        for (position, at) in acked.iter() {
            let index = passed.partition_point(|(checkpoint, _)| checkpoint < position);
            if let Some((_, applied)) = passed.get(index) {
                let lag = applied.saturating_duration_since(*at).as_micros().max(1) as u64;
                histogram.record(lag.min(600_000_000)).unwrap();
            }
        }
        let achieved = acked.len() as f64 / write_seconds;
        println!(
            "  lag at {rate}/s: achieved {achieved:.0} writes/s, {} measured, lag p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            histogram.len(),
            millis(&histogram, 0.50),
            millis(&histogram, 0.95),
            millis(&histogram, 0.99),
            histogram.max() as f64 / 1000.0,
        );
        lag_rows.push(json!({
            "targetRate": rate, "achievedRate": achieved, "measured": histogram.len(),
            "lagP50Ms": millis(&histogram, 0.50), "lagP95Ms": millis(&histogram, 0.95),
            "lagP99Ms": millis(&histogram, 0.99), "lagMaxMs": histogram.max() as f64 / 1000.0,
        }));
    }
    let memory_end = resident_mib();
    println!(
        "  resident memory (both services and the load generator): {:.0} MiB at start, {:.0} MiB after indexing, {:.0} MiB at the end",
        memory_start.unwrap_or(0.0),
        memory_indexed.unwrap_or(0.0),
        memory_end.unwrap_or(0.0)
    );

    let report = json!({
        "synthea": {"resources": resources, "events": events, "writeSeconds": load_seconds,
            "writeRate": written_rate, "indexSeconds": index_seconds, "indexRate": indexed_rate},
        "patientCreateRate": creates.per_second,
        "lag": lag_rows,
    });
    if let Some(parent) = std::path::Path::new(&args.output).parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.output, serde_json::to_string_pretty(&report)?)?;
    test_support::delete_stream(&nats_url, &stream).await;
    Ok(())
}
