//! Search benchmark of the query service, in one run on one machine: ten typical clinical
//! searches over the Synthea sample set loaded once, then again with nine more copies under
//! distinct ids (tenfold data), at 1, 16 and 64 clients, beside two baselines measured in the
//! same run: a trivial axum handler (HTTP alone) and pgbench's select-only run (Postgres alone).
//!
//! Every write goes through the command service and is indexed by the projection service, as
//! in production; the searches are HTTP requests to the query service with its Redis cache.
//! Each search cycles over parameter sets drawn from the loaded data (every patient, their
//! names and identifiers), so no single row stays hot. Before measuring, each search is run
//! once and its number of matches printed, so an empty result cannot pass for a fast one.
//! Every request carries a backend client's token from an identity service in this process,
//! which the services check as deployed.
//!
//! Aims (from the query service's issue): every search's p95 under 30 ms at 16 clients on the
//! tenfold set, and tenfold data costing at most twice the latency.
//!
//! Run with `load-tests/run-search-bench.sh` (which starts the servers).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use load_tests::{Measurement, drive, print_table, put_levels, resident_mib, wait_indexed};
use serde_json::Value;
use test_support::ServiceArgs;
use test_support::identity::TestIdentity;

#[derive(Debug, Parser)]
#[command(name = "search-bench")]
struct Args {
    #[arg(long, default_value = "1,16,64", value_delimiter = ',')]
    concurrency: Vec<usize>,
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Copies of the Synthea set in the larger run (1 skips it).
    #[arg(long, default_value_t = 10)]
    copies: usize,
    /// Concurrent writers while loading.
    #[arg(long, default_value_t = 32)]
    load_concurrency: usize,
    /// pgbench's scale factor for its select-only baseline (10 = one million accounts).
    #[arg(long, default_value_t = 10)]
    pgbench_scale: u32,
    #[arg(long, default_value = "load-tests/results/search-bench.json")]
    output: String,
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One of the ten searches: a path under `/fhir` and the parameter sets it cycles over.
struct Search {
    name: &'static str,
    path: String,
    params: Vec<Vec<(String, String)>>,
}

/// What the searches draw their parameters from.
struct Patient {
    id: String,
    family: String,
    mrn: Option<(String, String)>,
}

fn patients(levels: &[Vec<Value>]) -> Vec<Patient> {
    levels
        .iter()
        .flatten()
        .filter(|resource| resource["resourceType"] == "Patient")
        .map(|resource| Patient {
            id: resource["id"].as_str().unwrap().to_owned(),
            family: resource["name"][0]["family"]
                .as_str()
                .unwrap_or("Smith")
                .to_owned(),
            mrn: resource["identifier"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|identifier| identifier["type"]["coding"][0]["code"] == "MR")
                .and_then(|identifier| {
                    Some((
                        identifier["system"].as_str()?.to_owned(),
                        identifier["value"].as_str()?.to_owned(),
                    ))
                }),
        })
        .collect()
}

/// The most frequent LOINC code of laboratory Observations.
fn common_lab_code(levels: &[Vec<Value>]) -> String {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for resource in levels.iter().flatten() {
        let laboratory = resource["category"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|category| category["coding"].as_array().into_iter().flatten())
            .any(|coding| coding["code"] == "laboratory");
        if resource["resourceType"] == "Observation"
            && laboratory
            && let Some(code) = resource["code"]["coding"][0]["code"].as_str()
        {
            *counts.entry(code.to_owned()).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map_or_else(|| "2339-0".to_owned(), |(code, _)| code)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// `fixed` plus `patient=<id>`, once for every patient.
fn of_each_patient(patients: &[Patient], fixed: &[(&str, &str)]) -> Vec<Vec<(String, String)>> {
    patients
        .iter()
        .map(|p| {
            let mut list = pairs(fixed);
            list.push(("patient".into(), p.id.clone()));
            list
        })
        .collect()
}

fn searches(patients: &[Patient], lab_code: &str) -> Vec<Search> {
    let lab = format!("http://loinc.org|{lab_code}");
    let search = |name, path: &str, params| Search {
        name,
        path: path.to_owned(),
        params,
    };
    vec![
        search(
            "vital signs, newest first",
            "Observation",
            of_each_patient(patients, &[("category", "vital-signs"), ("_sort", "-date")]),
        ),
        search(
            "lab by LOINC and dates",
            "Observation",
            of_each_patient(
                patients,
                &[
                    ("date", "ge2010-01-01"),
                    ("date", "lt2025-01-01"),
                    ("code", &lab),
                ],
            ),
        ),
        search(
            "active conditions",
            "Condition",
            of_each_patient(patients, &[("clinical-status", "active")]),
        ),
        search(
            "active meds + _include",
            "MedicationRequest",
            of_each_patient(
                patients,
                &[
                    ("status", "active"),
                    ("_include", "MedicationRequest:medication"),
                ],
            ),
        ),
        search(
            "encounters + _revinclude",
            "Encounter",
            of_each_patient(
                patients,
                &[
                    ("date", "ge2015-01-01"),
                    ("date", "lt2025-01-01"),
                    ("_revinclude", "Observation:encounter"),
                    ("_count", "10"),
                ],
            ),
        ),
        search(
            "patients by name + birth",
            "Patient",
            patients
                .iter()
                .map(|p| {
                    let prefix: String = p.family.chars().take(3).collect();
                    pairs(&[("birthdate", "ge1940-01-01"), ("name", &prefix)])
                })
                .collect(),
        ),
        search(
            "patient by identifier",
            "Patient",
            patients
                .iter()
                .filter_map(|p| p.mrn.as_ref())
                .map(|(system, value)| pairs(&[("identifier", &format!("{system}|{value}"))]))
                .collect(),
        ),
        search(
            "lab code, all patients",
            "Observation",
            vec![pairs(&[
                ("code", &lab),
                ("date", "ge2015-01-01"),
                ("_count", "50"),
            ])],
        ),
        search(
            "immunizations, newest",
            "Immunization",
            of_each_patient(patients, &[("_sort", "-date")]),
        ),
        search(
            "chain: BP by patient name",
            "Observation",
            patients
                .iter()
                .map(|p| {
                    pairs(&[
                        ("code", "http://loinc.org|55284-4"),
                        ("subject:Patient.name", &p.family),
                    ])
                })
                .collect(),
        ),
    ]
}

fn search_operation(
    client: &reqwest::Client,
    base: &str,
    search: &Search,
) -> impl Fn(u64) -> futures::future::BoxFuture<'static, bool> + Send + Sync + 'static {
    let client = client.clone();
    let url = format!("{base}/{}", search.path);
    let params = Arc::new(search.params.clone());
    move |n| {
        let set = &params[(n as usize) % params.len()];
        let request = client.get(&url).query(set);
        Box::pin(async move { request.send().await.is_ok_and(|r| r.status() == 200) })
    }
}

/// The mean number of matches over (up to 40 of) a search's parameter sets, and the mean
/// number of entries on page one (matches plus included resources).
async fn result_size(client: &reqwest::Client, base: &str, search: &Search) -> (f64, f64) {
    let sample: Vec<_> = search.params.iter().take(40).collect();
    let (mut total, mut entries) = (0.0, 0.0);
    for params in &sample {
        let bundle: Value = client
            .get(format!("{base}/{}", search.path))
            .query(params)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        total += bundle["total"].as_f64().unwrap_or(0.0);
        entries += bundle["entry"].as_array().map_or(0, Vec::len) as f64;
    }
    let n = sample.len().max(1) as f64;
    (total / n, entries / n)
}

async fn measure_searches(
    args: &Args,
    client: &reqwest::Client,
    base: &str,
    searches: &[Search],
    label: &str,
) -> Vec<Measurement> {
    println!("\n{label}: mean matches / entries on page one, over up to 40 parameter sets");
    for search in searches {
        let (total, entries) = result_size(client, base, search).await;
        println!(
            "  {:<28} {total:>8.1} / {entries:<6.1} ({} parameter sets)",
            search.name,
            search.params.len()
        );
    }
    let mut results = Vec::new();
    for &concurrency in &args.concurrency {
        for search in searches {
            let mut measurement = drive(
                search.name,
                concurrency,
                Duration::from_secs(args.warmup),
                Duration::from_secs(args.seconds),
                search_operation(client, base, search),
            )
            .await;
            measurement.name = format!("{label} {}", search.name);
            results.push(measurement);
        }
    }
    results
}

/// pgbench's select-only run at `concurrency` clients, latencies from its per-transaction log.
fn pgbench(database_url: &str, concurrency: usize, seconds: u64) -> Measurement {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("pgbench");
    let status = std::process::Command::new(pgbench_bin())
        .args(["-n", "-S", "-M", "prepared", "-l"])
        .arg(format!("--log-prefix={}", prefix.display()))
        .args(["-c", &concurrency.to_string()])
        .args(["-j", &concurrency.clamp(1, 2).to_string()])
        .args(["-T", &seconds.to_string()])
        .arg(database_url)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("pgbench runs");
    assert!(status.success(), "pgbench failed");
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            // client_id transaction_no latency_us script_no epoch epoch_us
            if let Some(micros) = line
                .split_whitespace()
                .nth(2)
                .and_then(|v| v.parse::<u64>().ok())
            {
                let _ = histogram.record(micros.clamp(1, 60_000_000));
            }
        }
    }
    let millis = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    Measurement {
        name: "pgbench select-only".into(),
        concurrency,
        operations: histogram.len(),
        errors: 0,
        seconds: seconds as f64,
        per_second: histogram.len() as f64 / seconds as f64,
        p50_ms: millis(0.50),
        p95_ms: millis(0.95),
        p99_ms: millis(0.99),
        max_ms: histogram.max() as f64 / 1000.0,
    }
}

fn pgbench_bin() -> String {
    std::env::var("PGBENCH").unwrap_or_else(|_| {
        let debian = Path::new("/usr/lib/postgresql/15/bin/pgbench");
        if debian.exists() {
            debian.display().to_string()
        } else {
            "pgbench".to_owned()
        }
    })
}

async fn start_services(
    database_url: &str,
    stream: &str,
    subject_prefix: &str,
    identity: &TestIdentity,
) -> (String, String) {
    let (issuer, jwks_url) = (identity.issuer(), identity.jwks_url());
    let command = command_service::Application::build(
        service_kit::config::load_from(
            ServiceArgs::new("command-service", database_url, 48)
                .events(stream, subject_prefix)
                .redis()
                .auth(issuer, &jwks_url)
                .arg("--log-filter", "warn")
                .into_args(),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let writes = format!("http://127.0.0.1:{}/fhir", command.port());
    tokio::spawn(command.run_until(std::future::pending()));
    let projection = projection_service::Application::build(
        service_kit::config::load_from(
            ServiceArgs::new("projection-service", database_url, 8)
                .events(stream, subject_prefix)
                .redis()
                .auth(issuer, &jwks_url)
                .arg("--log-filter", "warn")
                .into_args(),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    tokio::spawn(projection.run_until(std::future::pending()));
    let query = fhir_query_service::Application::build(
        service_kit::config::load_from(
            ServiceArgs::new("fhir-query-service", database_url, 32)
                .redis()
                .auth(issuer, &jwks_url)
                .arg("--log-filter", "warn")
                .into_args(),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let reads = format!("http://127.0.0.1:{}/fhir", query.port());
    tokio::spawn(query.run_until(std::future::pending()));
    (writes, reads)
}

/// Fresh planner statistics after a bulk load, as autovacuum would gather within a minute or
/// so; measuring right after the load would otherwise measure plans made for empty tables.
async fn analyze(pool: &sqlx::PgPool) {
    sqlx::query("ANALYZE").execute(pool).await.unwrap();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let synthea = test_support::synthea::data_dir();
    let database = test_support::TestDatabase::create().await;
    let (stream, subject_prefix) = test_support::unique_stream();
    println!("database {}, stream {stream}", database.name);
    let identity = load_tests::identity(&database.url).await;
    let token = load_tests::backend_token(&identity).await;
    let (writes, reads) = start_services(&database.url, &stream, &subject_prefix, &identity).await;
    let client = load_tests::client_with_token(&token);

    let levels = test_support::synthea::load_levels(&synthea);
    let lab_code = common_lab_code(&levels);
    let started = Instant::now();
    put_levels(&client, &writes, &levels, args.load_concurrency).await;
    wait_indexed(&database.pool).await;
    analyze(&database.pool).await;
    let resources: usize = levels.iter().map(Vec::len).sum();
    println!(
        "Synthea x1: {resources} resources written and indexed in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Baselines, same run.
    let status = std::process::Command::new(pgbench_bin())
        .args(["-i", "-q", "-s", &args.pgbench_scale.to_string()])
        .arg(&database.url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "pgbench -i failed");
    let trivial = axum::Router::new().route(
        "/fhir/Observation",
        axum::routing::get(|| async { "{\"resourceType\":\"Bundle\",\"type\":\"searchset\"}" }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let trivial_base = format!("http://127.0.0.1:{}/fhir", listener.local_addr()?.port());
    tokio::spawn(async move { axum::serve(listener, trivial).await });
    let trivial_search = Search {
        name: "trivial axum handler",
        path: "Observation".into(),
        params: vec![Vec::new()],
    };
    let mut baselines = Vec::new();
    for &concurrency in &args.concurrency {
        baselines.push(
            drive(
                trivial_search.name,
                concurrency,
                Duration::from_secs(args.warmup),
                Duration::from_secs(args.seconds),
                search_operation(&client, &trivial_base, &trivial_search),
            )
            .await,
        );
        let url = database.url.clone();
        let seconds = args.seconds;
        baselines
            .push(tokio::task::spawn_blocking(move || pgbench(&url, concurrency, seconds)).await?);
    }

    let one = searches(&patients(&levels), &lab_code);
    let mut results = measure_searches(&args, &client, &reads, &one, "x1").await;

    if args.copies > 1 {
        let started = Instant::now();
        let mut all = levels.clone();
        for copy in 1..args.copies {
            let copied = test_support::synthea::copy_levels(&levels, copy);
            put_levels(&client, &writes, &copied, args.load_concurrency).await;
            for (level, more) in all.iter_mut().zip(copied) {
                level.extend(more);
            }
        }
        wait_indexed(&database.pool).await;
        analyze(&database.pool).await;
        println!(
            "\nSynthea x{}: {} resources in all, the copies written and indexed in {:.1} s",
            args.copies,
            resources * args.copies,
            started.elapsed().as_secs_f64()
        );
        let many = searches(&patients(&all), &lab_code);
        let label = format!("x{}", args.copies);
        results.extend(measure_searches(&args, &client, &reads, &many, &label).await);
    }

    println!();
    print_table(&baselines);
    println!();
    print_table(&results);
    summarise(&args, &baselines, &results, &one);
    println!(
        "\nresident memory (services and load generator): {:.0} MiB",
        resident_mib().unwrap_or(0.0)
    );
    if let Some(parent) = Path::new(&args.output).parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut all = baselines;
    all.extend(results);
    std::fs::write(&args.output, serde_json::to_string_pretty(&all)?)?;
    test_support::delete_stream(&test_support::nats_url(), &stream).await;
    Ok(())
}

fn summarise(args: &Args, baselines: &[Measurement], results: &[Measurement], searches: &[Search]) {
    let find = |name: &str, concurrency: usize| {
        results
            .iter()
            .chain(baselines)
            .find(|m| m.name == name && m.concurrency == concurrency)
    };
    let large = format!("x{}", args.copies);
    println!(
        "\nAt 16 clients: p95 on the larger set (aim < 30 ms), and larger / x1 latency (aim <= 2)"
    );
    for search in searches {
        let (Some(small), Some(big)) = (
            find(&format!("x1 {}", search.name), 16),
            find(&format!("{large} {}", search.name), 16),
        ) else {
            continue;
        };
        println!(
            "  {:<28} p95 {:>7.2} ms {:<4}  p50 ratio {:>5.2}  p95 ratio {:>5.2}",
            search.name,
            big.p95_ms,
            if big.p95_ms < 30.0 { "ok" } else { "MISS" },
            big.p50_ms / small.p50_ms,
            big.p95_ms / small.p95_ms,
        );
    }
    for &concurrency in &args.concurrency {
        let (Some(trivial), Some(pgbench)) = (
            find("trivial axum handler", concurrency),
            find("pgbench select-only", concurrency),
        ) else {
            continue;
        };
        let searches_at: Vec<&Measurement> = results
            .iter()
            .filter(|m| m.concurrency == concurrency && m.name.starts_with(&format!("{large} ")))
            .collect();
        if searches_at.is_empty() {
            continue;
        }
        let mean_rate =
            searches_at.iter().map(|m| m.per_second).sum::<f64>() / searches_at.len() as f64;
        println!(
            "{concurrency:>3} clients: mean search rate on {large} {mean_rate:.0}/s = {:.3} of the trivial handler, {:.3} of pgbench select-only",
            mean_rate / trivial.per_second,
            mean_rate / pgbench.per_second,
        );
    }
}
