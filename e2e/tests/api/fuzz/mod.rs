//! A fuzz test through the edge: a few thousand generated hostile requests (malformed and
//! oversized values for every search parameter type and result parameter, bodies mutated from
//! valid resources, malformed JSON, odd content types and headers, JSON Patches, Bundles,
//! history and paths), each of which must get a success or a 4xx `OperationOutcome` within the
//! time limit, never a 5xx or a dropped connection. Every event written while they run must be
//! one that a successful answer reports, and every creation an answer reports must be in the
//! store: each request sends its own `X-Request-Id`, which the store records with its events.
//!
//! The requests come from a seed (printed; `FUZZ_SEED` and `FUZZ_CASES` replay or widen a run,
//! `FUZZ_CONCURRENCY` sets how many are in flight). All failures are collected and reported
//! together, grouped by kind and by the kind of request, with one example each.

mod cases;
mod seeds;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use event_store::StoredEvent;
use futures::StreamExt;
use reqwest::{Client, Method};
use serde_json::Value;

use crate::helpers::{TestApp, patient, position};
use cases::Case;

const DEFAULT_SEED: u64 = 20_261_205;
const DEFAULT_CASES: usize = 3000;
const DEFAULT_CONCURRENCY: usize = 4;
/// A request without a complete answer by then counts as "slow".
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Past this, no more cases are sent (and the ones not sent are a failure): the test never hangs.
const RUN_BUDGET: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_requests_get_a_success_or_an_operation_outcome_and_write_only_what_they_report() {
    let seed = env_number("FUZZ_SEED", DEFAULT_SEED);
    let count = env_number("FUZZ_CASES", DEFAULT_CASES as u64) as usize;
    let concurrency = env_number("FUZZ_CONCURRENCY", DEFAULT_CONCURRENCY as u64).max(1) as usize;
    eprintln!(
        "fuzz: seed {seed}, {count} cases, {concurrency} at a time \
         (replay with FUZZ_SEED={seed} FUZZ_CASES={count})"
    );

    let app = TestApp::spawn().await;
    for resource in seeds::resources() {
        let path = format!(
            "/fhir/{}/{}",
            resource["resourceType"].as_str().unwrap(),
            resource["id"].as_str().unwrap()
        );
        let response = app.send_fhir(Method::PUT, &path, &resource).await;
        assert_eq!(
            response.status(),
            201,
            "seed {path}: {:?}",
            response.text().await
        );
    }

    let cases = cases::generate(seed, count);
    let count_before = app.event_count().await;
    let head_before = app.store.head_position().await.unwrap();
    let client = Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let started = Instant::now();
    let deadline = started + RUN_BUDGET;
    let base = app.edge.base();
    let light = cases.iter().take_while(|case| !case.heavy).count();
    let mut answers: Vec<Answer> = Vec::with_capacity(cases.len());
    // When each case was sent, in seconds from the start: the first slow answers of a run point
    // at what slowed the rest.
    let mut sent_at: Vec<f64> = Vec::with_capacity(cases.len());
    for phase in [0..light, light..cases.len()] {
        let mut replies: Vec<(usize, (Answer, f64))> = futures::stream::iter(phase)
            .map(|index| {
                let (client, base, case) = (&client, &base, &cases[index]);
                async move {
                    let at = started.elapsed().as_secs_f64();
                    let answer = send(client, base, seed, index, case, deadline).await;
                    (index, (answer, at))
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        replies.sort_by_key(|(index, _)| *index);
        for (_, (answer, at)) in replies {
            answers.push(answer);
            sent_at.push(at);
        }
    }
    let elapsed = started.elapsed();

    let mut failures = Failures::default();
    for ((case, answer), at) in cases.iter().zip(&answers).zip(&sent_at) {
        judge(case, answer, *at, &mut failures);
    }
    let written = account_events(
        &app,
        seed,
        &cases,
        &answers,
        count_before,
        head_before,
        &mut failures,
    )
    .await;
    check_still_following_writes(&app, &mut failures).await;
    app.cleanup().await;

    eprintln!(
        "fuzz: {} cases in {:.1} s ({} heavy), statuses {:?}, {written} events written",
        cases.len(),
        elapsed.as_secs_f64(),
        cases.len() - light,
        status_counts(&answers)
    );
    if !failures.is_empty() {
        panic!("{}", failures.report(seed, cases.len()));
    }
}

/// What came back for one case.
enum Answer {
    Reply(Reply),
    /// No complete answer within [`REQUEST_TIMEOUT`].
    Slow,
    /// The connection failed: refused, reset, closed without an answer.
    Dropped(String),
    /// The request could not even be built (a fault of the generator, reported as one).
    Unsendable(String),
    /// The run's budget was spent before its turn.
    NotRun,
}

struct Reply {
    status: u16,
    content_type: String,
    location: Option<String>,
    etag: Option<String>,
    position: Option<i64>,
    body: Vec<u8>,
}

async fn send(
    client: &Client,
    base: &str,
    seed: u64,
    index: usize,
    case: &Case,
    deadline: Instant,
) -> Answer {
    if Instant::now() > deadline {
        return Answer::NotRun;
    }
    let mut request = client
        .request(case.method.clone(), format!("{base}{}", case.path))
        .header("x-request-id", request_id(seed, index));
    for (name, value) in &case.headers {
        request = request.header(*name, value.as_str());
    }
    if let Some(body) = &case.body {
        request = request.body(body.clone());
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => return transport_failure(&error),
    };
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    let status = response.status().as_u16();
    let content_type = header("content-type").unwrap_or_default();
    let location = header("location");
    let etag = header("etag");
    let position = header("x-event-position").and_then(|value| value.parse().ok());
    match response.bytes().await {
        Ok(body) => Answer::Reply(Reply {
            status,
            content_type,
            location,
            etag,
            position,
            body: body.to_vec(),
        }),
        Err(error) => transport_failure(&error),
    }
}

fn transport_failure(error: &reqwest::Error) -> Answer {
    if error.is_timeout() {
        Answer::Slow
    } else if error.is_builder() {
        Answer::Unsendable(error_chain(error))
    } else {
        Answer::Dropped(error_chain(error))
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn request_id(seed: u64, index: usize) -> String {
    format!("fuzz-{seed}-{index}")
}

/// The status and body rules: a success, or a 4xx with an `OperationOutcome`.
fn judge(case: &Case, answer: &Answer, sent_at: f64, failures: &mut Failures) {
    let kind = match answer {
        Answer::Slow => format!(
            "slow: no complete answer within {} s",
            REQUEST_TIMEOUT.as_secs()
        ),
        Answer::Dropped(_) => "dropped connection (transport error)".to_owned(),
        Answer::Unsendable(_) => "request could not be built (generator fault)".to_owned(),
        Answer::NotRun => format!(
            "not sent: the run's {} s budget was spent",
            RUN_BUDGET.as_secs()
        ),
        Answer::Reply(reply) => match reply.status {
            200..=299 if case.must_fail => {
                "success for a body no FHIR resource can have".to_owned()
            }
            200..=399 => return,
            400..=499 => match outcome_problem(reply) {
                None => return,
                Some(_) => "4xx without a FHIR JSON OperationOutcome".to_owned(),
            },
            501 if documented_as_not_implemented(reply) => return,
            status @ 500..=599 => format!("{status} server error"),
            status => format!("unexpected status {status}"),
        },
    };
    // What was not sent is one failure, whatever it was; a 4xx that is not an OperationOutcome
    // comes from the edge or the framework whatever the request was, so it is one failure per
    // status, reason and area.
    let label = match answer {
        Answer::NotRun => "any".to_owned(),
        Answer::Reply(reply) if (400..500).contains(&reply.status) => format!(
            "{} {} ({})",
            reply.status,
            outcome_problem(reply).unwrap_or_default(),
            case.label.split([' ', ':']).next().unwrap_or_default()
        ),
        _ => case.label.clone(),
    };
    failures.add(&kind, &label, || {
        format!(
            "{}\n  (sent {sent_at:.1} s into the run)",
            describe(case, answer, None)
        )
    });
}

/// The two interactions the README lists as not implemented yet, searches inside Bundles and
/// FHIRPath Patch, answer 501 `not-supported`: a truthful answer, not a failure. Anything else
/// that is 501 is.
fn documented_as_not_implemented(reply: &Reply) -> bool {
    if outcome_problem(reply).is_some() {
        return false;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&reply.body) else {
        return false;
    };
    let issue = &body["issue"][0];
    let diagnostics = issue["diagnostics"].as_str().unwrap_or_default();
    issue["code"] == "not-supported"
        && (diagnostics.contains("searches and history inside Bundles")
            || diagnostics.contains("(FHIRPath Patch)"))
}

/// Why a 4xx body is not an `OperationOutcome` with at least one issue, if it is not.
fn outcome_problem(reply: &Reply) -> Option<String> {
    if !reply.content_type.starts_with("application/fhir+json") {
        return Some(format!("content type {:?}", reply.content_type));
    }
    let body: Value = match serde_json::from_slice(&reply.body) {
        Ok(body) => body,
        Err(error) => return Some(format!("body is not JSON: {error}")),
    };
    if body["resourceType"] != "OperationOutcome" {
        return Some("body is not an OperationOutcome".to_owned());
    }
    if body["issue"].as_array().is_none_or(Vec::is_empty) {
        return Some("OperationOutcome without an issue".to_owned());
    }
    None
}

/// A write an answer reports: what it names of the event.
#[derive(Debug, Default)]
struct Claim {
    resource_type: Option<String>,
    id: Option<String>,
    version: Option<i32>,
    position: Option<i64>,
    /// Only a delete (a Bundle entry's delete names no location).
    delete: bool,
    /// Status 201: the event must be in the store. Otherwise (200) it may have been a no-op
    /// (an unchanged update, a delete of a deleted resource, a conditional create that matched).
    created: bool,
}

impl Claim {
    fn matches(&self, event: &StoredEvent) -> bool {
        self.resource_type
            .as_ref()
            .is_none_or(|t| *t == event.resource_type)
            && self.id.as_ref().is_none_or(|id| *id == event.resource_id)
            && self.version.is_none_or(|v| v == event.version)
            && self.position.is_none_or(|p| Some(p) == event.position)
            && (!self.delete || event.is_delete())
    }
}

/// `(type, id, version)` of a `Location`: `.../<Type>/<id>/_history/<version>`.
fn parse_location(location: &str) -> Option<(String, String, i32)> {
    let parts: Vec<&str> = location.trim_end_matches('/').rsplit('/').take(4).collect();
    match parts.as_slice() {
        [version, "_history", id, resource_type] => Some((
            (*resource_type).to_owned(),
            (*id).to_owned(),
            version.parse().ok()?,
        )),
        _ => None,
    }
}

fn parse_etag(etag: &str) -> Option<i32> {
    etag.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// The writes a successful answer reports.
fn claims(case: &Case, reply: &Reply) -> Vec<Claim> {
    if !(200..300).contains(&reply.status) {
        return Vec::new();
    }
    let path = case.path.split('?').next().unwrap_or_default();
    let is_bundle = case.method == Method::POST && (path == "/fhir" || path == "/fhir/");
    if is_bundle {
        return bundle_claims(case, reply);
    }
    let is_read =
        case.method == Method::GET || (case.method == Method::POST && path.ends_with("/_search"));
    if is_read || ![Method::POST, Method::PUT, Method::PATCH, Method::DELETE].contains(&case.method)
    {
        return Vec::new();
    }
    let mut claim = Claim {
        position: reply.position,
        version: reply.etag.as_deref().and_then(parse_etag),
        created: reply.status == 201,
        ..Claim::default()
    };
    if let Some((resource_type, id, version)) = reply.location.as_deref().and_then(parse_location) {
        claim.resource_type = Some(resource_type);
        claim.id = Some(id);
        claim.version = Some(version);
    } else {
        let segments: Vec<&str> = path.trim_start_matches("/fhir/").split('/').collect();
        claim.resource_type = segments.first().map(|s| (*s).to_owned());
        if case.method == Method::DELETE {
            claim.delete = true;
            claim.id = segments.get(1).map(|s| (*s).to_owned());
        }
    }
    vec![claim]
}

/// The Bundle a case sent and the one its answer holds (`null` for what is not JSON).
fn bundles(case: &Case, reply: &Reply) -> (Value, Value) {
    let request = case
        .body
        .as_deref()
        .and_then(|body| serde_json::from_slice(body).ok())
        .unwrap_or_default();
    let response = serde_json::from_slice(&reply.body).unwrap_or_default();
    (request, response)
}

/// One claim per entry of a response Bundle with a 2xx status.
fn bundle_claims(case: &Case, reply: &Reply) -> Vec<Claim> {
    let (request, response) = bundles(case, reply);
    let Some(entries) = response["entry"].as_array() else {
        return Vec::new();
    };
    entries
        .iter()
        .enumerate()
        .filter_map(|(i, entry)| {
            let status = entry["response"]["status"].as_str()?;
            if !status.starts_with('2') {
                return None;
            }
            let mut claim = Claim {
                created: status.starts_with("201"),
                version: entry["response"]["etag"].as_str().and_then(parse_etag),
                ..Claim::default()
            };
            if let Some((resource_type, id, version)) = entry["response"]["location"]
                .as_str()
                .and_then(parse_location)
            {
                claim.resource_type = Some(resource_type);
                claim.id = Some(id);
                claim.version = Some(version);
            } else {
                let sent = &request["entry"][i]["request"];
                if sent["method"] != "DELETE" {
                    // A read or a search: no write.
                    return None;
                }
                claim.delete = true;
                claim.resource_type = sent["url"]
                    .as_str()
                    .and_then(|url| url.split(['/', '?']).next())
                    .map(str::to_owned);
            }
            Some(claim)
        })
        .collect()
}

/// Every event written during the run belongs to a request whose successful answer reports it;
/// every creation an answer reports is in the store. Returns how many events were written.
async fn account_events(
    app: &TestApp,
    seed: u64,
    cases: &[Case],
    answers: &[Answer],
    count_before: i64,
    head_before: i64,
    failures: &mut Failures,
) -> usize {
    let mut events: Vec<StoredEvent> = Vec::new();
    loop {
        let after = events
            .last()
            .and_then(|e| e.position)
            .unwrap_or(head_before);
        let page = app.store.read_feed(after, 10_000).await.unwrap();
        if page.is_empty() {
            break;
        }
        events.extend(page);
    }
    let count_after = app.event_count().await;
    let uncertain = answers
        .iter()
        .any(|answer| matches!(answer, Answer::Slow | Answer::Dropped(_)));
    // A timed-out or dropped request may commit after this count: then the totals cannot agree.
    if !uncertain && count_after - count_before != events.len() as i64 {
        failures.add("event accounting", "events without a position", || {
            format!(
                "{} events were added to the store, {} reached the feed",
                count_after - count_before,
                events.len()
            )
        });
    }

    let prefix = format!("fuzz-{seed}-");
    let mut by_case: HashMap<usize, Vec<&StoredEvent>> = HashMap::new();
    for event in &events {
        let request_id = serde_json::from_str::<Value>(&event.metadata)
            .ok()
            .and_then(|metadata| metadata["requestId"].as_str().map(str::to_owned))
            .unwrap_or_default();
        match request_id
            .strip_prefix(&prefix)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n < cases.len())
        {
            Some(index) => by_case.entry(index).or_default().push(event),
            None => failures.add("event accounting", "an event no fuzz request wrote", || {
                format!("{}\n  request id {request_id:?}", describe_event(event))
            }),
        }
    }

    for (index, (case, answer)) in cases.iter().zip(answers).enumerate() {
        let written = by_case.remove(&index).unwrap_or_default();
        let reply = match answer {
            Answer::Reply(reply) => reply,
            // A request that timed out or lost its connection may still have written.
            Answer::Slow | Answer::Dropped(_) => continue,
            Answer::Unsendable(_) | Answer::NotRun => {
                if let Some(event) = written.first() {
                    failures.add(
                        "event accounting",
                        &format!("{}: written though never sent", case.label),
                        || describe(case, answer, Some(event)),
                    );
                }
                continue;
            }
        };
        let mut claims = claims(case, reply);
        for event in &written {
            // A creation first: a no-op entry (200) can name the same version as the entry
            // that created it (201).
            let matching = claims
                .iter()
                .position(|claim| claim.created && claim.matches(event))
                .or_else(|| claims.iter().position(|claim| claim.matches(event)));
            match matching {
                Some(at) => {
                    claims.swap_remove(at);
                }
                None => {
                    let what = if (200..300).contains(&reply.status) {
                        "an event the answer does not report"
                    } else {
                        "an event written by a refused request"
                    };
                    failures.add(
                        "event accounting",
                        &format!("{}: {what}", case.label),
                        || describe(case, answer, Some(event)),
                    );
                }
            }
        }
        let missing: Vec<&Claim> = claims.iter().filter(|claim| claim.created).collect();
        if !missing.is_empty() {
            failures.add(
                "event accounting",
                &format!("{}: a reported creation the store lacks", case.label),
                || {
                    let found: Vec<String> =
                        written.iter().map(|event| describe_event(event)).collect();
                    format!(
                        "{}\n  not in the store: {missing:?}\n  written: {found:?}{}",
                        describe(case, answer, None),
                        entry_outcomes(case, reply)
                    )
                },
            );
        }
    }
    events.len()
}

/// For a Bundle, each entry's request and the answer's status and location for it.
fn entry_outcomes(case: &Case, reply: &Reply) -> String {
    let (request, response) = bundles(case, reply);
    let Some(entries) = response["entry"].as_array() else {
        return String::new();
    };
    let mut text = String::from("\n  entries:");
    for (i, entry) in entries.iter().enumerate() {
        let sent = &request["entry"][i]["request"];
        text.push_str(&format!(
            "\n    [{i}] {} {} → {} {}",
            sent["method"], sent["url"], entry["response"]["status"], entry["response"]["location"]
        ));
    }
    text
}

/// After the run a new write must still be searchable: nothing the run sent stopped the feed or
/// the projection.
async fn check_still_following_writes(app: &TestApp, failures: &mut Failures) {
    let response = app
        .send_fhir(Method::POST, "/fhir/Patient", &patient("AfterFuzz"))
        .await;
    if response.status() != 201 {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        failures.add(
            "platform stopped following writes",
            "create after the run",
            || format!("POST /fhir/Patient → {status} {}", prefix(&body, 300)),
        );
        return;
    }
    let written = position(&response);
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap_or_default();
    let search = app
        .request(Method::GET, &format!("/fhir/Patient?_id={id}"))
        .header("x-event-position", written.to_string())
        .send()
        .await;
    let problem = match search {
        Err(error) => Some(format!("transport error: {}", error_chain(&error))),
        Ok(response) => {
            let status = response.status();
            let body: Value = response.json().await.unwrap_or_default();
            let found = body["entry"]
                .as_array()
                .is_some_and(|entries| entries.len() == 1);
            (status != 200 || !found)
                .then(|| format!("{status} {}", prefix(&body.to_string(), 300)))
        }
    };
    if let Some(problem) = problem {
        failures.add(
            "platform stopped following writes",
            "search for a write made after the run",
            || format!("GET /fhir/Patient?_id={id} with X-Event-Position {written} → {problem}"),
        );
    }
}

fn status_counts(answers: &[Answer]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for answer in answers {
        let key = match answer {
            Answer::Reply(reply) => reply.status.to_string(),
            Answer::Slow => "slow".to_owned(),
            Answer::Dropped(_) => "dropped".to_owned(),
            Answer::Unsendable(_) => "unsendable".to_owned(),
            Answer::NotRun => "not run".to_owned(),
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// The distinct failures: by kind, then by the case's label, each with a count and one example.
#[derive(Default)]
struct Failures {
    by_kind: BTreeMap<String, BTreeMap<String, (usize, String)>>,
}

impl Failures {
    fn add(&mut self, kind: &str, label: &str, example: impl FnOnce() -> String) {
        let labels = self.by_kind.entry(kind.to_owned()).or_default();
        match labels.get_mut(label) {
            Some((count, _)) => *count += 1,
            None => {
                labels.insert(label.to_owned(), (1, example()));
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.by_kind.is_empty()
    }

    fn report(&self, seed: u64, cases: usize) -> String {
        let mut text = format!(
            "the fuzz run (FUZZ_SEED={seed} FUZZ_CASES={cases}) found {} kinds of failure:\n",
            self.by_kind.len()
        );
        for (kind, labels) in &self.by_kind {
            let total: usize = labels.values().map(|(count, _)| count).sum();
            text.push_str(&format!(
                "\n=== {kind}: {total} requests, {} distinct\n",
                labels.len()
            ));
            for (label, (count, example)) in labels {
                text.push_str(&format!(
                    "\n--- {label} ({count}x), for example:\n{example}\n"
                ));
            }
        }
        text
    }
}

/// A case and its answer, readable and bounded.
fn describe(case: &Case, answer: &Answer, event: Option<&StoredEvent>) -> String {
    let mut text = format!("  {} {}\n", case.method, prefix(&case.path, 400));
    for (name, value) in &case.headers {
        text.push_str(&format!("  {name}: {}\n", prefix(value, 200)));
    }
    if let Some(body) = &case.body {
        text.push_str(&format!(
            "  body ({} bytes): {}\n",
            body.len(),
            prefix(&String::from_utf8_lossy(body), 300)
        ));
    }
    text.push_str(&match answer {
        Answer::Reply(reply) => {
            let problem = (400..500)
                .contains(&reply.status)
                .then(|| outcome_problem(reply))
                .flatten()
                .map(|problem| format!(" [{problem}]"))
                .unwrap_or_default();
            format!(
                "  → {} {}{problem}: {}",
                reply.status,
                reply.content_type,
                prefix(&String::from_utf8_lossy(&reply.body), 400)
            )
        }
        Answer::Slow => format!(
            "  → no complete answer within {} s",
            REQUEST_TIMEOUT.as_secs()
        ),
        Answer::Dropped(error) => format!("  → {}", prefix(error, 400)),
        Answer::Unsendable(error) => format!("  → not sent: {}", prefix(error, 400)),
        Answer::NotRun => "  → not sent".to_owned(),
    });
    if let Some(event) = event {
        text.push_str(&format!("\n  {}", describe_event(event)));
    }
    text
}

fn describe_event(event: &StoredEvent) -> String {
    format!(
        "event {}/{} version {} ({}) at position {:?}",
        event.resource_type, event.resource_id, event.version, event.kind, event.position
    )
}

/// At most `limit` characters of `text`, control characters escaped.
fn prefix(text: &str, limit: usize) -> String {
    let mut out: String = text
        .chars()
        .take(limit)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if text.chars().count() > limit {
        out.push_str(&format!("… ({} bytes)", text.len()));
    }
    out
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
        Err(_) => default,
    }
}
