//! `wardline scenario`: scenarios (ADR 0014) through the command service's `/teaching/scenarios`,
//! and the play of a scenario in a sandbox through `/teaching/sandboxes/<name>/play|pause|seek|
//! stop`.
//!
//! A scenario is a cohort's story over a time window, kept as one portable NDJSON file: its
//! manifest, the cohort's resources when the window opened, then the window's changes with
//! their times from its start. It is recorded from the live record, or imported from a file
//! (checked whole: the first bad line is named and nothing is kept), and exported exactly as
//! the server keeps it. A sandbox created as a scenario (`wardline sandbox create --scenario`)
//! plays it at 1 to 3,600 times real time, with pause, seek and stop.
//!
//! Times on the command line are scenario time: an offset is milliseconds (`150000`), a
//! duration (`2m30s`, `90s`, `1h`, `1500ms`) or a clock (`2:30`, `1:02:30`), and the scenario
//! clock is shown as `mm:ss` (`h:mm:ss` from an hour).

use std::fmt::Write as _;
use std::str::FromStr;

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::sandbox::{Error, Start, Teaching, columns, json_of, one_line, printable};

/// How many starting resources and changes a scenario file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub start: u64,
    pub events: u64,
}

impl Counts {
    /// The `start` and `event` lines of a scenario file (the manifest is not counted).
    pub fn of_file(file: &str) -> Counts {
        let mut counts = Counts::default();
        for line in file.lines().filter(|line| !line.trim().is_empty()) {
            let kind = serde_json::from_str::<Map<String, Value>>(line)
                .ok()
                .and_then(|line| line.get("type").and_then(Value::as_str).map(str::to_owned));
            match kind.as_deref() {
                Some("start") => counts.start += 1,
                Some("event") => counts.events += 1,
                _ => {}
            }
        }
        counts
    }

    fn from_json(json: &Value) -> Option<Counts> {
        Some(Counts {
            start: json["start"].as_u64()?,
            events: json["events"].as_u64()?,
        })
    }
}

/// A scenario version as the server describes it: its manifest, and (when the server says)
/// who made it and when, and what its file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioInfo {
    pub name: String,
    pub version: i64,
    pub title: Option<String>,
    pub description: Option<String>,
    /// The cohort's patients (ids).
    pub patients: Vec<String>,
    pub duration_ms: i64,
    /// When its window opened in the record it came from.
    pub window_start: String,
    /// Where it was recorded (free text).
    pub source: Option<String>,
    pub created_by: Option<String>,
    pub created_at: Option<String>,
    pub counts: Option<Counts>,
    /// The server's JSON, as it came.
    pub json: Value,
}

impl ScenarioInfo {
    /// Reads a manifest (with `counts`, `createdBy` and `createdAt` when the server adds them).
    pub fn from_json(json: Value) -> Result<ScenarioInfo, Error> {
        let text = |name: &str| json[name].as_str().map(str::to_owned);
        let (Some(name), Some(version), Some(duration_ms)) = (
            text("name"),
            json["version"].as_i64(),
            json["durationMs"].as_i64(),
        ) else {
            return Err(Error::Unexpected(format!(
                "the server's answer is not a scenario's manifest: {}",
                one_line(&json.to_string())
            )));
        };
        Ok(ScenarioInfo {
            name,
            version,
            title: text("title"),
            description: text("description"),
            patients: json["cohort"]["patients"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect(),
            duration_ms,
            window_start: text("windowStart").unwrap_or_default(),
            source: text("source"),
            created_by: text("createdBy"),
            created_at: text("createdAt"),
            counts: Counts::from_json(&json["counts"]),
            json,
        })
    }

    /// The manifest, one field a line, indented under a heading the caller writes.
    pub fn details(&self) -> String {
        let mut out = String::new();
        let mut line = |label: &str, value: &str| {
            let _ = writeln!(out, "  {label:<12} {}", printable(value));
        };
        line("title", self.title.as_deref().unwrap_or("-"));
        if let Some(description) = &self.description {
            line("description", description);
        }
        line("patients", &self.patients.join(", "));
        line("window from", &self.window_start);
        line("duration", &clock(self.duration_ms));
        if let Some(counts) = self.counts {
            line("start state", &plural(counts.start, "resource"));
            line("events", &plural(counts.events, "change"));
        }
        if let Some(source) = &self.source {
            line("source", source);
        }
        if let (Some(at), Some(by)) = (&self.created_at, &self.created_by) {
            line("created", &format!("{at} by {by}"));
        }
        out
    }
}

/// Scenario versions as a table: name, version, title, patients (how many), duration, events,
/// created by and at; one line saying so when there are none.
pub fn table(scenarios: &[ScenarioInfo]) -> String {
    if scenarios.is_empty() {
        return "no scenarios (`wardline scenario record` or `wardline scenario import` makes \
                one)\n"
            .to_owned();
    }
    let header = [
        "NAME",
        "VERSION",
        "TITLE",
        "PATIENTS",
        "DURATION",
        "EVENTS",
        "CREATED BY",
        "CREATED AT",
    ];
    let dash = || "-".to_owned();
    let rows: Vec<Vec<String>> = scenarios
        .iter()
        .map(|scenario| {
            vec![
                scenario.name.clone(),
                scenario.version.to_string(),
                scenario.title.clone().unwrap_or_else(dash),
                scenario.patients.len().to_string(),
                clock(scenario.duration_ms),
                scenario
                    .counts
                    .map_or_else(dash, |counts| counts.events.to_string()),
                scenario.created_by.clone().unwrap_or_else(dash),
                scenario.created_at.clone().unwrap_or_else(dash),
            ]
        })
        .collect();
    columns(&header, &rows)
}

/// Where the play of a scenario in a sandbox stands.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayStatus {
    pub sandbox: String,
    pub scenario: String,
    pub version: i64,
    /// Scenario seconds per real second.
    pub speed: f64,
    pub playing: bool,
    /// Every change applied.
    pub finished: bool,
    /// The scenario clock: milliseconds from the scenario's start.
    pub clock_ms: i64,
    pub duration_ms: i64,
    pub applied: u64,
    pub total: u64,
    /// Why the play stopped, if a change could not be applied.
    pub error: Option<String>,
}

impl PlayStatus {
    pub fn from_json(json: Value) -> Result<PlayStatus, Error> {
        let text = |name: &str| json[name].as_str().map(str::to_owned);
        let number = |name: &str| json[name].as_i64();
        let count = |name: &str| json[name].as_u64();
        let flag = |name: &str| json[name].as_bool();
        let status = (|| {
            Some(PlayStatus {
                sandbox: text("sandbox")?,
                scenario: text("scenario")?,
                version: number("version")?,
                speed: json["speed"].as_f64()?,
                playing: flag("playing")?,
                finished: flag("finished")?,
                clock_ms: number("clockMs")?,
                duration_ms: number("durationMs")?,
                applied: count("applied")?,
                total: count("total")?,
                error: text("error"),
            })
        })();
        status.ok_or_else(|| {
            Error::Unexpected(format!(
                "the server's answer is not a play's status: {}",
                one_line(&json.to_string())
            ))
        })
    }

    /// `failed` (a change could not be applied), `finished`, `playing` or `paused`. (A stopped
    /// play reads as paused: the server does not tell them apart.)
    pub fn state(&self) -> &'static str {
        if self.error.is_some() {
            "failed"
        } else if self.finished {
            "finished"
        } else if self.playing {
            "playing"
        } else {
            "paused"
        }
    }

    /// `playing, 02:30 of 05:00 at 60x, 16 of 32 changes applied` (and `; error: ...` when a
    /// change could not be applied).
    pub fn state_line(&self) -> String {
        let mut line = self.line(self.state());
        if let Some(error) = &self.error {
            let _ = write!(line, "; error: {}", one_line(error));
        }
        line
    }

    /// `night-lab: night-obs v1 playing, 02:30 of 05:00 at 60x, 16 of 32 changes applied`
    /// (and `  error: ...` on a second line when a change could not be applied).
    pub fn summary(&self) -> String {
        self.summary_as(self.state())
    }

    /// [`PlayStatus::summary`], saying `state`.
    pub fn summary_as(&self, state: &str) -> String {
        let mut summary = format!(
            "{}: {} v{} {}\n",
            printable(&self.sandbox),
            printable(&self.scenario),
            self.version,
            self.line(state)
        );
        if let Some(error) = &self.error {
            let _ = writeln!(summary, "  error: {}", one_line(error));
        }
        summary
    }

    fn line(&self, state: &str) -> String {
        format!(
            "{state}, {} of {} at {}, {} of {} changes applied",
            clock(self.clock_ms),
            clock(self.duration_ms),
            speed(self.speed),
            self.applied,
            self.total
        )
    }
}

/// What to record from the live record.
#[derive(Debug, Clone)]
pub struct Recording {
    /// 1 to 63 lower-case letters, digits and `-`; a name recorded before gets its next
    /// version.
    pub name: String,
    /// The cohort (Patient ids), at least one.
    pub patients: Vec<String>,
    /// Where the window opens: a position or an instant.
    pub from: Start,
    /// Where it closes: the present when `None`.
    pub to: Option<Start>,
    pub title: Option<String>,
    pub description: Option<String>,
}

impl Recording {
    fn to_json(&self) -> Value {
        let mut body = json!({
            "name": self.name,
            "patients": self.patients,
            "from": self.from.to_json(),
        });
        if let Some(to) = &self.to {
            body["to"] = to.to_json();
        }
        if let Some(title) = &self.title {
            body["title"] = json!(title);
        }
        if let Some(description) = &self.description {
            body["description"] = json!(description);
        }
        body
    }
}

/// Scenario files read at once when a list has to count their changes.
const FILES_AT_ONCE: usize = 4;

impl Teaching {
    fn scenario_url(&self, segments: &[&str]) -> reqwest::Url {
        self.teaching_url("scenarios", segments)
    }

    /// Every version of every scenario, by name and version, with what each file holds (the
    /// list names no counts, so each file is read to count them).
    pub async fn scenarios(&self) -> Result<Vec<ScenarioInfo>, Error> {
        let answer = self
            .send(
                "listing scenarios",
                Method::GET,
                self.scenario_url(&[]),
                None,
            )
            .await?;
        let Value::Array(items) = answer["scenarios"].clone() else {
            return Err(Error::Unexpected(format!(
                "the server's answer is not a list of scenarios: {}",
                one_line(&answer.to_string())
            )));
        };
        let mut scenarios = items
            .into_iter()
            .map(ScenarioInfo::from_json)
            .collect::<Result<Vec<_>, _>>()?;
        let uncounted: Vec<(usize, String, i64)> = scenarios
            .iter()
            .enumerate()
            .filter(|(_, scenario)| scenario.counts.is_none())
            .map(|(index, scenario)| (index, scenario.name.clone(), scenario.version))
            .collect();
        let counted: Vec<(usize, Result<Vec<u8>, Error>)> = futures::stream::iter(uncounted)
            .map(|(index, name, version)| async move {
                (index, self.export(&name, Some(version)).await)
            })
            .buffered(FILES_AT_ONCE)
            .collect()
            .await;
        for (index, file) in counted {
            scenarios[index].counts = Some(Counts::of_file(&String::from_utf8_lossy(&file?)));
        }
        Ok(scenarios)
    }

    /// Records a scenario from the live record (201): the name's next version.
    pub async fn record(&self, recording: &Recording) -> Result<ScenarioInfo, Error> {
        let action = format!("recording scenario `{}`", recording.name);
        let answer = self
            .send(
                &action,
                Method::POST,
                self.scenario_url(&["record"]),
                Some(recording.to_json()),
            )
            .await?;
        ScenarioInfo::from_json(answer)
    }

    /// A scenario's file, exactly as the server keeps it (its newest version when none is
    /// given).
    pub async fn export(&self, name: &str, version: Option<i64>) -> Result<Vec<u8>, Error> {
        let mut url = self.scenario_url(&[name]);
        let action = match version {
            Some(version) => {
                url.query_pairs_mut()
                    .append_pair("version", &version.to_string());
                format!("exporting version {version} of scenario `{name}`")
            }
            None => format!("exporting scenario `{name}`"),
        };
        self.exchange(
            &action,
            Method::GET,
            url,
            None,
            "application/x-ndjson, application/json",
        )
        .await
    }

    /// Imports a scenario file (201). `origin` names it in a refusal (`night.ndjson`).
    pub async fn import(&self, origin: &str, file: String) -> Result<ScenarioInfo, Error> {
        let action = format!("importing {origin}");
        let answer = self
            .exchange(
                &action,
                Method::POST,
                self.scenario_url(&[]),
                Some(("application/x-ndjson", file)),
                "application/json",
            )
            .await?;
        ScenarioInfo::from_json(json_of(&action, &answer)?)
    }

    /// Plays the sandbox's scenario: from its start, or on from where it is paused, or at
    /// another speed. With no `speed`, at the speed it was playing at (1 for a first play).
    pub async fn play(&self, sandbox: &str, speed: Option<f64>) -> Result<PlayStatus, Error> {
        let speed = match speed {
            Some(speed) => Some(speed),
            // The server takes a play without a speed as 1x, even to resume.
            None => self
                .show(sandbox)
                .await?
                .play
                .filter(|play| !play.finished && play.error.is_none())
                .map(|play| play.speed),
        };
        let body = match speed {
            Some(speed) => json!({ "speed": speed }),
            None => json!({}),
        };
        self.control(sandbox, "playing", "play", Some(body)).await
    }

    /// Stops the scenario clock where it is.
    pub async fn pause(&self, sandbox: &str) -> Result<PlayStatus, Error> {
        self.control(sandbox, "pausing", "pause", None).await
    }

    /// Moves the scenario clock to `offset_ms`: forward applies every change up to there at
    /// once, back starts the sandbox again and applies every change up to there.
    pub async fn seek(&self, sandbox: &str, offset_ms: i64) -> Result<PlayStatus, Error> {
        let body = json!({ "offsetMs": offset_ms });
        self.control(sandbox, "seeking", "seek", Some(body)).await
    }

    /// Ends the play (the sandbox keeps what was applied).
    pub async fn stop(&self, sandbox: &str) -> Result<PlayStatus, Error> {
        self.control(sandbox, "stopping", "stop", None).await
    }

    async fn control(
        &self,
        sandbox: &str,
        doing: &str,
        control: &str,
        body: Option<Value>,
    ) -> Result<PlayStatus, Error> {
        let action = format!("{doing} the scenario in sandbox `{sandbox}`");
        let answer = self
            .send(
                &action,
                Method::POST,
                self.teaching_url("sandboxes", &[sandbox, control]),
                body,
            )
            .await?;
        PlayStatus::from_json(answer)
    }
}

/// `ms` as a clock: `02:30`, `1:02:30` from an hour (whole seconds, rounded down).
pub fn clock(ms: i64) -> String {
    let seconds = ms.max(0) / 1_000;
    let (hours, minutes, seconds) = (seconds / 3_600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes:02}:{seconds:02}")
    }
}

/// `60x`, `1.5x`.
fn speed(speed: f64) -> String {
    if speed.fract() == 0.0 && speed.abs() < 1e15 {
        format!("{speed:.0}x")
    } else {
        format!("{speed}x")
    }
}

fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// A play's speed as `--speed` takes it: a number (the server takes 1 to 3600).
pub fn parse_speed(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(speed) if speed.is_finite() => Ok(speed),
        _ => Err(format!(
            "`{text}` is not a speed: scenario seconds per real second, 1 to 3600"
        )),
    }
}

/// A time from a scenario's start, as `seek --to` takes it: milliseconds (`150000`), a
/// duration (`2m30s`, `90s`, `1h5m`, `1500ms`) or a clock (`2:30`, `1:02:30`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offset(pub i64);

impl FromStr for Offset {
    type Err = String;

    fn from_str(text: &str) -> Result<Offset, String> {
        let wrong = || {
            format!(
                "`{text}` is not a time from the scenario's start: milliseconds (150000), a \
                 duration (2m30s, 90s, 1500ms) or a clock (2:30, 1:02:30)"
            )
        };
        let trimmed = text.trim();
        let whole = |digits: &str| -> Option<i64> {
            if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
                return None;
            }
            digits.parse().ok()
        };
        if let Some(ms) = whole(trimmed) {
            return Ok(Offset(ms));
        }
        let ms = if trimmed.contains(':') {
            let parts = trimmed
                .split(':')
                .map(whole)
                .collect::<Option<Vec<i64>>>()
                .ok_or_else(wrong)?;
            let seconds = match parts[..] {
                [minutes, seconds] if seconds < 60 => {
                    minutes.checked_mul(60).and_then(|m| m.checked_add(seconds))
                }
                [hours, minutes, seconds] if minutes < 60 && seconds < 60 => hours
                    .checked_mul(3_600)
                    .and_then(|h| h.checked_add(minutes * 60 + seconds)),
                _ => None,
            };
            seconds.and_then(|seconds| seconds.checked_mul(1_000))
        } else {
            duration_ms(trimmed)
        };
        ms.map(Offset).ok_or_else(wrong)
    }
}

/// `2m30s`, `1h5m`, `90s`, `1500ms` in milliseconds: numbers each followed by a unit, the units
/// in order (h, m, s, ms), each at most once.
fn duration_ms(text: &str) -> Option<i64> {
    const UNITS: [(&str, i64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];
    let mut rest = text;
    let mut total: i64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let letters = rest[digits..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        if digits == 0 || letters == 0 {
            return None;
        }
        let number: i64 = rest[..digits].parse().ok()?;
        let unit = &rest[digits..digits + letters];
        let index = UNITS[next_unit..]
            .iter()
            .position(|(name, _)| *name == unit)?
            + next_unit;
        total = total.checked_add(number.checked_mul(UNITS[index].1)?)?;
        next_unit = index + 1;
        rest = &rest[digits + letters..];
    }
    (!text.is_empty()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_is_milliseconds_a_duration_or_a_clock() {
        for (text, ms) in [
            ("0", 0),
            ("150000", 150_000),
            ("2m30s", 150_000),
            ("90s", 90_000),
            ("1h", 3_600_000),
            ("1h5m", 3_900_000),
            ("1500ms", 1_500),
            ("1s500ms", 1_500),
            ("2:30", 150_000),
            ("02:30", 150_000),
            ("90:00", 5_400_000),
            ("1:02:30", 3_750_000),
            (" 45s ", 45_000),
        ] {
            assert_eq!(text.parse(), Ok(Offset(ms)), "{text}");
        }
        for wrong in [
            "",
            "-5",
            "2.5s",
            "30s2m",
            "2m2m",
            "5x",
            "m",
            "1:60",
            "1:2:3:4",
            "a:b",
            "1::2",
            "99999999999999999999",
            "9999999999999999h",
        ] {
            assert!(wrong.parse::<Offset>().is_err(), "{wrong}");
        }
    }

    #[test]
    fn the_clock_reads_minutes_and_seconds_then_hours() {
        assert_eq!(clock(0), "00:00");
        assert_eq!(clock(150_999), "02:30");
        assert_eq!(clock(3_599_999), "59:59");
        assert_eq!(clock(3_750_000), "1:02:30");
        assert_eq!(clock(-5), "00:00");
        assert_eq!(speed(60.0), "60x");
        assert_eq!(speed(1.5), "1.5x");
        assert!(parse_speed("inf").is_err());
        assert!(parse_speed("NaN").is_err());
        assert_eq!(parse_speed("0"), Ok(0.0));
    }

    #[test]
    fn a_status_reads_as_one_line_or_two_with_its_error() {
        let mut status = PlayStatus::from_json(json!({
            "sandbox": "night-lab", "scenario": "night-obs", "version": 2, "speed": 60.0,
            "playing": true, "finished": false, "clockMs": 150_000, "durationMs": 300_000,
            "applied": 16, "total": 32, "error": null,
        }))
        .unwrap();
        assert_eq!(
            status.summary(),
            "night-lab: night-obs v2 playing, 02:30 of 05:00 at 60x, 16 of 32 changes applied\n"
        );
        status.playing = false;
        assert!(status.summary().contains(" paused, "));
        status.finished = true;
        assert!(status.summary().contains(" finished, "));
        status.error = Some("update Observation/o1 at 5 ms\ncould not be applied".into());
        assert_eq!(
            status.summary(),
            "night-lab: night-obs v2 failed, 02:30 of 05:00 at 60x, 16 of 32 changes applied\n  \
             error: update Observation/o1 at 5 ms\\ncould not be applied\n"
        );
        assert_eq!(
            status.state_line(),
            "failed, 02:30 of 05:00 at 60x, 16 of 32 changes applied; error: update \
             Observation/o1 at 5 ms\\ncould not be applied"
        );
        assert!(PlayStatus::from_json(json!({"sandbox": "x"})).is_err());
    }

    #[test]
    fn a_file_is_counted_by_its_lines() {
        let file = "{\"type\":\"manifest\"}\n\n{\"type\":\"start\",\"resource\":{}}\n\
                    {\"type\": \"event\"}\r\n{\"resource\":{\"type\":\"start\"},\"type\":\"event\"}\n";
        assert_eq!(
            Counts::of_file(file),
            Counts {
                start: 1,
                events: 2
            }
        );
    }

    #[test]
    fn a_table_shows_every_version_and_dashes_for_what_is_missing() {
        let scenario = |name: &str, version: i64, title: Option<&str>| {
            let mut scenario = ScenarioInfo::from_json(json!({
                "type": "manifest", "format": "wardline-scenario/1", "name": name,
                "version": version, "title": title, "cohort": {"patients": ["p1", "p2"]},
                "durationMs": 3_750_000, "windowStart": "2026-01-01T02:00:00Z",
                "createdBy": "teacher", "createdAt": "2026-02-01T00:00:00Z",
            }))
            .unwrap();
            scenario.counts = (version == 1).then_some(Counts {
                start: 3,
                events: 12,
            });
            scenario
        };
        let table = table(&[
            scenario("night", 1, Some("Bay 3 at night")),
            scenario("night", 2, None),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "NAME   VERSION  TITLE           PATIENTS  DURATION  EVENTS  CREATED BY  CREATED AT"
        );
        assert_eq!(
            lines[1],
            "night  1        Bay 3 at night  2         1:02:30   12      teacher     \
             2026-02-01T00:00:00Z"
        );
        assert!(lines[2].starts_with("night  2        -               2 "));
        assert!(lines[2].contains(" -       teacher"), "{table}");
    }
}
