//! The time slider of the ward and the patient page: drag back over the last day (a minute a
//! step; the arrow keys move a minute, Home a day) or type a moment to the second, and the page
//! shows the record as it stood then, through the server's `/fhir/_asof/<instant>` base. Right
//! at the end of the slider is now, the live record.
//!
//! The bar only asks for a moment; the page it sits on goes there (a new fragment, so the past
//! can be bookmarked and the back button returns to the present).
//!
//! Hooks: `#time-slider` (minutes from now, `-1440` to `0`), `#past-instant` (a
//! `datetime-local` input in the viewer's time zone) and `#past-show`.

use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::{local_input, moment, now, parse_local_input};

/// How far back the slider reaches, in minutes.
const SPAN_MINUTES: i64 = 24 * 60;

#[derive(Properties, PartialEq)]
pub struct Props {
    /// The instant shown; `None` for now.
    pub at: Option<i64>,
    /// Asked to show an instant (`None`: now).
    pub on_travel: Callback<Option<i64>>,
}

#[function_component]
pub fn TimeBar(props: &Props) -> Html {
    // Where the slider is while it is dragged, in minutes from now.
    let dragged = use_state(|| None::<i64>);
    // The date-time input starts at the instant shown (now, when live) and is the user's after.
    let typed = use_state(|| local_input(props.at.unwrap_or_else(now)));
    let problem = use_state(|| None::<String>);
    let input = use_node_ref();

    // The past is never drawn at the slider's end, which is now.
    let shown = props
        .at
        .map_or(0, |at| -((now() - at) / 60).clamp(1, SPAN_MINUTES));
    let position = dragged.unwrap_or(shown);
    let label = match (*dragged, props.at) {
        (Some(0), _) | (None, None) => "Now".to_owned(),
        (Some(minutes), _) => format!("{} ({} ago)", moment(now() + minutes * 60), ago(-minutes)),
        (None, Some(at)) => format!("{} ({} ago)", moment(at), ago((now() - at) / 60)),
    };

    let oninput = {
        let dragged = dragged.clone();
        Callback::from(move |event: InputEvent| {
            let slider: HtmlInputElement = event.target_unchecked_into();
            dragged.set(slider.value().parse().ok());
        })
    };
    let onchange = {
        let (dragged, on_travel) = (dragged.clone(), props.on_travel.clone());
        Callback::from(move |event: Event| {
            let slider: HtmlInputElement = event.target_unchecked_into();
            let minutes: i64 = slider.value().parse().unwrap_or(0);
            dragged.set(None);
            on_travel.emit((minutes < 0).then(|| now() + minutes * 60));
        })
    };
    let onsubmit = {
        let (input, problem, typed, on_travel) = (
            input.clone(),
            problem.clone(),
            typed.clone(),
            props.on_travel.clone(),
        );
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let text = input
                .cast::<HtmlInputElement>()
                .map(|input| input.value())
                .unwrap_or_default();
            typed.set(text.clone());
            match parse_local_input(&text) {
                None => problem.set(Some("Choose a date and a time.".to_owned())),
                Some(at) if at >= now() => {
                    problem.set(Some("That is not in the past yet.".to_owned()))
                }
                Some(at) => {
                    problem.set(None);
                    on_travel.emit(Some(at));
                }
            }
        })
    };
    html! {
        <form id="time-travel" class={classes!("time-travel", props.at.map(|_| "in-past"))}
              onsubmit={onsubmit} aria-label="The record at another time">
            <label for="time-slider">{ "Time" }</label>
            <input id="time-slider" type="range" min={(-SPAN_MINUTES).to_string()} max="0" step="1"
                   value={position.to_string()} oninput={oninput} onchange={onchange}
                   aria-valuetext={label.clone()} />
            <output for="time-slider" class="time-label">{ label }</output>
            <input id="past-instant" type="datetime-local" step="1" ref={input}
                   value={(*typed).clone()} aria-label="Show the record at" />
            <button id="past-show" type="submit">{ "Show" }</button>
            if let Some(problem) = &*problem {
                <span class="time-problem" role="alert">{ problem }</span>
            }
        </form>
    }
}

/// "3 h 05 min", "12 min", "under a minute".
fn ago(minutes: i64) -> String {
    match (minutes / 60, minutes % 60) {
        (0, 0) => "under a minute".to_owned(),
        (0, minutes) => format!("{minutes} min"),
        (hours, minutes) => format!("{hours} h {minutes:02} min"),
    }
}
