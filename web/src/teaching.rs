//! The teaching API as the teaching page uses it (`/teaching/...`, command-service's
//! `teaching.rs`): scenarios and sandboxes as listed, a play's status, and the bodies of the
//! requests that record a scenario, create a sandbox and control a play. Kept here, apart from
//! the page, so the shapes the page depends on and the rules it applies (who sees which
//! sandbox, what the clock shows, which patient ids are acceptable) are tested on the host.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::fhir;
use crate::route::is_id;
use crate::tokens::User;

/// Where sandboxes are listed and created.
pub const SANDBOXES: &str = "/teaching/sandboxes";

/// Where scenarios are listed.
pub const SCENARIOS: &str = "/teaching/scenarios";

/// Where a scenario is recorded from the live record.
pub const RECORD: &str = "/teaching/scenarios/record";

/// The speeds the play controls offer (the server takes 1 to 3,600).
pub const SPEEDS: [u32; 5] = [1, 10, 60, 600, 3_600];

/// The speed selected before anyone chose one.
pub const DEFAULT_SPEED: u32 = 60;

/// A sandbox as `GET /teaching/sandboxes` lists it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sandbox {
    pub name: String,
    #[serde(default)]
    pub class: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub start: SandboxStart,
    /// The sandbox's current run: a reset, and a play starting or seeking back, begin a new
    /// one, which is how a page showing the sandbox knows to load it afresh.
    #[serde(default)]
    pub run: i64,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub scenario: Option<ScenarioRef>,
    #[serde(default)]
    pub play: Option<PlayStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SandboxStart {
    /// The live record's position the sandbox forked at (0 for a scenario's).
    pub position: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ScenarioRef {
    pub name: String,
    #[serde(default)]
    pub version: Option<i32>,
}

/// Where a play stands (`GET /teaching/sandboxes/<name>/play`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlayStatus {
    /// `playing`, `paused`, `finished`, `stopped` or `failed`, from servers that say so.
    #[serde(default)]
    pub state: Option<String>,
    pub speed: f64,
    pub playing: bool,
    pub finished: bool,
    /// The scenario clock: milliseconds from the scenario's start.
    pub clock_ms: i64,
    pub duration_ms: i64,
    pub applied: usize,
    pub total: usize,
    #[serde(default)]
    pub error: Option<String>,
}

impl PlayStatus {
    /// Whether the clock is moving (and so worth asking about every second): playing, not
    /// failed, and short of the scenario's end. The clock runs on after the last change (the
    /// play has `finished` then, and may no longer say it is `playing`) until it reaches the
    /// scenario's length.
    pub fn running(&self) -> bool {
        let moving = self.playing || (self.finished && !self.is_stopped());
        moving && self.error.is_none() && self.clock_ms < self.duration_ms
    }

    /// Whether it was stopped: it can only be played again from the start.
    pub fn is_stopped(&self) -> bool {
        self.state.as_deref() == Some("stopped")
    }

    /// `mm:ss / mm:ss`: the scenario clock and the scenario's length.
    pub fn clock(&self) -> String {
        format!("{} / {}", clock(self.clock_ms), clock(self.duration_ms))
    }

    /// What the play is doing, in words.
    pub fn state(&self) -> String {
        match (&self.error, self.finished, self.playing) {
            (Some(error), _, _) => format!("stopped: {error}"),
            _ if self.is_stopped() => "stopped".to_owned(),
            (None, true, _) => "finished".to_owned(),
            (None, false, true) => format!("playing at {}×", self.speed.round()),
            (None, false, false) => "paused".to_owned(),
        }
    }
}

/// A scenario's manifest as `GET /teaching/scenarios` lists it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scenario {
    pub name: String,
    pub version: i32,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub cohort: Cohort,
    #[serde(default)]
    pub duration_ms: i64,
    #[serde(default)]
    pub window_start: Option<String>,
    #[serde(default)]
    pub created_by: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Cohort {
    #[serde(default)]
    pub patients: Vec<String>,
}

impl Scenario {
    /// The value of its choice in the new-sandbox form.
    pub fn choice(&self) -> String {
        Start::Scenario {
            name: self.name.clone(),
            version: self.version,
        }
        .choice()
    }

    /// "Bay 3 at night (night-shift v2)".
    pub fn label(&self) -> String {
        match &self.title {
            Some(title) => format!("{title} ({} v{})", self.name, self.version),
            None => format!("{} v{}", self.name, self.version),
        }
    }
}

/// The sandboxes of a `GET /teaching/sandboxes` answer (those that cannot be read are left out).
pub fn sandboxes(list: &Value) -> Vec<Sandbox> {
    entries(&list["sandboxes"])
}

/// The scenarios of a `GET /teaching/scenarios` answer, newest version of each name first.
pub fn scenarios(list: &Value) -> Vec<Scenario> {
    let mut scenarios: Vec<Scenario> = entries(&list["scenarios"]);
    scenarios.sort_by(|a, b| a.name.cmp(&b.name).then(b.version.cmp(&a.version)));
    scenarios
}

fn entries<T: serde::de::DeserializeOwned>(list: &Value) -> Vec<T> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| serde_json::from_value(entry.clone()).ok())
        .collect()
}

/// The sandboxes `user` is shown: a student those of their classes, anyone else all of them
/// (the list is public to anyone signed in; students write only in their classes' ones).
pub fn visible<'a>(sandboxes: &'a [Sandbox], user: &User) -> Vec<&'a Sandbox> {
    sandboxes
        .iter()
        .filter(|sandbox| {
            !user.is_student()
                || sandbox
                    .class
                    .as_ref()
                    .is_some_and(|class| user.classes.contains(class))
        })
        .collect()
}

/// How long the sandbox's scenario runs: from its play, else from the scenario's manifest.
pub fn duration_ms(sandbox: &Sandbox, scenarios: &[Scenario]) -> Option<i64> {
    if let Some(play) = &sandbox.play {
        return Some(play.duration_ms);
    }
    let wanted = sandbox.scenario.as_ref()?;
    scenarios
        .iter()
        .filter(|scenario| scenario.name == wanted.name)
        .find(|scenario| {
            wanted
                .version
                .is_none_or(|version| version == scenario.version)
        })
        .map(|scenario| scenario.duration_ms)
}

/// What the sandbox started as, in words.
pub fn start_label(sandbox: &Sandbox) -> String {
    match &sandbox.scenario {
        Some(ScenarioRef {
            name,
            version: Some(version),
        }) => format!("scenario {name} v{version}"),
        Some(ScenarioRef {
            name,
            version: None,
        }) => format!("scenario {name}"),
        None => format!("the live record at position {}", sandbox.start.position),
    }
}

/// A scenario clock as `mm:ss` (minutes past 59 keep counting: `125:03`).
pub fn clock(ms: i64) -> String {
    let seconds = ms.max(0) / 1_000;
    format!("{:02}:{:02}", seconds / 60, seconds % 60)
}

/// Where a new sandbox starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The live record as it is now.
    Now,
    /// The live record at an instant (seconds since the Unix epoch).
    Instant(i64),
    /// A scenario's starting state, ready to play.
    Scenario { name: String, version: i32 },
}

impl Start {
    /// The value of this choice in the form's select (`now`, `instant`,
    /// `scenario:<name>:<version>`).
    pub fn choice(&self) -> String {
        match self {
            Start::Now => "now".to_owned(),
            Start::Instant(_) => "instant".to_owned(),
            Start::Scenario { name, version } => format!("scenario:{name}:{version}"),
        }
    }

    /// The start a select's value names; `at` is the form's date-time, for `instant`.
    pub fn from_choice(choice: &str, at: Option<i64>) -> Result<Start, String> {
        match choice.split(':').collect::<Vec<_>>().as_slice() {
            ["now"] => Ok(Start::Now),
            ["instant"] => at
                .map(Start::Instant)
                .ok_or_else(|| "choose the moment of the live record to start from".to_owned()),
            ["scenario", name, version] => Ok(Start::Scenario {
                name: (*name).to_owned(),
                version: version
                    .parse()
                    .map_err(|_| format!("`{version}` is not a scenario version"))?,
            }),
            _ => Err(format!("`{choice}` is not a start")),
        }
    }

    fn body(&self) -> Option<Value> {
        match self {
            Start::Now => None,
            Start::Instant(at) => Some(json!({"instant": fhir::format_instant(*at)})),
            Start::Scenario { name, version } => {
                Some(json!({"scenario": name, "version": version}))
            }
        }
    }
}

/// The body of `POST /teaching/sandboxes`; empty class and description are left out.
pub fn new_sandbox(name: &str, class: &str, description: &str, start: &Start) -> Value {
    let mut body = json!({"name": name.trim()});
    if !class.trim().is_empty() {
        body["class"] = json!(class.trim());
    }
    if !description.trim().is_empty() {
        body["description"] = json!(description.trim());
    }
    if let Some(start) = start.body() {
        body["start"] = start;
    }
    body
}

/// The body of `POST /teaching/scenarios/record`: the cohort over the window from `from` to
/// `to` (the present when `None`), seconds since the Unix epoch.
pub fn recording(
    name: &str,
    title: &str,
    patients: &[String],
    from: i64,
    to: Option<i64>,
) -> Value {
    let mut body = json!({
        "name": name.trim(),
        "patients": patients,
        "from": {"instant": fhir::format_instant(from)},
    });
    if !title.trim().is_empty() {
        body["title"] = json!(title.trim());
    }
    if let Some(to) = to {
        body["to"] = json!({"instant": fhir::format_instant(to)});
    }
    body
}

/// Patient ids typed into a field, separated by commas or spaces; the first that is not an
/// id is named.
pub fn patient_ids(text: &str) -> Result<Vec<String>, String> {
    text.split([',', ' ', '\n', '\t'])
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(|id| {
            let id = id.strip_prefix("Patient/").unwrap_or(id);
            if is_id(id) {
                Ok(id.to_owned())
            } else {
                Err(format!("`{id}` is not a patient id"))
            }
        })
        .collect()
}

/// The path of a sandbox's play control (`play`, `pause`, `seek`, `stop`) or of `reset`.
pub fn sandbox_path(name: &str, action: &str) -> String {
    format!("{SANDBOXES}/{name}/{action}")
}

/// The path of one sandbox.
pub fn one_sandbox(name: &str) -> String {
    format!("{SANDBOXES}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed() -> Value {
        json!({"sandboxes": [
            {"name": "night", "class": "demo", "description": "Bay 3", "start": {"position": 0},
             "fhirBase": "https://x/sandbox/night/fhir", "run": 7, "createdBy": "instructor",
             "createdAt": "2026-06-01T10:00:00Z", "resetAt": null,
             "scenario": {"name": "tanaka", "version": 2},
             "play": {"sandbox": "night", "scenario": "tanaka", "version": 2, "speed": 60.0,
                      "playing": true, "finished": false, "clockMs": 83_500, "durationMs": 300_000,
                      "applied": 12, "total": 32, "error": null}},
            {"name": "other", "class": "other", "description": null, "start": {"position": 120},
             "fhirBase": "https://x/sandbox/other/fhir", "run": 9, "createdBy": "admin",
             "createdAt": "2026-06-01T10:00:00Z", "resetAt": null, "scenario": null, "play": null},
            {"name": "classless", "start": {"position": 5}, "run": 10},
            {"broken": true}
        ]})
    }

    fn user(role: &str, classes: &[&str]) -> User {
        User {
            username: role.into(),
            name: role.into(),
            role: Some(role.into()),
            classes: classes.iter().map(|class| (*class).to_owned()).collect(),
        }
    }

    #[test]
    fn the_sandbox_list_reads_as_the_server_writes_it() {
        let sandboxes = sandboxes(&listed());
        assert_eq!(sandboxes.len(), 3, "the unreadable entry is left out");
        let night = &sandboxes[0];
        assert_eq!(night.run, 7);
        assert_eq!(start_label(night), "scenario tanaka v2");
        assert_eq!(
            start_label(&sandboxes[1]),
            "the live record at position 120"
        );
        let play = night.play.as_ref().unwrap();
        assert!(play.running());
        assert_eq!(play.clock(), "01:23 / 05:00");
        assert_eq!(play.state(), "playing at 60×");
        assert_eq!(duration_ms(night, &[]), Some(300_000));
    }

    #[test]
    fn students_see_their_classes_sandboxes_and_others_all() {
        let sandboxes = sandboxes(&listed());
        let names = |user: &User| -> Vec<String> {
            visible(&sandboxes, user)
                .iter()
                .map(|sandbox| sandbox.name.clone())
                .collect()
        };
        assert_eq!(names(&user("student", &["demo"])), ["night"]);
        assert!(names(&user("student", &[])).is_empty());
        assert_eq!(names(&user("instructor", &[])).len(), 3);
        assert_eq!(names(&user("nurse", &[])).len(), 3);
    }

    #[test]
    fn a_play_says_where_it_stands() {
        let mut play = sandboxes(&listed())[0].play.clone().unwrap();
        play.finished = true;
        assert_eq!(play.state(), "finished");
        assert!(play.running(), "the clock runs on to the scenario's end");
        play.playing = false;
        assert!(
            play.running(),
            "also from a server that says a finished play is not playing"
        );
        play.clock_ms = play.duration_ms;
        assert!(!play.running());
        assert_eq!(play.state(), "finished");
        play.finished = false;
        play.clock_ms = 1_000;
        assert_eq!(play.state(), "paused");
        assert!(!play.running());
        play.state = Some("stopped".into());
        assert!(play.is_stopped());
        assert_eq!(play.state(), "stopped");
        play.error = Some("a write failed".into());
        assert_eq!(play.state(), "stopped: a write failed");
        assert_eq!(clock(0), "00:00");
        assert_eq!(clock(59_999), "00:59");
        assert_eq!(clock(7_503_000), "125:03");
        assert_eq!(clock(-5), "00:00");
    }

    #[test]
    fn scenarios_list_newest_version_first_and_give_their_duration() {
        let list = json!({"scenarios": [
            {"name": "tanaka", "version": 1, "title": "Night", "cohort": {"patients": ["p1"]},
             "durationMs": 100, "windowStart": "2026-06-01T02:00:00Z", "source": null,
             "createdBy": "instructor", "createdAt": "2026-06-01T10:00:00Z"},
            {"name": "tanaka", "version": 2, "title": null, "cohort": {"patients": ["p1"]},
             "durationMs": 200, "windowStart": "2026-06-01T02:00:00Z"},
            {"name": "adams", "version": 1, "durationMs": 50, "windowStart": "2026-06-01T02:00:00Z"}
        ]});
        let scenarios = scenarios(&list);
        let order: Vec<(String, i32)> = scenarios
            .iter()
            .map(|scenario| (scenario.name.clone(), scenario.version))
            .collect();
        assert_eq!(
            order,
            [
                ("adams".into(), 1),
                ("tanaka".into(), 2),
                ("tanaka".into(), 1)
            ]
        );
        assert_eq!(scenarios[2].label(), "Night (tanaka v1)");
        assert_eq!(scenarios[1].label(), "tanaka v2");
        let mut sandbox = sandboxes(&listed())[0].clone();
        sandbox.play = None;
        assert_eq!(duration_ms(&sandbox, &scenarios), Some(200));
        sandbox.scenario = Some(ScenarioRef {
            name: "tanaka".into(),
            version: Some(1),
        });
        assert_eq!(duration_ms(&sandbox, &scenarios), Some(100));
    }

    #[test]
    fn starts_round_trip_through_the_form_and_become_the_body() {
        for start in [
            Start::Now,
            Start::Scenario {
                name: "tanaka".into(),
                version: 3,
            },
        ] {
            assert_eq!(Start::from_choice(&start.choice(), None), Ok(start));
        }
        let at = fhir::parse_time("2026-06-01T02:00:00Z").unwrap();
        assert_eq!(
            Start::from_choice("instant", Some(at)),
            Ok(Start::Instant(at))
        );
        assert!(Start::from_choice("instant", None).is_err());
        assert!(Start::from_choice("scenario:x:one", None).is_err());
        assert!(Start::from_choice("elsewhere", None).is_err());

        assert_eq!(
            new_sandbox(" night ", "demo", "", &Start::Now),
            json!({"name": "night", "class": "demo"})
        );
        assert_eq!(
            new_sandbox("night", "", "Bay 3", &Start::Instant(at)),
            json!({"name": "night", "description": "Bay 3",
                   "start": {"instant": "2026-06-01T02:00:00Z"}})
        );
        assert_eq!(
            new_sandbox(
                "night",
                "demo",
                "",
                &Start::Scenario {
                    name: "tanaka".into(),
                    version: 2
                }
            ),
            json!({"name": "night", "class": "demo",
                   "start": {"scenario": "tanaka", "version": 2}})
        );
    }

    #[test]
    fn a_recording_names_its_cohort_and_window() {
        let from = fhir::parse_time("2026-06-01T02:00:00Z").unwrap();
        assert_eq!(
            recording("tanaka", "", &["p1".into()], from, Some(from + 3_600)),
            json!({"name": "tanaka", "patients": ["p1"],
                   "from": {"instant": "2026-06-01T02:00:00Z"},
                   "to": {"instant": "2026-06-01T03:00:00Z"}})
        );
        assert_eq!(
            recording("tanaka", "Night", &[], from, None)["title"],
            "Night"
        );
    }

    #[test]
    fn patient_ids_are_checked() {
        assert_eq!(
            patient_ids(" p1, Patient/p-2\np3 ,, "),
            Ok(vec!["p1".to_owned(), "p-2".to_owned(), "p3".to_owned()])
        );
        assert_eq!(patient_ids(""), Ok(Vec::new()));
        assert_eq!(
            patient_ids("p1, a/b"),
            Err("`a/b` is not a patient id".to_owned())
        );
    }

    #[test]
    fn paths_name_the_sandbox() {
        assert_eq!(one_sandbox("night"), "/teaching/sandboxes/night");
        assert_eq!(
            sandbox_path("night", "play"),
            "/teaching/sandboxes/night/play"
        );
    }
}
