//! One patient's page: demographics, then conditions, medications, allergies and recent
//! observations, newest first, each loaded by its own search (all at once); from the live
//! record, the past (with the time slider and the banner that says so) or a sandbox.

use std::cell::Cell;
use std::rc::Rc;

use futures::future::{try_join, try_join_all};
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

use super::api::{self, ApiError};
use super::banners::{past_banner, sandbox_banner};
use super::time_bar::TimeBar;
use super::{moment, navigate, now};
use crate::fhir;
use crate::queries;
use crate::record::{Demographics, Line, RecordPart};
use crate::route::Route;
use crate::view::View;

#[derive(Properties, PartialEq)]
pub struct Props {
    /// The Patient id.
    pub id: String,
    /// The record shown.
    pub view: View,
}

/// A loaded record.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    demographics: Demographics,
    parts: Vec<(RecordPart, Vec<Line>)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Loaded {
    Loading,
    Record(Rc<Record>),
    Failed(ApiError),
}

#[function_component]
pub fn PatientPage(props: &Props) -> Html {
    let loaded = use_state(|| Loaded::Loading);
    {
        let loaded = loaded.clone();
        use_effect_with((props.id.clone(), props.view.clone()), move |(id, view)| {
            let stale = Rc::new(Cell::new(false));
            let (id, base) = (id.clone(), view.fhir_base());
            {
                let stale = stale.clone();
                spawn_local(async move {
                    let result = load(&base, &id).await;
                    if !stale.get() {
                        loaded.set(match result {
                            Ok(record) => Loaded::Record(Rc::new(record)),
                            Err(error) => Loaded::Failed(error),
                        });
                    }
                });
            }
            move || stale.set(true)
        });
    }
    let body = match &*loaded {
        Loaded::Loading => html! { <p class="loading">{ "Loading the record…" }</p> },
        Loaded::Failed(error) => html! {
            <p class="problem" role="alert">{ format!("The record could not be loaded: {error}.") }</p>
        },
        Loaded::Record(record) => html! {
            <>
                <h1 class="patient-title">{ &record.demographics.name }</h1>
                { demographics(&record.demographics) }
                <div class="record-parts">
                    { for record.parts.iter().map(|(part, lines)| section(*part, lines)) }
                </div>
            </>
        },
    };
    let travel = {
        let id = props.id.clone();
        Callback::from(move |at: Option<i64>| {
            let view = at.map_or(View::Live, View::Past);
            navigate(&Route::patient(&id).in_view(view));
        })
    };
    let banner = match &props.view {
        View::Live => Html::default(),
        View::Past(at) => past_banner(*at, travel.reform(|_| None)),
        View::Sandbox(name) => sandbox_banner(name, None),
    };
    html! {
        <section class="patient-page" data-patient={props.id.clone()}>
            { banner }
            if props.view.sandbox().is_none() {
                <TimeBar at={props.view.past()} on_travel={travel} />
            }
            { body }
        </section>
    }
}

async fn load(base: &str, id: &str) -> Result<Record, ApiError> {
    let parts = try_join_all(RecordPart::ALL.map(|part| async move {
        let found = api::search(base, &queries::record(part, id)).await?;
        Ok::<_, ApiError>((part, part.lines(&found)))
    }));
    let (patient, parts) = try_join(api::get(base, &queries::patient(id)), parts).await?;
    Ok(Record {
        demographics: Demographics::from_patient(&patient),
        parts,
    })
}

fn demographics(patient: &Demographics) -> Html {
    let born = patient
        .birth_date
        .as_deref()
        .map(|birth| match fhir::age_in_years(birth, now()) {
            Some(age) => format!("{birth} (age {age})"),
            None => birth.to_owned(),
        });
    let rows = [
        ("Gender", patient.gender.clone()),
        ("Born", born),
        (
            "Identifier",
            (!patient.identifiers.is_empty()).then(|| patient.identifiers.join(", ")),
        ),
        ("Address", patient.address.clone()),
        ("Phone", patient.phone.clone()),
    ];
    html! {
        <dl class="demographics">
            { for rows.into_iter().filter_map(|(label, value)| Some(html! {
                <>
                    <dt>{ label }</dt>
                    <dd>{ value? }</dd>
                </>
            })) }
        </dl>
    }
}

fn section(part: RecordPart, lines: &[Line]) -> Html {
    html! {
        <section class="record-part" data-section={part.hook()}>
            <h2>{ part.title() }</h2>
            if lines.is_empty() {
                <p class="empty-note">{ "None recorded." }</p>
            } else {
                <ul class="record-lines">
                    { for lines.iter().map(line) }
                </ul>
            }
        </section>
    }
}

fn line(line: &Line) -> Html {
    html! {
        <li class="record-line" data-resource={line.key.clone()}>
            <span class="line-title">{ &line.title }</span>
            if let Some(detail) = &line.detail {
                <span class={classes!("line-detail", line.flag.is_some().then_some("flagged"))}>
                    { detail }
                    if let Some(flag) = &line.flag {
                        <span class="line-flag">{ format!(" {flag}") }</span>
                    }
                </span>
            }
            if let Some(status) = &line.status {
                <span class="line-status">{ status }</span>
            }
            if let Some(at) = line.at {
                <time class="line-time">{ moment(at) }</time>
            }
        </li>
    }
}
