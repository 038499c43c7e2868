//! The teaching page's two forms: a new sandbox (from a scenario, or from the live record now
//! or at a chosen moment) and a scenario recorded from the ward (patients picked from a ward's
//! current census or typed as ids, over a window between two moments). Each posts its request
//! and hands what the server made back to the page, which lists it.
//!
//! Hooks: `#new-sandbox` with `#sandbox-name`, `#sandbox-class`, `#sandbox-description`,
//! `#sandbox-start` (options `scenario:<name>:<version>`, `now`, `instant`), `#sandbox-instant`
//! and `#create-sandbox`; `#record-scenario` with `#scenario-name`, `#scenario-title`,
//! `#census-ward`, `input.census-patient[value="<id>"]`, `#scenario-patients`,
//! `#scenario-from`, `#scenario-to` and `#record`.

use std::collections::BTreeSet;
use std::rc::Rc;

use gloo_net::http::Method;
use serde_json::Value;
use wasm_bindgen_futures::spawn_local;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use super::api::{self, ApiError};
use super::ward_page::first_load;
use super::{local_input, now, parse_local_input};
use crate::route::WARDS;
use crate::teaching::{self, Sandbox, Scenario, Start};
use crate::ward::Ward;

/// The value of an input.
fn value_of(input: &NodeRef) -> String {
    input
        .cast::<HtmlInputElement>()
        .map(|input| input.value())
        .unwrap_or_default()
}

/// An API answer read as `T`.
fn read<T: serde::de::DeserializeOwned>(answer: Value) -> Result<T, ApiError> {
    serde_json::from_value(answer).map_err(|error| ApiError::Network(error.to_string()))
}

#[derive(Properties, PartialEq)]
pub struct NewSandboxProps {
    pub scenarios: Rc<Vec<Scenario>>,
    pub on_created: Callback<Sandbox>,
    pub on_problem: Callback<String>,
}

#[function_component]
pub fn NewSandboxForm(props: &NewSandboxProps) -> Html {
    let (name, class, description, instant) = (
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
    );
    // The start chosen; until someone chooses, the newest scenario (or now, without one).
    let chosen = use_state(|| None::<String>);
    let busy = use_state(|| false);
    let default_instant = use_state(|| local_input(now() - 3_600));
    let choice = (*chosen).clone().unwrap_or_else(|| {
        props
            .scenarios
            .first()
            .map_or_else(|| Start::Now.choice(), Scenario::choice)
    });
    let onchange = {
        let chosen = chosen.clone();
        Callback::from(move |event: Event| {
            let select: HtmlSelectElement = event.target_unchecked_into();
            chosen.set(Some(select.value()));
        })
    };
    let onsubmit = {
        let (name, class, description, instant) = (
            name.clone(),
            class.clone(),
            description.clone(),
            instant.clone(),
        );
        let (choice, busy) = (choice.clone(), busy.clone());
        let (on_created, on_problem) = (props.on_created.clone(), props.on_problem.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let start = match Start::from_choice(&choice, parse_local_input(&value_of(&instant))) {
                Ok(start) => start,
                Err(problem) => return on_problem.emit(format!("The sandbox: {problem}.")),
            };
            let body = teaching::new_sandbox(
                &value_of(&name),
                &value_of(&class),
                &value_of(&description),
                &start,
            );
            busy.set(true);
            let (name, busy, on_created, on_problem) = (
                name.clone(),
                busy.clone(),
                on_created.clone(),
                on_problem.clone(),
            );
            spawn_local(async move {
                let answer = api::teaching(Method::POST, teaching::SANDBOXES, Some(&body)).await;
                busy.set(false);
                match answer.and_then(read::<Sandbox>) {
                    Ok(sandbox) => {
                        if let Some(input) = name.cast::<HtmlInputElement>() {
                            input.set_value("");
                        }
                        on_created.emit(sandbox);
                    }
                    Err(error) => on_problem.emit(format!("The sandbox was not created: {error}.")),
                }
            });
        })
    };
    html! {
        <form id="new-sandbox" class="teaching-form" onsubmit={onsubmit}>
            <h2>{ "New sandbox" }</h2>
            <label>{ "Name" }
                <input id="sandbox-name" ref={name} required=true autocomplete="off"
                       placeholder="night-shift" title="lower-case letters, digits and -" />
            </label>
            <label>{ "Class" }
                <input id="sandbox-class" ref={class} autocomplete="off" placeholder="demo" />
            </label>
            <label>{ "Description" }
                <input id="sandbox-description" ref={description} autocomplete="off" />
            </label>
            <label>{ "Starts as" }
                <select id="sandbox-start" onchange={onchange}>
                    { for props.scenarios.iter().map(|scenario| {
                        let value = scenario.choice();
                        html! {
                            <option selected={value == choice} value={value.clone()}>
                                { format!("Scenario: {}", scenario.label()) }
                            </option>
                        }
                    }) }
                    <option value="now" selected={choice == "now"}>{ "The live record now" }</option>
                    <option value="instant" selected={choice == "instant"}>{ "The live record at…" }</option>
                </select>
            </label>
            if choice == "instant" {
                <label>{ "At" }
                    <input id="sandbox-instant" type="datetime-local" step="1" ref={instant}
                           value={(*default_instant).clone()} />
                </label>
            }
            <button id="create-sandbox" type="submit" disabled={*busy}>{ "Create sandbox" }</button>
        </form>
    }
}

#[derive(Properties, PartialEq)]
pub struct RecordProps {
    pub on_recorded: Callback<Scenario>,
    pub on_problem: Callback<String>,
}

/// A patient of a ward's census: (Patient id, "Bed 3 · Ann Smith").
type Occupant = (String, String);

#[derive(Debug, Clone, PartialEq)]
enum Census {
    Loading,
    Loaded(Vec<Occupant>),
    Failed(String),
}

#[function_component]
pub fn RecordForm(props: &RecordProps) -> Html {
    let (name, title, others, from, to) = (
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
    );
    let ward = use_state(|| WARDS[0].0.to_owned());
    let census = use_state(|| Census::Loading);
    let picked = use_state(BTreeSet::<String>::new);
    let busy = use_state(|| false);
    let default_from = use_state(|| local_input(now() - 3_600));
    {
        let census = census.clone();
        use_effect_with((*ward).clone(), move |ward| {
            census.set(Census::Loading);
            let ward = ward.clone();
            spawn_local(async move {
                census.set(match occupants(&ward).await {
                    Ok(occupants) => Census::Loaded(occupants),
                    Err(error) => Census::Failed(error.to_string()),
                });
            });
        });
    }
    let pick_ward = {
        let ward = ward.clone();
        Callback::from(move |event: Event| {
            let select: HtmlSelectElement = event.target_unchecked_into();
            ward.set(select.value());
        })
    };
    let toggle = {
        let picked = picked.clone();
        Callback::from(move |event: Event| {
            let checkbox: HtmlInputElement = event.target_unchecked_into();
            let mut now_picked = (*picked).clone();
            if checkbox.checked() {
                now_picked.insert(checkbox.value());
            } else {
                now_picked.remove(&checkbox.value());
            }
            picked.set(now_picked);
        })
    };
    let onsubmit = {
        let (name, title, others, from, to) = (
            name.clone(),
            title.clone(),
            others.clone(),
            from.clone(),
            to.clone(),
        );
        let (picked, busy) = (picked.clone(), busy.clone());
        let (on_recorded, on_problem) = (props.on_recorded.clone(), props.on_problem.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let mut patients: Vec<String> = picked.iter().cloned().collect();
            match teaching::patient_ids(&value_of(&others)) {
                Ok(typed) => patients.extend(typed.into_iter().filter(|id| !picked.contains(id))),
                Err(problem) => return on_problem.emit(format!("The scenario: {problem}.")),
            }
            if patients.is_empty() {
                return on_problem.emit("The scenario: pick or type at least one patient.".into());
            }
            let Some(start) = parse_local_input(&value_of(&from)) else {
                return on_problem.emit("The scenario: choose when its window opens.".into());
            };
            let end_text = value_of(&to);
            let end = parse_local_input(&end_text);
            if end.is_none() && !end_text.trim().is_empty() {
                return on_problem.emit("The scenario: the window's end is not a moment.".into());
            }
            let body =
                teaching::recording(&value_of(&name), &value_of(&title), &patients, start, end);
            busy.set(true);
            let (busy, on_recorded, on_problem) =
                (busy.clone(), on_recorded.clone(), on_problem.clone());
            spawn_local(async move {
                let answer = api::teaching(Method::POST, teaching::RECORD, Some(&body)).await;
                busy.set(false);
                match answer.and_then(read::<Scenario>) {
                    Ok(scenario) => on_recorded.emit(scenario),
                    Err(error) => {
                        on_problem.emit(format!("The scenario was not recorded: {error}."))
                    }
                }
            });
        })
    };
    let patients = match &*census {
        Census::Loading => html! { <p class="loading">{ "Loading the ward…" }</p> },
        Census::Failed(problem) => {
            html! { <p class="problem">{ format!("The census could not be loaded: {problem}.") }</p> }
        }
        Census::Loaded(occupants) if occupants.is_empty() => {
            html! { <p class="empty-note">{ "Nobody is on this ward." }</p> }
        }
        Census::Loaded(occupants) => html! {
            <ul class="census">
                { for occupants.iter().map(|(id, label)| html! {
                    <li>
                        <label>
                            <input type="checkbox" class="census-patient" value={id.clone()}
                                   checked={picked.contains(id)} onchange={toggle.clone()} />
                            { label }
                        </label>
                    </li>
                }) }
            </ul>
        },
    };
    html! {
        <form id="record-scenario" class="teaching-form" onsubmit={onsubmit}>
            <h2>{ "Record a scenario from the ward" }</h2>
            <label>{ "Name" }
                <input id="scenario-name" ref={name} required=true autocomplete="off" placeholder="tanaka-night" />
            </label>
            <label>{ "Title" }
                <input id="scenario-title" ref={title} autocomplete="off" />
            </label>
            <fieldset class="cohort">
                <legend>
                    { "Patients on " }
                    <select id="census-ward" onchange={pick_ward} aria-label="Ward">
                        { for WARDS.iter().map(|(id, label)| html! {
                            <option value={*id} selected={*ward == *id}>{ *label }</option>
                        }) }
                    </select>
                </legend>
                { patients }
                <label>{ "Other patients (ids)" }
                    <input id="scenario-patients" ref={others} autocomplete="off" placeholder="id, id" />
                </label>
            </fieldset>
            <label>{ "From" }
                <input id="scenario-from" type="datetime-local" step="1" ref={from} required=true
                       value={(*default_from).clone()} />
            </label>
            <label>{ "To (empty: now)" }
                <input id="scenario-to" type="datetime-local" step="1" ref={to} />
            </label>
            <button id="record" type="submit" disabled={*busy}>{ "Record" }</button>
        </form>
    }
}

/// Who lies on `ward` now: the patients of its beds, in bed order.
async fn occupants(ward: &str) -> Result<Vec<Occupant>, ApiError> {
    let mut state = Ward::new(ward);
    for resource in first_load(api::LIVE, ward).await? {
        state.apply(&resource);
    }
    Ok(state
        .beds()
        .iter()
        .filter_map(|view| {
            let occupant = view.occupant?;
            let name = occupant.patient.map_or_else(
                || occupant.patient_id.to_owned(),
                |patient| patient.name.clone(),
            );
            Some((
                occupant.patient_id.to_owned(),
                format!("{} · {name}", view.bed.label()),
            ))
        })
        .collect())
}
