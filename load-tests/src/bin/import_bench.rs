//! Import benchmark, in one run on one machine: `wardline import` of the 42 Synthea bundles and
//! of 2,000 generated patients into a fresh database, through a command service and a projection
//! service running as their own release processes (as `./deploy/dev up` runs them). For each set:
//! resources per second committed (the import's own clock), and until indexed (until the
//! projection checkpoint reaches the last position written); the peak memory (VmHWM) of the
//! command service, the projection service and the importer. Beside it, the physical limit: the
//! same resources' JSON loaded with Postgres `COPY` into a plain one-column table.
//!
//! Aims (from the import issue): at least 3,000 resources/s committed and indexed, and a third
//! of the `COPY` rate.
//!
//! Run with `load-tests/run-import-bench.sh` (which starts the servers and builds the services).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(name = "import-bench")]
struct Args {
    /// Generated patients in the second set.
    #[arg(long, default_value_t = 2000)]
    patients: usize,
    /// Transactions the importer keeps in flight.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Where the release binaries are.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A service running as its own process, stopped on drop.
struct Service {
    child: Child,
}

impl Service {
    fn start(binary: &Path, env: &[(&str, String)]) -> Service {
        let mut command = Command::new(binary);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        Service { child }
    }

    /// Peak resident memory so far, in MiB.
    fn peak_mib(&self) -> f64 {
        peak_mib(&format!("/proc/{}/status", self.child.id())).unwrap_or(0.0)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn peak_mib(status_file: &str) -> Option<f64> {
    let status = std::fs::read_to_string(status_file).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Waits until the service on `port` answers `path` (`/ready`, or `/health` for the projection,
/// which is ready only once the stream it consumes exists, i.e. after the first write).
async fn wait_for(port: u16, path: &str) {
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the service on port {port} did not become ready");
}

async fn checkpoint(pool: &sqlx::PgPool) -> i64 {
    fhir_search::sql::checkpoint::position(pool)
        .await
        .unwrap()
        .unwrap_or(0)
}

/// Every resource of the Bundle files in `dir`, as JSON text.
fn resources_of(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "json") {
            let bundle: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            for entry in bundle["entry"].as_array().into_iter().flatten() {
                out.push(entry["resource"].to_string());
            }
        }
    }
    out
}

/// Loads `resources` with `COPY` into a fresh plain table; resources per second.
async fn copy_rate(pool: &sqlx::PgPool, resources: &[String]) -> f64 {
    sqlx::query("DROP TABLE IF EXISTS copy_baseline")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE copy_baseline (resource json NOT NULL)")
        .execute(pool)
        .await
        .unwrap();
    let mut data = String::new();
    for resource in resources {
        // COPY text format: escape backslashes, and the tab/newline characters JSON text never
        // holds unescaped.
        data.push_str(&resource.replace('\\', "\\\\"));
        data.push('\n');
    }
    let started = Instant::now();
    let mut connection = pool.acquire().await.unwrap();
    let mut copy = connection
        .copy_in_raw("COPY copy_baseline (resource) FROM STDIN")
        .await
        .unwrap();
    copy.send(data.as_bytes()).await.unwrap();
    let rows = copy.finish().await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(rows as usize, resources.len());
    resources.len() as f64 / seconds
}

struct Figures {
    name: String,
    resources: usize,
    committed_per_second: f64,
    indexed_per_second: f64,
    copy_per_second: f64,
    failures: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let synthea = test_support::synthea::data_dir();
    let generated = tempfile::tempdir()?;
    wardline::write_generated(generated.path(), args.patients, 1, chrono::Utc::now())?;

    let mut figures = Vec::new();
    let mut peaks = Vec::new();
    for (name, dir) in [
        ("Synthea, 42 bundles".to_owned(), synthea.clone()),
        (
            format!("generated, {} patients", args.patients),
            generated.path().to_path_buf(),
        ),
    ] {
        // A fresh database and stream for each set.
        let database = test_support::TestDatabase::create().await;
        let (stream, subject_prefix) = test_support::unique_stream();
        let command_port = test_support::free_port();
        let projection_port = test_support::free_port();
        // The services check the importer's token, as deployed.
        let identity = test_support::identity::TestIdentity::spawn(&database.url).await;
        let token = identity.system_token("system/*.cruds").await.access_token;
        let common = vec![
            ("DATABASE_URL", database.url.clone()),
            ("NATS_URL", test_support::nats_url()),
            ("REDIS_URL", test_support::redis_url()),
            ("FHIR_EVENTS_STREAM", stream.clone()),
            ("FHIR_EVENTS_SUBJECT_PREFIX", subject_prefix.clone()),
            ("AUTH_ISSUER", identity.issuer().to_owned()),
            ("AUTH_JWKS_URL", identity.jwks_url()),
        ];
        let mut command_env = common.clone();
        command_env.push(("COMMAND_SERVICE_PORT", command_port.to_string()));
        let mut projection_env = common.clone();
        projection_env.push(("PROJECTION_SERVICE_PORT", projection_port.to_string()));
        let command = Service::start(&args.bin_dir.join("command-service"), &command_env);
        let projection = Service::start(&args.bin_dir.join("projection-service"), &projection_env);
        wait_for(command_port, "/ready").await;
        wait_for(projection_port, "/health").await;

        let settings = wardline::import::Settings {
            fhir_url: format!("http://127.0.0.1:{command_port}/fhir"),
            paths: vec![dir.clone()],
            concurrency: args.concurrency,
            progress: false,
            auth: wardline::auth::TokenSource::new(wardline::auth::Credentials {
                token: Some(token.clone()),
                token_url: identity.token_url(),
                client_id: "import-bench".to_owned(),
                client_key: None,
                scope: "system/*.cruds".to_owned(),
            }),
        };
        let started = Instant::now();
        let summary = wardline::import::run(&settings, Arc::new(AtomicBool::new(false))).await?;
        let head = summary.last_position.unwrap_or(0);
        while checkpoint(&database.pool).await < head {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let indexed_seconds = started.elapsed().as_secs_f64();
        let resources = summary.resources();
        peaks.push((name.clone(), command.peak_mib(), projection.peak_mib()));
        drop(command);
        drop(projection);

        let copy_per_second = copy_rate(&database.pool, &resources_of(&dir)).await;
        figures.push(Figures {
            name,
            resources,
            committed_per_second: resources as f64 / summary.seconds,
            indexed_per_second: resources as f64 / indexed_seconds,
            copy_per_second,
            failures: summary.failures.len(),
        });
        test_support::delete_stream(&test_support::nats_url(), &stream).await;
    }

    println!(
        "{:<28} {:>9} {:>13} {:>13} {:>11} {:>12} {:>12} {:>8}",
        "set",
        "resources",
        "committed/s",
        "indexed/s",
        "COPY/s",
        "commit/COPY",
        "index/COPY",
        "failures"
    );
    for f in &figures {
        println!(
            "{:<28} {:>9} {:>13.0} {:>13.0} {:>11.0} {:>12.3} {:>12.3} {:>8}",
            f.name,
            f.resources,
            f.committed_per_second,
            f.indexed_per_second,
            f.copy_per_second,
            f.committed_per_second / f.copy_per_second,
            f.indexed_per_second / f.copy_per_second,
            f.failures
        );
    }
    println!();
    println!("peak memory (VmHWM), MiB:");
    for (name, command, projection) in &peaks {
        println!(
            "  {name:<28} command-service {command:>7.0}   projection-service {projection:>7.0}"
        );
    }
    println!(
        "  importer (this process, both sets)                {:>7.0}",
        peak_mib("/proc/self/status").unwrap_or(0.0)
    );
    println!("\naims: 3,000 resources/s committed and indexed; a third (0.333) of the COPY rate");
    Ok(())
}
