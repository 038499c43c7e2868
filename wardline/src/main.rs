//! `wardline`: the operators' command line (`wardline --help`).

// A command line: what it prints is its output.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use clap::{Parser, Subcommand};
use wardline::auth::{Credentials, TokenSource};
use wardline::sandbox::{Connection, NewSandbox, Start, Teaching};

#[derive(Debug, Parser)]
#[command(
    name = "wardline",
    version,
    about = "Operate a Wardline server: import data, generate demo patients, manage teaching \
             sandboxes, rebuild projections"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import Synthea output (one transaction Bundle per patient, plus its hospital and
    /// practitioner Bundles) and FHIR NDJSON (one resource per line, as Bulk Data export
    /// writes) through the FHIR API. Each file goes in as transactions that can be sent again
    /// without duplicating anything: an interrupted import is finished by running it again.
    Import {
        /// Files and folders (searched for .json and .ndjson).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The command service's FHIR base URL.
        #[arg(
            long,
            env = "WARDLINE_FHIR_WRITE_URL",
            default_value = "http://127.0.0.1:8081/fhir"
        )]
        fhir_url: String,
        /// Transactions in flight at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        credentials: Credentials,
    },
    /// Write generated patients (and the demo hospital) as transaction Bundle files, ready for
    /// `import`: demographics, conditions, medications, allergies, immunisations, clinic visits
    /// with vitals and labs, and current inpatient stays on the demo wards, one per bed, with
    /// vital signs every four hours (one inpatient in four deteriorating). Deterministic for a
    /// seed and an anchor time.
    Generate {
        /// How many patients.
        #[arg(long, default_value_t = 20)]
        patients: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The "now" of the story (RFC 3339); by default the current hour.
        #[arg(long)]
        anchor: Option<DateTime<Utc>>,
        /// Where to write the files.
        #[arg(long)]
        out: PathBuf,
    },
    /// Generate patients and import them: the demo data `./deploy/dev up` loads into an empty
    /// server.
    Demo {
        #[arg(long, default_value_t = 20)]
        patients: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        anchor: Option<DateTime<Utc>>,
        /// The command service's FHIR base URL.
        #[arg(
            long,
            env = "WARDLINE_FHIR_WRITE_URL",
            default_value = "http://127.0.0.1:8081/fhir"
        )]
        fhir_url: String,
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        credentials: Credentials,
    },
    /// Drive a ward live through the FHIR API: admissions into free beds, discharges, vital
    /// signs every simulated hour, every quarter hour once a patient worsens (some patients
    /// deteriorate: breathing and pulse up, pressure and saturation down), new orders and
    /// tasks. Simulated
    /// time runs --speed times faster than real time, for --hours simulated hours or until
    /// Ctrl-C. The same --seed gives the same scenario.
    Simulate {
        /// The ward's Location id (the demo hospital has ward-a, ward-b and ward-c).
        #[arg(long)]
        ward: String,
        /// Simulated seconds per real second (60: a simulated hour per real minute).
        #[arg(long, default_value_t = 60.0)]
        speed: f64,
        /// Simulated hours to run.
        #[arg(long, default_value_t = 8.0)]
        hours: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The command service's FHIR base URL (writes).
        #[arg(
            long,
            env = "WARDLINE_FHIR_WRITE_URL",
            default_value = "http://127.0.0.1:8081/fhir"
        )]
        fhir_url: String,
        /// The query service's FHIR base URL (to find the ward's beds).
        #[arg(
            long,
            env = "WARDLINE_FHIR_READ_URL",
            default_value = "http://127.0.0.1:8082/fhir"
        )]
        read_url: String,
        #[command(flatten)]
        credentials: Credentials,
    },
    /// Sign in as a backend client and print the access token (for curl and other tools:
    /// `curl -H "Authorization: Bearer $(wardline token)" ...`).
    Token {
        #[command(flatten)]
        credentials: Credentials,
    },
    /// Teaching sandboxes: copies of the record that a class practises on, forked from the live
    /// record (now, at a position or at an instant), each a FHIR base of its own at
    /// /sandbox/<name>/fhir, reset to its start in one step. Creating, resetting and deleting
    /// need an instructor, an admin or a backend client (`wardline token`'s sign-in).
    Sandbox {
        #[command(subcommand)]
        command: SandboxCommand,
    },
    /// The search indexes and workflow tables.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ProjectionsCommand {
    /// Rebuild every projection from the event store into fresh tables, then swap them in
    /// (the live projection keeps serving meanwhile). Database settings as the projection
    /// service takes them (DATABASE_URL, ...).
    Rebuild,
}

#[derive(Debug, Subcommand)]
enum SandboxCommand {
    /// Create a sandbox and print it: its FHIR base and the position it starts from.
    Create {
        /// 1 to 63 lower-case letters, digits and `-` (`ward-7-nights`): its FHIR base is
        /// /sandbox/<name>/fhir.
        name: String,
        /// The class whose students may write in it.
        #[arg(long)]
        class: Option<String>,
        /// What it is for (`Bay 3 at 02:00, before the sepsis`).
        #[arg(long)]
        description: Option<String>,
        /// Where it starts: a position of the live record (a number), or the record as it was
        /// at an instant (2026-12-01T02:00:00Z). By default the present.
        #[arg(long, value_name = "POSITION|INSTANT")]
        at: Option<Start>,
        #[command(flatten)]
        connection: Connection,
    },
    /// List the sandboxes: name, class, start position, FHIR base, who created it and when,
    /// when it was last reset.
    List {
        #[command(flatten)]
        connection: Connection,
    },
    /// Show one sandbox.
    Show {
        name: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Start a sandbox again from where it started: everything written in it is gone.
    Reset {
        name: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Delete a sandbox and everything written in it.
    Delete {
        name: String,
        #[command(flatten)]
        connection: Connection,
    },
}

/// Runs a `sandbox` command and prints what it did.
async fn sandbox(command: SandboxCommand) -> Result<(), wardline::sandbox::Error> {
    match command {
        SandboxCommand::Create {
            name,
            class,
            description,
            at,
            connection,
        } => {
            let new = NewSandbox {
                name,
                class,
                description,
                start: at,
            };
            let created = Teaching::new(connection)?.create(&new).await?;
            print!("created sandbox {}\n{}", created.name, created.details());
        }
        SandboxCommand::List { connection } => {
            let sandboxes = Teaching::new(connection)?.list().await?;
            print!("{}", wardline::sandbox::table(&sandboxes));
        }
        SandboxCommand::Show { name, connection } => {
            let sandbox = Teaching::new(connection)?.show(&name).await?;
            print!("sandbox {}\n{}", sandbox.name, sandbox.details());
        }
        SandboxCommand::Reset { name, connection } => {
            let sandbox = Teaching::new(connection)?.reset(&name).await?;
            print!(
                "reset sandbox {} to position {}\n{}",
                sandbox.name,
                sandbox.start_position,
                sandbox.details()
            );
        }
        SandboxCommand::Delete { name, connection } => {
            Teaching::new(connection)?.delete(&name).await?;
            println!("deleted sandbox {name}");
        }
    }
    Ok(())
}

/// A flag Ctrl-C sets (saying `message`), for commands that stop cleanly between steps.
fn stop_on_ctrl_c(message: &'static str) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("{message}");
            on_signal.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    stop
}

/// Runs an import and prints its summary; exits with status 2 if anything failed.
async fn import_and_report(
    settings: &wardline::import::Settings,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let summary = wardline::import::run(settings, stop).await?;
    print!("{}", summary.report());
    if !summary.failures.is_empty() {
        std::process::exit(2);
    }
    Ok(())
}

/// The anchor given, or the current hour.
fn anchor_or_now(anchor: Option<DateTime<Utc>>) -> DateTime<Utc> {
    anchor.unwrap_or_else(|| {
        let now = Utc::now();
        now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now)
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Import {
            paths,
            fhir_url,
            concurrency,
            quiet,
            credentials,
        } => {
            let stop = stop_on_ctrl_c(
                "stopping after the transactions in flight; run the import again to finish it",
            );
            let settings = wardline::import::Settings {
                fhir_url,
                paths,
                concurrency,
                progress: !quiet,
                auth: TokenSource::new(credentials),
            };
            import_and_report(&settings, stop).await?;
        }
        Command::Generate {
            patients,
            seed,
            anchor,
            out,
        } => {
            let files = wardline::write_generated(&out, patients, seed, anchor_or_now(anchor))?;
            println!("{} file(s) written to {}", files.len(), out.display());
        }
        Command::Demo {
            patients,
            seed,
            anchor,
            fhir_url,
            quiet,
            credentials,
        } => {
            let dir = tempfile::tempdir()?;
            wardline::write_generated(dir.path(), patients, seed, anchor_or_now(anchor))?;
            let settings = wardline::import::Settings {
                fhir_url,
                paths: vec![dir.path().to_path_buf()],
                concurrency: 4,
                progress: !quiet,
                auth: TokenSource::new(credentials),
            };
            import_and_report(&settings, stop_on_ctrl_c("stopping the demo import")).await?;
        }
        Command::Simulate {
            ward,
            speed,
            hours,
            seed,
            fhir_url,
            read_url,
            credentials,
        } => {
            let stop = stop_on_ctrl_c("stopping the simulation");
            let settings = wardline::simulate::Settings {
                ward,
                speed,
                hours,
                seed,
                write_url: fhir_url,
                read_url,
                auth: TokenSource::new(credentials),
            };
            let report = wardline::simulate::run(&settings, stop).await?;
            println!(
                "{} step(s): {} admission(s), {} discharge(s), {} set(s) of vital signs, {} order(s)",
                report.steps,
                report.admissions,
                report.discharges,
                report.observation_sets,
                report.orders
            );
        }
        Command::Token { credentials } => {
            println!("{}", TokenSource::new(credentials).bearer().await?);
        }
        Command::Sandbox { command } => {
            // One line (the status and the server's reasons), never a backtrace.
            if let Err(error) = sandbox(command).await {
                eprintln!("Error: {error}");
                std::process::exit(1);
            }
        }
        Command::Projections {
            command: ProjectionsCommand::Rebuild,
        } => {
            let settings: projection_service::Settings =
                service_kit::config::load_from(["projection-service".into()])?;
            let report = projection_service::run_rebuild(&settings).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    Ok(())
}
