//! Notifier benchmark, in one run on one machine: how fast committed changes reach WebSocket
//! clients, and what holding the clients costs.
//!
//! A command service, a projection service and the notifier run as their own release processes
//! over a fresh database, JetStream stream and Redis key prefix. 100 patients are admitted to
//! three wards (a bed each, an in-progress inpatient Encounter). Then, for each level of clients
//! (100, 1,000 and 10,000 by default) the clients connect to `/ws` and subscribe: each to one
//! patient, in turn, except every tenth, which subscribes to a ward. After two idle seconds,
//! vital-sign Observations are created through the command service at a fixed rate (200/s, open
//! loop, 32 requests in flight at most, round-robin over the patients) for 20 s.
//!
//! Each Observation carries the moment its request was sent (microseconds since the benchmark
//! started, as an `identifier`); each client reads it back from the `event` it receives and
//! takes the difference on the same clock: the event-to-client latency. `recordedAt` (the
//! command service's clock when it took the request, in milliseconds) gives a second figure,
//! without the request's way in, and a plain NATS subscriber in this process times each event's
//! arrival on the stream's subject, which splits the latency between the write path (command
//! service, Postgres, outbox relay) and the notifier. Printed per level: latency
//! p50/p95/p99/max; writes/s; fan-out (messages per write), messages/s offered and delivered;
//! clients dropped (close 1008), errors and messages that never came; the notifier's VmRSS idle
//! and under load, its VmHWM, and its CPU, beside the CPU of the write path, of this process
//! (the load generator) and of the whole machine, which they all share.
//!
//! The baseline, measured in the same run: a trivial axum WebSocket server (a `broadcast`
//! channel per topic, as in axum's chat example) with as many clients, the same subscriptions,
//! messages of the same size and the same write rate, fed by HTTP posts, so the ratios
//! notifier/baseline say what the notifier's path (Postgres, the outbox relay, NATS, the hub)
//! costs over the bare minimum. It runs as its own process (this binary, `serve-baseline`): the
//! 10,000 client sockets and 10,000 server sockets of one level would not fit together under one
//! process's open-file limit.
//!
//! A level at which the notifier does not keep up with the rate (writes short of it, clients
//! dropped, messages missing or falling behind) is measured again at `--fallback-rate`, and the
//! output says so. Aims (from the issue): 10,000 clients held on this machine; p99 under 250 ms
//! at 1,000 clients while 200 writes/s flow.
//!
//! The services check tokens from an identity service in this process, as deployed: the writes
//! carry a backend client's token (`system/*.cruds`), and each client opens its socket with the
//! same token as `?access_token=`, as a browser does. The baseline checks none.
//!
//! Run with `load-tests/run-ws-bench.sh` (which starts the servers, builds the services and
//! raises the open-file limit); options `--levels 100,1000,10000 --rate 200 --seconds 20`.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Connection;
use test_support::identity::TestIdentity;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[derive(Debug, Parser)]
#[command(name = "ws-bench")]
struct Args {
    #[command(subcommand)]
    serve: Option<Serve>,
    /// Numbers of connected clients to measure at, comma-separated.
    #[arg(long, default_value = "100,1000,10000", value_delimiter = ',')]
    levels: Vec<usize>,
    /// Observations written per second.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// The rate a level is measured at again when the notifier does not keep up with `--rate`.
    #[arg(long, default_value_t = 50)]
    fallback_rate: u32,
    /// Seconds of writing per measurement.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Patients admitted to the wards and written for.
    #[arg(long, default_value_t = 100)]
    patients: usize,
    /// Write requests in flight at most.
    #[arg(long, default_value_t = 32)]
    writers: usize,
    /// Where the release binaries are.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// A directory for the services' logs (by default they are discarded).
    #[arg(long)]
    log_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Serve {
    /// Runs only the baseline WebSocket server; the benchmark starts it as its own process.
    #[command(hide = true)]
    ServeBaseline {
        #[arg(long)]
        port: u16,
    },
}

/// The allocator the notifier uses, for the baseline server too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WARDS: [&str; 3] = ["ward-a", "ward-b", "ward-c"];
/// One client in this many subscribes to a ward; the others to a patient.
const WARD_EVERY: usize = 10;
/// Clients connecting at once.
const CONNECT_CONCURRENCY: usize = 64;
/// How long a client may take to connect and be subscribed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Quiet time between connecting and writing, over which idle memory and CPU are taken.
const IDLE: Duration = Duration::from_secs(2);
/// How long after the last write the missing messages are waited for, at most...
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// ...and how long without any message arriving ends the wait sooner.
const DRAIN_QUIET: Duration = Duration::from_secs(3);
/// The share of the rate (writes, and messages delivered while writing) that counts as keeping
/// up with it.
const KEEPING_UP: f64 = 0.95;
/// Latency histograms per measurement, so that clients on two cores rarely wait for a lock.
const SHARDS: usize = 16;
const MAX_MICROS: u64 = 600_000_000;
/// The identifier system whose value is the moment the write was sent.
const STAMP_SYSTEM: &str = "urn:wardline:ws-bench:sent-at-us";
/// The notifier's cap on connections per address: every client comes from 127.0.0.1, and the
/// cap is not what is measured (Redis's count of an address can run ahead of the connections;
/// the output says when it does).
const ADDRESS_CAP: usize = 1_000_000;
/// The baseline's per-client queue, the notifier's default (`--queue`).
const BASELINE_QUEUE: usize = 1024;

const AIM_CLIENTS: usize = 10_000;
const AIM_P99_CLIENTS: usize = 1_000;
const AIM_P99_RATE: u32 = 200;
const AIM_P99_MS: f64 = 250.0;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.serve {
        Some(Serve::ServeBaseline { port }) => baseline::serve(port).await,
        None => bench(args).await,
    }
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let most = args.levels.iter().copied().max().unwrap_or(0);
    let limit = open_file_limit().unwrap_or(0);
    if limit < most as u64 + 512 {
        bail!(
            "{most} clients need {} open files and the limit is {limit}: raise `ulimit -n` \
             (load-tests/run-ws-bench.sh does)",
            most + 512
        );
    }
    if args.levels.contains(&0) || args.rate == 0 || args.fallback_rate == 0 || args.patients == 0 {
        bail!("levels, rates and patients must be at least 1");
    }
    let database = test_support::TestDatabase::create().await;
    let (stream, subject_prefix) = test_support::unique_stream();
    let redis_prefix = format!("ws-bench-{}", uuid::Uuid::new_v4().simple());
    println!(
        "database {}, stream {stream}, Redis prefix {redis_prefix}",
        database.name
    );
    let identity = load_tests::identity(&database.url).await;
    let token = load_tests::backend_token(&identity).await;
    let outcome = async {
        let services = Services::start(
            &args,
            &database.url,
            &stream,
            &subject_prefix,
            &redis_prefix,
            (&identity, &token),
        )
        .await?;
        run(&args, &services, &database.pool).await
    }
    .await;
    cleanup(&stream, &redis_prefix, database).await;
    outcome
}

/// Admits the patients, then measures every level against the notifier and the baseline and
/// prints the figures.
async fn run(args: &Args, services: &Services, pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let http = test_support::bearer_client(&services.token, Duration::from_secs(30));
    let census = Census {
        patients: args.patients,
    };
    load_tests::put_levels(&http, &services.fhir_base(), &census.resources(), 8).await;
    load_tests::wait_indexed(pool).await;
    let notifier = services.notifier();
    let baseline = services.baseline();
    let epoch = Instant::now();

    // A few clients and writes first: the whole path works (the notifier's ward census is
    // loaded) before anything is measured.
    let warm_up = Load {
        rate: 10,
        seconds: 2,
        writers: 2,
        message_bytes: 0,
    };
    let check = measure(&notifier, 10, &warm_up, &census, &http, epoch).await;
    if check.writes.expected == 0 || check.lost() > 0 || check.connected < 10 {
        bail!(
            "the notifier does not deliver: {} clients connected ({}), {} of {} messages came",
            check.connected,
            check
                .refused
                .map_or("none refused".to_owned(), |(_, why)| why),
            check.received,
            check.writes.expected
        );
    }

    println!(
        "{} patients on {} wards; each client subscribes to a patient, in turn, and every \
         {WARD_EVERY}th to a ward instead; {} s of writes per measurement",
        args.patients,
        WARDS.len(),
        args.seconds
    );
    let mut cells = Vec::new();
    let mut notes = Vec::new();
    for &clients in &args.levels {
        let (patients, wards) = subscription_counts(clients);
        println!("\n{clients} clients: {patients} patient and {wards} ward subscriptions");
        let mut rate = args.rate;
        loop {
            let load = Load {
                rate,
                seconds: args.seconds,
                writers: args.writers,
                message_bytes: 0,
            };
            let measured = measure(&notifier, clients, &load, &census, &http, epoch).await;
            print_progress(&measured);
            // The baseline's messages are as long as the notifier's were.
            let load = Load {
                message_bytes: measured.mean_message_bytes().round() as usize,
                ..load
            };
            let compared = measure(&baseline, clients, &load, &census, &http, epoch).await;
            print_progress(&compared);
            let shortfall = measured.shortfall();
            cells.push(measured);
            cells.push(compared);
            match shortfall {
                Some(reason) if rate != args.fallback_rate => {
                    let note = format!(
                        "the notifier did not keep up with {clients} clients at {rate} writes/s \
                         ({reason}); measured again at {} writes/s",
                        args.fallback_rate
                    );
                    println!("  {note}");
                    notes.push(note);
                    rate = args.fallback_rate;
                }
                _ => break,
            }
        }
    }
    report(args, &cells, &notes);
    println!(
        "\nmeasured in {:.0} s (after admitting the patients)",
        epoch.elapsed().as_secs_f64()
    );
    Ok(())
}

// ------------------------------------------------------------------------------ services

/// A service running as its own process, killed on drop.
struct Process {
    child: Child,
}

impl Process {
    fn start(
        name: &str,
        binary: &Path,
        args: &[String],
        env: &[(&str, String)],
        log_dir: Option<&Path>,
    ) -> anyhow::Result<Process> {
        let (stdout, stderr) = match log_dir {
            Some(dir) => {
                let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
                (Stdio::from(log.try_clone()?), Stdio::from(log))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let child = Command::new(binary)
            .args(args)
            .envs(env.iter().map(|(name, value)| (name, value)))
            .env("RUST_LOG", "warn")
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        Ok(Process { child })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The command service, the projection service, the notifier and the baseline server.
struct Services {
    command_port: u16,
    notifier_port: u16,
    baseline_port: u16,
    redis_prefix: String,
    subject_prefix: String,
    /// The backend client's access token the writes and the notifier's clients carry.
    token: String,
    notifier: Process,
    baseline: Process,
    command: Process,
    projection: Process,
}

impl Services {
    async fn start(
        args: &Args,
        database_url: &str,
        stream: &str,
        subject_prefix: &str,
        redis_prefix: &str,
        (identity, token): (&TestIdentity, &str),
    ) -> anyhow::Result<Services> {
        if let Some(dir) = &args.log_dir {
            std::fs::create_dir_all(dir)?;
        }
        let log_dir = args.log_dir.as_deref();
        let common = [
            ("DATABASE_URL", database_url.to_owned()),
            ("NATS_URL", test_support::nats_url()),
            ("REDIS_URL", test_support::redis_url()),
            ("FHIR_EVENTS_STREAM", stream.to_owned()),
            ("FHIR_EVENTS_SUBJECT_PREFIX", subject_prefix.to_owned()),
            ("AUTH_ISSUER", identity.issuer().to_owned()),
            ("AUTH_JWKS_URL", identity.jwks_url()),
        ];
        let with = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
            common.iter().chain(extra).cloned().collect()
        };
        let (command_port, projection_port, notifier_port, baseline_port) = (
            test_support::free_port(),
            test_support::free_port(),
            test_support::free_port(),
            test_support::free_port(),
        );
        let binary = |name: &str| args.bin_dir.join(name);
        let command = Process::start(
            "command-service",
            &binary("command-service"),
            &[],
            &with(&[("COMMAND_SERVICE_PORT", command_port.to_string())]),
            log_dir,
        )?;
        let projection = Process::start(
            "projection-service",
            &binary("projection-service"),
            &[],
            &with(&[("PROJECTION_SERVICE_PORT", projection_port.to_string())]),
            log_dir,
        )?;
        let notifier = Process::start(
            "notifier",
            &binary("notifier"),
            &[],
            &with(&[
                ("NOTIFIER_PORT", notifier_port.to_string()),
                (
                    "NOTIFIER_MAX_CONNECTIONS_PER_ADDRESS",
                    ADDRESS_CAP.to_string(),
                ),
                ("NOTIFIER_REDIS_PREFIX", redis_prefix.to_owned()),
            ]),
            log_dir,
        )?;
        let baseline = Process::start(
            "baseline",
            &std::env::current_exe()?,
            &[
                "serve-baseline".to_owned(),
                "--port".to_owned(),
                baseline_port.to_string(),
            ],
            &[],
            log_dir,
        )?;
        wait_for(command_port, "/ready").await?;
        // The projection is ready only once the stream exists; alive is enough.
        wait_for(projection_port, "/health").await?;
        wait_for(notifier_port, "/ready").await?;
        wait_for(baseline_port, "/status").await?;
        Ok(Services {
            command_port,
            notifier_port,
            baseline_port,
            redis_prefix: redis_prefix.to_owned(),
            subject_prefix: subject_prefix.to_owned(),
            token: token.to_owned(),
            notifier,
            baseline,
            command,
            projection,
        })
    }

    fn fhir_base(&self) -> String {
        format!("http://127.0.0.1:{}/fhir", self.command_port)
    }

    fn notifier(&self) -> Subject {
        Subject {
            kind: Kind::Notifier,
            ws: format!(
                "ws://127.0.0.1:{}/ws?access_token={}",
                self.notifier_port, self.token
            ),
            token: Some(self.token.clone()),
            status: format!("http://127.0.0.1:{}/status", self.notifier_port),
            writes: format!("{}/Observation", self.fhir_base()),
            pid: self.notifier.pid(),
            presence: Some(format!("{}:addresses", self.redis_prefix)),
            published: Some(format!("{}.Observation", self.subject_prefix)),
            write_path: vec![self.command.pid(), self.projection.pid()],
        }
    }

    fn baseline(&self) -> Subject {
        Subject {
            kind: Kind::Baseline,
            ws: format!("ws://127.0.0.1:{}/ws", self.baseline_port),
            token: None,
            status: format!("http://127.0.0.1:{}/status", self.baseline_port),
            writes: format!("http://127.0.0.1:{}/publish", self.baseline_port),
            pid: self.baseline.pid(),
            presence: None,
            published: None,
            write_path: Vec::new(),
        }
    }
}

/// Waits until the service on `port` answers `path` with a success.
async fn wait_for(port: u16, path: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for _ in 0..600 {
        let answered = client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await;
        if answered.is_ok_and(|response| response.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the service on port {port} did not answer {path} within 60 s")
}

/// Deletes what the run created: the JetStream stream, the notifier's Redis keys, the database.
async fn cleanup(stream: &str, redis_prefix: &str, database: test_support::TestDatabase) {
    test_support::delete_stream(&test_support::nats_url(), stream).await;
    if let Ok(client) = redis::Client::open(test_support::redis_url())
        && let Ok(mut redis) = client.get_multiplexed_async_connection().await
    {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{redis_prefix}:*"))
            .query_async(&mut redis)
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut redis).await;
        }
    }
    database.pool.close().await;
    if let Ok(mut admin) = sqlx::PgConnection::connect(&test_support::database_url()).await {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", database.name);
        let _ = sqlx::query(&drop).execute(&mut admin).await;
        let _ = admin.close().await;
    }
}

/// The soft limit on open files of this process (the services inherit it).
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// A `kB` figure of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// CPU seconds (user and system) the process has used: `/proc/<pid>/stat` counts them in
/// ticks of 1/100 s (`USER_HZ`).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces), from the third on: utime is the
    // 14th field, stime the 15th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Processes' CPU use over a stretch of time, as a percentage of one core.
struct CpuWatch {
    pids: Vec<u32>,
    since: Instant,
    used: f64,
}

impl CpuWatch {
    fn start(pids: &[u32]) -> CpuWatch {
        CpuWatch {
            pids: pids.to_vec(),
            since: Instant::now(),
            used: pids.iter().copied().map(cpu_seconds).sum(),
        }
    }

    fn percent(&self) -> f64 {
        let used: f64 = self.pids.iter().copied().map(cpu_seconds).sum();
        let wall = self.since.elapsed().as_secs_f64();
        100.0 * (used - self.used) / wall.max(f64::EPSILON)
    }
}

/// The machine's CPU use over a stretch of time, as a percentage of all its cores.
struct MachineWatch {
    busy: u64,
    total: u64,
}

impl MachineWatch {
    fn start() -> MachineWatch {
        let (busy, total) = machine_ticks();
        MachineWatch { busy, total }
    }

    fn percent(&self) -> f64 {
        let (busy, total) = machine_ticks();
        100.0 * busy.saturating_sub(self.busy) as f64
            / total.saturating_sub(self.total).max(1) as f64
    }
}

/// (busy, all) ticks of every core since boot, from the first line of `/proc/stat`: user,
/// nice, system, idle, iowait, irq, softirq, steal; idle and iowait are not busy.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|field| field.parse().ok())
        .collect();
    let total: u64 = ticks.iter().sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

// ------------------------------------------------------------------------------ the census

/// The patients, the wards they are on, and the FHIR resources that put them there.
struct Census {
    patients: usize,
}

impl Census {
    fn patient(&self, index: usize) -> String {
        format!("p-{index}")
    }

    fn ward_of(&self, patient: usize) -> usize {
        patient % WARDS.len()
    }

    /// The wards, a bed per patient, the patients, and their in-progress inpatient stays, in
    /// the order they can be written (what is referred to first).
    fn resources(&self) -> Vec<Vec<Value>> {
        let physical_type = |code: &str| json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/location-physical-type", "code": code}]});
        let bed = |patient: usize| format!("{}-bed-{patient}", WARDS[self.ward_of(patient)]);
        let wards = WARDS
            .iter()
            .map(|ward| {
                json!({"resourceType": "Location", "id": ward, "name": format!("Ward {ward}"),
                       "status": "active", "physicalType": physical_type("wa")})
            })
            .collect();
        let beds = (0..self.patients)
            .map(|patient| {
                json!({"resourceType": "Location", "id": bed(patient), "name": format!("Bed {patient}"),
                       "status": "active", "physicalType": physical_type("bd"),
                       "partOf": {"reference": format!("Location/{}", WARDS[self.ward_of(patient)])}})
            })
            .collect();
        let patients = (0..self.patients)
            .map(|patient| {
                json!({"resourceType": "Patient", "id": self.patient(patient),
                       "name": [{"family": format!("Bench{patient}")}]})
            })
            .collect();
        let stays = (0..self.patients)
            .map(|patient| {
                json!({
                    "resourceType": "Encounter", "id": format!("stay-{patient}"), "status": "in-progress",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                    "subject": {"reference": format!("Patient/{}", self.patient(patient))},
                    "period": {"start": "2026-12-01T08:00:00Z"},
                    "location": [{"location": {"reference": format!("Location/{}", bed(patient))}, "status": "active"}]
                })
            })
            .collect();
        vec![wards, beds, patients, stays]
    }

    /// A heart rate of `patient`, stamped with `sent_at` (µs on the benchmark's clock).
    fn observation(&self, patient: usize, sent_at: u64) -> Value {
        json!({
            "resourceType": "Observation", "status": "final",
            "identifier": [{"system": STAMP_SYSTEM, "value": sent_at.to_string()}],
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
            "subject": {"reference": format!("Patient/{}", self.patient(patient))},
            "effectiveDateTime": "2026-12-01T10:00:00Z",
            "valueQuantity": {"value": 60 + sent_at % 60, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}
        })
    }
}

/// What one client subscribes to.
#[derive(Debug, Clone, Copy)]
enum Filter {
    Patient(usize),
    Ward(usize),
}

impl Filter {
    /// Client `index`'s filter: every tenth a ward, in turn; the others a patient, in turn.
    fn of_client(index: usize, patients: usize) -> Filter {
        if index % WARD_EVERY == WARD_EVERY - 1 {
            Filter::Ward(index / WARD_EVERY % WARDS.len())
        } else {
            Filter::Patient((index - index / WARD_EVERY) % patients)
        }
    }

    fn subscribe(self, census: &Census) -> String {
        match self {
            Filter::Patient(patient) => {
                json!({"type": "subscribe", "patient": census.patient(patient)})
            }
            Filter::Ward(ward) => json!({"type": "subscribe", "ward": WARDS[ward]}),
        }
        .to_string()
    }
}

/// (patient subscriptions, ward subscriptions) among `clients` clients.
fn subscription_counts(clients: usize) -> (usize, usize) {
    let wards = clients / WARD_EVERY;
    (clients - wards, wards)
}

/// For each patient, how many of the clients (by index) an event of theirs goes to.
fn messages_per_write(clients: &[usize], census: &Census) -> Vec<u64> {
    let mut by_patient = vec![0u64; census.patients];
    let mut by_ward = [0u64; WARDS.len()];
    for &index in clients {
        match Filter::of_client(index, census.patients) {
            Filter::Patient(patient) => by_patient[patient] += 1,
            Filter::Ward(ward) => by_ward[ward] += 1,
        }
    }
    (0..census.patients)
        .map(|patient| by_patient[patient] + by_ward[census.ward_of(patient)])
        .collect()
}

// ------------------------------------------------------------------------------ one measurement

/// The server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Notifier,
    Baseline,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Notifier => "notifier",
            Kind::Baseline => "baseline",
        }
    }
}

/// A server under test, and where to watch it.
struct Subject {
    kind: Kind,
    /// Where clients connect (with their token, for the notifier).
    ws: String,
    /// The token the writes carry, for the notifier.
    token: Option<String>,
    /// The Redis hash of open connections per address, for the notifier.
    presence: Option<String>,
    /// The NATS subject the notifier's events come on.
    published: Option<String>,
    /// The processes that put them there: the command and projection services.
    write_path: Vec<u32>,
    /// `GET`: `{"connections": n}`.
    status: String,
    /// Where writes go: the command service's Observation endpoint, or the baseline's publish.
    writes: String,
    pid: u32,
}

/// The writes of one measurement.
#[derive(Debug, Clone, Copy)]
struct Load {
    rate: u32,
    seconds: u64,
    writers: usize,
    /// The length of the baseline's messages (unused by the notifier).
    message_bytes: usize,
}

/// The figures of one measurement.
struct Cell {
    kind: Kind,
    clients: usize,
    connected: usize,
    /// How many clients could not connect (or subscribe), and why the first could not.
    refused: Option<(usize, String)>,
    connect_seconds: f64,
    rate: u32,
    writes: Writes,
    /// `event` messages received while the writes went on, and in all.
    delivered_while_writing: u64,
    received: u64,
    message_bytes: u64,
    /// Microseconds from the write being sent to the client.
    latency: Histogram<u64>,
    /// Microseconds from the event's `recordedAt` to the client.
    recorded: Histogram<u64>,
    /// Microseconds from the write being sent to its event on NATS (notifier only).
    published: Option<Histogram<u64>>,
    dropped: u64,
    errors: u64,
    /// The server's memory in MiB: resident when idle, at most while writing, its peak.
    rss_idle: f64,
    rss_load: f64,
    hwm: f64,
    /// CPU, % of one core: the server idle and while writing; the command and projection
    /// services while writing (notifier only); this process while writing.
    cpu_idle: f64,
    cpu_load: f64,
    write_path_cpu: Option<f64>,
    bench_cpu_load: f64,
    /// The whole machine's CPU while writing, in % of all its cores.
    machine_cpu_load: f64,
    /// Connections the server still counted 30 s after the clients closed.
    left_open: u64,
    /// How many more connections from 127.0.0.1 the notifier's Redis presence counted after
    /// the clients had closed than before they connected.
    left_in_redis: u64,
}

impl Cell {
    fn lost(&self) -> u64 {
        self.writes.expected.saturating_sub(self.received)
    }

    fn writes_per_second(&self) -> f64 {
        self.writes.acked as f64 / self.writes.seconds
    }

    fn fan_out(&self) -> f64 {
        self.writes.expected as f64 / self.writes.acked.max(1) as f64
    }

    fn offered_per_second(&self) -> f64 {
        self.writes.expected as f64 / self.writes.seconds
    }

    fn delivered_per_second(&self) -> f64 {
        self.delivered_while_writing as f64 / self.writes.seconds
    }

    fn mean_message_bytes(&self) -> f64 {
        self.message_bytes as f64 / self.received.max(1) as f64
    }

    fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
        histogram.value_at_quantile(quantile) as f64 / 1000.0
    }

    fn p99_ms(&self) -> f64 {
        Cell::ms(&self.latency, 0.99)
    }

    /// Why this measurement does not count as keeping up with its rate, if it does not.
    fn shortfall(&self) -> Option<String> {
        let mut reasons = Vec::new();
        if self.connected < self.clients {
            reasons.push(format!(
                "{} of {} clients connected",
                self.connected, self.clients
            ));
        }
        if self.writes_per_second() < KEEPING_UP * f64::from(self.rate) {
            reasons.push(format!("writes reached {:.0}/s", self.writes_per_second()));
        }
        if self.dropped > 0 {
            reasons.push(format!("{} clients dropped", self.dropped));
        }
        if self.errors > 0 {
            reasons.push(format!("{} errors", self.errors));
        }
        if self.lost() > 0 {
            reasons.push(format!(
                "{} messages missing {} s after the last write",
                self.lost(),
                DRAIN_LIMIT.as_secs()
            ));
        }
        if self.delivered_per_second() < KEEPING_UP * self.offered_per_second() {
            reasons.push(format!(
                "{:.0} messages/s delivered of {:.0}/s offered while writing",
                self.delivered_per_second(),
                self.offered_per_second()
            ));
        }
        (!reasons.is_empty()).then(|| reasons.join(", "))
    }
}

/// Connects `clients` clients to `subject`, lets them idle, writes `load`, waits for the
/// messages, closes the clients.
async fn measure(
    subject: &Subject,
    clients: usize,
    load: &Load,
    census: &Census,
    http: &reqwest::Client,
    epoch: Instant,
) -> Cell {
    let tally = Arc::new(Tally::new(epoch));
    let (stop, stopped) = watch::channel(false);

    let started = Instant::now();
    let connected = connect_all(subject, clients, census, &tally, &stopped).await;
    let connect_seconds = started.elapsed().as_secs_f64();

    let idle = CpuWatch::start(&[subject.pid]);
    tokio::time::sleep(IDLE).await;
    let cpu_idle = idle.percent();
    let rss_idle = status_mib(subject.pid, "VmRSS");

    let rss_peak = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn(sample_rss(subject.pid, rss_peak.clone()));
    let in_redis_before = match &subject.presence {
        Some(addresses) => counted_in_redis(addresses).await,
        None => 0,
    };
    let published = match &subject.published {
        Some(nats_subject) => watch_published(nats_subject, epoch, stopped.clone()).await,
        None => None,
    };
    let (server_watch, write_path_watch, bench_watch, machine_watch) = (
        CpuWatch::start(&[subject.pid]),
        CpuWatch::start(&subject.write_path),
        CpuWatch::start(&[std::process::id()]),
        MachineWatch::start(),
    );
    let per_write = messages_per_write(&connected.indices, census);
    let writes = write_load(subject, *load, census.patients, per_write, epoch).await;
    let delivered_while_writing = tally.events.load(Ordering::Relaxed);
    let (cpu_load, write_path_cpu, bench_cpu_load, machine_cpu_load) = (
        server_watch.percent(),
        (!subject.write_path.is_empty()).then(|| write_path_watch.percent()),
        bench_watch.percent(),
        machine_watch.percent(),
    );
    sampler.abort();

    drain(&tally, writes.expected).await;
    let hwm = status_mib(subject.pid, "VmHWM");
    let _ = stop.send(true);
    for reader in connected.readers {
        let _ = reader.await;
    }
    let left_open = wait_released(http, &subject.status).await;
    let left_in_redis = match &subject.presence {
        Some(addresses) => settled_in_redis(addresses, in_redis_before).await - in_redis_before,
        None => 0,
    };
    let published = match published {
        Some(watch) => watch.await.ok(),
        None => None,
    };

    let (latency, recorded) = tally.histograms();
    Cell {
        kind: subject.kind,
        clients,
        connected: connected.indices.len(),
        refused: connected.refused,
        connect_seconds,
        rate: load.rate,
        writes,
        delivered_while_writing,
        received: tally.events.load(Ordering::Relaxed),
        message_bytes: tally.bytes.load(Ordering::Relaxed),
        latency,
        recorded,
        published,
        dropped: tally.dropped.load(Ordering::Relaxed),
        errors: tally.errors.load(Ordering::Relaxed),
        rss_idle,
        rss_load: rss_peak.load(Ordering::Relaxed) as f64 / 1024.0,
        hwm,
        cpu_idle,
        cpu_load,
        write_path_cpu,
        bench_cpu_load,
        machine_cpu_load,
        left_open,
        left_in_redis,
    }
}

/// Keeps the largest VmRSS seen (in KiB) until aborted.
async fn sample_rss(pid: u32, peak: Arc<AtomicU64>) {
    loop {
        let kib = (status_mib(pid, "VmRSS") * 1024.0) as u64;
        peak.fetch_max(kib, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until every message expected has arrived, or none has for a while.
async fn drain(tally: &Tally, expected: u64) {
    let started = Instant::now();
    let mut seen = tally.events.load(Ordering::Relaxed);
    let mut last_arrival = Instant::now();
    while seen < expected && last_arrival.elapsed() < DRAIN_QUIET && started.elapsed() < DRAIN_LIMIT
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = tally.events.load(Ordering::Relaxed);
        if now != seen {
            seen = now;
            last_arrival = Instant::now();
        }
    }
}

/// The connections from 127.0.0.1 the notifier's Redis presence counts (`addresses` is its
/// hash of counts per address).
async fn counted_in_redis(addresses: &str) -> u64 {
    let Ok(client) = redis::Client::open(test_support::redis_url()) else {
        return 0;
    };
    let Ok(mut redis) = client.get_multiplexed_async_connection().await else {
        return 0;
    };
    redis::cmd("HGET")
        .arg(addresses)
        .arg("127.0.0.1")
        .query_async::<Option<u64>>(&mut redis)
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
}

/// The Redis count once it is back to `before`, or what it is after 5 s.
async fn settled_in_redis(addresses: &str, before: u64) -> u64 {
    let mut counted = counted_in_redis(addresses).await;
    for _ in 0..50 {
        if counted <= before {
            return before;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        counted = counted_in_redis(addresses).await;
    }
    counted
}

/// Subscribes to the subject the writes' events are published on, and from then until
/// `stopped` records when each arrives: microseconds after its write was sent.
async fn watch_published(
    subject: &str,
    epoch: Instant,
    mut stopped: watch::Receiver<bool>,
) -> Option<JoinHandle<Histogram<u64>>> {
    let client = event_store::relay::connect_nats(&test_support::nats_url())
        .await
        .ok()?;
    let mut events = client.subscribe(subject.to_owned()).await.ok()?;
    client.flush().await.ok()?;
    Some(tokio::spawn(async move {
        let mut histogram = new_histogram();
        loop {
            tokio::select! {
                _ = stopped.changed() => return histogram,
                event = events.next() => {
                    let Some(event) = event else { return histogram };
                    let seen = epoch.elapsed().as_micros() as u64;
                    let envelope = serde_json::from_slice::<Envelope>(&event.payload);
                    if let Some(sent_at) = envelope.ok().and_then(|e| e.resource.sent_at()) {
                        let _ = histogram.record(seen.saturating_sub(sent_at).clamp(1, MAX_MICROS));
                    }
                }
            }
        }
    }))
}

/// Waits until the server counts no connections; how many it still counts after 30 s.
async fn wait_released(http: &reqwest::Client, status: &str) -> u64 {
    let mut open = u64::MAX;
    for _ in 0..300 {
        let answer = match http.get(status).send().await {
            Ok(response) => response.json::<Value>().await.ok(),
            Err(_) => None,
        };
        open = answer
            .and_then(|status| status["connections"].as_u64())
            .unwrap_or(open);
        if open == 0 {
            return 0;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    open
}

// ------------------------------------------------------------------------------ the clients

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the clients of one measurement received, on the benchmark's clock.
struct Tally {
    epoch: Instant,
    latency: Vec<Mutex<Histogram<u64>>>,
    recorded: Vec<Mutex<Histogram<u64>>>,
    events: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
    errors: AtomicU64,
}

/// The members of a server message the clients read.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(rename = "recordedAt", borrow, default)]
    recorded_at: Option<&'a str>,
    #[serde(borrow, default)]
    resource: Option<Stamped<'a>>,
}

/// The event envelope the outbox relay publishes, as far as the benchmark reads it.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    resource: Stamped<'a>,
}

#[derive(Deserialize)]
struct Stamped<'a> {
    #[serde(borrow, default)]
    identifier: Vec<Identifier<'a>>,
}

impl Stamped<'_> {
    /// When the write was sent, in µs on the benchmark's clock.
    fn sent_at(&self) -> Option<u64> {
        self.identifier
            .iter()
            .find(|identifier| identifier.system == Some(STAMP_SYSTEM))
            .and_then(|identifier| identifier.value?.parse().ok())
    }
}

#[derive(Deserialize)]
struct Identifier<'a> {
    #[serde(borrow, default)]
    system: Option<&'a str>,
    #[serde(borrow, default)]
    value: Option<&'a str>,
}

impl Tally {
    fn new(epoch: Instant) -> Tally {
        let shards = || {
            (0..SHARDS)
                .map(|_| Mutex::new(new_histogram()))
                .collect::<Vec<_>>()
        };
        Tally {
            epoch,
            latency: shards(),
            recorded: shards(),
            events: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// Counts a text message; an `event` adds its latencies to shard `shard`.
    fn record(&self, text: &str, shard: usize) {
        let received = self.epoch.elapsed().as_micros() as u64;
        let Ok(message) = serde_json::from_str::<Incoming>(text) else {
            self.errors.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match message.kind {
            "event" => {}
            "error" => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
            _ => return,
        }
        self.events.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
        let Some(sent_at) = message.resource.as_ref().and_then(Stamped::sent_at) else {
            self.errors.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let shard = shard % SHARDS;
        record(&self.latency[shard], received.saturating_sub(sent_at));
        let recorded_at = message
            .recorded_at
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok());
        if let Some(at) = recorded_at {
            let since = chrono::Utc::now().signed_duration_since(at);
            let micros = since.num_microseconds().unwrap_or(0).max(0) as u64;
            record(&self.recorded[shard], micros);
        }
    }

    /// The server closed the connection.
    fn closed(&self, code: Option<u16>) {
        let counter = if code == Some(1008) {
            &self.dropped
        } else {
            &self.errors
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// (send to client, `recordedAt` to client), every shard added up.
    fn histograms(&self) -> (Histogram<u64>, Histogram<u64>) {
        let merge = |shards: &[Mutex<Histogram<u64>>]| {
            let mut all = new_histogram();
            for shard in shards {
                let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
                all.add(&*shard).expect("histograms of the same bounds");
            }
            all
        };
        (merge(&self.latency), merge(&self.recorded))
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("histogram bounds")
}

fn record(histogram: &Mutex<Histogram<u64>>, micros: u64) {
    let mut histogram = histogram.lock().unwrap_or_else(PoisonError::into_inner);
    let _ = histogram.record(micros.clamp(1, MAX_MICROS));
}

/// The clients that connected and subscribed, each read by a task of its own.
struct Connected {
    indices: Vec<usize>,
    readers: Vec<JoinHandle<()>>,
    /// How many could not, and why the first could not.
    refused: Option<(usize, String)>,
}

/// Connects and subscribes `clients` clients, each then read until `stopped`.
async fn connect_all(
    subject: &Subject,
    clients: usize,
    census: &Census,
    tally: &Arc<Tally>,
    stopped: &watch::Receiver<bool>,
) -> Connected {
    let attempts: Vec<Result<(usize, JoinHandle<()>), String>> = futures::stream::iter(0..clients)
        .map(|index| {
            let subscribe = Filter::of_client(index, census.patients).subscribe(census);
            let (url, tally, stopped) = (subject.ws.clone(), tally.clone(), stopped.clone());
            async move {
                let socket = connect(&url, subscribe).await?;
                let reader = tokio::spawn(read_events(socket, tally, index, stopped));
                Ok((index, reader))
            }
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect()
        .await;
    let mut connected = Connected {
        indices: Vec::with_capacity(clients),
        readers: Vec::with_capacity(clients),
        refused: None,
    };
    for attempt in attempts {
        match attempt {
            Ok((index, reader)) => {
                connected.indices.push(index);
                connected.readers.push(reader);
            }
            Err(why) => match &mut connected.refused {
                Some((count, _)) => *count += 1,
                None => connected.refused = Some((1, why)),
            },
        }
    }
    connected
}

/// Opens a connection and subscribes; returns once the server said `subscribed`.
async fn connect(url: &str, subscribe: String) -> Result<Socket, String> {
    let (mut socket, _) =
        tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .map_err(|_| "no connection within 30 s".to_owned())?
            .map_err(|error| error.to_string())?;
    socket
        .send(Message::Text(subscribe.into()))
        .await
        .map_err(|error| error.to_string())?;
    loop {
        let frame = tokio::time::timeout(CONNECT_TIMEOUT, socket.next())
            .await
            .map_err(|_| "no `subscribed` within 30 s".to_owned())?;
        match frame {
            Some(Ok(Message::Text(text))) => {
                let reply: Value =
                    serde_json::from_str(text.as_str()).map_err(|error| error.to_string())?;
                match reply["type"].as_str() {
                    Some("subscribed") => return Ok(socket),
                    Some("error") => return Err(format!("subscribe refused: {reply}")),
                    _ => {}
                }
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(frame.map_or("closed".to_owned(), |frame| {
                    format!("closed {}: {}", u16::from(frame.code), frame.reason)
                }));
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.to_string()),
            None => return Err("closed".to_owned()),
        }
    }
}

/// Reads one client's messages into `tally` until `stopped`, then closes.
async fn read_events(
    mut socket: Socket,
    tally: Arc<Tally>,
    shard: usize,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            biased;
            _ = stopped.changed() => {
                let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(None)).await;
                return;
            }
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => tally.record(text.as_str(), shard),
                Some(Ok(Message::Close(frame))) => {
                    tally.closed(frame.map(|frame| u16::from(frame.code)));
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    tally.closed(None);
                    return;
                }
            },
        }
    }
}

// ------------------------------------------------------------------------------ the writes

/// What the writes of one measurement did.
#[derive(Debug, Clone, Copy, Default)]
struct Writes {
    acked: u64,
    failed: u64,
    /// Messages the acknowledged writes should reach clients as.
    expected: u64,
    seconds: f64,
}

/// Writes at `load.rate` for `load.seconds`, open loop, on a runtime of its own: a client
/// side busy reading cannot hold the writes back.
async fn write_load(
    subject: &Subject,
    load: Load,
    patients: usize,
    per_write: Vec<u64>,
    epoch: Instant,
) -> Writes {
    let writer = Writer {
        kind: subject.kind,
        url: subject.writes.clone(),
        token: subject.token.clone(),
        census: Census { patients },
        per_write,
        message_bytes: load.message_bytes,
    };
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the writes")
            .block_on(writer.run(load, epoch))
    })
    .await
    .expect("the writes' thread")
}

struct Writer {
    kind: Kind,
    url: String,
    token: Option<String>,
    census: Census,
    per_write: Vec<u64>,
    message_bytes: usize,
}

impl Writer {
    async fn run(self, load: Load, epoch: Instant) -> Writes {
        let timeout = Duration::from_secs(30);
        let http = match &self.token {
            Some(token) => test_support::bearer_client(token, timeout),
            None => reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .expect("an HTTP client"),
        };
        let writer = Arc::new(self);
        let window = Duration::from_secs(load.seconds);
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(load.rate)));
        let in_flight = Arc::new(Semaphore::new(load.writers.max(1)));
        let tally = Arc::new(Mutex::new(Writes::default()));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for sequence in 0u64.. {
            ticks.tick().await;
            if started.elapsed() >= window {
                break;
            }
            let permit = in_flight.clone().acquire_owned().await.expect("semaphore");
            let (writer, http, tally) = (writer.clone(), http.clone(), tally.clone());
            tasks.push(tokio::spawn(async move {
                let patient = sequence as usize % writer.census.patients;
                let sent_at = epoch.elapsed().as_micros() as u64;
                let ok = writer.request(&http, sequence, patient, sent_at).await;
                drop(permit);
                let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
                if ok {
                    tally.acked += 1;
                    tally.expected += writer.per_write[patient];
                } else {
                    tally.failed += 1;
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
        let writes = *tally.lock().unwrap_or_else(PoisonError::into_inner);
        Writes {
            seconds: window.as_secs_f64(),
            ..writes
        }
    }

    /// Sends one write; whether it was acknowledged.
    async fn request(
        &self,
        http: &reqwest::Client,
        sequence: u64,
        patient: usize,
        sent_at: u64,
    ) -> bool {
        let observation = self.census.observation(patient, sent_at);
        let request = match self.kind {
            Kind::Notifier => http
                .post(&self.url)
                .header("content-type", "application/fhir+json")
                .body(observation.to_string()),
            Kind::Baseline => {
                let patient_id = self.census.patient(patient);
                let ward = WARDS[self.census.ward_of(patient)];
                let message =
                    baseline_message(sequence, observation, &patient_id, self.message_bytes);
                http.post(&self.url).json(&json!({
                    "topics": [format!("patient:{patient_id}"), format!("ward:{ward}")],
                    "message": message,
                }))
            }
        };
        request
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
    }
}

/// An `event` message as the notifier writes one, padded to `bytes` long.
fn baseline_message(sequence: u64, resource: Value, patient: &str, bytes: usize) -> String {
    let message = json!({
        "type": "event", "position": sequence, "kind": "ResourceCreated",
        "resourceType": "Observation", "id": format!("baseline-{sequence}"), "version": 1,
        "recordedAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "resource": resource, "subscriptions": [format!("patient:{patient}")]
    })
    .to_string();
    // `"padding":"",` is 13 characters.
    match bytes.checked_sub(message.len() + 13) {
        Some(padding) if padding > 0 => {
            format!(
                "{{\"padding\":\"{}\",{}",
                "x".repeat(padding),
                &message[1..]
            )
        }
        _ => message,
    }
}

// ------------------------------------------------------------------------------ the report

fn print_progress(cell: &Cell) {
    println!(
        "  {:<8} {:>6} clients at {:>3}/s: p50 {:.1} ms, p99 {:.1} ms, {:.0} msgs/s delivered, {} dropped, {} lost",
        cell.kind.name(),
        cell.connected,
        cell.rate,
        Cell::ms(&cell.latency, 0.5),
        cell.p99_ms(),
        cell.delivered_per_second(),
        cell.dropped,
        cell.lost()
    );
}

fn report(args: &Args, cells: &[Cell], notes: &[String]) {
    print_delivery(cells);
    print_processes(cells);
    print_ratios(cells, notes);
    println!("\naims (from the issue):");
    println!(
        "  {AIM_CLIENTS} clients held on this machine: {}",
        held(cells)
    );
    println!(
        "  p99 under {AIM_P99_MS:.0} ms at {AIM_P99_CLIENTS} clients while {AIM_P99_RATE} writes/s flow: {}",
        p99_aim(args, cells)
    );
}

/// Latency, rates, fan-out and failures, a row per measurement.
fn print_delivery(cells: &[Cell]) {
    println!("\nEvent to client (ms from the write request being sent to the client's receipt):");
    println!(
        "{:<9} {:>11} {:>6} {:>8} {:>7} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>12} {:>12} {:>7} {:>6} {:>6}",
        "subject",
        "clients",
        "rate",
        "writes/s",
        "fan-out",
        "offered/s",
        "deliver/s",
        "p50",
        "p95",
        "p99",
        "max",
        "NATS p50/p99",
        "rec p50/p99",
        "dropped",
        "errors",
        "lost"
    );
    for cell in cells {
        let recorded = (cell.kind == Kind::Notifier).then_some(&cell.recorded);
        println!(
            "{:<9} {:>11} {:>6} {:>8.1} {:>7.2} {:>9.0} {:>9.0} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>12} {:>12} {:>7} {:>6} {:>6}",
            cell.kind.name(),
            format!("{}/{}", cell.connected, cell.clients),
            format!("{}/s", cell.rate),
            cell.writes_per_second(),
            cell.fan_out(),
            cell.offered_per_second(),
            cell.delivered_per_second(),
            Cell::ms(&cell.latency, 0.5),
            Cell::ms(&cell.latency, 0.95),
            cell.p99_ms(),
            cell.latency.max() as f64 / 1000.0,
            p50_p99(cell.published.as_ref()),
            p50_p99(recorded),
            cell.dropped,
            cell.errors + cell.writes.failed,
            cell.lost()
        );
    }
    println!(
        "(fan-out: messages per write; offered/deliver/s: messages/s due and received while \
         writing; NATS: from the write request to its event on NATS, as a plain subscriber sees \
         it; rec: from the event's recordedAt, ms resolution, to the client; lost: not received \
         {} s after the last write; errors include failed writes)",
        DRAIN_LIMIT.as_secs()
    );
}

/// `p50/p99` of a latency histogram, in ms; `-` without one.
fn p50_p99(histogram: Option<&Histogram<u64>>) -> String {
    histogram.map_or("-".to_owned(), |histogram| {
        format!(
            "{:.0}/{:.0}",
            Cell::ms(histogram, 0.5),
            Cell::ms(histogram, 0.99)
        )
    })
}

/// The server's memory and CPU, the write path's and this process's CPU, and how long
/// connecting took.
fn print_processes(cells: &[Cell]) {
    println!(
        "\nMemory of the server process (MiB) and CPU (% of one core; machine: % of both cores) \
         idle and while writing; write path: the command and projection services:"
    );
    println!(
        "{:<9} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>9} {:>10} {:>10}",
        "subject",
        "clients",
        "rate",
        "RSS idle",
        "RSS load",
        "VmHWM",
        "CPU idle",
        "CPU load",
        "write path",
        "bench",
        "machine",
        "connect s",
        "msg bytes"
    );
    for cell in cells {
        let write_path = cell
            .write_path_cpu
            .map_or("-".to_owned(), |percent| format!("{percent:.0}"));
        println!(
            "{:<9} {:>7} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.0} {:>9.0} {:>10} {:>9.0} {:>9.0} {:>10.1} {:>10.0}",
            cell.kind.name(),
            cell.clients,
            format!("{}/s", cell.rate),
            cell.rss_idle,
            cell.rss_load,
            cell.hwm,
            cell.cpu_idle,
            cell.cpu_load,
            write_path,
            cell.bench_cpu_load,
            cell.machine_cpu_load,
            cell.connect_seconds,
            cell.mean_message_bytes()
        );
    }
}

/// Notifier/baseline ratios for each pair of measurements, and what else needs saying.
fn print_ratios(cells: &[Cell], notes: &[String]) {
    println!("\nnotifier / baseline (same clients, subscriptions, message size and rate):");
    for pair in cells.chunks(2) {
        let [notifier, baseline] = pair else { continue };
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.2}", a / b)
            } else {
                "-".to_owned()
            }
        };
        println!(
            "  {:>6} clients at {:>3}/s: p50 {}, p99 {}, delivered msgs/s {}",
            notifier.clients,
            notifier.rate,
            ratio(
                Cell::ms(&notifier.latency, 0.5),
                Cell::ms(&baseline.latency, 0.5)
            ),
            ratio(notifier.p99_ms(), baseline.p99_ms()),
            ratio(
                notifier.delivered_per_second(),
                baseline.delivered_per_second()
            )
        );
    }
    for cell in cells.iter().filter(|cell| cell.left_open > 0) {
        println!(
            "  note: the {} still counted {} connections 30 s after its {} clients closed",
            cell.kind.name(),
            cell.left_open,
            cell.clients
        );
    }
    for cell in cells {
        if let Some((count, why)) = &cell.refused {
            println!(
                "  note: {count} of {} clients could not connect to the {} at {}/s; the first: {why}",
                cell.clients,
                cell.kind.name(),
                cell.rate
            );
        }
    }
    for cell in cells.iter().filter(|cell| cell.left_in_redis > 0) {
        println!(
            "  note: after its {} clients at {}/s had closed (and the notifier counted none), its \
             Redis presence counted {} more connections from 127.0.0.1 than before they connected",
            cell.clients, cell.rate, cell.left_in_redis
        );
    }
    for note in notes {
        println!("  note: {note}");
    }
}

/// The first aim, from the notifier's measurements with at least 10,000 clients.
fn held(cells: &[Cell]) -> String {
    let at_level: Vec<&Cell> = cells
        .iter()
        .filter(|cell| cell.kind == Kind::Notifier && cell.clients >= AIM_CLIENTS)
        .collect();
    if at_level.is_empty() {
        return format!("not measured (no level of {AIM_CLIENTS} clients)");
    }
    let describe = |cell: &Cell| {
        format!(
            "{} of {} connected and subscribed, {} dropped, {} errors at {} writes/s",
            cell.connected, cell.clients, cell.dropped, cell.errors, cell.rate
        )
    };
    let kept = at_level
        .iter()
        .find(|cell| cell.connected == cell.clients && cell.dropped == 0 && cell.errors == 0);
    match kept {
        Some(cell) => format!("met ({})", describe(cell)),
        None => format!(
            "not met ({})",
            at_level
                .iter()
                .map(|cell| describe(cell))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// The second aim, from the notifier's measurement at 1,000 clients and 200 writes/s.
fn p99_aim(args: &Args, cells: &[Cell]) -> String {
    let Some(cell) = cells.iter().find(|cell| {
        cell.kind == Kind::Notifier && cell.clients == AIM_P99_CLIENTS && cell.rate == AIM_P99_RATE
    }) else {
        return format!(
            "not measured (needs --levels with {AIM_P99_CLIENTS} and --rate {AIM_P99_RATE}; ran {:?} at {}/s)",
            args.levels, args.rate
        );
    };
    let rate_held = cell.writes_per_second() >= KEEPING_UP * f64::from(AIM_P99_RATE);
    let met = rate_held && cell.p99_ms() < AIM_P99_MS;
    format!(
        "{} (p99 {:.1} ms, {:.1} writes/s achieved)",
        if met { "met" } else { "not met" },
        cell.p99_ms(),
        cell.writes_per_second()
    )
}

// ------------------------------------------------------------------------------ the baseline

/// The baseline: the least a WebSocket fan-out can do. Each client's first message names its
/// topic; `POST /publish` `{"topics": [...], "message": "..."}` sends the message, as it is, to
/// every client of those topics through one `broadcast` channel per topic (a client that falls
/// `BASELINE_QUEUE` messages behind is closed with 1008, as the notifier does).
mod baseline {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, PoisonError, RwLock};

    use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
    use axum::extract::{State, WebSocketUpgrade};
    use axum::http::StatusCode;
    use axum::response::Response;
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use serde::Deserialize;
    use serde_json::{Value, json};
    use tokio::sync::broadcast;

    #[derive(Default)]
    struct Topics {
        channels: RwLock<HashMap<String, broadcast::Sender<Utf8Bytes>>>,
        connections: AtomicUsize,
    }

    impl Topics {
        fn subscribe(&self, topic: &str) -> broadcast::Receiver<Utf8Bytes> {
            let mut channels = self
                .channels
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            channels
                .entry(topic.to_owned())
                .or_insert_with(|| broadcast::channel(super::BASELINE_QUEUE).0)
                .subscribe()
        }
    }

    pub async fn serve(port: u16) -> anyhow::Result<()> {
        let router = Router::new()
            .route("/ws", get(upgrade))
            .route("/publish", post(publish))
            .route("/status", get(status))
            .with_state(Arc::new(Topics::default()));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        axum::serve(listener, router).await?;
        Ok(())
    }

    async fn upgrade(upgrade: WebSocketUpgrade, State(topics): State<Arc<Topics>>) -> Response {
        upgrade.on_upgrade(move |mut socket| async move {
            topics.connections.fetch_add(1, Ordering::Relaxed);
            serve_client(&mut socket, &topics).await;
            topics.connections.fetch_sub(1, Ordering::Relaxed);
        })
    }

    async fn serve_client(socket: &mut WebSocket, topics: &Topics) {
        let Some(Ok(Message::Text(subscribe))) = socket.recv().await else {
            return;
        };
        let Some(topic) = topic_of(subscribe.as_str()) else {
            return;
        };
        let mut events = topics.subscribe(&topic);
        let subscribed = json!({"type": "subscribed", "id": topic}).to_string();
        if socket.send(Message::Text(subscribed.into())).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(text) => {
                        if socket.send(Message::Text(text)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let close = CloseFrame { code: close_code::POLICY, reason: "slow consumer".into() };
                        let _ = socket.send(Message::Close(Some(close))).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                    Some(Ok(_)) => {}
                },
            }
        }
    }

    /// `patient:<id>` or `ward:<id>`, the notifier's subscription ids.
    fn topic_of(subscribe: &str) -> Option<String> {
        let message: Value = serde_json::from_str(subscribe).ok()?;
        ["patient", "ward"].into_iter().find_map(|filter| {
            let id = message.get(filter)?.as_str()?;
            Some(format!("{filter}:{id}"))
        })
    }

    #[derive(Deserialize)]
    struct Publish {
        topics: Vec<String>,
        message: String,
    }

    async fn publish(
        State(topics): State<Arc<Topics>>,
        Json(publish): Json<Publish>,
    ) -> StatusCode {
        let message = Utf8Bytes::from(publish.message);
        let channels = topics
            .channels
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        for topic in &publish.topics {
            if let Some(channel) = channels.get(topic) {
                let _ = channel.send(message.clone());
            }
        }
        StatusCode::NO_CONTENT
    }

    async fn status(State(topics): State<Arc<Topics>>) -> Json<Value> {
        Json(json!({"connections": topics.connections.load(Ordering::Relaxed)}))
    }
}
