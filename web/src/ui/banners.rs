//! The banners that say a page is not the live record: the past (read-only, not live, with
//! the way back to now) and a teaching sandbox (its name, class and play). Nobody should take
//! either for the ward as it is, so both sit at the top of the page, in colours of their own.
//!
//! Hooks: `#past-banner[data-at="<instant>"]` with `#back-to-now`;
//! `#sandbox-banner[data-sandbox="<name>"]`.

use yew::prelude::*;

use super::full_moment;
use crate::fhir;
use crate::route::Route;
use crate::teaching::Sandbox;

/// The record as it stood at `at`; `back` returns to the present.
pub fn past_banner(at: i64, back: Callback<MouseEvent>) -> Html {
    let instant = fhir::format_instant(at);
    html! {
        <div id="past-banner" class="past-banner" role="status" data-at={instant.clone()}>
            <span class="banner-label">{ "The past" }</span>
            <span class="banner-text">
                { "The record as it stood at " }
                <time datetime={instant}>{ full_moment(at) }</time>
                { ". Read-only, with no live updates." }
            </span>
            <button id="back-to-now" type="button" onclick={back}>{ "Back to now" }</button>
        </div>
    }
}

/// A teaching sandbox, by name, with what is known of it (its class, description and play)
/// once the sandbox list has been read.
pub fn sandbox_banner(name: &str, sandbox: Option<&Sandbox>) -> Html {
    let class = sandbox.and_then(|sandbox| sandbox.class.clone());
    let description = sandbox.and_then(|sandbox| sandbox.description.clone());
    let play = sandbox.and_then(|sandbox| sandbox.play.as_ref());
    html! {
        <div id="sandbox-banner" class="sandbox-banner" role="status" data-sandbox={name.to_owned()}>
            <span class="banner-label">{ "Sandbox" }</span>
            <strong class="sandbox-name">{ name }</strong>
            if let Some(class) = class {
                <span class="sandbox-class">{ format!("class {class}") }</span>
            }
            if let Some(description) = description {
                <span class="sandbox-description">{ description }</span>
            }
            if let Some(play) = play {
                <span class="sandbox-play" data-playing={play.running().to_string()}>
                    { format!("Scenario {} · {}", play.clock(), play.state()) }
                </span>
            }
            <span class="banner-text">{ "A teaching copy: nothing written here reaches the live record." }</span>
            <a class="banner-link" href={Route::Teaching.href()}>{ "All sandboxes" }</a>
        </div>
    }
}
