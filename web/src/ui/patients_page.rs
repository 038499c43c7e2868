//! The patient list: a search by name (`Patient?name=...`, by family name), whose text lives in
//! the URL fragment so a search can be bookmarked and the back button works.

use std::cell::Cell;
use std::rc::Rc;

use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::api::{self, ApiError};
use super::navigate;
use crate::queries;
use crate::record::Demographics;
use crate::route::Route;

#[derive(Properties, PartialEq)]
pub struct Props {
    /// The name searched for; empty lists everyone.
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Found {
    Searching,
    Patients(Vec<(String, Demographics)>),
    Failed(ApiError),
}

#[function_component]
pub fn PatientsPage(props: &Props) -> Html {
    let found = use_state(|| Found::Searching);
    {
        let found = found.clone();
        use_effect_with(props.name.clone(), move |name| {
            found.set(Found::Searching);
            let stale = Rc::new(Cell::new(false));
            let name = name.clone();
            {
                let stale = stale.clone();
                spawn_local(async move {
                    let result = api::search(api::LIVE, &queries::patient_search(&name)).await;
                    if !stale.get() {
                        found.set(match result {
                            Ok(resources) => Found::Patients(
                                resources
                                    .iter()
                                    .filter(|resource| resource["resourceType"] == "Patient")
                                    .filter_map(|patient| {
                                        let id = patient["id"].as_str()?.to_owned();
                                        Some((id, Demographics::from_patient(patient)))
                                    })
                                    .collect(),
                            ),
                            Err(error) => Found::Failed(error),
                        });
                    }
                });
            }
            // A newer search replaces this one: its answer, should it come later, is dropped.
            move || stale.set(true)
        });
    }
    let input = use_node_ref();
    let onsubmit = {
        let input = input.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let name = input
                .cast::<HtmlInputElement>()
                .map(|input| input.value())
                .unwrap_or_default();
            navigate(&Route::Patients {
                name: name.trim().to_owned(),
            });
        })
    };
    html! {
        <section class="patients-page">
            <h1>{ "Patients" }</h1>
            <form class="patient-search" role="search" onsubmit={onsubmit}>
                <label for="patient-name">{ "Name" }</label>
                <input id="patient-name" name="name" type="search" ref={input}
                       value={props.name.clone()} placeholder="Family or given name" autocomplete="off" />
                <button type="submit">{ "Search" }</button>
            </form>
            { results(&found) }
        </section>
    }
}

fn results(found: &Found) -> Html {
    match found {
        Found::Searching => html! { <p class="loading">{ "Searching…" }</p> },
        Found::Failed(error) => {
            html! { <p class="problem" role="alert">{ format!("The search failed: {error}.") }</p> }
        }
        Found::Patients(patients) if patients.is_empty() => {
            html! { <p class="empty-note" id="patient-results">{ "No patient of that name." }</p> }
        }
        Found::Patients(patients) => html! {
            <table class="patient-list" id="patient-results">
                <thead>
                    <tr><th>{ "Name" }</th><th>{ "Gender" }</th><th>{ "Born" }</th><th>{ "Identifier" }</th></tr>
                </thead>
                <tbody>
                    { for patients.iter().map(|(id, patient)| html! {
                        <tr data-patient={id.clone()}>
                            <td><a href={Route::patient(id).href()}>{ &patient.name }</a></td>
                            <td>{ patient.gender.clone().unwrap_or_default() }</td>
                            <td>{ patient.birth_date.clone().unwrap_or_default() }</td>
                            <td>{ patient.identifiers.first().cloned().unwrap_or_default() }</td>
                        </tr>
                    }) }
                </tbody>
            </table>
        },
    }
}
