//! The teaching page (`#/teaching`): the sandboxes and, for instructors and admins, the
//! scenarios, the forms that make both ([`super::teaching_forms`]) and, for each sandbox,
//! reset, delete and the play controls of its scenario: play at a speed, pause, a seek slider
//! over the scenario's length, stop, with the scenario clock (`mm:ss / mm:ss`) and how many
//! of its changes are applied.
//!
//! The server keeps the clock; the page asks for it (`GET .../play`) every second while a play
//! runs, and not otherwise. Students see their classes' sandboxes and open their wards; other
//! users see every sandbox; only those who manage teaching see the controls (the server
//! refuses everyone else anyway).
//!
//! Hooks: `.sandbox[data-sandbox="<name>"]` (with `data-run`, `data-playing`,
//! `data-finished`) holding `a.open-ward`, `select.play-speed`, `button.play`, `.pause`,
//! `.stop`, `input.seek`, `.play-clock`, `.play-applied`, `.play-state`, `button.reset`,
//! `.delete` (then `.confirm-delete`); `.scenario[data-scenario="<name>"][data-version]`.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use gloo_net::http::Method;
use gloo_timers::callback::Interval;
use serde_json::{Value, json};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use super::api::{self, ApiError};
use super::moment;
use super::teaching_forms::{NewSandboxForm, RecordForm};
use crate::fhir;
use crate::route::{DEFAULT_WARD, Route};
use crate::teaching::{self, PlayStatus, SPEEDS, Sandbox, Scenario, clock};
use crate::tokens::User;
use crate::view::View;

/// How often a running play's clock is asked for.
const POLL_MS: u32 = 1_000;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub user: User,
}

/// What a button asks of a sandbox.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    Play,
    Pause,
    Seek(i64),
    Stop,
    Reset,
    Delete,
}

impl Action {
    fn label(self) -> &'static str {
        match self {
            Action::Play => "Playing",
            Action::Pause => "Pausing",
            Action::Seek(_) => "Seeking",
            Action::Stop => "Stopping",
            Action::Reset => "Resetting",
            Action::Delete => "Deleting",
        }
    }
}

pub enum Msg {
    Scenarios(Result<Vec<Scenario>, ApiError>),
    Sandboxes(Result<Vec<Sandbox>, ApiError>),
    /// A sandbox made by the form.
    Created(Sandbox),
    /// A scenario recorded by the form.
    Recorded(Scenario),
    Problem(String),
    Speed(String, u32),
    /// The seek slider is being dragged.
    Seeking(String, i64),
    Act(String, Action),
    Done(String, Action, Result<Value, ApiError>),
    ConfirmDelete(Option<String>),
    Tick,
    Polled(String, Result<PlayStatus, ApiError>),
}

pub struct TeachingPage {
    scenarios: Option<Rc<Vec<Scenario>>>,
    sandboxes: Option<Vec<Sandbox>>,
    problem: Option<String>,
    notice: Option<String>,
    /// The speed chosen for each sandbox.
    speeds: HashMap<String, u32>,
    /// The seek slider being dragged: whose, and where.
    seeking: Option<(String, i64)>,
    /// Sandboxes whose play was stopped here (the status of a stopped play reads like a paused
    /// one's; a control of it would be refused).
    stopped: HashSet<String>,
    /// Sandboxes with a request under way: their buttons wait.
    busy: HashSet<String>,
    confirm_delete: Option<String>,
    /// While a play runs: the timer that asks for its clock, and the asks under way.
    poll: Option<Interval>,
    polling: HashSet<String>,
}

impl Component for TeachingPage {
    type Message = Msg;
    type Properties = Props;

    fn create(ctx: &Context<Self>) -> Self {
        ctx.link().send_future(async {
            let answer = api::teaching(Method::GET, teaching::SANDBOXES, None).await;
            Msg::Sandboxes(answer.map(|list| teaching::sandboxes(&list)))
        });
        ctx.link().send_future(async {
            let answer = api::teaching(Method::GET, teaching::SCENARIOS, None).await;
            Msg::Scenarios(answer.map(|list| teaching::scenarios(&list)))
        });
        TeachingPage {
            scenarios: None,
            sandboxes: None,
            problem: None,
            notice: None,
            speeds: HashMap::new(),
            seeking: None,
            stopped: HashSet::new(),
            busy: HashSet::new(),
            confirm_delete: None,
            poll: None,
            polling: HashSet::new(),
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Scenarios(Ok(scenarios)) => self.scenarios = Some(Rc::new(scenarios)),
            Msg::Sandboxes(Ok(sandboxes)) => self.sandboxes = Some(sandboxes),
            Msg::Scenarios(Err(error)) | Msg::Sandboxes(Err(error)) => {
                self.problem = Some(format!("The teaching list could not be loaded: {error}."));
            }
            Msg::Created(sandbox) => {
                self.notice = Some(format!("Sandbox {} created.", sandbox.name));
                self.problem = None;
                let list = self.sandboxes.get_or_insert_with(Vec::new);
                list.retain(|other| other.name != sandbox.name);
                list.push(sandbox);
                list.sort_by(|a, b| a.name.cmp(&b.name));
            }
            Msg::Recorded(scenario) => {
                self.notice = Some(format!(
                    "Scenario {} v{} recorded.",
                    scenario.name, scenario.version
                ));
                self.problem = None;
                let mut list = self.scenarios.as_deref().cloned().unwrap_or_default();
                list.push(scenario);
                list.sort_by(|a, b| a.name.cmp(&b.name).then(b.version.cmp(&a.version)));
                self.scenarios = Some(Rc::new(list));
            }
            Msg::Problem(problem) => {
                self.problem = Some(problem);
                self.notice = None;
            }
            Msg::Speed(name, speed) => {
                self.speeds.insert(name.clone(), speed);
                // A running play changes its speed at once.
                if self.play_of(&name).is_some_and(PlayStatus::running) {
                    self.act(ctx, name, Action::Play);
                }
            }
            Msg::Seeking(name, offset) => self.seeking = Some((name, offset)),
            Msg::Act(name, action) => self.act(ctx, name, action),
            Msg::Done(name, action, answer) => self.done(name, action, answer),
            Msg::ConfirmDelete(name) => self.confirm_delete = name,
            Msg::Tick => {
                for name in self.running() {
                    if self.polling.insert(name.clone()) {
                        let path = teaching::sandbox_path(&name, "play");
                        ctx.link().send_future(async move {
                            let answer = api::teaching(Method::GET, &path, None).await;
                            Msg::Polled(name, answer.and_then(read))
                        });
                    }
                }
                return false;
            }
            Msg::Polled(name, answer) => {
                self.polling.remove(&name);
                match answer {
                    Ok(status) => self.set_play(&name, Some(status)),
                    // The play is gone (the command service restarted): nothing to show.
                    Err(ApiError::Status(404, _)) => self.set_play(&name, None),
                    Err(_) => return false,
                }
            }
        }
        self.keep_polling(ctx);
        true
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let user = &ctx.props().user;
        let manage = user.teaches();
        let title = if manage {
            "Teaching"
        } else {
            "Class sandboxes"
        };
        let link = ctx.link();
        html! {
            <section class="teaching-page">
                <div class="page-head"><h1>{ title }</h1></div>
                if let Some(problem) = &self.problem {
                    <div id="teaching-problem" class="problem" role="alert">{ problem }</div>
                }
                if let Some(notice) = &self.notice {
                    <div id="teaching-notice" class="notice-line" role="status">{ notice }</div>
                }
                <section class="teaching-section" aria-label="Sandboxes">
                    <h2>{ "Sandboxes" }</h2>
                    { self.sandbox_list(ctx, user) }
                </section>
                if manage {
                    <section class="teaching-section" aria-label="Scenarios">
                        <h2>{ "Scenarios" }</h2>
                        { self.scenario_list() }
                    </section>
                    <div class="teaching-forms">
                        <NewSandboxForm scenarios={self.scenarios.clone().unwrap_or_default()}
                                        on_created={link.callback(Msg::Created)}
                                        on_problem={link.callback(Msg::Problem)} />
                        <RecordForm on_recorded={link.callback(Msg::Recorded)}
                                    on_problem={link.callback(Msg::Problem)} />
                    </div>
                }
            </section>
        }
    }
}

impl TeachingPage {
    fn play_of(&self, name: &str) -> Option<&PlayStatus> {
        self.sandboxes
            .iter()
            .flatten()
            .find(|sandbox| sandbox.name == name)?
            .play
            .as_ref()
    }

    fn set_play(&mut self, name: &str, play: Option<PlayStatus>) {
        if let Some(sandbox) = self
            .sandboxes
            .iter_mut()
            .flatten()
            .find(|sandbox| sandbox.name == name)
        {
            sandbox.play = play;
        }
    }

    /// The sandboxes whose play runs now.
    fn running(&self) -> Vec<String> {
        self.sandboxes
            .iter()
            .flatten()
            .filter(|sandbox| sandbox.play.as_ref().is_some_and(PlayStatus::running))
            .filter(|sandbox| !self.is_stopped(sandbox))
            .map(|sandbox| sandbox.name.clone())
            .collect()
    }

    /// Asks for the clocks every second while a play runs, and stops asking when none does.
    fn keep_polling(&mut self, ctx: &Context<Self>) {
        match (self.running().is_empty(), self.poll.is_some()) {
            (false, false) => {
                let link = ctx.link().clone();
                self.poll = Some(Interval::new(POLL_MS, move || link.send_message(Msg::Tick)));
            }
            (true, true) => self.poll = None,
            _ => {}
        }
    }

    /// Sends what a button asks.
    fn act(&mut self, ctx: &Context<Self>, name: String, action: Action) {
        let speed = self.speed(&name);
        let (method, path, body) = match action {
            Action::Play => (
                Method::POST,
                teaching::sandbox_path(&name, "play"),
                Some(json!({"speed": speed})),
            ),
            Action::Pause => (Method::POST, teaching::sandbox_path(&name, "pause"), None),
            Action::Seek(offset) => (
                Method::POST,
                teaching::sandbox_path(&name, "seek"),
                Some(json!({"offsetMs": offset})),
            ),
            Action::Stop => (Method::POST, teaching::sandbox_path(&name, "stop"), None),
            Action::Reset => (Method::POST, teaching::sandbox_path(&name, "reset"), None),
            Action::Delete => (Method::DELETE, teaching::one_sandbox(&name), None),
        };
        self.busy.insert(name.clone());
        self.confirm_delete = None;
        ctx.link().send_future(async move {
            let answer = api::teaching(method, &path, body.as_ref()).await;
            Msg::Done(name, action, answer)
        });
    }

    /// Takes in the answer to a button.
    fn done(&mut self, name: String, action: Action, answer: Result<Value, ApiError>) {
        self.busy.remove(&name);
        if matches!(action, Action::Seek(_)) {
            self.seeking = None;
        }
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                if matches!(error, ApiError::Status(404, _))
                    && matches!(action, Action::Pause | Action::Seek(_) | Action::Stop)
                {
                    self.stopped.insert(name.clone());
                }
                self.problem = Some(format!("{} {name} failed: {error}.", action.label()));
                return;
            }
        };
        self.problem = None;
        match action {
            Action::Delete => {
                if let Some(list) = &mut self.sandboxes {
                    list.retain(|sandbox| sandbox.name != name);
                }
                self.notice = Some(format!("Sandbox {name} deleted."));
            }
            Action::Reset => {
                if let (Ok(sandbox), Some(list)) = (read::<Sandbox>(answer), &mut self.sandboxes) {
                    for entry in list.iter_mut().filter(|entry| entry.name == name) {
                        *entry = sandbox.clone();
                    }
                }
                self.stopped.insert(name.clone());
                self.notice = Some(format!("Sandbox {name} is back at its start."));
            }
            Action::Play | Action::Pause | Action::Seek(_) | Action::Stop => {
                if action == Action::Stop {
                    self.stopped.insert(name.clone());
                } else {
                    self.stopped.remove(&name);
                }
                self.set_play(&name, read(answer).ok());
                self.notice = None;
            }
        }
    }

    /// Whether the sandbox's play was stopped (here, or as the server says).
    fn is_stopped(&self, sandbox: &Sandbox) -> bool {
        self.stopped.contains(&sandbox.name)
            || sandbox.play.as_ref().is_some_and(PlayStatus::is_stopped)
    }

    fn speed(&self, name: &str) -> u32 {
        self.speeds.get(name).copied().unwrap_or_else(|| {
            self.play_of(name)
                .map_or(teaching::DEFAULT_SPEED, |play| play.speed.round() as u32)
        })
    }

    fn sandbox_list(&self, ctx: &Context<Self>, user: &User) -> Html {
        let Some(sandboxes) = &self.sandboxes else {
            return html! { <p class="loading">{ "Loading the sandboxes…" }</p> };
        };
        let shown = teaching::visible(sandboxes, user);
        if shown.is_empty() {
            let note = if user.is_student() {
                "None of your classes has a sandbox yet."
            } else {
                "No sandbox yet."
            };
            return html! { <p class="empty-note" id="no-sandboxes">{ note }</p> };
        }
        html! {
            <div class="sandbox-list">
                { for shown.into_iter().map(|sandbox| self.sandbox_card(ctx, sandbox, user.teaches())) }
            </div>
        }
    }

    fn sandbox_card(&self, ctx: &Context<Self>, sandbox: &Sandbox, manage: bool) -> Html {
        let name = sandbox.name.clone();
        let link = ctx.link();
        let busy = self.busy.contains(&name);
        let act = |action: Action| {
            let name = name.clone();
            link.callback(move |_: MouseEvent| Msg::Act(name.clone(), action))
        };
        let ward = Route::ward(DEFAULT_WARD)
            .in_view(View::Sandbox(name.clone()))
            .href();
        let play = sandbox.play.as_ref();
        let confirming = self.confirm_delete.as_deref() == Some(name.as_str());
        html! {
            <article class="sandbox" data-sandbox={name.clone()} data-run={sandbox.run.to_string()}
                     data-playing={(play.is_some_and(PlayStatus::running) && !self.is_stopped(sandbox)).to_string()}
                     data-finished={play.is_some_and(|play| play.finished).to_string()}>
                <header class="sandbox-head">
                    <h3>{ &name }</h3>
                    if let Some(class) = &sandbox.class {
                        <span class="sandbox-class">{ format!("class {class}") }</span>
                    }
                    <a class="open-ward" href={ward}>{ "Open its ward" }</a>
                </header>
                if let Some(description) = &sandbox.description {
                    <p class="sandbox-description">{ description }</p>
                }
                <p class="sandbox-start">
                    { format!("Starts as {}", teaching::start_label(sandbox)) }
                    if let Some(by) = &sandbox.created_by {
                        { format!(" · made by {by}") }
                    }
                </p>
                if sandbox.scenario.is_some() {
                    { self.player(ctx, sandbox, manage) }
                }
                if manage {
                    <div class="sandbox-actions">
                        <button type="button" class="reset" disabled={busy} onclick={act(Action::Reset)}>{ "Reset" }</button>
                        if confirming {
                            <span class="confirm">{ format!("Delete {name} and what was written in it?") }</span>
                            <button type="button" class="confirm-delete danger" disabled={busy} onclick={act(Action::Delete)}>{ "Delete" }</button>
                            <button type="button" class="keep" onclick={link.callback(|_| Msg::ConfirmDelete(None))}>{ "Keep" }</button>
                        } else {
                            <button type="button" class="delete" disabled={busy}
                                    onclick={{ let name = name.clone(); link.callback(move |_| Msg::ConfirmDelete(Some(name.clone()))) }}>
                                { "Delete" }
                            </button>
                        }
                    </div>
                }
            </article>
        }
    }

    /// The scenario's clock, and for those who manage teaching, its controls.
    fn player(&self, ctx: &Context<Self>, sandbox: &Sandbox, manage: bool) -> Html {
        let name = sandbox.name.clone();
        let link = ctx.link();
        let play = sandbox.play.as_ref();
        let stopped = self.is_stopped(sandbox);
        let busy = self.busy.contains(&name);
        // A play that can still be paused, moved or stopped.
        let alive = !stopped && play.is_some_and(|play| !play.finished && play.error.is_none());
        let running = alive && play.is_some_and(|play| play.playing);
        let scenarios = self.scenarios.as_deref().map_or(&[][..], Vec::as_slice);
        let duration = teaching::duration_ms(sandbox, scenarios).unwrap_or(0);
        let at = match &self.seeking {
            Some((seeking, offset)) if *seeking == name => *offset,
            _ => play.map_or(0, |play| play.clock_ms),
        };
        let state = match play {
            _ if stopped => "stopped".to_owned(),
            Some(play) => play.state(),
            None => "not started".to_owned(),
        };
        let applied = play.map_or_else(
            || "no changes applied".to_owned(),
            |play| format!("{} / {} changes", play.applied, play.total),
        );
        let play_label = match play {
            Some(play) if alive && !play.playing => "Resume",
            Some(_) if !alive => "Play again",
            _ => "Play",
        };
        let speed = self.speed(&name);
        let on_speed = {
            let name = name.clone();
            link.callback(move |event: Event| {
                let select: HtmlSelectElement = event.target_unchecked_into();
                Msg::Speed(name.clone(), select.value().parse().unwrap_or(speed))
            })
        };
        let on_seeking = {
            let name = name.clone();
            link.callback(move |event: InputEvent| {
                let slider: HtmlInputElement = event.target_unchecked_into();
                Msg::Seeking(name.clone(), slider.value().parse().unwrap_or(0))
            })
        };
        let on_seek = {
            let name = name.clone();
            link.callback(move |event: Event| {
                let slider: HtmlInputElement = event.target_unchecked_into();
                Msg::Act(
                    name.clone(),
                    Action::Seek(slider.value().parse().unwrap_or(0)),
                )
            })
        };
        let act = |action: Action| {
            let name = name.clone();
            link.callback(move |_: MouseEvent| Msg::Act(name.clone(), action))
        };
        html! {
            <div class="player">
                if manage {
                    <div class="player-controls">
                        <select class="play-speed" onchange={on_speed} aria-label="Speed">
                            { for SPEEDS.iter().map(|option| html! {
                                <option value={option.to_string()} selected={*option == speed}>{ format!("{option}×") }</option>
                            }) }
                        </select>
                        <button type="button" class="play" disabled={busy} onclick={act(Action::Play)}>{ play_label }</button>
                        <button type="button" class="pause" disabled={busy || !running} onclick={act(Action::Pause)}>{ "Pause" }</button>
                        <button type="button" class="stop" disabled={busy || !alive} onclick={act(Action::Stop)}>{ "Stop" }</button>
                    </div>
                    <input type="range" class="seek" min="0" max={duration.to_string()} step="1000"
                           value={at.to_string()} disabled={busy || !alive}
                           oninput={on_seeking} onchange={on_seek} aria-label="Scenario time" />
                }
                <div class="player-status">
                    <span class="play-clock">{ format!("{} / {}", clock(at), clock(duration)) }</span>
                    <span class="play-applied">{ applied }</span>
                    <span class="play-state">{ state }</span>
                </div>
            </div>
        }
    }

    fn scenario_list(&self) -> Html {
        let Some(scenarios) = &self.scenarios else {
            return html! { <p class="loading">{ "Loading the scenarios…" }</p> };
        };
        if scenarios.is_empty() {
            return html! {
                <p class="empty-note">{ "No scenario yet: record one from the ward below, or import a file (POST /teaching/scenarios)." }</p>
            };
        }
        html! {
            <table class="scenario-list">
                <thead>
                    <tr>
                        <th>{ "Scenario" }</th><th>{ "Title" }</th><th>{ "Patients" }</th>
                        <th>{ "Length" }</th><th>{ "Window opened" }</th><th>{ "By" }</th>
                    </tr>
                </thead>
                <tbody>
                    { for scenarios.iter().map(|scenario| html! {
                        <tr class="scenario" data-scenario={scenario.name.clone()} data-version={scenario.version.to_string()}>
                            <td>{ format!("{} v{}", scenario.name, scenario.version) }</td>
                            <td>{ scenario.title.clone().unwrap_or_default() }</td>
                            <td>{ scenario.cohort.patients.len() }</td>
                            <td>{ clock(scenario.duration_ms) }</td>
                            <td>{ scenario.window_start.as_deref().and_then(fhir::parse_time).map(moment).unwrap_or_default() }</td>
                            <td>{ scenario.created_by.clone().unwrap_or_default() }</td>
                        </tr>
                    }) }
                </tbody>
            </table>
        }
    }
}

/// An API answer read as `T`.
fn read<T: serde::de::DeserializeOwned>(answer: Value) -> Result<T, ApiError> {
    serde_json::from_value(answer).map_err(|error| ApiError::Network(error.to_string()))
}
