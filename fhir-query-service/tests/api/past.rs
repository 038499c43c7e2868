//! An oracle for the past (`/fhir/_asof/<position>`): Synthea patients written with updates and
//! deletes interleaved, then, at more than fifty random positions, a set of searches, reads and
//! histories of the past base compared with the same requests answered by projections rebuilt
//! from the event store up to that position (a second database, fed the first one's events up
//! to the position and projected in-process as a rebuild does, with a query service of its own).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use event_store::EventStore;
use futures::StreamExt;
use reqwest::{Client, Method};
use serde_json::{Value, json};
use test_support::identity::TestIdentity;
use test_support::{ServiceArgs, TestDatabase};

use crate::helpers::{BASE_URL, TestApp, link};

/// Positions compared (the head, around the first update and the first and last deletes, the
/// rest at random).
const POSITIONS: usize = 64;
/// Patient bundles written (the smallest), besides the practitioners and hospitals.
const PATIENT_BUNDLES: usize = 6;
/// The tag system of the test's updates.
const TAG_SYSTEM: &str = "http://wardline.test/oracle";

/// xorshift64*: deterministic, no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn key(resource: &Value) -> String {
    format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap_or_default(),
        resource["id"].as_str().unwrap_or_default()
    )
}

fn type_of(key: &str) -> &str {
    key.split('/').next().unwrap_or_default()
}

/// Every relative reference (`Type/id`) anywhere in `value`.
fn references(value: &Value, found: &mut HashSet<String>) {
    match value {
        Value::Object(object) => {
            for (name, member) in object {
                if name == "reference"
                    && let Some(reference) = member.as_str()
                    && reference.contains('/')
                {
                    found.insert(reference.to_owned());
                }
                references(member, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, found)),
        _ => {}
    }
}

/// A folder with the practitioner and hospital bundles and the smallest patient bundles.
fn sample_dir() -> PathBuf {
    let source = test_support::synthea::data_dir();
    let files = test_support::synthea::bundle_files(&source);
    let shared = |path: &Path| {
        let name = path.file_name().unwrap().to_string_lossy();
        name.starts_with("practitionerInformation") || name.starts_with("hospitalInformation")
    };
    let mut patients: Vec<(u64, PathBuf)> = files
        .iter()
        .filter(|path| !shared(path))
        .map(|path| (std::fs::metadata(path).unwrap().len(), path.clone()))
        .collect();
    patients.sort();
    let dir = std::env::temp_dir().join(format!("wardline-past-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let chosen = files
        .iter()
        .filter(|path| shared(path))
        .chain(patients.iter().take(PATIENT_BUNDLES).map(|(_, path)| path));
    for path in chosen {
        std::fs::copy(path, dir.join(path.file_name().unwrap())).unwrap();
    }
    dir
}

/// One change of a resource that a search can see; `n` counts the resource's updates.
fn mutate(resource: &mut Value, n: u32) {
    match resource["resourceType"].as_str().unwrap_or_default() {
        "Patient" => {
            resource["name"][0]["family"] = json!(format!("Revised{n}"));
            let gender = if resource["gender"] == "male" {
                "female"
            } else {
                "male"
            };
            resource["gender"] = json!(gender);
        }
        "Observation" => {
            if let Some(value) = resource["valueQuantity"]["value"].as_f64() {
                resource["valueQuantity"]["value"] = json!((value * 150.0).round() / 100.0);
            }
            resource["status"] = json!("amended");
        }
        "Condition" => {
            resource["clinicalStatus"] = json!({"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "resolved"
            }]});
        }
        "Encounter" => {
            let status = if n % 2 == 1 {
                "cancelled"
            } else {
                "entered-in-error"
            };
            resource["status"] = json!(status);
        }
        _ => {}
    }
    // Every update also re-tags the resource (`_tag` searches see each version's).
    let mut tags: Vec<Value> = resource["meta"]["tag"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|tag| tag["system"] != TAG_SYSTEM)
        .collect();
    tags.push(json!({"system": TAG_SYSTEM, "code": format!("r{n}")}));
    if !resource["meta"].is_object() {
        resource["meta"] = json!({});
    }
    resource["meta"]["tag"] = Value::Array(tags);
}

/// A write to the command service: its position, or the refusal's status.
async fn write(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<i64, u16> {
    let mut request = app.client.request(method, format!("{}/{path}", app.writes));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/fhir+json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    if !response.status().is_success() {
        return Err(response.status().as_u16());
    }
    Ok(response.headers()["x-event-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap())
}

/// What was written, for the requests and the report.
#[derive(Default)]
struct Written {
    resources: usize,
    updates: usize,
    deletes: usize,
    refused_deletes: usize,
    first_update: Option<i64>,
    first_delete: Option<i64>,
    last_delete: Option<i64>,
    /// Resources updated twice in a row (`Type/id`), in order.
    twice: Vec<String>,
    /// Every resource updated at least once.
    updated: HashSet<String>,
    deleted: Vec<String>,
}

/// Writes the levels, each followed by a round of updates (~5%, some twice) and deletes (~2%,
/// of resources nothing refers to) of what was written so far.
async fn write_interleaved(app: &TestApp, levels: &[Vec<Value>], rng: &mut Rng) -> Written {
    let mut referenced = HashSet::new();
    for resource in levels.iter().flatten() {
        references(resource, &mut referenced);
    }
    let mut written = Written::default();
    let mut current: HashMap<String, Value> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut gone: HashSet<String> = HashSet::new();
    let mut updates_of: HashMap<String, u32> = HashMap::new();
    let mut forced: HashSet<&str> = HashSet::new();
    for level in levels {
        futures::stream::iter(level)
            .for_each_concurrent(8, |resource| app.put(resource))
            .await;
        for resource in level {
            current.insert(key(resource), resource.clone());
            order.push(key(resource));
        }
        written.resources += level.len();
        let alive: Vec<String> = order
            .iter()
            .filter(|key| !gone.contains(*key))
            .cloned()
            .collect();
        // Updates: at random, and the first resource of each of these types, twice.
        let mut chosen: Vec<(String, u32)> = Vec::new();
        for wanted in ["Patient", "Observation", "Condition", "Encounter"] {
            if !forced.contains(wanted)
                && let Some(first) = alive.iter().find(|key| type_of(key) == wanted)
            {
                forced.insert(wanted);
                chosen.push((first.clone(), 2));
            }
        }
        let updates = (alive.len() as f64 * 0.05).round() as usize;
        for _ in 0..updates {
            let picked = alive[rng.below(alive.len())].clone();
            let times = if rng.below(4) == 0 { 2 } else { 1 };
            chosen.push((picked, times));
        }
        for (picked, times) in chosen {
            for _ in 0..times {
                let n = updates_of.entry(picked.clone()).or_default();
                *n += 1;
                let resource = current.get_mut(&picked).unwrap();
                mutate(resource, *n);
                let position = write(app, Method::PUT, &picked, Some(resource))
                    .await
                    .unwrap_or_else(|status| panic!("update of {picked}: {status}"));
                written.first_update.get_or_insert(position);
                written.updates += 1;
                written.updated.insert(picked.clone());
            }
            if times == 2 {
                written.twice.push(picked);
            }
        }
        // Deletes, of resources nothing refers to (a later write could not refer to them).
        let candidates: Vec<&String> = alive
            .iter()
            .filter(|key| {
                !referenced.contains(*key)
                    && !["Patient", "Organization", "Practitioner", "Encounter"]
                        .contains(&type_of(key))
            })
            .collect();
        let deletes = ((alive.len() as f64 * 0.02).round() as usize).min(candidates.len());
        for _ in 0..deletes {
            let picked = candidates[rng.below(candidates.len())].clone();
            if gone.contains(&picked) {
                continue;
            }
            match write(app, Method::DELETE, &picked, None).await {
                Ok(position) => {
                    written.first_delete.get_or_insert(position);
                    written.last_delete = Some(position);
                    written.deletes += 1;
                    written.deleted.push(picked.clone());
                    gone.insert(picked);
                }
                Err(409) => written.refused_deletes += 1,
                Err(status) => panic!("delete of {picked}: {status}"),
            }
        }
    }
    written
}

/// How the matches of a sorted search are keyed, to compare their order where it is defined.
#[derive(Clone, Copy)]
enum Sort {
    BirthDate,
    Effective,
}

impl Sort {
    fn key(self, resource: &Value) -> String {
        match self {
            Sort::BirthDate => resource["birthDate"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            // An instant, whatever its offset (ties must stay ties).
            Sort::Effective => resource["effectiveDateTime"]
                .as_str()
                .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
                .map(|instant| instant.timestamp().to_string())
                .unwrap_or_default(),
        }
    }

    /// Whether `keys` (of every page, in order) are in this sort's order (resources without
    /// the value this key reads are left out).
    fn in_order(self, keys: &[String]) -> bool {
        let present: Vec<&String> = keys.iter().filter(|key| !key.is_empty()).collect();
        match self {
            Sort::BirthDate => present.windows(2).all(|pair| pair[0] <= pair[1]),
            Sort::Effective => present.windows(2).all(|pair| {
                pair[0].parse::<i64>().unwrap_or_default()
                    >= pair[1].parse::<i64>().unwrap_or_default()
            }),
        }
    }
}

struct Request {
    path: String,
    sort: Option<Sort>,
}

fn request(path: impl Into<String>) -> Request {
    Request {
        path: path.into(),
        sort: None,
    }
}

fn sorted(path: impl Into<String>, sort: Sort) -> Request {
    Request {
        path: path.into(),
        sort: Some(sort),
    }
}

/// An answer, every page of it.
#[derive(Default, Debug)]
struct Answer {
    status: u16,
    /// A read's body (with its ETag), or the resource type of an error's body.
    body: Value,
    total: Option<u64>,
    /// Canonical JSON of the match entries' resources.
    matches: Vec<String>,
    /// `Type/id/version` of the matches, for messages.
    match_keys: Vec<String>,
    /// Included resources, as a set: which page includes a resource depends on the order of
    /// ties, which is not the same in two databases.
    included: BTreeSet<String>,
    outcomes: Vec<String>,
    /// History entries (resource, request, response), in order.
    history: Vec<String>,
    sort_keys: Vec<String>,
    /// Repeated matches, links off the base.
    problems: Vec<String>,
    pages: usize,
}

impl Answer {
    fn non_empty(&self) -> bool {
        self.status == 200
            && (self.body != Value::Null
                || self.total.is_some_and(|total| total > 0)
                || !self.matches.is_empty()
                || !self.history.is_empty())
    }
}

fn versioned_key(resource: &Value) -> String {
    format!(
        "{}/{}",
        key(resource),
        resource["meta"]["versionId"].as_str().unwrap_or("?")
    )
}

/// Whether `url` is under the FHIR base `base`.
fn under(url: &str, base: &str) -> bool {
    url.strip_prefix(base)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
}

async fn get(client: &Client, url: &str) -> (u16, Value, Option<String>) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        etag,
    )
}

/// `base/path`, every page of it.
async fn fetch(client: &Client, base: &str, request: &Request) -> Answer {
    let mut answer = Answer::default();
    let (status, mut body, etag) = get(client, &format!("{base}/{}", request.path)).await;
    answer.status = status;
    if status != 200 {
        answer.body = json!({"status": status, "resourceType": body["resourceType"]});
        return answer;
    }
    if body["resourceType"] != "Bundle" {
        answer.body = json!({"etag": etag, "resource": body});
        return answer;
    }
    answer.total = body["total"].as_u64();
    let mut seen = HashSet::new();
    loop {
        answer.pages += 1;
        for link in body["link"].as_array().into_iter().flatten() {
            let url = link["url"].as_str().unwrap_or_default();
            if !under(url, base) {
                answer
                    .problems
                    .push(format!("link {} off the base: {url}", link["relation"]));
            }
        }
        for entry in body["entry"].as_array().into_iter().flatten() {
            if let Some(full_url) = entry["fullUrl"].as_str()
                && !under(full_url, base)
            {
                answer
                    .problems
                    .push(format!("fullUrl off the base: {full_url}"));
            }
            let resource = &entry["resource"];
            if body["type"] == "history" {
                answer.history.push(
                    json!({
                        "resource": resource,
                        "request": entry["request"],
                        "response": entry["response"],
                    })
                    .to_string(),
                );
                continue;
            }
            match entry["search"]["mode"].as_str() {
                Some("match") => {
                    if !seen.insert(key(resource)) {
                        answer
                            .problems
                            .push(format!("{} repeated across pages", key(resource)));
                    }
                    answer.matches.push(resource.to_string());
                    answer.match_keys.push(versioned_key(resource));
                    if let Some(sort) = request.sort {
                        answer.sort_keys.push(sort.key(resource));
                    }
                }
                Some("include") => {
                    answer.included.insert(resource.to_string());
                }
                _ => answer.outcomes.push(resource.to_string()),
            }
        }
        let Some(next) = link(&body, "next") else {
            break;
        };
        if answer.pages >= 200 {
            answer.problems.push("more than 200 pages".into());
            break;
        }
        let (status, page, _) = get(client, &next).await;
        if status != 200 {
            answer
                .problems
                .push(format!("page {next}: {status} {page}"));
            break;
        }
        body = page;
    }
    if let Some(sort) = request.sort
        && !sort.in_order(&answer.sort_keys)
    {
        answer
            .problems
            .push(format!("matches out of order: {:?}", answer.sort_keys));
    }
    answer.matches.sort();
    answer
}

/// The first few of `items`, for a message.
fn some<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|item| item.to_string()).collect();
    let shown = items.iter().take(6).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > 6 {
        format!("{shown}, ... ({} in all)", items.len())
    } else {
        shown
    }
}

/// How the past's answer `past` differs from the rebuilt projections' answer `rebuilt`.
fn differences(past: &Answer, rebuilt: &Answer) -> Vec<String> {
    let mut found = Vec::new();
    for problem in &past.problems {
        found.push(format!("past: {problem}"));
    }
    for problem in &rebuilt.problems {
        found.push(format!("rebuilt: {problem}"));
    }
    if past.status != rebuilt.status {
        found.push(format!(
            "status {} (past) vs {} (rebuilt): {} vs {}",
            past.status, rebuilt.status, past.body, rebuilt.body
        ));
        return found;
    }
    if past.body != rebuilt.body {
        found.push(format!(
            "body {} (past) vs {} (rebuilt)",
            past.body, rebuilt.body
        ));
    }
    if past.total != rebuilt.total {
        found.push(format!(
            "total {:?} (past) vs {:?} (rebuilt)",
            past.total, rebuilt.total
        ));
    }
    if past.matches != rebuilt.matches {
        let ours: BTreeSet<&String> = past.match_keys.iter().collect();
        let theirs: BTreeSet<&String> = rebuilt.match_keys.iter().collect();
        found.push(format!(
            "matches: {} (past) vs {} (rebuilt); only in the past: [{}]; only rebuilt: [{}]",
            past.matches.len(),
            rebuilt.matches.len(),
            some(ours.difference(&theirs)),
            some(theirs.difference(&ours)),
        ));
    }
    if past.included != rebuilt.included {
        let name = |text: &String| {
            serde_json::from_str::<Value>(text)
                .map(|resource| versioned_key(&resource))
                .unwrap_or_default()
        };
        found.push(format!(
            "included: {} (past) vs {} (rebuilt); only in the past: [{}]; only rebuilt: [{}]",
            past.included.len(),
            rebuilt.included.len(),
            some(past.included.difference(&rebuilt.included).map(name)),
            some(rebuilt.included.difference(&past.included).map(name)),
        ));
    }
    if past.outcomes != rebuilt.outcomes {
        found.push(format!(
            "outcomes {:?} (past) vs {:?} (rebuilt)",
            past.outcomes, rebuilt.outcomes
        ));
    }
    if past.history != rebuilt.history {
        let first = past
            .history
            .iter()
            .zip(&rebuilt.history)
            .position(|(a, b)| a != b)
            .unwrap_or(past.history.len().min(rebuilt.history.len()));
        found.push(format!(
            "history: {} entries (past) vs {} (rebuilt), first difference at entry {first}: {} vs {}",
            past.history.len(),
            rebuilt.history.len(),
            past.history.get(first).map_or("-", |e| &e[..e.len().min(300)]),
            rebuilt.history.get(first).map_or("-", |e| &e[..e.len().min(300)]),
        ));
    }
    if past.sort_keys != rebuilt.sort_keys {
        found.push(format!(
            "sort order: [{}] (past) vs [{}] (rebuilt)",
            some(&past.sort_keys),
            some(&rebuilt.sort_keys)
        ));
    }
    found
}

/// The most frequent codings of `field` over the resources of `resource_type`.
fn top_code(resources: &[Value], resource_type: &str, field: &str) -> (String, String) {
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for resource in resources
        .iter()
        .filter(|r| r["resourceType"] == resource_type)
    {
        for coding in resource[field]["coding"].as_array().into_iter().flatten() {
            let system = coding["system"].as_str().unwrap_or_default().to_owned();
            let code = coding["code"].as_str().unwrap_or_default().to_owned();
            *counts.entry((system, code)).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(coding, _)| coding)
        .unwrap()
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The requests compared at every position, their values picked from the data.
fn requests(resources: &[Value], written: &Written, middle: DateTime<Utc>) -> Vec<Request> {
    let of_type = |wanted: &str| -> Vec<&Value> {
        resources
            .iter()
            .filter(|r| r["resourceType"] == wanted)
            .collect()
    };
    let patients = of_type("Patient");
    // The first patient is updated twice (the first resource of its type); names are taken
    // from one never updated, so that they name it at every position after its creation.
    let p0 = patients[0]["id"].as_str().unwrap();
    let last = patients
        .iter()
        .rev()
        .find(|patient| !written.updated.contains(&key(patient)))
        .unwrap_or(&patients[patients.len() - 1]);
    let family = last["name"][0]["family"].as_str().unwrap();
    let prefix: String = family.chars().take(3).collect();
    let middle_part: String = family
        .chars()
        .skip(1)
        .take(3)
        .collect::<String>()
        .to_lowercase();
    let mut years: Vec<&str> = patients
        .iter()
        .map(|p| &p["birthDate"].as_str().unwrap()[..4])
        .collect();
    years.sort();
    let birth_year = years[years.len() / 2];
    let (obs_system, obs_code) = top_code(resources, "Observation", "code");
    let (cond_system, cond_code) = top_code(resources, "Condition", "code");
    let mut values: Vec<(f64, String)> = of_type("Observation")
        .into_iter()
        .filter(|o| {
            o["code"]["coding"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["code"] == obs_code.as_str())
        })
        .filter_map(|o| {
            Some((
                o["valueQuantity"]["value"].as_f64()?,
                o["valueQuantity"]["code"].as_str()?.to_owned(),
            ))
        })
        .collect();
    values.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (median, unit) = values[values.len() / 2].clone();
    let threshold = (median * 10.0).round() / 10.0;
    let mut encounter_years: Vec<&str> = of_type("Encounter")
        .into_iter()
        .filter_map(|e| e["period"]["start"].as_str())
        .map(|start| &start[..4])
        .collect();
    encounter_years.sort();
    let year: i32 = encounter_years[encounter_years.len() / 2].parse().unwrap();
    let middle = urlencode(&middle.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
    let loinc = format!("{obs_system}|{obs_code}");
    let twice = written
        .twice
        .iter()
        .find(|key| type_of(key) == "Observation")
        .unwrap();
    let deleted = &written.deleted[0];
    let mut list = vec![
        // Strings.
        request("Patient"),
        request("Patient?_summary=count"),
        request(format!("Patient?family={prefix}")),
        request("Patient?family=revised"),
        request(format!("Patient?family:exact={family}")),
        request(format!("Patient?name:contains={middle_part}")),
        request(format!("Patient?_content={}", family.to_lowercase())),
        // Tokens.
        request("Patient?gender=female"),
        request("Patient?gender:not=male"),
        request(format!("Observation?code={obs_code}&_count=50")),
        request(format!("Observation?code={loinc}&_summary=count")),
        request("Observation?status=amended"),
        request(format!(
            "Condition?code:not={cond_system}|{cond_code}&_count=100"
        )),
        request("Condition?clinical-status=resolved"),
        request("Encounter?status:not=finished"),
        request(format!("?_tag={TAG_SYSTEM}|r1&_count=100")),
        request(format!("Observation?_tag={TAG_SYSTEM}|r2")),
        // Dates.
        request(format!("Patient?birthdate=ge{birth_year}")),
        request(format!("Patient?birthdate=lt{birth_year}")),
        request(format!(
            "Encounter?date=ge{year}-01-01&date=lt{}-01-01",
            year + 1
        )),
        request(format!("Observation?_lastUpdated=ge{middle}&_count=200")),
        request(format!("Condition?_lastUpdated=lt{middle}&_count=100")),
        request("Condition?abatement-date:missing=true&_count=100"),
        // Quantities.
        request(format!(
            "Observation?code={loinc}&value-quantity=gt{threshold}|http://unitsofmeasure.org|{}",
            urlencode(&unit)
        )),
        // References, plain, :missing and chained, and _has.
        request(format!("Observation?subject=Patient/{p0}&_count=200")),
        request(format!("Condition?patient={p0}")),
        request("Encounter?service-provider:missing=false&_count=200"),
        request(format!(
            "Observation?code={loinc}&subject:Patient.name={prefix}"
        )),
        request("Encounter?subject:Patient.gender=female&_count=200"),
        request(format!(
            "Patient?_has:Condition:subject:code={cond_system}|{cond_code}"
        )),
        request("Patient?_has:Observation:subject:status=amended"),
        // Includes (one page each: which page includes what depends on the order of ties).
        request(format!(
            "Encounter?subject=Patient/{p0}&_include=Encounter:subject&_include=Encounter:service-provider&_count=1000"
        )),
        request("Patient?_revinclude=Condition:subject&_count=1000"),
        request(format!(
            "Patient?_id={p0}&_revinclude=Encounter:subject&_include:iterate=Encounter:participant&_count=1000"
        )),
        // Sorting and paging.
        sorted("Patient?_sort=birthdate&_count=3", Sort::BirthDate),
        sorted(
            format!("Observation?code={loinc}&_sort=-date&_count=25"),
            Sort::Effective,
        ),
        request("Immunization?_count=10"),
        request("?_type=Immunization,Procedure,CarePlan&_count=30"),
        // Compartments and $everything.
        request(format!("Patient/{p0}/Observation?_count=200")),
        request(format!("Patient/{p0}/Condition")),
        request(format!("Patient/{p0}/$everything?_count=1000")),
        // Histories.
        request("Patient/_history?_count=5"),
        request("Condition/_history?_count=20"),
        request("_history?_count=1000"),
        request(format!("Patient/{p0}/_history")),
        request(format!("{twice}/_history")),
        request(format!("{deleted}/_history")),
        // Reads and vreads.
        request(format!("Patient/{p0}")),
        request(twice.clone()),
        request(format!("{twice}/_history/2")),
        request(deleted.clone()),
        request(format!("{deleted}/_history/1")),
    ];
    // The resource deleted last, its last version (the delete).
    let last_deleted = written.deleted.last().unwrap();
    list.push(request(last_deleted.clone()));
    list
}

/// Database B: the events of A up to a position, projected as a rebuild projects them.
struct Rebuilt {
    database: TestDatabase,
    store: EventStore,
    options: fhir_search::ExtractOptions,
    position: i64,
}

impl Rebuilt {
    /// Copies A's events in `(self.position, position]` and projects them.
    async fn advance(&mut self, source: &EventStore, position: i64) {
        let mut events = Vec::new();
        let mut after = self.position;
        while after < position {
            let read = source.read_feed(after, 1000).await.unwrap();
            let Some(last) = read.last().and_then(|event| event.position) else {
                break;
            };
            events.extend(
                read.into_iter()
                    .filter(|event| event.position.is_some_and(|at| at <= position)),
            );
            after = last;
        }
        let mut transaction = self.database.pool.begin().await.unwrap();
        for event in &events {
            sqlx::query(
                "INSERT INTO fhir_event (event_id, resource_type, resource_id, version, kind, \
                 resource, patch, metadata, transaction_id, recorded_at, prev_hash, hash) \
                 OVERRIDING SYSTEM VALUE \
                 VALUES ($1, $2, $3, $4, $5, $6::json, $7::json, $8::json, $9, $10, $11, $12)",
            )
            .bind(event.event_id)
            .bind(&event.resource_type)
            .bind(&event.resource_id)
            .bind(event.version)
            .bind(&event.kind)
            .bind(&event.resource)
            .bind(&event.patch)
            .bind(&event.metadata)
            .bind(event.transaction_id)
            .bind(event.recorded_at)
            .bind(&event.prev_hash)
            .bind(&event.hash)
            .execute(&mut *transaction)
            .await
            .unwrap();
            sqlx::query("INSERT INTO fhir_event_position (position, event_id) VALUES ($1, $2)")
                .bind(event.position.unwrap())
                .bind(event.event_id)
                .execute(&mut *transaction)
                .await
                .unwrap();
        }
        transaction.commit().await.unwrap();
        // The replay, as `rebuild::replay` does it: the feed in batches, each in a transaction.
        loop {
            let feed = self.store.read_feed(self.position, 1000).await.unwrap();
            let Some(last) = feed.last().and_then(|event| event.position) else {
                break;
            };
            let changes = feed
                .iter()
                .map(projection_service::change::Change::from_stored)
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let batch = projection_service::apply::prepare(
                fhir_search::Registry::r4(),
                &self.options,
                changes,
            );
            let mut transaction = self.database.pool.begin().await.unwrap();
            projection_service::apply::write_rows(&mut transaction, &batch)
                .await
                .unwrap();
            transaction.commit().await.unwrap();
            self.position = last;
        }
        let checkpoint = projection_service::apply::advance_checkpoint(&self.database.pool)
            .await
            .unwrap();
        assert_eq!(checkpoint, position, "the rebuilt checkpoint");
        assert_eq!(self.position, position, "the rebuilt feed");
    }
}

#[tokio::test]
async fn the_past_at_random_positions_equals_projections_rebuilt_up_to_there() {
    let started = Instant::now();
    let mut rng = Rng(0x5EED_0013_A50F);
    let app = TestApp::spawn_with(true, 60_000).await;
    let dir = sample_dir();
    // Ids of their own: the read cache is one Redis for every test, and this test updates and
    // deletes resources the other Synthea tests read.
    let levels = test_support::synthea::copy_levels(&test_support::synthea::load_levels(&dir), 13);
    let _ = std::fs::remove_dir_all(&dir);
    let written = write_interleaved(&app, &levels, &mut rng).await;
    assert!(
        written.deletes >= 10,
        "only {} deletes ({} refused)",
        written.deletes,
        written.refused_deletes
    );
    let source = EventStore::new(app.database.clone());
    let head = source.head_position().await.unwrap();
    let pool = app.database.clone();
    test_support::eventually(
        "the projection to reach the head",
        Duration::from_secs(120),
        || {
            let pool = pool.clone();
            async move {
                let (position,): (i64,) = sqlx::query_as(
                    "SELECT position FROM projection_checkpoint WHERE name = 'search'",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                (position >= head).then_some(())
            }
        },
    )
    .await;
    let loaded = started.elapsed();

    // B: an empty database, its own identity service and query service (no Redis: its cache
    // would keep versions no projection of B ever evicts).
    let database = TestDatabase::create().await;
    let identity = TestIdentity::spawn(&database.url).await;
    let query = fhir_query_service::Application::build(
        service_kit::config::load_from(
            ServiceArgs::new("fhir-query-service", &database.url, 8)
                .arg("--reference-base-url", BASE_URL)
                .arg("--redis-url", "redis://127.0.0.1:1")
                .auth(identity.issuer(), &identity.jwks_url())
                .into_args(),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let rebuilt_reads = format!("http://127.0.0.1:{}/fhir", query.port());
    tokio::spawn(query.run_until(std::future::pending()));
    let token = identity.system_token("system/*.cruds").await.access_token;
    let rebuilt_client = test_support::bearer_client(&token, Duration::from_secs(60));
    let mut rebuilt = Rebuilt {
        store: EventStore::new(database.pool.clone()),
        database,
        options: fhir_search::ExtractOptions {
            base_url: Some(BASE_URL.to_owned()),
        },
        position: 0,
    };

    // The positions: the head, just before and at the first update and the first and last
    // deletes, the rest at random.
    let first_update = written.first_update.unwrap();
    let (first_delete, last_delete) = (written.first_delete.unwrap(), written.last_delete.unwrap());
    let mut positions: BTreeSet<i64> = [
        head,
        first_update - 1,
        first_update,
        first_delete - 1,
        first_delete,
        last_delete - 1,
        last_delete,
    ]
    .into_iter()
    .filter(|position| *position >= 1)
    .collect();
    while positions.len() < POSITIONS {
        positions.insert(1 + rng.below(head as usize) as i64);
    }
    let middle: DateTime<Utc> = source
        .event_at(head / 2)
        .await
        .unwrap()
        .unwrap()
        .recorded_at;
    let resources: Vec<Value> = levels.into_iter().flatten().collect();
    let requests = requests(&resources, &written, middle);

    let mut failures: Vec<String> = Vec::new();
    let mut non_empty = vec![false; requests.len()];
    let mut patient_totals: Vec<(i64, Option<u64>)> = Vec::new();
    let (mut compared, mut pages) = (0usize, 0usize);
    for &position in &positions {
        rebuilt.advance(&source, position).await;
        let past_base = format!("{}/_asof/{position}", app.reads);
        let answers: Vec<(usize, Answer, Answer)> =
            futures::stream::iter(requests.iter().enumerate())
                .map(|(index, request)| {
                    let (past_base, rebuilt_base) = (&past_base, &rebuilt_reads);
                    let (client, rebuilt_client) = (&app.client, &rebuilt_client);
                    async move {
                        let (past, now) = tokio::join!(
                            fetch(client, past_base, request),
                            fetch(rebuilt_client, rebuilt_base, request)
                        );
                        (index, past, now)
                    }
                })
                .buffer_unordered(3)
                .collect()
                .await;
        for (index, past, now) in answers {
            let request = &requests[index];
            compared += 1;
            pages += past.pages + now.pages;
            non_empty[index] |= past.non_empty() && now.non_empty();
            if request.path == "Patient?_summary=count" {
                patient_totals.push((position, past.total));
            }
            for difference in differences(&past, &now) {
                failures.push(format!("P={position} {}: {difference}", request.path));
            }
        }
    }

    let live_patients = app.search("Patient?_summary=count").await["total"].as_u64();
    eprintln!(
        "the past oracle: {} resources written, {} updates ({} resources twice), {} deletes \
         ({} refused), head {head}; {} positions from {} to {}; {} requests x {} positions = \
         {compared} compared, {pages} pages; loaded in {:.0?}, {:.0?} in all",
        written.resources,
        written.updates,
        written.twice.len(),
        written.deletes,
        written.refused_deletes,
        positions.len(),
        positions.first().unwrap(),
        positions.last().unwrap(),
        requests.len(),
        positions.len(),
        loaded,
        started.elapsed(),
    );
    assert!(
        failures.is_empty(),
        "{} differences between the past and the rebuilt projections:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(positions.len() >= 50);
    assert!(
        patient_totals
            .iter()
            .any(|(_, total)| *total != live_patients),
        "no past differs from the present in its number of patients: {patient_totals:?} vs {live_patients:?}"
    );
    let never: Vec<&str> = requests
        .iter()
        .zip(&non_empty)
        .filter(|(_, seen)| !**seen)
        .map(|(request, _)| request.path.as_str())
        .collect();
    assert!(
        never.is_empty(),
        "requests never answered with anything at any position: {never:?}"
    );
}
