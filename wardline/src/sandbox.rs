//! `wardline sandbox`: teaching sandboxes (ADR 0014) through the command service's
//! `/teaching/sandboxes`: create one (forked from the live record now, at a position, or as
//! it was at an instant; or starting as a scenario), list them, show one, reset one to its
//! start, delete one. [`Teaching`] is also the client of `/teaching/scenarios` and of a
//! sandbox's play controls (`crate::scenario`).
//!
//! The command service (or the edge in front of it, which routes `/teaching/` there) needs
//! the token of an instructor, an admin or a backend client, as `wardline token` gets it.
//! What it refuses is an OperationOutcome, which [`Error`] turns into one line with the status
//! and the reasons.

use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde_json::{Map, Value, json};

use crate::auth::{Credentials, TokenSource};
use crate::scenario::PlayStatus;

/// Where the sandboxes are managed, and how to sign in there.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The command service's address, or the edge's (which routes /teaching/ to it). A FHIR
    /// base (ending in /fhir) is taken to mean its server.
    #[arg(
        long,
        env = "WARDLINE_SERVER_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub server_url: Url,
    #[command(flatten)]
    pub credentials: Credentials,
}

/// A point of the live record: a position, or the record as it was at an instant. Where a new
/// sandbox starts (none: the present), or where a scenario's recording window opens or closes.
/// A sandbox may also start as a scenario (which `--at` never reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    Position(i64),
    /// As `_lastUpdated` takes it (`2026-12-01T02:00:00Z`); the server reads it.
    Instant(String),
    /// A sandbox only: the scenario's starting state instead of the live record (its newest
    /// version when none is given).
    Scenario {
        name: String,
        version: Option<i32>,
    },
}

impl Start {
    /// As the API takes it: `{"position": n}`, `{"instant": "..."}` or
    /// `{"scenario": "...", "version": n}`.
    pub fn to_json(&self) -> Value {
        match self {
            Start::Position(position) => json!({ "position": position }),
            Start::Instant(instant) => json!({ "instant": instant }),
            Start::Scenario { name, version } => {
                let mut start = json!({ "scenario": name });
                if let Some(version) = version {
                    start["version"] = json!(version);
                }
                start
            }
        }
    }
}

impl FromStr for Start {
    type Err = String;

    fn from_str(text: &str) -> Result<Start, String> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
            return text
                .parse()
                .map(Start::Position)
                .map_err(|_| format!("position {text} is too large"));
        }
        // An instant begins with its year; anything else (`now`, `-5`) is neither.
        if text.len() >= 4 && text.as_bytes()[..4].iter().all(u8::is_ascii_digit) {
            return Ok(Start::Instant(text.to_owned()));
        }
        Err(format!(
            "`{text}` is neither a position (0, 1200, ...) nor an instant (2026-12-01T02:00:00Z)"
        ))
    }
}

/// A sandbox to create.
#[derive(Debug, Clone, Default)]
pub struct NewSandbox {
    /// 1 to 63 lower-case letters, digits and `-` (the server checks).
    pub name: String,
    /// The class whose students may write in it.
    pub class: Option<String>,
    pub description: Option<String>,
    /// The present when `None`.
    pub start: Option<Start>,
}

/// The scenario a sandbox starts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioRef {
    pub name: String,
    pub version: Option<i64>,
}

impl std::fmt::Display for ScenarioRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.version {
            Some(version) => write!(f, "{} v{version}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl NewSandbox {
    fn to_json(&self) -> Value {
        let mut body = Map::new();
        body.insert("name".into(), json!(self.name));
        if let Some(class) = &self.class {
            body.insert("class".into(), json!(class));
        }
        if let Some(description) = &self.description {
            body.insert("description".into(), json!(description));
        }
        if let Some(start) = &self.start {
            body.insert("start".into(), start.to_json());
        }
        Value::Object(body)
    }
}

/// A sandbox as the server describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sandbox {
    pub name: String,
    pub class: Option<String>,
    pub description: Option<String>,
    /// The live record's position it starts from.
    pub start_position: i64,
    /// Its FHIR base (reads and writes), beside the live one.
    pub fhir_base: String,
    /// The partition its current run writes to: a reset starts a new one.
    pub run: Option<i64>,
    pub created_by: String,
    pub created_at: String,
    pub reset_at: Option<String>,
    /// The scenario it starts as (its starting state instead of the live record).
    pub scenario: Option<ScenarioRef>,
    /// Where its scenario's play stands, if one was started (in this run of the server).
    pub play: Option<PlayStatus>,
    /// The server's JSON, as it came.
    pub json: Value,
}

impl Sandbox {
    /// Reads the server's description of a sandbox.
    pub fn from_json(json: Value) -> Result<Sandbox, Error> {
        let text = |name: &str| json[name].as_str().map(str::to_owned);
        let (Some(name), Some(start_position), Some(fhir_base)) = (
            text("name"),
            json["start"]["position"].as_i64(),
            text("fhirBase"),
        ) else {
            return Err(Error::Unexpected(format!(
                "the server's answer is not a sandbox: {}",
                one_line(&json.to_string())
            )));
        };
        Ok(Sandbox {
            name,
            class: text("class"),
            description: text("description"),
            start_position,
            fhir_base,
            run: json["run"].as_i64(),
            created_by: text("createdBy").unwrap_or_default(),
            created_at: text("createdAt").unwrap_or_default(),
            reset_at: text("resetAt"),
            scenario: json["scenario"]["name"].as_str().map(|name| ScenarioRef {
                name: name.to_owned(),
                version: json["scenario"]["version"].as_i64(),
            }),
            // A play the client cannot read is not shown (the sandbox still is).
            play: PlayStatus::from_json(json["play"].clone()).ok(),
            json,
        })
    }

    /// Where it starts, in words: `position 1200`, or `scenario night-obs v2`.
    pub fn start(&self) -> String {
        match &self.scenario {
            Some(scenario) => format!("scenario {scenario}"),
            None => format!("position {}", self.start_position),
        }
    }

    /// The sandbox, one field a line, indented under a heading the caller writes.
    pub fn details(&self) -> String {
        let mut out = String::new();
        let mut line = |label: &str, value: &str| {
            let _ = writeln!(out, "  {label:<12} {}", printable(value));
        };
        line("FHIR base", &self.fhir_base);
        line("starts at", &self.start());
        line("class", self.class.as_deref().unwrap_or("-"));
        if let Some(description) = &self.description {
            line("description", description);
        }
        line(
            "created",
            &format!("{} by {}", self.created_at, self.created_by),
        );
        line("reset", self.reset_at.as_deref().unwrap_or("never"));
        if let Some(run) = self.run {
            line("run", &run.to_string());
        }
        if self.scenario.is_some() {
            let play = match &self.play {
                Some(play) => play.state_line(),
                None => "not started (`wardline scenario play` starts it)".to_owned(),
            };
            line("play", &play);
        }
        out
    }
}

/// Sandboxes as a table: name, class, start (a position, or the scenario it starts as), FHIR
/// base, created by and at, reset at; one line saying so when there are none.
pub fn table(sandboxes: &[Sandbox]) -> String {
    if sandboxes.is_empty() {
        return "no sandboxes (`wardline sandbox create <name>` makes one)\n".to_owned();
    }
    let header = [
        "NAME",
        "CLASS",
        "START",
        "FHIR BASE",
        "CREATED BY",
        "CREATED AT",
        "RESET AT",
    ];
    let rows: Vec<Vec<String>> = sandboxes
        .iter()
        .map(|sandbox| {
            [
                sandbox.name.clone(),
                sandbox.class.clone().unwrap_or_else(|| "-".into()),
                match &sandbox.scenario {
                    Some(scenario) => scenario.to_string(),
                    None => sandbox.start_position.to_string(),
                },
                sandbox.fhir_base.clone(),
                sandbox.created_by.clone(),
                sandbox.created_at.clone(),
                sandbox.reset_at.clone().unwrap_or_else(|| "-".into()),
            ]
            .to_vec()
        })
        .collect();
    columns(&header, &rows)
}

/// `rows` under `header`, each column as wide as its widest cell, two spaces apart, control
/// characters escaped, no trailing spaces.
pub(crate) fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let header: Vec<String> = header.iter().map(|cell| (*cell).to_owned()).collect();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| printable(cell)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// What went wrong, in one line (`Display`).
#[derive(Debug)]
pub enum Error {
    /// No token: signing in failed.
    SignIn(String),
    /// No answer: the server could not be reached, or its answer not read.
    Unreachable { url: String, reason: String },
    /// The server answered with an error status; `reason` is its OperationOutcome's
    /// diagnostics.
    Refused {
        action: String,
        status: StatusCode,
        reason: String,
    },
    /// A success whose body is not what the API answers.
    Unexpected(String),
    /// What the command cannot do on its side: a file it cannot read or write, a sandbox with
    /// no scenario to play.
    Cannot(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::SignIn(reason) => write!(f, "cannot sign in: {reason}"),
            Error::Unreachable { url, reason } => write!(f, "cannot reach {url}: {reason}"),
            Error::Refused {
                action,
                status,
                reason,
            } => {
                let outcome = if status.is_server_error() {
                    "failed on the server"
                } else {
                    "was refused"
                };
                write!(f, "{action} {outcome} ({status}): {reason}")
            }
            Error::Unexpected(what) | Error::Cannot(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// The HTTP status the server answered with, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The command service's `/teaching/sandboxes`.
#[derive(Debug, Clone)]
pub struct Teaching {
    server: Url,
    http: reqwest::Client,
    auth: TokenSource,
}

impl Teaching {
    pub fn new(connection: Connection) -> Result<Teaching, Error> {
        Teaching::with_auth(
            connection.server_url,
            TokenSource::new(connection.credentials),
        )
    }

    /// `server`: the command service's address or the edge's (a FHIR base `.../fhir` is taken
    /// to mean its server).
    pub fn with_auth(mut server: Url, auth: TokenSource) -> Result<Teaching, Error> {
        if server.cannot_be_a_base() {
            return Err(Error::Unexpected(format!(
                "{server} cannot be a server's address"
            )));
        }
        let path = server.path().trim_end_matches('/');
        let path = path.strip_suffix("/fhir").unwrap_or(path).to_owned();
        server.set_path(&path);
        server.set_query(None);
        server.set_fragment(None);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|error| Error::Unexpected(format!("no HTTP client: {}", chain(&error))))?;
        Ok(Teaching { server, http, auth })
    }

    /// `/teaching/sandboxes`, then `segments` (each percent-encoded as a path segment needs).
    fn url(&self, segments: &[&str]) -> Url {
        self.teaching_url("sandboxes", segments)
    }

    /// `/teaching/<collection>`, then `segments` (each percent-encoded as a path segment
    /// needs).
    pub(crate) fn teaching_url(&self, collection: &str, segments: &[&str]) -> Url {
        let mut url = self.server.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["teaching", collection]);
            path.extend(segments);
        }
        url
    }

    /// Sends a request with a JSON body (if any); the JSON of a success (`Value::Null` when
    /// it has no body).
    pub(crate) async fn send(
        &self,
        action: &str,
        method: Method,
        url: Url,
        body: Option<Value>,
    ) -> Result<Value, Error> {
        let body = body.map(|body| ("application/json", body.to_string()));
        let answer = self
            .exchange(action, method, url, body, "application/json")
            .await?;
        json_of(action, &answer)
    }

    /// Sends a request with `body` (its content type and text); the body of a success, as it
    /// came. A refusal's OperationOutcome becomes [`Error::Refused`].
    pub(crate) async fn exchange(
        &self,
        action: &str,
        method: Method,
        url: Url,
        body: Option<(&str, String)>,
        accept: &str,
    ) -> Result<Vec<u8>, Error> {
        let token = self
            .auth
            .bearer()
            .await
            .map_err(|error| Error::SignIn(format!("{error:#}")))?;
        let mut request = self
            .http
            .request(method, url.clone())
            .bearer_auth(token)
            .header("accept", accept);
        if let Some((content_type, body)) = body {
            request = request.header("content-type", content_type).body(body);
        }
        // reqwest's own message repeats the URL; its causes say what happened.
        let unreachable = |error: reqwest::Error| Error::Unreachable {
            url: url.to_string(),
            reason: match std::error::Error::source(&error) {
                Some(cause) => chain(cause),
                None => error.to_string(),
            },
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        let text = String::from_utf8_lossy(&bytes);
        let reason = match serde_json::from_str::<Value>(&text) {
            Ok(outcome) if outcome["issue"].is_array() => {
                one_line(&crate::import::diagnostics(&outcome))
            }
            _ if text.trim().is_empty() => "the server gave no reason".to_owned(),
            _ => one_line(&text),
        };
        Err(Error::Refused {
            action: action.to_owned(),
            status,
            reason,
        })
    }

    /// Creates a sandbox (201).
    pub async fn create(&self, new: &NewSandbox) -> Result<Sandbox, Error> {
        let action = format!("creating sandbox `{}`", new.name);
        let answer = self
            .send(&action, Method::POST, self.url(&[]), Some(new.to_json()))
            .await?;
        Sandbox::from_json(answer)
    }

    /// Every sandbox, by name.
    pub async fn list(&self) -> Result<Vec<Sandbox>, Error> {
        let answer = self
            .send("listing sandboxes", Method::GET, self.url(&[]), None)
            .await?;
        let Value::Array(items) = answer["sandboxes"].clone() else {
            return Err(Error::Unexpected(format!(
                "the server's answer is not a list of sandboxes: {}",
                one_line(&answer.to_string())
            )));
        };
        items.into_iter().map(Sandbox::from_json).collect()
    }

    pub async fn show(&self, name: &str) -> Result<Sandbox, Error> {
        let action = format!("reading sandbox `{name}`");
        let answer = self
            .send(&action, Method::GET, self.url(&[name]), None)
            .await?;
        Sandbox::from_json(answer)
    }

    /// Starts the sandbox again from its start: whatever it wrote is gone.
    pub async fn reset(&self, name: &str) -> Result<Sandbox, Error> {
        let action = format!("resetting sandbox `{name}`");
        let answer = self
            .send(&action, Method::POST, self.url(&[name, "reset"]), None)
            .await?;
        Sandbox::from_json(answer)
    }

    /// Deletes the sandbox and what it wrote (204).
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        let action = format!("deleting sandbox `{name}`");
        self.send(&action, Method::DELETE, self.url(&[name]), None)
            .await?;
        Ok(())
    }
}

/// The JSON of a success's body (`Value::Null` when it has none).
pub(crate) fn json_of(action: &str, body: &[u8]) -> Result<Value, Error> {
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|_| {
        Error::Unexpected(format!(
            "{action}: the server's answer is not JSON: {}",
            one_line(&text)
        ))
    })
}

/// An error and its causes, in one line (`reqwest` says little without its causes:
/// "error sending request" hides "Connection refused").
fn chain(error: &dyn std::error::Error) -> String {
    let mut messages: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        let message = error.to_string();
        if !messages.iter().any(|seen| seen.contains(&message)) {
            messages.push(message);
        }
        next = error.source();
    }
    messages.join(": ")
}

/// `text` on one line, control characters escaped, at most 300 characters.
pub(crate) fn one_line(text: &str) -> String {
    let flat = printable(text.trim());
    match flat.char_indices().nth(300) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}

/// `text` with control characters (newlines, terminal escapes) escaped, so what a server
/// holds cannot draw on the terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_takes_a_position_or_an_instant() {
        assert_eq!("1200".parse(), Ok(Start::Position(1200)));
        assert_eq!("0".parse(), Ok(Start::Position(0)));
        assert_eq!(
            "2026-12-01T02:00:00Z".parse(),
            Ok(Start::Instant("2026-12-01T02:00:00Z".into()))
        );
        for wrong in ["now", "-5", "", "12a", "99999999999999999999"] {
            assert!(wrong.parse::<Start>().is_err(), "{wrong}");
        }
    }

    #[test]
    fn the_sandboxes_are_reached_under_the_server_whatever_its_address_says() {
        let teaching = |server: &str| {
            Teaching::with_auth(
                server.parse().unwrap(),
                TokenSource::new(Credentials {
                    token: Some("t".into()),
                    token_url: String::new(),
                    client_id: String::new(),
                    client_key: None,
                    scope: String::new(),
                }),
            )
            .unwrap()
        };
        for server in [
            "http://127.0.0.1:8081",
            "http://127.0.0.1:8081/",
            "http://127.0.0.1:8081/fhir",
            "http://127.0.0.1:8081/fhir/",
        ] {
            assert_eq!(
                teaching(server).url(&["a b/c", "reset"]).as_str(),
                "http://127.0.0.1:8081/teaching/sandboxes/a%20b%2Fc/reset",
                "{server}"
            );
        }
        assert_eq!(
            teaching("https://example.org/wardline/").url(&[]).as_str(),
            "https://example.org/wardline/teaching/sandboxes"
        );
    }

    #[test]
    fn a_table_lines_up_and_escapes_what_it_shows() {
        let sandbox = |name: &str, class: Option<&str>| {
            Sandbox::from_json(json!({
                "name": name, "class": class, "description": null,
                "start": {"position": 7}, "fhirBase": format!("http://h/sandbox/{name}/fhir"),
                "run": 1, "createdBy": "me\u{1b}[31m", "createdAt": "2026-01-01T00:00:00Z",
                "resetAt": null,
            }))
            .unwrap()
        };
        let table = table(&[sandbox("a", None), sandbox("longer-name", Some("demo"))]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("NAME         CLASS  START  FHIR BASE"));
        assert!(lines[1].starts_with("a            -      7      http://h/sandbox/a/fhir"));
        assert!(lines[2].contains("me\\u{1b}[31m"), "{table}");
        assert!(!table.contains('\u{1b}'));
        assert!(lines.iter().all(|line| !line.ends_with(' ')));
    }

    #[test]
    fn chained_errors_read_as_one_line() {
        let error = anyhow::anyhow!("Connection refused")
            .context("tcp connect error")
            .context("client error (Connect)");
        assert_eq!(
            chain(&*error),
            "client error (Connect): tcp connect error: Connection refused"
        );
        // A cause its effect already quotes is said once.
        let error = anyhow::anyhow!("refused").context("connect: refused");
        assert_eq!(chain(&*error), "connect: refused");
        assert_eq!(one_line(" a\nb\n"), "a\\nb");
        assert_eq!(
            one_line(&"x".repeat(400)),
            format!("{}...", "x".repeat(300))
        );
    }
}
