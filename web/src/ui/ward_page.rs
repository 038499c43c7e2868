//! The ward dashboard page: subscribes to the ward's events, loads the ward from the FHIR API,
//! and keeps one [`Ward`] up to date from both; in whichever view of the record the route
//! names ([`View`]).
//!
//! The subscription starts before the load so nothing written in between is missed; the
//! [`Ward`] takes versions in any order. The first load asks for the ward, its beds and the
//! stays on them (with their patients); every patient who appears in a bed, then or later by an
//! admission event, has their chart (vital signs, open orders and tasks) loaded once. When the
//! notifier cannot replay what a dropped connection missed, the page starts over: a new
//! [`Ward`], a new load, and answers of the old load dropped by their generation number.
//!
//! The past is loaded once and never subscribed to: it does not change. A sandbox's ward reads
//! the sandbox's base and feed, and asks every few seconds how the sandbox stands: a reset, or
//! a play starting or seeking back, begins a new run of it (the feed does not say so), and the
//! page then starts over, so a class never watches the remains of an earlier run.

use futures::future::{try_join_all, try_join3};
use gloo_net::http::Method;
use gloo_timers::callback::Interval;
use serde_json::Value;
use yew::prelude::*;

use super::api::{self, ApiError};
use super::banners::{past_banner, sandbox_banner};
use super::bed_card::{bed_card, work_item};
use super::navigate;
use super::socket::{LiveUpdate, Subscription, subscribe};
use super::time_bar::TimeBar;
use crate::live::ConnectionState;
use crate::orders::OrderKind;
use crate::queries;
use crate::route::Route;
use crate::teaching::{self, Sandbox};
use crate::view::View;
use crate::ward::Ward;

/// How often a sandbox's ward asks how the sandbox stands.
const SANDBOX_POLL_MS: u32 = 2_000;

#[derive(Properties, PartialEq)]
pub struct Props {
    /// The ward's Location id.
    pub ward: String,
    /// The record shown.
    pub view: View,
}

pub enum Msg {
    /// Resources found by a load of `generation`; `first` for the ward, beds and stays, with
    /// the sandbox as it stood when the load began (in a sandbox).
    Found {
        generation: u32,
        resources: Vec<Value>,
        first: bool,
        sandbox: Option<Sandbox>,
    },
    Failed {
        generation: u32,
        error: ApiError,
    },
    Live(LiveUpdate),
    /// Start over: the button under a failed load.
    Reload,
    /// Time to ask how the sandbox stands.
    Poll,
    /// How the sandbox stands.
    Polled(Result<Sandbox, ApiError>),
}

pub struct WardPage {
    ward: Ward,
    view: View,
    /// Bumped by each fresh start; answers to an earlier one are dropped.
    generation: u32,
    /// Whether the first load has arrived (until then the page says it is loading).
    loaded: bool,
    problem: Option<String>,
    connection: ConnectionState,
    /// None in the past, which is not live.
    _subscription: Option<Subscription>,
    /// In a sandbox: the sandbox as last asked, the run the ward was loaded from, and the timer
    /// that asks.
    sandbox: Option<Sandbox>,
    loaded_run: Option<i64>,
    polling: bool,
    _poll: Option<Interval>,
}

impl Component for WardPage {
    type Message = Msg;
    type Properties = Props;

    fn create(ctx: &Context<Self>) -> Self {
        let Props { ward, view } = ctx.props();
        let subscription = view.feed().map(|feed| {
            subscribe(
                feed,
                view.subscriptions(ward),
                ctx.link().callback(Msg::Live),
            )
        });
        let poll = view.sandbox().map(|_| {
            let link = ctx.link().clone();
            Interval::new(SANDBOX_POLL_MS, move || link.send_message(Msg::Poll))
        });
        let mut page = WardPage {
            ward: Ward::new(ward.clone()),
            view: view.clone(),
            generation: 0,
            loaded: false,
            problem: None,
            connection: ConnectionState::Connecting,
            _subscription: subscription,
            sandbox: None,
            loaded_run: None,
            polling: false,
            _poll: poll,
        };
        page.start_over(ctx);
        page
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Found {
                generation,
                resources,
                first,
                sandbox,
            } => {
                if generation != self.generation {
                    return false;
                }
                for resource in &resources {
                    self.ward.apply(resource);
                }
                self.loaded |= first;
                if let Some(sandbox) = sandbox {
                    self.loaded_run = Some(sandbox.run);
                    self.sandbox = Some(sandbox);
                }
                self.chart_new_patients(ctx);
                true
            }
            Msg::Failed { generation, error } => {
                if generation != self.generation {
                    return false;
                }
                self.problem = Some(format!("Loading the ward failed: {error}."));
                true
            }
            Msg::Live(LiveUpdate::State(state)) => {
                let changed = self.connection != state;
                self.connection = state;
                changed
            }
            Msg::Live(LiveUpdate::Event(event)) => {
                let changed = self.ward.apply_event(&event);
                self.chart_new_patients(ctx);
                changed
            }
            Msg::Live(LiveUpdate::Refused(message)) => {
                self.problem = Some(format!("The notifier refused the subscription: {message}."));
                true
            }
            Msg::Live(LiveUpdate::Reload) | Msg::Reload => {
                self.start_over(ctx);
                true
            }
            Msg::Poll => {
                if let (Some(name), false) = (self.view.sandbox(), self.polling) {
                    self.polling = true;
                    let path = teaching::one_sandbox(name);
                    ctx.link()
                        .send_future(async move { Msg::Polled(sandbox_of(&path).await) });
                }
                false
            }
            Msg::Polled(answer) => {
                self.polling = false;
                match answer {
                    Ok(sandbox) => {
                        let new_run = self.loaded_run.is_some_and(|run| run != sandbox.run);
                        self.sandbox = Some(sandbox);
                        if new_run && self.loaded {
                            self.start_over(ctx);
                        }
                        true
                    }
                    Err(ApiError::Status(404, _)) => {
                        self.problem = Some("This sandbox no longer exists.".to_owned());
                        true
                    }
                    // A missed answer: the next one will do.
                    Err(_) => false,
                }
            }
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let beds = self.ward.beds();
        let occupied = beds.iter().filter(|view| view.occupant.is_some()).count();
        let alerts = beds
            .iter()
            .filter_map(|view| view.occupant?.vitals?.assessment())
            .filter(|assessment| assessment.alert)
            .count();
        let work = self.ward.work();
        let record = &self.view;
        html! {
            <section class="ward-page" data-ward={self.ward.id().to_owned()}>
                { self.banner() }
                <div class="page-head">
                    <h1>{ self.ward.name() }</h1>
                    if self.loaded {
                        <p class="ward-summary">
                            { format!("{occupied} of {} beds occupied", beds.len()) }
                            if alerts > 0 {
                                <span class="summary-alerts">{ format!(" · {alerts} NEWS2 alert{}", plural(alerts)) }</span>
                            }
                        </p>
                    }
                    if self.view.feed().is_some() {
                        { connection_indicator(self.connection) }
                    }
                </div>
                if self.view.sandbox().is_none() {
                    <TimeBar at={self.view.past()} on_travel={self.travel()} />
                }
                if let Some(problem) = &self.problem {
                    <div class="problem" role="alert">
                        { problem }
                        <button type="button" onclick={ctx.link().callback(|_| Msg::Reload)}>{ "Reload the ward" }</button>
                    </div>
                }
                if !self.loaded {
                    if self.problem.is_none() {
                        <p class="loading">{ "Loading the ward…" }</p>
                    }
                } else {
                    <div class="ward-layout">
                        <div class="beds">
                            { for beds.iter().map(|bed| bed_card(bed, record)) }
                        </div>
                        <aside class="work-list" aria-label="Orders and tasks">
                            <h2>{ "Orders and tasks" }</h2>
                            if work.is_empty() {
                                <p class="empty-note">{ "No open orders or tasks." }</p>
                            } else {
                                <ul>
                                    { for work.iter().map(|item| work_item(&self.ward, item, record)) }
                                </ul>
                            }
                        </aside>
                    </div>
                }
            </section>
        }
    }
}

impl WardPage {
    /// Forgets everything and loads the ward again (in a sandbox, first asking which run it
    /// is at, so a run that begins during the load is noticed by the next poll).
    fn start_over(&mut self, ctx: &Context<Self>) {
        self.ward = Ward::new(self.ward.id().to_owned());
        self.generation += 1;
        self.loaded = false;
        self.problem = None;
        let generation = self.generation;
        let ward = self.ward.id().to_owned();
        let view = self.view.clone();
        ctx.link().send_future(async move {
            let sandbox = match view.sandbox() {
                Some(name) => match sandbox_of(&teaching::one_sandbox(name)).await {
                    Ok(sandbox) => Some(sandbox),
                    Err(error) => return Msg::Failed { generation, error },
                },
                None => None,
            };
            match first_load(&view.fhir_base(), &ward).await {
                Ok(resources) => Msg::Found {
                    generation,
                    resources,
                    first: true,
                    sandbox,
                },
                Err(error) => Msg::Failed { generation, error },
            }
        });
    }

    /// Loads the charts of patients who have appeared in a bed since the last call.
    fn chart_new_patients(&mut self, ctx: &Context<Self>) {
        let patients = self.ward.take_uncharted();
        if patients.is_empty() {
            return;
        }
        let unknown: Vec<String> = patients
            .iter()
            .filter(|id| self.ward.patient(id).is_none())
            .cloned()
            .collect();
        let generation = self.generation;
        let base = self.view.fhir_base();
        ctx.link().send_future(async move {
            match charts(&base, &patients, &unknown).await {
                Ok(resources) => Msg::Found {
                    generation,
                    resources,
                    first: false,
                    sandbox: None,
                },
                Err(error) => Msg::Failed { generation, error },
            }
        });
    }

    /// The banner of the past or of the sandbox; nothing for the live record.
    fn banner(&self) -> Html {
        match &self.view {
            View::Live => Html::default(),
            View::Past(at) => past_banner(*at, self.travel().reform(|_| None)),
            View::Sandbox(name) => sandbox_banner(name, self.sandbox.as_ref()),
        }
    }

    /// Goes to this ward at another instant (`None`: now).
    fn travel(&self) -> Callback<Option<i64>> {
        let ward = self.ward.id().to_owned();
        Callback::from(move |at: Option<i64>| {
            let view = at.map_or(View::Live, View::Past);
            navigate(&Route::ward(&ward).in_view(view));
        })
    }
}

/// The ward's Location, its beds, and the stays on them with their patients, from `base`.
pub async fn first_load(base: &str, ward: &str) -> Result<Vec<Value>, ApiError> {
    let (location, beds, stays) = try_join3(
        api::get(base, &queries::ward(ward)),
        api::search(base, &queries::beds(ward)),
        api::search(base, &queries::stays(ward)),
    )
    .await?;
    Ok(std::iter::once(location).chain(beds).chain(stays).collect())
}

/// The vital signs and open orders and tasks of `patients`, and the Patient resources of
/// those of them in `unknown`.
async fn charts(
    base: &str,
    patients: &[String],
    unknown: &[String],
) -> Result<Vec<Value>, ApiError> {
    let demographics = async {
        if unknown.is_empty() {
            Ok(Vec::new())
        } else {
            api::search(base, &queries::patients(unknown)).await
        }
    };
    let vitals = try_join_all(
        patients
            .iter()
            .map(|patient| async move { api::search(base, &queries::vital_signs(patient)).await }),
    );
    let orders =
        try_join_all(OrderKind::ALL.map(|kind| async move {
            api::search(base, &queries::open_orders(kind, patients)).await
        }));
    let (demographics, vitals, orders) = try_join3(demographics, vitals, orders).await?;
    Ok(demographics
        .into_iter()
        .chain(vitals.into_iter().flatten())
        .chain(orders.into_iter().flatten())
        .collect())
}

/// One sandbox as the teaching API describes it.
async fn sandbox_of(path: &str) -> Result<Sandbox, ApiError> {
    let answer = api::teaching(Method::GET, path, None).await?;
    serde_json::from_value(answer).map_err(|error| ApiError::Network(error.to_string()))
}

fn connection_indicator(state: ConnectionState) -> Html {
    html! {
        <span id="connection" class={classes!("connection", state.hook())} data-state={state.hook()}
              role="status" title="Live updates from the notifier">
            { state.label() }
        </span>
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}
