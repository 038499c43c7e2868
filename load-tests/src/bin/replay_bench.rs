//! Benchmark of scenario replay into a teaching sandbox: how many changes per second the
//! player applies when they are due faster than it can write them, beside the live create rate
//! of the same resources from one client in the same run (the player writes one change at a
//! time, as one client does).
//!
//! The scenario is made here: one patient and `--events` Observations of it, one per scenario
//! second, played at 3,600x (an hour of scenario per second of wall time), so the player is
//! always behind and the figure is its throughput. The command service (relay on) and an
//! identity service run in this process; requests carry a backend client's token.
//!
//! Run with `load-tests/run-replay-bench.sh` (which starts the servers).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use clap::Parser;
use load_tests::{Measurement, client_with_token, drive, print_table, resident_mib};
use serde_json::{Value, json};
use test_support::ServiceArgs;

#[derive(Debug, Parser)]
#[command(name = "replay-bench")]
struct Args {
    /// Changes in the scenario.
    #[arg(long, default_value_t = 2_000)]
    events: i64,
    /// Seconds the live create rate is measured for.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

/// The same allocator as the services' binaries, since the command service runs in this process.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn observation(n: i64, id: Option<String>) -> Value {
    let mut observation = json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/replay-p1"},
        "effectiveDateTime": "2026-01-01T02:00:00Z",
        "valueQuantity": {"value": 60 + n % 80, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}
    });
    if let Some(id) = id {
        observation["id"] = json!(id);
    }
    observation
}

fn scenario(events: i64) -> String {
    let mut lines = vec![
        json!({"type": "manifest", "format": "wardline-scenario/1", "name": "replay-bench",
               "version": 1, "durationMs": events * 1_000, "windowStart": "2026-01-01T02:00:00Z",
               "cohort": {"patients": ["replay-p1"]}}),
        json!({"type": "start", "resource": {"resourceType": "Patient", "id": "replay-p1"}}),
    ];
    lines.extend((0..events).map(|n| {
        json!({"type": "event", "offsetMs": n * 1_000, "kind": "create",
               "resource": observation(n, Some(format!("replay-o-{n}")))})
    }));
    lines.iter().map(|line| format!("{line}\n")).collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "replay-bench --events {} --seconds {} on {} cores",
        args.events,
        args.seconds,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let database = test_support::TestDatabase::create().await;
    let (stream, subject_prefix) = test_support::unique_stream();
    let identity = load_tests::identity(&database.url).await;
    let token = load_tests::backend_token(&identity).await;
    let settings: command_service::Settings = service_kit::config::load_from(
        ServiceArgs::new("command-service", &database.url, 16)
            .events_on(&test_support::nats_url(), &stream, &subject_prefix)
            .auth(identity.issuer(), &identity.jwks_url())
            .arg("--log-filter", "warn")
            .into_args(),
    )?;
    let application = command_service::Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until(std::future::pending()));
    let client = client_with_token(&token);

    // Baseline: live creates of the same Observations from one client.
    let patient = client
        .put(format!("{base}/fhir/Patient/replay-p1"))
        .header("content-type", "application/fhir+json")
        .body(json!({"resourceType": "Patient", "id": "replay-p1"}).to_string())
        .send()
        .await?;
    anyhow::ensure!(
        patient.status().is_success(),
        "the live patient: {}",
        patient.status()
    );
    let create_url = format!("{base}/fhir/Observation");
    let creates = {
        let client = client.clone();
        move |n: u64| {
            let request = client
                .post(create_url.clone())
                .header("content-type", "application/fhir+json")
                .body(observation(n as i64, None).to_string());
            async move {
                request
                    .send()
                    .await
                    .is_ok_and(|response| response.status() == 201)
            }
        }
    };
    let live: Measurement = drive(
        "live create (POST Observation), 1 client",
        1,
        Duration::from_secs(2),
        Duration::from_secs(args.seconds),
        creates,
    )
    .await;

    // The subject: the scenario imported, a sandbox made from it, played at 3,600x.
    let imported = client
        .post(format!("{base}/teaching/scenarios"))
        .header("content-type", "application/x-ndjson")
        .body(scenario(args.events))
        .send()
        .await?;
    anyhow::ensure!(
        imported.status() == 201,
        "import: {}",
        imported.text().await?
    );
    let created = client
        .post(format!("{base}/teaching/sandboxes"))
        .json(&json!({"name": "replay-bench", "start": {"scenario": "replay-bench"}}))
        .send()
        .await?;
    anyhow::ensure!(
        created.status() == 201,
        "sandbox: {}",
        created.text().await?
    );
    let memory_before = resident_mib();
    let started = Instant::now();
    let play = client
        .post(format!("{base}/teaching/sandboxes/replay-bench/play"))
        .json(&json!({"speed": 3600}))
        .send()
        .await?;
    anyhow::ensure!(play.status() == 200, "play: {}", play.text().await?);
    let status = loop {
        let status: Value = client
            .get(format!("{base}/teaching/sandboxes/replay-bench/play"))
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(status["error"].is_null(), "the play failed: {status}");
        if status["finished"] == true {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let elapsed = started.elapsed().as_secs_f64();
    let applied = status["applied"].as_f64().unwrap_or(0.0);
    let replay_rate = applied / elapsed;

    println!();
    print_table(std::slice::from_ref(&live));
    println!();
    println!(
        "replay into a sandbox at 3600x: {applied:.0} changes in {elapsed:.2} s = {replay_rate:.0} changes/s \
         (the starting state written before the clock starts)"
    );
    println!(
        "ratio replay / live create (1 client): {:.2}",
        replay_rate / live.per_second
    );
    if let (Some(before), Some(after)) = (memory_before, resident_mib()) {
        println!("resident memory: {before:.0} MiB before the play, {after:.0} MiB after");
    }
    test_support::delete_stream(&test_support::nats_url(), &stream).await;
    Ok(())
}
