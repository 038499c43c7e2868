//! How one bed and one work-list item are drawn. Plain functions of the [`Ward`]'s views, not
//! components: the ward page redraws as a whole, and thirty cards cost nothing.
//!
//! The markup carries stable hooks for tests and tools, listed in web/README.md:
//! `data-bed`/`data-patient` on each card, `.news2-total` with `data-score` and a `risk-*`
//! class, `.news2-alert`, and `data-vital` on each reading.

use news2::{Assessment, Risk};
use yew::prelude::*;

use super::{moment, now};
use crate::fhir;
use crate::route::Route;
use crate::trend::{Frame, Trend};
use crate::view::View;
use crate::vitals::{Vital, VitalSigns};
use crate::ward::{BedView, Occupant, Patient, Ward, WorkItem};

/// The trend lines' box, in SVG units (CSS sets the drawn size).
const TREND_FRAME: Frame = Frame {
    width: 64.0,
    height: 20.0,
    margin: 2.5,
};

/// A bed; its patient's name links to their record in the same `record` view.
pub fn bed_card(view: &BedView<'_>, record: &View) -> Html {
    let Some(occupant) = view.occupant else {
        return html! {
            <article class="bed empty" data-bed={view.bed.id.clone()} data-patient="">
                <header class="bed-head">
                    <span class="bed-label">{ view.bed.label() }</span>
                </header>
                <p class="empty-note">{ "Empty" }</p>
            </article>
        };
    };
    let assessment = occupant.vitals.and_then(VitalSigns::assessment);
    let risk = assessment.map(|assessment| assessment.risk.label());
    html! {
        <article class={classes!("bed", "occupied", assessment.filter(|a| a.alert).map(|_| "alerting"))}
                 data-bed={view.bed.id.clone()} data-patient={occupant.patient_id.to_owned()}
                 data-risk={risk}>
            <header class="bed-head">
                <span class="bed-label">{ view.bed.label() }</span>
                { patient_heading(&occupant, record) }
                { news2_total(assessment) }
            </header>
            if let Some(assessment) = assessment.filter(|assessment| assessment.alert) {
                { news2_alert(&assessment) }
            }
            { vitals_table(occupant.vitals, assessment) }
            <footer class="bed-foot">
                { last_observed(occupant.vitals) }
            </footer>
        </article>
    }
}

fn patient_heading(occupant: &Occupant<'_>, record: &View) -> Html {
    let href = Route::patient(occupant.patient_id)
        .in_view(record.clone())
        .href();
    match occupant.patient {
        Some(patient) => html! {
            <span class="patient">
                <a class="patient-name" href={href}>{ &patient.name }</a>
                <span class="patient-meta">{ patient_meta(patient) }</span>
            </span>
        },
        None => html! {
            <span class="patient">
                <a class="patient-name" href={href}>{ "Loading…" }</a>
            </span>
        },
    }
}

/// "F 56": sex and age.
fn patient_meta(patient: &Patient) -> String {
    let sex = match patient.gender.as_deref() {
        Some("female") => "F",
        Some("male") => "M",
        Some(_) => "X",
        None => "",
    };
    let age = patient
        .birth_date
        .as_deref()
        .and_then(|birth| fhir::age_in_years(birth, now()));
    match age {
        Some(age) => format!("{sex} {age}").trim().to_owned(),
        None => sex.to_owned(),
    }
}

fn news2_total(assessment: Option<Assessment>) -> Html {
    let Some(assessment) = assessment else {
        return html! {
            <span class="news2" title="NEWS2: no observations yet">
                <span class="news2-label">{ "NEWS2" }</span>
                <span class="news2-total no-score">{ "–" }</span>
            </span>
        };
    };
    let title = format!(
        "NEWS2 {}{} ({} risk){}",
        assessment.total,
        if assessment.complete { "" } else { "+" },
        assessment.risk.label(),
        if assessment.complete {
            ""
        } else {
            "; not every parameter measured"
        },
    );
    html! {
        <span class="news2" title={title}>
            <span class="news2-label">{ "NEWS2" }</span>
            <span class={classes!("news2-total", format!("risk-{}", assessment.risk.label()))}
                  data-score={assessment.total.to_string()}
                  data-complete={assessment.complete.to_string()}>
                { assessment.total }
            </span>
        </span>
    }
}

fn news2_alert(assessment: &Assessment) -> Html {
    let text = match assessment.risk {
        Risk::High => "NEWS2 7 or more: emergency response",
        Risk::Medium => "NEWS2 5 or more: urgent response",
        Risk::LowMedium | Risk::Low => "A single parameter scores 3: urgent ward-based review",
    };
    html! { <p class="news2-alert" role="alert">{ text }</p> }
}

fn vitals_table(vitals: Option<&VitalSigns>, assessment: Option<Assessment>) -> Html {
    html! {
        <table class="vitals">
            <tbody>
                { for Vital::ALL.iter().map(|vital| vital_row(*vital, vitals, assessment)) }
            </tbody>
        </table>
    }
}

fn vital_row(vital: Vital, vitals: Option<&VitalSigns>, assessment: Option<Assessment>) -> Html {
    let latest = vitals.and_then(|vitals| vitals.latest(vital));
    let score = assessment.and_then(|assessment| vital.score(&assessment.parameters));
    let value = match latest {
        Some(reading) => html! {
            <span class="vital-value" data-vital={vital.hook()} data-value={reading.value.to_string()}>
                { vital.display(reading.value) }
            </span>
        },
        None => {
            html! { <span class="vital-value missing" data-vital={vital.hook()}>{ "–" }</span> }
        }
    };
    let unit = match latest {
        Some(reading) if vital == Vital::Oxygen && reading.value <= 0.0 => "",
        Some(_) => vital.unit(),
        None => "",
    };
    html! {
        <tr class={classes!("vital", score.map(|score| format!("score-{score}")))}>
            <th scope="row">{ vital.label() }</th>
            <td class="reading">{ value }<span class="unit">{ unit }</span></td>
            <td class="trend-cell">{ trend_line(vital, vitals) }</td>
        </tr>
    }
}

fn trend_line(vital: Vital, vitals: Option<&VitalSigns>) -> Html {
    let samples: Vec<(i64, f64)> = vitals
        .map(|vitals| vitals.recent(vital))
        .unwrap_or_default()
        .iter()
        .map(|reading| (reading.at, reading.value))
        .collect();
    if samples.is_empty() {
        return Html::default();
    }
    let trend = Trend::layout(&samples, TREND_FRAME, vital.trend_span());
    let view_box = format!("0 0 {} {}", TREND_FRAME.width, TREND_FRAME.height);
    html! {
        <svg class="trend" viewBox={view_box} aria-hidden="true" data-trend={vital.hook()}>
            <polyline points={trend.svg_points()} />
            if let Some((x, y)) = trend.last() {
                <circle cx={format!("{x:.1}")} cy={format!("{y:.1}")} r="2" />
            }
        </svg>
    }
}

fn last_observed(vitals: Option<&VitalSigns>) -> Html {
    match vitals.and_then(VitalSigns::last_taken) {
        Some(at) => html! { <span class="observed">{ format!("Observed {}", moment(at)) }</span> },
        None => html! { <span class="observed">{ "No observations yet" }</span> },
    }
}

pub fn work_item(ward: &Ward, item: &WorkItem<'_>, record: &View) -> Html {
    let order = item.order;
    let bed = ward
        .bed_of(&order.patient)
        .map(|bed| bed.label())
        .unwrap_or_default();
    let who = ward
        .patient(&order.patient)
        .map(|patient| patient.name.clone())
        .unwrap_or_default();
    html! {
        <li class={classes!("work-item", order.is_urgent().then_some("urgent"), item.new.then_some("new"))}
            data-order={order.key()} data-patient={order.patient.clone()}>
            <span class="work-kind">{ order.kind.label() }</span>
            <span class="work-title">{ &order.title }</span>
            <span class="work-who">
                <a href={Route::patient(&order.patient).in_view(record.clone()).href()}>{ format!("{bed} · {who}") }</a>
            </span>
            if let Some(at) = order.authored {
                <time class="work-time">{ moment(at) }</time>
            }
            if order.is_urgent() {
                <span class="work-priority">{ order.priority.clone().unwrap_or_default() }</span>
            }
        </li>
    }
}
