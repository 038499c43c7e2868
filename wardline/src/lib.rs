//! wardline: the operators' command line. Each command is a module with a library entry
//! point, so that tests and benchmarks run exactly what the command runs.
//!
//! - [`import`]: Synthea output and FHIR NDJSON, through the FHIR API, resumable.
//! - [`generate`]: coherent synthetic patients on the demo hospital's wards, deterministic for
//!   a seed; `demo` imports them.
//! - [`simulate`]: one ward driven live through the FHIR API: admissions, discharges, vital
//!   signs with deteriorating patients, orders and tasks.
//! - [`sandbox`]: teaching sandboxes at the command service's `/teaching/sandboxes`: create
//!   (forked from the live record now, at a position or at an instant, or starting as a
//!   scenario), list, show, reset, delete.
//! - [`scenario`]: scenarios at `/teaching/scenarios`: record from the live record, list,
//!   export and import their NDJSON files; play one in a sandbox (play, pause, seek, stop,
//!   status).
//! - `projections rebuild`: the projection service's rebuild (`projection_service::run_rebuild`).

pub mod auth;
pub mod generate;
pub mod import;
pub mod sandbox;
pub mod scenario;
pub mod simulate;

use std::path::Path;

use chrono::{DateTime, Utc};

/// Writes the demo hospital and `patients` generated patients to `dir`, one transaction Bundle
/// per file (`facility.json` first, as import orders it), and returns the files.
pub fn write_generated(
    dir: &Path,
    patients: usize,
    seed: u64,
    anchor: DateTime<Utc>,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut files = vec![dir.join("facility.json")];
    std::fs::write(&files[0], generate::facility().to_string())?;
    let mut generator = generate::Generator::new(seed, anchor);
    for n in 0..patients {
        let file = dir.join(format!("patient-{n:05}.json"));
        std::fs::write(&file, generator.patient(n).to_string())?;
        files.push(file);
    }
    Ok(files)
}
