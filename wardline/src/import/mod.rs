//! `wardline import`: Synthea output and FHIR NDJSON into the server, through its FHIR API.
//!
//! Each file becomes transaction Bundles (`source.rs`) posted to the command service, several at
//! a time; each is all or nothing, and each can be sent again without duplicating anything, so
//! an import that was interrupted is finished by running it again. An NDJSON chunk the server
//! refuses is sent again as a batch, so that one bad line costs only itself and is reported
//! with its line number. Progress shows bytes read,
//! resources per second and the time left; the summary counts files, resources per type
//! (created, or already there), and every failure with its file and reason.

pub mod source;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use source::Unit;

use crate::auth::TokenSource;

/// What to import, and where to.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The command service's FHIR base (`http://127.0.0.1:8081/fhir`).
    pub fhir_url: String,
    pub paths: Vec<PathBuf>,
    /// Transactions in flight at once.
    pub concurrency: usize,
    /// Draw a progress bar (on a terminal).
    pub progress: bool,
    /// The access token of every request.
    pub auth: crate::auth::TokenSource,
}

/// Resources of one type the import sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Written for the first time.
    pub created: usize,
    /// Already there (written again with the same content, or matched by `ifNoneExist`), or
    /// updated.
    pub existing: usize,
}

/// A transaction the server refused.
#[derive(Debug, Clone)]
pub struct Failure {
    pub file: PathBuf,
    /// The first NDJSON line of the chunk (0 for a Bundle file).
    pub line: usize,
    pub status: Option<u16>,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub files: usize,
    pub transactions: usize,
    pub by_type: BTreeMap<String, Counts>,
    pub failures: Vec<Failure>,
    pub seconds: f64,
    /// The highest event position written: the search indexes hold the import once they reach it.
    pub last_position: Option<i64>,
    /// Whether it stopped early (asked to) rather than finishing.
    pub interrupted: bool,
}

impl Summary {
    pub fn resources(&self) -> usize {
        self.by_type.values().map(|c| c.created + c.existing).sum()
    }

    /// The summary as the command prints it.
    pub fn report(&self) -> String {
        let mut out = format!(
            "{} file(s), {} transaction(s), {} resource(s) in {:.1} s ({:.0}/s){}\n",
            self.files,
            self.transactions,
            self.resources(),
            self.seconds,
            self.resources() as f64 / self.seconds.max(1e-9),
            if self.interrupted {
                ", interrupted"
            } else {
                ""
            },
        );
        for (resource_type, counts) in &self.by_type {
            out.push_str(&format!(
                "  {resource_type:<28} {:>7} created {:>7} already there\n",
                counts.created, counts.existing
            ));
        }
        if !self.failures.is_empty() {
            out.push_str(&format!("{} failure(s):\n", self.failures.len()));
            for failure in &self.failures {
                let at = if failure.line > 0 {
                    format!(":{}", failure.line)
                } else {
                    String::new()
                };
                let status = failure
                    .status
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "  {}{at}{status}: {}\n",
                    failure.file.display(),
                    failure.reason
                ));
            }
        }
        out
    }
}

/// How often a transaction is sent again after a transient failure (503 while the indexes
/// catch up for a conditional entry, 409 from contention, a dropped connection).
const ATTEMPTS: usize = 5;

/// Imports everything under `settings.paths`. Setting `stop` ends it after the transactions in
/// flight (what was sent is complete; running the import again finishes it).
pub async fn run(settings: &Settings, stop: Arc<AtomicBool>) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let files = source::files(&settings.paths)?;
    let total_bytes: u64 = files
        .iter()
        .filter_map(|file| std::fs::metadata(file).ok())
        .map(|metadata| metadata.len())
        .sum();
    let progress = if settings.progress {
        ProgressBar::new(total_bytes)
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{wide_bar}] {bytes}/{total_bytes} {msg} (eta {eta})",
        )?
        .progress_chars("=> "),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let mut summary = Summary {
        files: files.len(),
        ..Summary::default()
    };
    let url = settings.fhir_url.trim_end_matches('/').to_owned();

    // What others reference goes in first: each rank of files is finished before the next
    // starts, since the transactions within one run concurrently.
    let mut groups: Vec<Vec<PathBuf>> = Vec::new();
    for file in files {
        match groups.last_mut() {
            Some(group) if group.first().map(|f| source::rank(f)) == Some(source::rank(&file)) => {
                group.push(file)
            }
            _ => groups.push(vec![file]),
        }
    }
    for files in groups {
        // Files are read a few ahead of the transactions they feed.
        let units = futures::stream::iter(files)
            .map(|file| async move {
                let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                let read = tokio::task::spawn_blocking(move || source::read(&file)).await;
                (size, read)
            })
            .buffered(2)
            .flat_map(|(size, read)| {
                let items: Vec<Item> = match read {
                    Ok(Ok(units)) => {
                        let count = units.len().max(1) as u64;
                        units
                            .into_iter()
                            .map(|unit| Item::Unit(unit, size / count))
                            .collect()
                    }
                    Ok(Err(unreadable)) => vec![Item::Unreadable(unreadable, size)],
                    Err(error) => vec![Item::Panicked(error.to_string())],
                };
                futures::stream::iter(items)
            });
        let stop_flag = stop.clone();
        let results = units
            .take_while(move |_| {
                let go = !stop_flag.load(Ordering::Relaxed);
                async move { go }
            })
            .map(|item| {
                let client = client.clone();
                let url = url.clone();
                let auth = settings.auth.clone();
                async move {
                    match item {
                        Item::Unit(unit, bytes) => {
                            let outcome = send(&client, &auth, &url, &unit).await;
                            (Some(unit), bytes, outcome)
                        }
                        Item::Unreadable(unreadable, bytes) => (
                            None,
                            bytes,
                            Err(Failure {
                                file: unreadable.file,
                                line: 0,
                                status: None,
                                reason: unreadable.reason,
                            }),
                        ),
                        Item::Panicked(reason) => (
                            None,
                            0,
                            Err(Failure {
                                file: PathBuf::new(),
                                line: 0,
                                status: None,
                                reason,
                            }),
                        ),
                    }
                }
            })
            .buffer_unordered(settings.concurrency.max(1));
        let mut results = std::pin::pin!(results);
        while let Some((unit, bytes, outcome)) = results.next().await {
            progress.inc(bytes);
            match outcome {
                Ok(sent) => {
                    summary.transactions += 1;
                    summary.last_position = summary.last_position.max(sent.position);
                    for failure in &sent.refused {
                        progress.println(format!(
                            "failed: {}:{}: {}",
                            failure.file.display(),
                            failure.line,
                            failure.reason
                        ));
                    }
                    summary.failures.extend(sent.refused);
                    for (resource_type, created) in sent.entries {
                        let counts = summary.by_type.entry(resource_type).or_default();
                        if created {
                            counts.created += 1;
                        } else {
                            counts.existing += 1;
                        }
                    }
                }
                Err(failure) => {
                    progress.println(format!(
                        "failed: {}: {}",
                        failure.file.display(),
                        failure.reason
                    ));
                    summary.failures.push(failure);
                }
            }
            drop(unit);
            let elapsed = started.elapsed().as_secs_f64().max(1e-9);
            progress.set_message(format!(
                "{} resources, {:.0}/s",
                summary.resources(),
                summary.resources() as f64 / elapsed
            ));
        }
    }
    progress.finish_and_clear();
    summary.interrupted = stop.load(Ordering::Relaxed);
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

enum Item {
    Unit(Unit, u64),
    Unreadable(source::Unreadable, u64),
    Panicked(String),
}

/// What a committed transaction wrote: `(type, created)` per entry, and its position; and the
/// entries a batch refused.
struct Sent {
    entries: Vec<(String, bool)>,
    position: Option<i64>,
    refused: Vec<Failure>,
}

async fn send(
    client: &reqwest::Client,
    auth: &TokenSource,
    url: &str,
    unit: &Unit,
) -> Result<Sent, Failure> {
    match post(client, auth, url, unit, &unit.bundle).await {
        Err(failure)
            if !unit.lines.is_empty()
                && failure
                    .status
                    .is_some_and(|status| (400..500).contains(&status)) =>
        {
            let mut batch = unit.bundle.clone();
            batch["type"] = Value::from("batch");
            post(client, auth, url, unit, &batch).await
        }
        other => other,
    }
}

async fn post(
    client: &reqwest::Client,
    auth: &TokenSource,
    url: &str,
    unit: &Unit,
    bundle: &Value,
) -> Result<Sent, Failure> {
    let failure = |status: Option<u16>, reason: String| Failure {
        file: unit.file.clone(),
        line: unit.line,
        status,
        reason,
    };
    let body = bundle.to_string();
    let mut last = failure(None, "not sent".to_owned());
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        let token = match auth.bearer().await {
            Ok(token) => token,
            Err(error) => {
                last = failure(None, format!("{error:#}"));
                continue;
            }
        };
        let response = client
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/fhir+json")
            .header("x-change-reason", "import")
            .body(body.clone())
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                last = failure(None, error.to_string());
                continue;
            }
        };
        let status = response.status().as_u16();
        let position = response
            .headers()
            .get("x-event-position")
            .and_then(|value| value.to_str().ok()?.parse().ok());
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status == 200 {
            return Ok(Sent {
                entries: written(&answer),
                position,
                refused: refused(unit, &answer),
            });
        }
        last = failure(Some(status), diagnostics(&answer));
        if !matches!(status, 409 | 429 | 502 | 503 | 504) {
            break;
        }
    }
    Err(last)
}

/// The entries of a batch-response that failed, by NDJSON line.
fn refused(unit: &Unit, answer: &Value) -> Vec<Failure> {
    answer["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(n, entry)| {
            let outcome = entry["response"].get("outcome")?;
            let status: u16 = entry["response"]["status"]
                .as_str()?
                .split(' ')
                .next()?
                .parse()
                .ok()?;
            (status >= 400).then(|| Failure {
                file: unit.file.clone(),
                line: unit.lines.get(n).copied().unwrap_or(unit.line),
                status: Some(status),
                reason: diagnostics(outcome),
            })
        })
        .collect()
}

/// `(type, created)` for each entry of a transaction-response.
fn written(answer: &Value) -> Vec<(String, bool)> {
    answer["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let response = &entry["response"];
            let location = response["location"].as_str()?;
            let resource_type = location.split('/').next()?.to_owned();
            let created = response["status"]
                .as_str()
                .is_some_and(|status| status.starts_with("201"));
            Some((resource_type, created))
        })
        .collect()
}

/// An OperationOutcome's diagnostics (each after its expression), in one string.
pub(crate) fn diagnostics(outcome: &Value) -> String {
    let messages: Vec<String> = outcome["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|issue| {
            let diagnostics = issue["diagnostics"].as_str()?;
            Some(match issue["expression"][0].as_str() {
                // Unless the diagnostics say where already (`... line 5: not JSON`).
                Some(at)
                    if !diagnostics.starts_with(at)
                        && !diagnostics.contains(&format!("{at}: ")) =>
                {
                    format!("{at}: {diagnostics}")
                }
                _ => diagnostics.to_owned(),
            })
        })
        .collect();
    if messages.is_empty() {
        "the server gave no reason".to_owned()
    } else {
        messages.join("; ")
    }
}
