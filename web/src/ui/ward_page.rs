//! The ward dashboard page: subscribes to the ward's events, loads the ward from the FHIR API,
//! and keeps one [`Ward`] up to date from both.
//!
//! The subscription starts before the load so nothing written in between is missed; the
//! [`Ward`] takes versions in any order. The first load asks for the ward, its beds and the
//! stays on them (with their patients); every patient who appears in a bed, then or later by an
//! admission event, has their chart (vital signs, open orders and tasks) loaded once. When the
//! notifier cannot replay what a dropped connection missed, the page starts over: a new
//! [`Ward`], a new load, and answers of the old load dropped by their generation number.

use futures::future::{try_join_all, try_join3};
use serde_json::Value;
use yew::prelude::*;

use super::api::{self, ApiError};
use super::bed_card::{bed_card, work_item};
use super::socket::{LiveUpdate, Subscription, subscribe};
use crate::live::ConnectionState;
use crate::orders::OrderKind;
use crate::queries;
use crate::ward::Ward;

#[derive(Properties, PartialEq)]
pub struct Props {
    /// The ward's Location id.
    pub ward: String,
}

pub enum Msg {
    /// Resources found by a load of `generation`; `first` for the ward, beds and stays.
    Found {
        generation: u32,
        resources: Vec<Value>,
        first: bool,
    },
    Failed {
        generation: u32,
        error: ApiError,
    },
    Live(LiveUpdate),
    /// Start over: the button under a failed load.
    Reload,
}

pub struct WardPage {
    ward: Ward,
    /// Bumped by each fresh start; answers to an earlier one are dropped.
    generation: u32,
    /// Whether the first load has arrived (until then the page says it is loading).
    loaded: bool,
    problem: Option<String>,
    connection: ConnectionState,
    _subscription: Subscription,
}

impl Component for WardPage {
    type Message = Msg;
    type Properties = Props;

    fn create(ctx: &Context<Self>) -> Self {
        let ward = ctx.props().ward.clone();
        let subscription = subscribe(ward.clone(), ctx.link().callback(Msg::Live));
        let mut page = WardPage {
            ward: Ward::new(ward),
            generation: 0,
            loaded: false,
            problem: None,
            connection: ConnectionState::Connecting,
            _subscription: subscription,
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
            } => {
                if generation != self.generation {
                    return false;
                }
                for resource in &resources {
                    self.ward.apply(resource);
                }
                self.loaded |= first;
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
        html! {
            <section class="ward-page" data-ward={self.ward.id().to_owned()}>
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
                    { connection_indicator(self.connection) }
                </div>
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
                            { for beds.iter().map(bed_card) }
                        </div>
                        <aside class="work-list" aria-label="Orders and tasks">
                            <h2>{ "Orders and tasks" }</h2>
                            if work.is_empty() {
                                <p class="empty-note">{ "No open orders or tasks." }</p>
                            } else {
                                <ul>
                                    { for work.iter().map(|item| work_item(&self.ward, item)) }
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
    /// Forgets everything and loads the ward again.
    fn start_over(&mut self, ctx: &Context<Self>) {
        self.ward = Ward::new(self.ward.id().to_owned());
        self.generation += 1;
        self.loaded = false;
        self.problem = None;
        let generation = self.generation;
        let ward = self.ward.id().to_owned();
        ctx.link().send_future(async move {
            match first_load(&ward).await {
                Ok(resources) => Msg::Found {
                    generation,
                    resources,
                    first: true,
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
        ctx.link().send_future(async move {
            match charts(&patients, &unknown).await {
                Ok(resources) => Msg::Found {
                    generation,
                    resources,
                    first: false,
                },
                Err(error) => Msg::Failed { generation, error },
            }
        });
    }
}

/// The ward's Location, its beds, and the stays on them with their patients.
async fn first_load(ward: &str) -> Result<Vec<Value>, ApiError> {
    let (location, beds, stays) = try_join3(
        api::get(&queries::ward(ward)),
        api::search(&queries::beds(ward)),
        api::search(&queries::stays(ward)),
    )
    .await?;
    Ok(std::iter::once(location).chain(beds).chain(stays).collect())
}

/// The vital signs and open orders and tasks of `patients`, and the Patient resources of
/// those of them in `unknown`.
async fn charts(patients: &[String], unknown: &[String]) -> Result<Vec<Value>, ApiError> {
    let demographics = async {
        if unknown.is_empty() {
            Ok(Vec::new())
        } else {
            api::search(&queries::patients(unknown)).await
        }
    };
    let vitals = try_join_all(
        patients
            .iter()
            .map(|patient| async move { api::search(&queries::vital_signs(patient)).await }),
    );
    let orders = try_join_all(
        OrderKind::ALL
            .map(|kind| async move { api::search(&queries::open_orders(kind, patients)).await }),
    );
    let (demographics, vitals, orders) = try_join3(demographics, vitals, orders).await?;
    Ok(demographics
        .into_iter()
        .chain(vitals.into_iter().flatten())
        .chain(orders.into_iter().flatten())
        .collect())
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
