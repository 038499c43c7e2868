//! The ten clinical searches of the search benchmark, what they draw their parameters from, and
//! the services they run against (command, projection and query services in this process), so
//! that the search benchmark and the benchmark of the past (`past-bench`) measure the same
//! searches over the same data.

// As in the rest of the harness: a benchmark whose data or answers cannot be read stops there.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use test_support::ServiceArgs;
use test_support::identity::TestIdentity;

/// One of the ten searches: a path under `/fhir` and the parameter sets it cycles over.
pub struct Search {
    pub name: &'static str,
    pub path: String,
    pub params: Vec<Vec<(String, String)>>,
}

/// What the searches draw their parameters from.
pub struct Patient {
    pub id: String,
    pub family: String,
    pub mrn: Option<(String, String)>,
}

pub fn patients(levels: &[Vec<Value>]) -> Vec<Patient> {
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
pub fn common_lab_code(levels: &[Vec<Value>]) -> String {
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

/// The ten searches, their parameters drawn from `patients`.
pub fn searches(patients: &[Patient], lab_code: &str) -> Vec<Search> {
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

/// The operation [`crate::drive`] runs for `search` against the FHIR base `base`: the `n`-th
/// call sends the `n`-th parameter set (cycling), and succeeds on a 200.
pub fn search_operation(
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
pub async fn result_size(client: &reqwest::Client, base: &str, search: &Search) -> (f64, f64) {
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

/// The command, projection and query services in this process, over `database_url`, checking
/// tokens against `identity`; returns the FHIR bases of the command service (writes) and of
/// the query service (reads).
pub async fn start_services(
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
pub async fn analyze(pool: &sqlx::PgPool) {
    sqlx::query("ANALYZE").execute(pool).await.unwrap();
}
