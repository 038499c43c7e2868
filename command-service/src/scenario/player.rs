//! Playing a scenario into a sandbox: its starting state written at once, then its changes at
//! their times from the start, `speed` times faster than they happened (1 to 3,600), with every
//! date-time shifted so that the scenario happens now.
//!
//! Each play is a task of this process, controlled through a channel: play (or change the
//! speed), pause, seek, stop. The scenario clock is the offset reached: it moves at `speed`
//! times the wall clock while playing and stands still while paused. Seeking forward applies at
//! once every change up to the target; seeking back resets the sandbox (a new run, ADR 0014),
//! writes the starting state again and applies every change up to the target, so the sandbox
//! holds exactly what playing to that point would have left. Every change is an ordinary write
//! through the write path (validation, references, events, the sandbox's feed), made by the
//! scenario player for the instructor who started it.
//!
//! Plays live in one command-service instance: its restart ends them (the sandbox keeps what
//! was applied).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use access_policy::{Principal, ScopeSet};
use axum::http::HeaderMap;
use chrono::Utc;
use event_store::sandbox::{self, Sandbox};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::{Change, ChangeKind, Scenario, shifted};
use crate::AppState;
use crate::entry::{Entry, Method, Target};
use crate::plan::Scope;
use crate::request::commit_context;

/// The fastest a scenario plays.
pub const MAX_SPEED: f64 = 3_600.0;

/// What an instructor asks of a play.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Control {
    Play { speed: f64 },
    Pause,
    Seek { offset_ms: i64 },
    Stop,
}

/// What a play is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PlayState {
    Playing,
    Paused,
    /// Every change applied.
    Finished,
    /// Ended by `stop`: it can only be started again.
    Stopped,
    /// A change could not be applied (`error` says which and why).
    Failed,
}

/// Where a play stands, for `GET .../play`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlayStatus {
    pub sandbox: String,
    pub scenario: String,
    pub version: i32,
    pub state: PlayState,
    pub speed: f64,
    pub playing: bool,
    pub finished: bool,
    /// The scenario clock: milliseconds from the scenario's start.
    pub clock_ms: i64,
    pub duration_ms: i64,
    /// Changes applied so far, of `total`.
    pub applied: usize,
    pub total: usize,
    /// Why the play stopped, if a change could not be applied.
    pub error: Option<String>,
    /// The clock itself, which `clock_ms` is read from when the status is asked for.
    #[serde(skip)]
    clock: Option<Clock>,
}

/// The clock: `base_ms` at `since`, moving at `speed` while playing.
#[derive(Debug, Clone, Copy)]
struct Clock {
    base_ms: i64,
    since: Instant,
    speed: f64,
    playing: bool,
}

impl Clock {
    fn now_ms(&self) -> i64 {
        if !self.playing {
            return self.base_ms;
        }
        self.base_ms + (self.since.elapsed().as_secs_f64() * 1_000.0 * self.speed) as i64
    }

    /// When the clock reaches `offset_ms`, if it is moving.
    fn due(&self, offset_ms: i64) -> Option<Instant> {
        if !self.playing {
            return None;
        }
        let ahead = (offset_ms - self.base_ms).max(0) as f64 / self.speed / 1_000.0;
        Some(self.since + Duration::from_secs_f64(ahead))
    }

    fn set(&mut self, base_ms: i64) {
        self.base_ms = base_ms;
        self.since = Instant::now();
    }
}

/// The plays of this process, by sandbox.
#[derive(Default)]
pub struct Players {
    plays: Mutex<HashMap<String, Handle>>,
}

struct Handle {
    control: mpsc::Sender<(Control, oneshot::Sender<()>)>,
    status: Arc<Mutex<PlayStatus>>,
}

/// How long a control waits for the play to carry it out (a seek back rewrites the starting
/// state and applies every change up to the target).
const CONTROL_WAIT: Duration = Duration::from_secs(60);

/// Why a play could not be started or controlled.
#[derive(Debug, thiserror::Error)]
pub enum PlayError {
    #[error("the sandbox `{0}` does not start as a scenario: create it with start.scenario")]
    NoScenario(String),
    #[error("nothing is playing in the sandbox `{0}`")]
    NotPlaying(String),
    #[error("a speed is between 1 and {MAX_SPEED}")]
    Speed,
    #[error("the scenario could not be read: {0}")]
    Scenario(String),
    #[error("{0}")]
    Write(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Players {
    /// Where the play of `sandbox` stands, if there is one.
    pub fn status(&self, sandbox: &str) -> Option<PlayStatus> {
        let plays = self.plays.lock().unwrap_or_else(PoisonError::into_inner);
        plays.get(sandbox).map(|handle| {
            let mut status = handle
                .status
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some(clock) = status.clock {
                status.clock_ms = clock.now_ms().min(status.duration_ms);
            }
            status
        })
    }

    /// Forgets the play of `sandbox` (its sandbox was reset or deleted), stopping it.
    pub async fn forget(&self, sandbox: &str) {
        self.control(sandbox, Control::Stop).await;
        self.plays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(sandbox);
    }

    /// Has the play of `sandbox` carry out `control`, and waits until it has; false when none
    /// runs.
    pub async fn control(&self, sandbox: &str, control: Control) -> bool {
        let sender = {
            let plays = self.plays.lock().unwrap_or_else(PoisonError::into_inner);
            match plays.get(sandbox) {
                Some(handle) => handle.control.clone(),
                None => return false,
            }
        };
        let (done, carried_out) = oneshot::channel();
        if sender.send((control, done)).await.is_err() {
            return false;
        }
        matches!(
            tokio::time::timeout(CONTROL_WAIT, carried_out).await,
            Ok(Ok(()))
        )
    }

    /// Starts playing the sandbox's scenario from its start at `speed` (the sandbox already
    /// holds the starting state), replacing any play of it.
    pub fn start(
        &self,
        state: &AppState,
        sandbox: Sandbox,
        scenario: Arc<Scenario>,
        speed: f64,
        started_by: &str,
    ) {
        let status = Arc::new(Mutex::new(PlayStatus {
            sandbox: sandbox.name.clone(),
            scenario: scenario.manifest.name.clone(),
            version: scenario.manifest.version,
            state: PlayState::Playing,
            speed,
            playing: true,
            finished: false,
            clock_ms: 0,
            duration_ms: scenario.manifest.duration_ms,
            applied: 0,
            total: scenario.events.len(),
            error: None,
            clock: None,
        }));
        let (control, controls) = mpsc::channel(8);
        let name = sandbox.name.clone();
        let play = Play {
            state: state.clone(),
            sandbox,
            scenario,
            started_by: started_by.to_owned(),
            status: status.clone(),
            clock: Clock {
                base_ms: 0,
                since: Instant::now(),
                speed,
                playing: true,
            },
            applied: 0,
            shift: chrono::Duration::zero(),
            stopped: false,
        };
        if let Some(previous) = self
            .plays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.clone(), Handle { control, status })
        {
            let (done, _) = oneshot::channel();
            let _ = previous.control.try_send((Control::Stop, done));
        }
        // The entry stays when the play ends (finished, stopped or failed), so its status can
        // still be read; the sandbox's next play replaces it.
        tokio::spawn(play.run(controls));
    }
}

struct Play {
    state: AppState,
    sandbox: Sandbox,
    scenario: Arc<Scenario>,
    started_by: String,
    status: Arc<Mutex<PlayStatus>>,
    clock: Clock,
    /// Changes applied.
    applied: usize,
    /// How far the scenario's times are moved: from its window's start to this play's start.
    shift: chrono::Duration,
    /// Ended by `stop`.
    stopped: bool,
}

impl Play {
    async fn run(mut self, mut controls: mpsc::Receiver<(Control, oneshot::Sender<()>)>) {
        // Every play starts from the scenario's start, its times moved to this moment.
        self.shift = shift_to_now(&self.scenario);
        if let Err(error) = self.restart().await {
            self.clock.playing = false;
            self.report(Some(error.to_string()));
            return;
        }
        self.clock.set(0);
        loop {
            self.report(None);
            let next = self.scenario.events.get(self.applied).cloned();
            let due = next
                .as_ref()
                .and_then(|change| self.clock.due(change.offset_ms));
            let wait = async {
                match due {
                    Some(due) => tokio::time::sleep_until(due.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = wait => {
                    if let Some(change) = next
                        && let Err(error) = self.apply(&change).await
                    {
                        self.clock.playing = false;
                        self.report(Some(error.to_string()));
                        tracing::warn!(sandbox = %self.sandbox.name, %error, "scenario play stopped");
                    }
                }
                received = controls.recv() => {
                    let Some((control, done)) = received else {
                        return;
                    };
                    if let Err(error) = self.obey(control).await {
                        self.clock.playing = false;
                        self.report(Some(error.to_string()));
                    } else {
                        self.report(None);
                    }
                    let _ = done.send(());
                    if control == Control::Stop {
                        return;
                    }
                }
            }
        }
    }

    async fn obey(&mut self, control: Control) -> Result<(), PlayError> {
        match control {
            Control::Play { speed } => {
                let at = self.clock.now_ms();
                self.clock.speed = speed;
                self.clock.playing = true;
                self.clock.set(at);
            }
            Control::Pause => {
                let at = self.clock.now_ms();
                self.clock.playing = false;
                self.clock.set(at);
            }
            Control::Seek { offset_ms } => {
                let target = offset_ms.clamp(0, self.scenario.manifest.duration_ms);
                let reached = self
                    .applied
                    .checked_sub(1)
                    .map_or(-1, |last| self.scenario.events[last].offset_ms);
                if target < reached || (target < self.clock.now_ms() && self.applied > 0) {
                    self.restart().await?;
                }
                while let Some(change) = self.scenario.events.get(self.applied).cloned() {
                    if change.offset_ms > target {
                        break;
                    }
                    self.apply(&change).await?;
                }
                self.clock.set(target);
            }
            Control::Stop => {
                self.clock.playing = false;
                self.stopped = true;
            }
        }
        Ok(())
    }

    /// Back to the start: a new run of the sandbox with the starting state written again.
    async fn restart(&mut self) -> Result<(), PlayError> {
        let pool = self.state.store.pool().clone();
        let (sandbox, _) = sandbox::reset(&pool, &self.sandbox.name)
            .await?
            .ok_or_else(|| {
                PlayError::Write(format!("the sandbox `{}` was deleted", self.sandbox.name))
            })?;
        self.sandbox = sandbox;
        write_start(
            &self.state,
            &self.sandbox,
            &self.scenario,
            self.shift,
            &self.started_by,
        )
        .await?;
        self.applied = 0;
        Ok(())
    }

    async fn apply(&mut self, change: &Change) -> Result<(), PlayError> {
        let scoped = self.state.within(self.sandbox.clone());
        let (resource_type, id) = target(&change.resource_type, &change.id)?;
        let entry = match (&change.kind, &change.resource) {
            (ChangeKind::Delete, _) | (_, None) => {
                Entry::request(Method::Delete, Target::Instance(resource_type, id))
            }
            (_, Some(resource)) => Entry {
                body: Some(shifted(resource, self.shift)),
                ..Entry::request(Method::Put, Target::Instance(resource_type, id))
            },
        };
        let context = context(&scoped, &self.scenario, &self.started_by);
        crate::transaction::run(&scoped, &player(), &context, vec![entry], Scope::Request)
            .await
            .map_err(|failure| {
                PlayError::Write(format!(
                    "{} {}/{} at {} ms could not be applied: {}",
                    change.kind.as_str(),
                    change.resource_type,
                    change.id,
                    change.offset_ms,
                    failure.error
                ))
            })?;
        self.applied += 1;
        Ok(())
    }

    fn report(&self, error: Option<String>) {
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        status.speed = self.clock.speed;
        status.playing = self.clock.playing;
        status.clock_ms = self.clock.now_ms().min(self.scenario.manifest.duration_ms);
        status.clock = Some(self.clock);
        status.applied = self.applied;
        status.finished = self.applied == self.scenario.events.len();
        if error.is_some() {
            status.error = error;
        }
        status.state = if status.error.is_some() {
            PlayState::Failed
        } else if self.stopped {
            PlayState::Stopped
        } else if status.finished {
            PlayState::Finished
        } else if self.clock.playing {
            PlayState::Playing
        } else {
            PlayState::Paused
        };
        // A finished, stopped or failed play has no moving clock.
        status.playing = status.state == PlayState::Playing;
    }
}

/// How far a scenario's times are moved so that it happens now.
pub fn shift_to_now(scenario: &Scenario) -> chrono::Duration {
    Utc::now() - scenario.manifest.window_start
}

/// Writes the scenario's starting state into the sandbox, as one transaction.
pub async fn write_start(
    state: &AppState,
    sandbox: &Sandbox,
    scenario: &Scenario,
    shift: chrono::Duration,
    started_by: &str,
) -> Result<(), PlayError> {
    if scenario.start.is_empty() {
        return Ok(());
    }
    let scoped = state.within(sandbox.clone());
    let mut entries = Vec::with_capacity(scenario.start.len());
    for (index, resource) in scenario.start.iter().enumerate() {
        let names = (
            resource["resourceType"].as_str().unwrap_or_default(),
            resource["id"].as_str().unwrap_or_default(),
        );
        let (resource_type, id) = target(names.0, names.1)?;
        entries.push(Entry {
            index,
            body: Some(shifted(resource, shift)),
            ..Entry::request(Method::Put, Target::Instance(resource_type, id))
        });
    }
    let context = context(&scoped, scenario, started_by);
    crate::transaction::run(&scoped, &player(), &context, entries, Scope::Bundle)
        .await
        .map_err(|failure| {
            PlayError::Write(format!(
                "the scenario's starting state could not be written (entry {:?}): {}",
                failure.index, failure.error
            ))
        })?;
    Ok(())
}

fn target(
    resource_type: &str,
    id: &str,
) -> Result<(fhir_model::ResourceType, fhir_model::ResourceId), PlayError> {
    let resource_type = fhir_model::ResourceType::parse(resource_type)
        .map_err(|error| PlayError::Scenario(error.to_string()))?;
    let id = fhir_model::ResourceId::parse(id)
        .map_err(|error| PlayError::Scenario(error.to_string()))?;
    Ok((resource_type, id))
}

/// Who writes a scenario's changes: the scenario player, a backend of this server.
fn player() -> Principal {
    Principal {
        subject: "scenario-player".to_owned(),
        client_id: "wardline-scenario-player".to_owned(),
        scopes: ScopeSet::parse("system/*.cruds").unwrap_or_default(),
        ..Principal::unchecked()
    }
}

/// The metadata of a scenario's writes: the sandbox, and why (which scenario, for whom).
fn context(scoped: &AppState, scenario: &Scenario, started_by: &str) -> event_store::CommitContext {
    let mut context = commit_context(
        &player(),
        &HeaderMap::new(),
        None,
        &scoped.settings.proxies,
        crate::request::now(),
    );
    context.metadata.sandbox = scoped.sandbox_tag();
    context.metadata.reason = Some(format!(
        "scenario {} v{} played by {started_by}",
        scenario.manifest.name, scenario.manifest.version
    ));
    context
}
