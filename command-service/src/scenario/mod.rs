//! Scenarios (ADR 0014): a cohort's story over a time window, recorded once and played into
//! teaching sandboxes at any speed.
//!
//! A scenario is kept, exported and imported as one portable file, NDJSON:
//!
//! ```text
//! {"type":"manifest","format":"wardline-scenario/1","name":"night-shift","version":1,
//!  "title":"...","cohort":{"patients":["p1"]},"durationMs":300000,"windowStart":"2026-12-01T02:00:00Z"}
//! {"type":"start","resource":{"resourceType":"Patient","id":"p1",...}}
//! {"type":"event","offsetMs":1500,"kind":"update","resource":{"resourceType":"Observation","id":"o1",...}}
//! {"type":"event","offsetMs":4000,"kind":"delete","resourceType":"Observation","id":"o1"}
//! ```
//!
//! The `start` lines are the cohort's resources (and what they refer to) as they stood when the
//! window opened; the `event` lines are the changes within it, in order, each with its time
//! from the window's start. A file is checked whole before anything is stored: the first
//! problem is reported with its line, and nothing of the file is kept.
//!
//! Playing shifts every date-time of the resources (a value with a time of day; dates alone,
//! such as a birth date, are kept) by the distance from the window's start to the moment the
//! play starts, so the scenario happens now.

pub mod player;
pub mod record;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

/// The format this code writes and reads.
pub const FORMAT: &str = "wardline-scenario/1";

/// Most lines one scenario file may hold.
pub const MAX_LINES: usize = 200_000;

/// A scenario, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub manifest: Manifest,
    /// The cohort's resources when the window opened.
    pub start: Vec<Value>,
    /// The window's changes, in order.
    pub events: Vec<Change>,
}

/// The first line of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub version: i32,
    pub title: Option<String>,
    pub description: Option<String>,
    /// The cohort's patients (ids).
    pub patients: Vec<String>,
    /// The window's length.
    pub duration_ms: i64,
    /// When the window opened in the record it came from.
    pub window_start: DateTime<Utc>,
    /// Where it was recorded (free text: `live positions 120-480`, an installation's name).
    pub source: Option<String>,
}

/// One change within the window.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub offset_ms: i64,
    pub kind: ChangeKind,
    pub resource_type: String,
    pub id: String,
    /// The resource after the change; none for a delete.
    pub resource: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Create,
    Update,
    Delete,
}

impl ChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
        }
    }
}

/// A file that is not a scenario: the line (1-based) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct FileError {
    pub line: usize,
    pub problem: String,
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn parse(text: &str) -> Result<Scenario, FileError> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty());
        let fail = |line: usize, problem: String| FileError {
            line: line + 1,
            problem,
        };
        let (first, manifest_line) = lines.next().ok_or_else(|| {
            fail(
                0,
                "the file is empty: its first line is the manifest".to_owned(),
            )
        })?;
        let manifest =
            Manifest::parse(&object(manifest_line).map_err(|problem| fail(first, problem))?)
                .map_err(|problem| fail(first, problem))?;
        let mut scenario = Scenario {
            manifest,
            start: Vec::new(),
            events: Vec::new(),
        };
        let mut last_offset = 0;
        for (count, (index, line)) in lines.enumerate() {
            if count + 2 > MAX_LINES {
                return Err(fail(
                    index,
                    format!("a scenario has at most {MAX_LINES} lines"),
                ));
            }
            let value = object(line).map_err(|problem| fail(index, problem))?;
            match value.get("type").and_then(Value::as_str) {
                Some("start") => {
                    if !scenario.events.is_empty() {
                        return Err(fail(
                            index,
                            "`start` lines come before the first `event` line".to_owned(),
                        ));
                    }
                    let resource = value.get("resource").cloned().unwrap_or(Value::Null);
                    resource_names(&resource).map_err(|problem| fail(index, problem))?;
                    scenario.start.push(resource);
                }
                Some("event") => {
                    let change = Change::parse(&value).map_err(|problem| fail(index, problem))?;
                    if change.offset_ms < last_offset {
                        return Err(fail(
                            index,
                            format!(
                                "offsetMs {} comes before the previous event's {last_offset}: \
                                 events are in order",
                                change.offset_ms
                            ),
                        ));
                    }
                    if change.offset_ms > scenario.manifest.duration_ms {
                        return Err(fail(
                            index,
                            format!(
                                "offsetMs {} is past the scenario's durationMs {}",
                                change.offset_ms, scenario.manifest.duration_ms
                            ),
                        ));
                    }
                    last_offset = change.offset_ms;
                    scenario.events.push(change);
                }
                Some("manifest") => {
                    return Err(fail(
                        index,
                        "a file has one manifest, its first line".to_owned(),
                    ));
                }
                Some(other) => {
                    return Err(fail(
                        index,
                        format!("unknown line type `{other}` (manifest, start, event)"),
                    ));
                }
                None => return Err(fail(index, "a line needs a `type`".to_owned())),
            }
        }
        Ok(scenario)
    }

    /// The file, as [`Scenario::parse`] reads it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(&self.manifest.to_json().to_string());
        out.push('\n');
        for resource in &self.start {
            out.push_str(&json!({"type": "start", "resource": resource}).to_string());
            out.push('\n');
        }
        for change in &self.events {
            out.push_str(&change.to_json().to_string());
            out.push('\n');
        }
        out
    }
}

impl Manifest {
    fn parse(value: &Map<String, Value>) -> Result<Manifest, String> {
        if value.get("type").and_then(Value::as_str) != Some("manifest") {
            return Err("the first line is the manifest: {\"type\":\"manifest\",...}".to_owned());
        }
        match value.get("format").and_then(Value::as_str) {
            Some(FORMAT) => {}
            Some(other) => return Err(format!("format `{other}` is not {FORMAT}")),
            None => return Err(format!("the manifest needs \"format\": \"{FORMAT}\"")),
        }
        let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        let name = text("name").ok_or("the manifest needs a `name`")?;
        if !event_store::sandbox::valid_name(&name) {
            return Err(format!(
                "`{name}` is not a scenario name: 1 to 63 lower-case letters, digits and `-`"
            ));
        }
        let version = value
            .get("version")
            .and_then(Value::as_i64)
            .and_then(|version| i32::try_from(version).ok())
            .filter(|version| *version > 0)
            .ok_or("the manifest needs a `version`, a whole number from 1")?;
        let duration_ms = value
            .get("durationMs")
            .and_then(Value::as_i64)
            .filter(|duration| *duration >= 0)
            .ok_or("the manifest needs `durationMs`, a whole number of milliseconds")?;
        let window_start = text("windowStart")
            .and_then(|text| DateTime::parse_from_rfc3339(&text).ok())
            .map(|at| at.with_timezone(&Utc))
            .ok_or("the manifest needs `windowStart`, an instant (2026-12-01T02:00:00Z)")?;
        let patients = value
            .get("cohort")
            .and_then(|cohort| cohort.get("patients"))
            .and_then(Value::as_array)
            .map(|patients| {
                patients
                    .iter()
                    .map(|id| id.as_str().map(str::to_owned))
                    .collect::<Option<Vec<String>>>()
            })
            .unwrap_or(Some(Vec::new()))
            .ok_or("cohort.patients is a list of Patient ids")?;
        Ok(Manifest {
            name,
            version,
            title: text("title"),
            description: text("description"),
            patients,
            duration_ms,
            window_start,
            source: text("source"),
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "type": "manifest",
            "format": FORMAT,
            "name": self.name,
            "version": self.version,
            "title": self.title,
            "description": self.description,
            "cohort": {"patients": self.patients},
            "durationMs": self.duration_ms,
            "windowStart": fhir_model::format_instant(self.window_start),
            "source": self.source,
        })
    }
}

impl Change {
    fn parse(value: &Map<String, Value>) -> Result<Change, String> {
        let offset_ms = value
            .get("offsetMs")
            .and_then(Value::as_i64)
            .filter(|offset| *offset >= 0)
            .ok_or("an event needs `offsetMs`, a whole number of milliseconds from the start")?;
        let kind = match value.get("kind").and_then(Value::as_str) {
            Some("create") => ChangeKind::Create,
            Some("update") => ChangeKind::Update,
            Some("delete") => ChangeKind::Delete,
            _ => return Err("an event's `kind` is create, update or delete".to_owned()),
        };
        let (resource_type, id, resource) = match kind {
            ChangeKind::Delete => {
                let name = |field: &str| {
                    value
                        .get(field)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or(format!("a delete names its `{field}`"))
                };
                (name("resourceType")?, name("id")?, None)
            }
            _ => {
                let resource = value.get("resource").cloned().unwrap_or(Value::Null);
                let (resource_type, id) = resource_names(&resource)?;
                (resource_type, id, Some(resource))
            }
        };
        fhir_model::ResourceType::parse(&resource_type)
            .map_err(|_| format!("`{resource_type}` is not a FHIR R4 resource type"))?;
        fhir_model::ResourceId::parse(&id).map_err(|error| error.to_string())?;
        Ok(Change {
            offset_ms,
            kind,
            resource_type,
            id,
            resource,
        })
    }

    fn to_json(&self) -> Value {
        let mut line = json!({
            "type": "event",
            "offsetMs": self.offset_ms,
            "kind": self.kind.as_str(),
        });
        match &self.resource {
            Some(resource) => line["resource"] = resource.clone(),
            None => {
                line["resourceType"] = json!(self.resource_type);
                line["id"] = json!(self.id);
            }
        }
        line
    }
}

/// A line as a JSON object.
fn object(line: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err("a line is one JSON object".to_owned()),
        Err(error) => Err(format!("not JSON: {error}")),
    }
}

/// The type and id of a resource in a file (both are needed to play it).
fn resource_names(resource: &Value) -> Result<(String, String), String> {
    let resource_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .ok_or("a resource needs its `resourceType`")?;
    fhir_model::ResourceType::parse(resource_type)
        .map_err(|_| format!("`{resource_type}` is not a FHIR R4 resource type"))?;
    let id = resource
        .get("id")
        .and_then(Value::as_str)
        .ok_or("a resource in a scenario keeps its `id`")?;
    fhir_model::ResourceId::parse(id).map_err(|error| error.to_string())?;
    Ok((resource_type.to_owned(), id.to_owned()))
}

/// `resource` with every date-time moved by `shift` (values with a time of day; plain dates
/// are left alone), and no `meta` (the server sets it when the version is written).
pub fn shifted(resource: &Value, shift: Duration) -> Value {
    let mut copy = resource.clone();
    if let Some(object) = copy.as_object_mut() {
        object.remove("meta");
    }
    shift_times(&mut copy, shift);
    copy
}

fn shift_times(value: &mut Value, shift: Duration) {
    match value {
        Value::String(text) => {
            if let Some(moved) = shifted_instant(text, shift) {
                *text = moved;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| shift_times(item, shift)),
        Value::Object(object) => object
            .values_mut()
            .for_each(|item| shift_times(item, shift)),
        _ => {}
    }
}

/// A FHIR dateTime with a time of day and a zone, moved by `shift`, in the same form.
fn shifted_instant(text: &str, shift: Duration) -> Option<String> {
    if text.len() < 20 || text.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    let at = DateTime::parse_from_rfc3339(text).ok()?;
    let moved = at + shift;
    let fraction = text[19..].starts_with('.');
    Some(if fraction {
        moved.to_rfc3339_opts(chrono::SecondsFormat::Millis, text.ends_with('Z'))
    } else {
        moved.to_rfc3339_opts(chrono::SecondsFormat::Secs, text.ends_with('Z'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(lines: &[Value]) -> String {
        lines.iter().map(|line| format!("{line}\n")).collect()
    }

    fn manifest() -> Value {
        json!({"type": "manifest", "format": FORMAT, "name": "night", "version": 1,
               "durationMs": 60000, "windowStart": "2026-12-01T02:00:00Z",
               "cohort": {"patients": ["p1"]}})
    }

    #[test]
    fn a_file_round_trips() {
        let text = file(&[
            manifest(),
            json!({"type": "start", "resource": {"resourceType": "Patient", "id": "p1"}}),
            json!({"type": "event", "offsetMs": 10, "kind": "create",
                   "resource": {"resourceType": "Observation", "id": "o1", "status": "final"}}),
            json!({"type": "event", "offsetMs": 20, "kind": "delete",
                   "resourceType": "Observation", "id": "o1"}),
        ]);
        let scenario = Scenario::parse(&text).unwrap();
        assert_eq!(scenario.start.len(), 1);
        assert_eq!(scenario.events.len(), 2);
        assert_eq!(scenario.events[1].kind, ChangeKind::Delete);
        assert_eq!(Scenario::parse(&scenario.render()).unwrap(), scenario);
    }

    #[test]
    fn the_first_problem_is_named_with_its_line() {
        let cases = [
            (String::new(), 1, "empty"),
            (file(&[json!({"type": "start"})]), 1, "manifest"),
            (format!("{}\n{{not json\n", manifest()), 2, "not JSON"),
            (format!("{}\n[1,2]\n", manifest()), 2, "one JSON object"),
            (
                file(&[
                    manifest(),
                    json!({"type": "event", "offsetMs": 5, "kind": "create",
                    "resource": {"resourceType": "Observation"}}),
                ]),
                2,
                "id",
            ),
            (
                file(&[
                    manifest(),
                    json!({"type": "event", "offsetMs": 5, "kind": "create", "resource": {"resourceType": "Observation", "id": "a"}}),
                    json!({"type": "event", "offsetMs": 4, "kind": "create", "resource": {"resourceType": "Observation", "id": "b"}}),
                ]),
                3,
                "in order",
            ),
            (
                file(&[
                    manifest(),
                    json!({"type": "event", "offsetMs": 70000, "kind": "delete",
                    "resourceType": "Observation", "id": "a"}),
                ]),
                2,
                "durationMs",
            ),
            (
                file(&[
                    manifest(),
                    json!({"type": "event", "offsetMs": 1, "kind": "delete",
                    "resourceType": "Observations", "id": "a"}),
                ]),
                2,
                "resource type",
            ),
            (
                file(&[
                    manifest(),
                    json!({"type": "event", "offsetMs": 1, "kind": "delete", "resourceType": "Observation", "id": "a"}),
                    json!({"type": "start", "resource": {"resourceType": "Patient", "id": "p"}}),
                ]),
                3,
                "before the first",
            ),
            (
                file(&[manifest(), json!({"type": "ending"})]),
                2,
                "unknown line type",
            ),
        ];
        for (text, line, words) in cases {
            let error = Scenario::parse(&text).unwrap_err();
            assert_eq!(error.line, line, "{text}: {error}");
            assert!(error.problem.contains(words), "{text}: {error}");
        }
    }

    #[test]
    fn times_move_and_dates_stay() {
        let resource = json!({"resourceType": "Observation", "id": "o",
            "meta": {"lastUpdated": "2020-01-01T00:00:00Z"},
            "effectiveDateTime": "2020-01-01T02:00:00Z",
            "issued": "2020-01-01T02:00:00.250+01:00",
            "note": [{"time": "2020-01-01T03:00:00Z", "text": "2020-01-01T03:00:00Z is text too"}],
            "subject": {"display": "born 1970-02-03"}});
        let moved = shifted(&resource, Duration::hours(2));
        assert_eq!(moved["effectiveDateTime"], "2020-01-01T04:00:00Z");
        assert_eq!(moved["issued"], "2020-01-01T04:00:00.250+01:00");
        assert_eq!(moved["note"][0]["time"], "2020-01-01T05:00:00Z");
        assert_eq!(moved["subject"]["display"], "born 1970-02-03");
        assert!(moved.get("meta").is_none());
    }
}

/// Scenarios as the `scenario` table keeps them: the file, as imported or recorded.
pub mod store {
    use serde_json::Value;
    use sqlx::PgPool;

    use super::Scenario;

    /// Keeps `scenario` (its file as `body`); false when that name and version exist already.
    pub async fn insert(
        pool: &PgPool,
        scenario: &Scenario,
        body: &str,
        created_by: &str,
    ) -> Result<bool, sqlx::Error> {
        let inserted = sqlx::query(
            "INSERT INTO scenario (name, version, manifest, body, created_by) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name, version) DO NOTHING",
        )
        .bind(&scenario.manifest.name)
        .bind(scenario.manifest.version)
        .bind({
            let mut manifest = scenario.manifest.to_json();
            manifest["counts"] = serde_json::json!({
                "start": scenario.start.len(),
                "events": scenario.events.len(),
            });
            manifest
        })
        .bind(body)
        .bind(created_by)
        .execute(pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// The newest version of `name`, if there is one.
    pub async fn newest_version(pool: &PgPool, name: &str) -> Result<Option<i32>, sqlx::Error> {
        sqlx::query_scalar("SELECT max(version) FROM scenario WHERE name = $1")
            .bind(name)
            .fetch_one(pool)
            .await
    }

    /// The file of `name` at `version` (the newest when none is given).
    pub async fn file(
        pool: &PgPool,
        name: &str,
        version: Option<i32>,
    ) -> Result<Option<(i32, String)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT version, body FROM scenario WHERE name = $1 AND ($2::int IS NULL OR version = $2) \
             ORDER BY version DESC LIMIT 1",
        )
        .bind(name)
        .bind(version)
        .fetch_optional(pool)
        .await
    }

    /// Every scenario version's manifest, with its counts, who made it and when.
    pub async fn list(pool: &PgPool) -> Result<Vec<Value>, sqlx::Error> {
        let rows: Vec<(Value, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
            "SELECT manifest, created_by, created_at FROM scenario ORDER BY name, version",
        )
        .fetch_all(pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(mut manifest, created_by, created_at)| {
                manifest["createdBy"] = created_by.into();
                manifest["createdAt"] = fhir_model::format_instant(created_at).into();
                manifest
            })
            .collect())
    }
}
