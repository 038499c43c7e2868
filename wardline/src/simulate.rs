//! `wardline simulate`: drives one ward live through the FHIR API, for the dashboard and for
//! instructors' scenarios.
//!
//! Simulated time runs `speed` times faster than real time, from the moment the simulation
//! starts, in steps of [`STEP_MINUTES`]. At each step every patient the simulator looks after
//! whose observations are due gets a set of vital signs (a transaction of seven Observations);
//! deteriorating patients are observed more often, and their respiratory and heart rates rise
//! while their blood pressure and saturation fall, until they are on oxygen and newly
//! confused. Half the free beds are filled at the start and about one more an hour (a Patient
//! and an in-progress Encounter on the bed), long stays end with a discharge (the Encounter finished), and now and then a new
//! order (ServiceRequest) and nursing task (Task) are written. The ward's beds are read from
//! the server; beds already occupied (by demo patients) are left alone.
//!
//! Deterministic for a seed: the same seed gives the same admissions, values and events in
//! the same order. Bounded by `hours` of simulated time, and stoppable at any moment.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::generate::codes::{ADMISSION_REASONS, FAMILY, GIVEN_FEMALE, GIVEN_MALE};
use crate::generate::{Vitals, vital_signs};

/// Simulated minutes per step.
pub const STEP_MINUTES: i64 = 15;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The ward's Location id (`ward-a`).
    pub ward: String,
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Simulated hours to run.
    pub hours: f64,
    pub seed: u64,
    /// The command service's FHIR base.
    pub write_url: String,
    /// The query service's FHIR base (to read the ward's beds and who is in them).
    pub read_url: String,
    /// The access token of every request.
    pub auth: crate::auth::TokenSource,
}

/// What a simulation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub steps: usize,
    pub admissions: usize,
    pub discharges: usize,
    pub observation_sets: usize,
    pub orders: usize,
    /// The patients it admitted, in order: a scenario's cohort (`--record`).
    pub patients: Vec<String>,
    /// When it began writing (wall time): where a scenario's window opens.
    pub started: Option<DateTime<Utc>>,
}

/// A patient the simulator looks after.
struct Inpatient {
    patient: String,
    encounter: String,
    bed: String,
    admitted: DateTime<Utc>,
    stay_hours: i64,
    /// From 0 (stable) towards 1 (deteriorated); grows for deteriorating patients.
    worsening: f64,
    deteriorating: bool,
    next_observation: DateTime<Utc>,
}

/// Runs the simulation until `hours` of simulated time have passed or `stop` is set.
pub async fn run(settings: &Settings, stop: Arc<AtomicBool>) -> anyhow::Result<Report> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let beds = ward_beds(&client, settings).await?;
    anyhow::ensure!(
        !beds.is_empty(),
        "Location/{} has no beds (Locations with partOf = the ward); load the demo hospital first",
        settings.ward
    );
    let occupied = occupied_beds(&client, settings).await?;
    let mut free: Vec<String> = beds
        .into_iter()
        .filter(|bed| !occupied.contains(bed))
        .collect();
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let mut report = Report {
        started: Some(Utc::now()),
        ..Report::default()
    };
    let mut ward: Vec<Inpatient> = Vec::new();
    let start = Utc::now();
    let steps = (settings.hours * 60.0 / STEP_MINUTES as f64).ceil() as usize;
    let real_step = Duration::from_secs_f64(STEP_MINUTES as f64 * 60.0 / settings.speed.max(1e-3));
    for step in 0..steps {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let now = start + chrono::Duration::minutes(STEP_MINUTES * step as i64);
        // Discharges, then admissions into free beds.
        let mut staying = Vec::with_capacity(ward.len());
        for inpatient in ward.drain(..) {
            let hours = (now - inpatient.admitted).num_hours();
            if hours >= inpatient.stay_hours && !inpatient.deteriorating {
                discharge(&client, settings, &inpatient, now).await?;
                free.push(inpatient.bed);
                report.discharges += 1;
            } else {
                staying.push(inpatient);
            }
        }
        ward = staying;
        free.sort();
        // The ward opens half full; then about one admission an hour while beds are free.
        let admissions = if step == 0 {
            free.len().div_ceil(2)
        } else {
            usize::from(rng.random_bool(0.25))
        };
        for _ in 0..admissions.min(free.len()) {
            let bed = free.remove(rng.random_range(0..free.len()));
            let admitted = admit(&client, settings, &mut rng, bed, now).await?;
            let id = admitted.patient.trim_start_matches("Patient/");
            report.patients.push(id.to_owned());
            ward.push(admitted);
            report.admissions += 1;
        }
        for inpatient in &mut ward {
            if inpatient.deteriorating {
                inpatient.worsening = (inpatient.worsening + 0.04).min(1.0);
            }
            if now < inpatient.next_observation {
                continue;
            }
            let vitals = Vitals::sample(&mut rng, inpatient.worsening);
            let entries = vital_signs(&vitals, &inpatient.patient, &inpatient.encounter, now)
                .into_iter()
                .map(|resource| json!({"resource": resource, "request": {"method": "POST", "url": "Observation"}}))
                .collect();
            post_transaction(&client, settings, entries).await?;
            report.observation_sets += 1;
            let every = if inpatient.worsening > 0.3 { 15 } else { 60 };
            inpatient.next_observation = now + chrono::Duration::minutes(every);
        }
        if !ward.is_empty() && rng.random_bool(0.1) {
            let index = rng.random_range(0..ward.len());
            order(&client, settings, &ward[index], now).await?;
            report.orders += 1;
        }
        report.steps += 1;
        tokio::time::sleep(real_step).await;
    }
    Ok(report)
}

async fn search(
    client: &reqwest::Client,
    settings: &Settings,
    query: &str,
) -> anyhow::Result<Vec<Value>> {
    let bundle: Value = client
        .get(format!("{}/{query}", settings.read_url))
        .bearer_auth(settings.auth.bearer().await?)
        .send()
        .await
        .with_context(|| format!("cannot reach the query service at {}", settings.read_url))?
        .error_for_status()?
        .json()
        .await?;
    Ok(bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| entry["resource"].clone())
        .collect())
}

/// The ward's beds (Locations that are part of it), by id.
async fn ward_beds(client: &reqwest::Client, settings: &Settings) -> anyhow::Result<Vec<String>> {
    let beds = search(
        client,
        settings,
        &format!(
            "Location?partof=Location/{}&_count=500&_elements=id",
            settings.ward
        ),
    )
    .await?;
    let mut ids: Vec<String> = beds
        .iter()
        .filter_map(|bed| bed["id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    Ok(ids)
}

/// Beds that an in-progress encounter holds.
async fn occupied_beds(
    client: &reqwest::Client,
    settings: &Settings,
) -> anyhow::Result<Vec<String>> {
    let encounters = search(
        client,
        settings,
        "Encounter?status=in-progress&_count=1000&_elements=location",
    )
    .await?;
    Ok(encounters
        .iter()
        .flat_map(|encounter| {
            encounter["location"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|place| {
            place["location"]["reference"]
                .as_str()
                .and_then(|reference| reference.strip_prefix("Location/"))
                .map(str::to_owned)
        })
        .collect())
}

/// Posts a transaction; returns the `Type/id` of each entry, in order.
async fn post_transaction(
    client: &reqwest::Client,
    settings: &Settings,
    entries: Vec<Value>,
) -> anyhow::Result<Vec<String>> {
    let response = client
        .post(&settings.write_url)
        .bearer_auth(settings.auth.bearer().await?)
        .header("content-type", "application/fhir+json")
        .header("x-change-reason", "ward simulator")
        .body(
            json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}).to_string(),
        )
        .send()
        .await
        .with_context(|| format!("cannot reach the command service at {}", settings.write_url))?;
    let status = response.status();
    let body: Value = response.json().await?;
    anyhow::ensure!(
        status.is_success(),
        "the server refused a simulated write ({status}): {body}"
    );
    Ok(body["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let location = entry["response"]["location"].as_str()?;
            let mut parts = location.split('/');
            Some(format!("{}/{}", parts.next()?, parts.next()?))
        })
        .collect())
}

async fn admit(
    client: &reqwest::Client,
    settings: &Settings,
    rng: &mut StdRng,
    bed: String,
    now: DateTime<Utc>,
) -> anyhow::Result<Inpatient> {
    let female = rng.random_bool(0.5);
    let given = if female { GIVEN_FEMALE } else { GIVEN_MALE }[rng.random_range(0..20)];
    let family = FAMILY[rng.random_range(0..FAMILY.len())];
    let (reason_code, reason) = ADMISSION_REASONS[rng.random_range(0..ADMISSION_REASONS.len())];
    let age = rng.random_range(20..92);
    let birth = (now - chrono::Duration::days(age * 365))
        .format("%Y-%m-%d")
        .to_string();
    let at = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let entries = vec![
        json!({"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001", "resource": {
            "resourceType": "Patient", "active": true,
            "name": [{"family": family, "given": [given]}],
            "gender": if female { "female" } else { "male" }, "birthDate": birth,
        }, "request": {"method": "POST", "url": "Patient"}}),
        json!({"resource": {
            "resourceType": "Encounter", "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP", "display": "inpatient encounter"},
            "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000001"},
            "period": {"start": at},
            "reasonCode": [{"coding": [{"system": "http://snomed.info/sct", "code": reason_code, "display": reason}], "text": reason}],
            "location": [{"location": {"reference": format!("Location/{bed}")}, "status": "active"}],
        }, "request": {"method": "POST", "url": "Encounter"}}),
    ];
    let written = post_transaction(client, settings, entries).await?;
    let (Some(patient), Some(encounter)) = (written.first(), written.get(1)) else {
        anyhow::bail!("the admission's response names no Patient and Encounter");
    };
    Ok(Inpatient {
        patient: patient.clone(),
        encounter: encounter.clone(),
        bed,
        admitted: now,
        stay_hours: rng.random_range(6..48),
        worsening: 0.0,
        deteriorating: rng.random_bool(0.3),
        next_observation: now,
    })
}

async fn discharge(
    client: &reqwest::Client,
    settings: &Settings,
    inpatient: &Inpatient,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let id = inpatient.encounter.trim_start_matches("Encounter/");
    let patch = json!([
        {"op": "replace", "path": "/status", "value": "finished"},
        {"op": "add", "path": "/period/end", "value": now.format("%Y-%m-%dT%H:%M:%SZ").to_string()},
        {"op": "replace", "path": "/location/0/status", "value": "completed"},
    ]);
    let response = client
        .patch(format!("{}/Encounter/{id}", settings.write_url))
        .bearer_auth(settings.auth.bearer().await?)
        .header("content-type", "application/json-patch+json")
        .header("x-change-reason", "ward simulator: discharge")
        .body(patch.to_string())
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "discharge refused: {}",
        response.text().await?
    );
    Ok(())
}

async fn order(
    client: &reqwest::Client,
    settings: &Settings,
    inpatient: &Inpatient,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let at = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let entries = vec![
        json!({"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000002", "resource": {
            "resourceType": "ServiceRequest", "status": "active", "intent": "order", "priority": "urgent",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose [Mass/volume] in Blood"}]},
            "subject": {"reference": inpatient.patient}, "encounter": {"reference": inpatient.encounter},
            "authoredOn": at,
        }, "request": {"method": "POST", "url": "ServiceRequest"}}),
        json!({"resource": {
            "resourceType": "Task", "status": "requested", "intent": "order", "priority": "urgent",
            "description": "Take blood for glucose",
            "focus": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000002"},
            "for": {"reference": inpatient.patient}, "encounter": {"reference": inpatient.encounter},
            "authoredOn": at,
        }, "request": {"method": "POST", "url": "Task"}}),
    ];
    post_transaction(client, settings, entries)
        .await
        .map(|_| ())
}
