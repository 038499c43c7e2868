//! `wardline`: the operators' command line (`wardline --help`).

// A command line: what it prints is its output.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "wardline",
    version,
    about = "Operate a Wardline server: import data, rebuild projections"
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Import {
            paths,
            fhir_url,
            concurrency,
            quiet,
        } => {
            let stop = Arc::new(AtomicBool::new(false));
            let on_signal = stop.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!(
                        "stopping after the transactions in flight; run the import again to finish it"
                    );
                    on_signal.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            });
            let settings = wardline::import::Settings {
                fhir_url,
                paths,
                concurrency,
                progress: !quiet,
            };
            let summary = wardline::import::run(&settings, stop).await?;
            print!("{}", summary.report());
            if !summary.failures.is_empty() {
                std::process::exit(2);
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
