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
use wardline::scenario::{Offset, Recording};

#[derive(Debug, Parser)]
#[command(
    name = "wardline",
    version,
    about = "Operate a Wardline server: import data, generate demo patients, manage teaching \
             sandboxes and scenarios, rebuild projections"
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
        /// Record what was loaded as a scenario of this name (its next version): the
        /// generated patients' stories as they were written.
        #[arg(long)]
        record: Option<String>,
        #[command(flatten)]
        connection: Connection,
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
        /// Record what the simulation wrote as a scenario of this name (its next version):
        /// the patients it admitted, from its start to its end.
        #[arg(long)]
        record: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Sign in as a backend client and print the access token (for curl and other tools:
    /// `curl -H "Authorization: Bearer $(wardline token)" ...`).
    Token {
        #[command(flatten)]
        credentials: Credentials,
    },
    /// Teaching sandboxes: copies of the record that a class practises on, forked from the live
    /// record (now, at a position or at an instant) or starting as a scenario, each a FHIR base
    /// of its own at /sandbox/<name>/fhir, reset to its start in one step. Creating, resetting
    /// and deleting need an instructor, an admin or a backend client (`wardline token`'s
    /// sign-in).
    Sandbox {
        #[command(subcommand)]
        command: SandboxCommand,
    },
    /// Scenarios: a cohort's story over a time window (its resources when the window opened,
    /// then every change with its time), recorded from the live record or imported, kept as one
    /// portable NDJSON file, and played into a sandbox that starts as it (`wardline sandbox
    /// create <name> --scenario <scenario>`) at 1 to 3600 times real time, with the scenario's
    /// times moved to now. Recording, importing and controlling a play need an instructor, an
    /// admin or a backend client. Times are scenario time: the clock shows as mm:ss of the
    /// duration (h:mm:ss from an hour).
    Scenario {
        #[command(subcommand)]
        command: ScenarioCommand,
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
    /// Create a sandbox and print it: its FHIR base and where it starts (a position of the live
    /// record, or a scenario).
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
        #[arg(long, value_name = "POSITION|INSTANT", conflicts_with = "scenario")]
        at: Option<Start>,
        /// Start as this scenario instead of the live record: an empty sandbox with the
        /// scenario's starting state written in (its times moved to now), ready for `wardline
        /// scenario play <name>`.
        #[arg(long)]
        scenario: Option<String>,
        /// The scenario's version (by default its newest).
        #[arg(long, requires = "scenario")]
        version: Option<i32>,
        #[command(flatten)]
        connection: Connection,
    },
    /// List the sandboxes: name, class, start position, FHIR base, who created it and when,
    /// when it was last reset.
    List {
        #[command(flatten)]
        connection: Connection,
    },
    /// Show one sandbox (and where its scenario's play stands).
    Show {
        name: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Start a sandbox again from where it started: everything written in it is gone (a
    /// scenario's sandbox gets the scenario's starting state again, and its play ends).
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
            scenario,
            version,
            connection,
        } => {
            let start = match scenario {
                Some(name) => Some(Start::Scenario { name, version }),
                None => at,
            };
            let new = NewSandbox {
                name,
                class,
                description,
                start,
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
                "reset sandbox {} to {}\n{}",
                sandbox.name,
                sandbox.start(),
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

#[derive(Debug, Subcommand)]
enum ScenarioCommand {
    /// Record a scenario from the live record and print its manifest: the cohort's resources
    /// (and what they refer to) as they stood at --from, then every change to them up to --to,
    /// each at its time from the start. A name recorded before gets its next version.
    Record {
        /// 1 to 63 lower-case letters, digits and `-` (`sepsis-bay-3`).
        name: String,
        /// A Patient id of the cohort (again, or comma-separated, for more).
        #[arg(
            long = "patient",
            value_name = "ID",
            required = true,
            value_delimiter = ','
        )]
        patients: Vec<String>,
        /// Where the window opens: a position of the live record (a number) or an instant
        /// (2026-12-01T02:00:00Z).
        #[arg(long, value_name = "POSITION|INSTANT")]
        from: Start,
        /// Where it closes, the same way. By default the present.
        #[arg(long, value_name = "POSITION|INSTANT")]
        to: Option<Start>,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// List every version of every scenario: name, version, title, how many patients, duration,
    /// changes, who made it and when.
    List {
        #[command(flatten)]
        connection: Connection,
    },
    /// Write a scenario's file exactly as the server keeps it (NDJSON: the manifest, the
    /// starting state, the timed changes), to standard output or --output.
    Export {
        /// The scenario's name.
        name: String,
        /// By default the newest.
        #[arg(long)]
        version: Option<i32>,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Import a scenario file and print its manifest. The file is checked whole first: a
    /// refusal names its first bad line, and nothing of it is kept. A name and version kept
    /// already is refused: give the manifest another version.
    Import {
        /// The file (`-`: standard input).
        file: PathBuf,
        #[command(flatten)]
        connection: Connection,
    },
    /// Play the scenario of a sandbox made with `sandbox create --scenario`: from the
    /// scenario's start (the sandbox's starting state written again; so does a finished or
    /// stopped play), or on from where it is paused, or at another speed. Prints where the play
    /// stands.
    Play {
        /// The sandbox, made with `wardline sandbox create <name> --scenario <scenario>`.
        sandbox: String,
        /// Scenario seconds per real second, 1 to 3600 (60: an hour a minute). By default
        /// the speed it was playing at, 1 for a new play.
        #[arg(long, value_parser = wardline::scenario::parse_speed)]
        speed: Option<f64>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Pause a sandbox's play: the scenario clock stands still until `play`.
    Pause {
        /// The sandbox, made with `wardline sandbox create <name> --scenario <scenario>`.
        sandbox: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Move a sandbox's scenario clock. Forward applies every change up to there at once; back
    /// starts the sandbox again (a new run) and applies every change up to there. A paused play
    /// stays paused.
    Seek {
        /// The sandbox, made with `wardline sandbox create <name> --scenario <scenario>`.
        sandbox: String,
        /// The time from the scenario's start: milliseconds (150000), a duration (2m30s, 90s,
        /// 1h5m, 1500ms) or a clock (2:30, 1:02:30).
        #[arg(long, value_name = "OFFSET")]
        to: Offset,
        #[command(flatten)]
        connection: Connection,
    },
    /// End a sandbox's play: the sandbox keeps what was applied; `play` starts again from the
    /// scenario's start.
    Stop {
        /// The sandbox, made with `wardline sandbox create <name> --scenario <scenario>`.
        sandbox: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Where a sandbox's play stands: playing, paused, finished or failed; the scenario clock
    /// of the duration; the speed; the changes applied of all.
    Status {
        /// The sandbox, made with `wardline sandbox create <name> --scenario <scenario>`.
        sandbox: String,
        #[command(flatten)]
        connection: Connection,
    },
}

/// Runs a `scenario` command and prints what it did.
async fn scenario(command: ScenarioCommand) -> Result<(), wardline::sandbox::Error> {
    use wardline::sandbox::Error;
    match command {
        ScenarioCommand::Record {
            name,
            patients,
            from,
            to,
            title,
            description,
            connection,
        } => {
            let recording = Recording {
                name,
                patients,
                from,
                to,
                title,
                description,
            };
            let recorded = Teaching::new(connection)?.record(&recording).await?;
            print!(
                "recorded scenario {} v{}\n{}",
                recorded.name,
                recorded.version,
                recorded.details()
            );
        }
        ScenarioCommand::List { connection } => {
            let scenarios = Teaching::new(connection)?.scenarios().await?;
            print!("{}", wardline::scenario::table(&scenarios));
        }
        ScenarioCommand::Export {
            name,
            version,
            output,
            connection,
        } => {
            let file = Teaching::new(connection)?
                .export(&name, version.map(i64::from))
                .await?;
            match output {
                None => {
                    use std::io::Write as _;
                    let mut stdout = std::io::stdout().lock();
                    stdout
                        .write_all(&file)
                        .and_then(|()| stdout.flush())
                        .map_err(|error| {
                            Error::Cannot(format!("cannot write to standard output: {error}"))
                        })?;
                }
                Some(path) => {
                    std::fs::write(&path, &file).map_err(|error| {
                        Error::Cannot(format!("cannot write {}: {error}", path.display()))
                    })?;
                    let lines = file.split(|byte| *byte == b'\n');
                    let lines = lines.filter(|line| !line.trim_ascii().is_empty()).count();
                    println!(
                        "exported scenario {name} to {} ({lines} lines)",
                        path.display()
                    );
                }
            }
        }
        ScenarioCommand::Import { file, connection } => {
            let (origin, bytes) = if file.as_os_str() == "-" {
                use std::io::Read as _;
                let mut bytes = Vec::new();
                std::io::stdin().read_to_end(&mut bytes).map_err(|error| {
                    Error::Cannot(format!("cannot read standard input: {error}"))
                })?;
                ("standard input".to_owned(), bytes)
            } else {
                let bytes = std::fs::read(&file).map_err(|error| {
                    Error::Cannot(format!("cannot read {}: {error}", file.display()))
                })?;
                (format!("`{}`", file.display()), bytes)
            };
            let text = String::from_utf8(bytes)
                .map_err(|_| Error::Cannot(format!("{origin} is not UTF-8 text")))?;
            let imported = Teaching::new(connection)?.import(&origin, text).await?;
            print!(
                "imported scenario {} v{}\n{}",
                imported.name,
                imported.version,
                imported.details()
            );
        }
        ScenarioCommand::Play {
            sandbox,
            speed,
            connection,
        } => {
            let status = Teaching::new(connection)?.play(&sandbox, speed).await?;
            print!("{}", status.summary());
        }
        ScenarioCommand::Pause {
            sandbox,
            connection,
        } => {
            let status = Teaching::new(connection)?.pause(&sandbox).await?;
            print!("{}", status.summary());
        }
        ScenarioCommand::Seek {
            sandbox,
            to: Offset(offset_ms),
            connection,
        } => {
            let status = Teaching::new(connection)?.seek(&sandbox, offset_ms).await?;
            print!("{}", status.summary());
        }
        ScenarioCommand::Stop {
            sandbox,
            connection,
        } => {
            let status = Teaching::new(connection)?.stop(&sandbox).await?;
            print!("{}", status.summary_as("stopped"));
        }
        ScenarioCommand::Status {
            sandbox,
            connection,
        } => {
            let shown = Teaching::new(connection)?.show(&sandbox).await?;
            match (&shown.scenario, &shown.play) {
                (None, _) => {
                    return Err(Error::Cannot(format!(
                        "the sandbox `{sandbox}` does not start as a scenario (`wardline sandbox \
                         create <name> --scenario <scenario>` makes one that does)"
                    )));
                }
                (Some(scenario), None) => println!(
                    "{sandbox}: {} not started (`wardline scenario play {sandbox}` starts it)",
                    wardline::sandbox::printable(&scenario.to_string())
                ),
                (Some(_), Some(play)) => print!("{}", play.summary()),
            }
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
            record,
            connection,
        } => {
            let dir = tempfile::tempdir()?;
            wardline::write_generated(dir.path(), patients, seed, anchor_or_now(anchor))?;
            let started = chrono::Utc::now();
            let settings = wardline::import::Settings {
                fhir_url,
                paths: vec![dir.path().to_path_buf()],
                concurrency: 4,
                progress: !quiet,
                auth: TokenSource::new(connection.credentials.clone()),
            };
            import_and_report(&settings, stop_on_ctrl_c("stopping the demo import")).await?;
            if let Some(name) = record {
                let recording = Recording {
                    name,
                    patients: generated_patients(dir.path())?,
                    from: Start::Instant(fhir_instant(started)),
                    to: None,
                    title: Some(format!("{patients} generated patient(s), seed {seed}")),
                    description: Some("recorded by wardline demo".to_owned()),
                };
                let recorded = Teaching::new(connection)?.record(&recording).await?;
                print!(
                    "recorded scenario {} v{}\n{}",
                    recorded.name,
                    recorded.version,
                    recorded.details()
                );
            }
        }
        Command::Simulate {
            ward,
            speed,
            hours,
            seed,
            fhir_url,
            read_url,
            record,
            connection,
        } => {
            let stop = stop_on_ctrl_c("stopping the simulation");
            let settings = wardline::simulate::Settings {
                ward: ward.clone(),
                speed,
                hours,
                seed,
                write_url: fhir_url,
                read_url,
                auth: TokenSource::new(connection.credentials.clone()),
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
            if let Some(name) = record {
                anyhow::ensure!(
                    !report.patients.is_empty(),
                    "the simulation admitted nobody: there is no scenario to record"
                );
                let recording = Recording {
                    name,
                    patients: report.patients.clone(),
                    from: Start::Instant(fhir_instant(
                        report.started.unwrap_or_else(chrono::Utc::now),
                    )),
                    to: None,
                    title: Some(format!("{ward}, {hours} simulated hour(s) at {speed}x")),
                    description: Some(format!("recorded by wardline simulate --seed {seed}")),
                };
                let recorded = Teaching::new(connection)?.record(&recording).await?;
                print!(
                    "recorded scenario {} v{}\n{}",
                    recorded.name,
                    recorded.version,
                    recorded.details()
                );
            }
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
        Command::Scenario { command } => {
            if let Err(error) = scenario(command).await {
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

/// An instant as `_lastUpdated` takes it, to the millisecond.
fn fhir_instant(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The ids of the Patients in the generated Bundles of `dir` (their `urn:uuid:` full URLs,
/// which the import writes them under).
fn generated_patients(dir: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let mut patients = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let bundle: serde_json::Value = serde_json::from_slice(&std::fs::read(entry?.path())?)?;
        for item in bundle["entry"].as_array().into_iter().flatten() {
            if item["resource"]["resourceType"] == "Patient" {
                let id = item["resource"]["id"].as_str().or_else(|| {
                    item["fullUrl"]
                        .as_str()
                        .map(|url| url.trim_start_matches("urn:uuid:"))
                });
                patients.extend(id.map(str::to_owned));
            }
        }
    }
    patients.sort();
    Ok(patients)
}
