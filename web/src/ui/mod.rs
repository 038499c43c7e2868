//! The browser side: Yew components that fetch, feed the pure modules, and draw. Only built for
//! wasm32.
//!
//! Nothing is shown before someone is signed in ([`session`]): the app first finishes a
//! sign-in or resumes the session its cookie holds, and sends the browser to the sign-in page
//! only when there is none. The top bar then names the user and their role, with a button to
//! sign out; after signing out, the pages (and their WebSockets) are gone.
//!
//! Routing is by URL fragment ([`crate::route`]): the app listens for `hashchange` and shows
//! the page the fragment names, so the static files need no server-side routing. Every page is
//! keyed by what it shows (a ward, a patient, and in which view of the record), so changing it
//! starts the page afresh: a new ward, an instant of the past or a sandbox gets a new
//! subscription and a new state, never a mix of two.
//!
//! The top bar says which record the page shows: it takes the sandbox's colour in a sandbox
//! and the past's in the past, and its ward picker stays in that view.

mod api;
mod banners;
mod bed_card;
mod patient_page;
mod patients_page;
mod session;
mod socket;
mod teaching_forms;
mod teaching_page;
mod time_bar;
mod ward_page;

use gloo_events::EventListener;
use wasm_bindgen::JsValue;
use yew::prelude::*;

use crate::route::{Route, WARDS};
use crate::tokens::User;
use crate::view::View;
use patient_page::PatientPage;
use patients_page::PatientsPage;
use session::AuthState;
use teaching_page::TeachingPage;
use ward_page::WardPage;

/// Renders the app into `<main id="app">` (or the body when the page has none).
pub fn mount() {
    let root = web_sys::window()
        .and_then(|window| window.document())
        .and_then(|document| document.get_element_by_id("app"));
    match root {
        Some(root) => {
            // Replaces the "Loading" placeholder index.html shows until the wasm has started.
            root.set_inner_html("");
            yew::Renderer::<App>::with_root(root).render()
        }
        None => yew::Renderer::<App>::new().render(),
    };
}

/// The page the address bar's fragment names now.
fn current_route() -> Route {
    let hash = web_sys::window()
        .and_then(|window| window.location().hash().ok())
        .unwrap_or_default();
    Route::parse(&hash)
}

/// Shows another page, as following a link would.
fn navigate(route: &Route) {
    if let Some(window) = web_sys::window() {
        // Setting the fragment fires `hashchange`, which shows the page.
        let _ = window.location().set_hash(&route.href());
    }
}

/// The current time, seconds since the Unix epoch.
fn now() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}

/// The viewer's time zone now, seconds east of UTC.
fn utc_offset() -> i64 {
    -(js_sys::Date::new_0().get_timezone_offset() * 60.0) as i64
}

/// A moment as the page shows it, in the viewer's time zone.
fn moment(at: i64) -> String {
    crate::fhir::format_moment(at, now(), utc_offset())
}

/// The viewer's time zone at the moment `at` (daylight saving may differ from now's), seconds
/// east of UTC.
fn utc_offset_at(at: i64) -> i64 {
    let date = js_sys::Date::new(&JsValue::from_f64(at as f64 * 1000.0));
    -(date.get_timezone_offset() * 60.0) as i64
}

/// A moment to the second in the viewer's time zone: `2026-06-01 12:00:05`.
fn full_moment(at: i64) -> String {
    local_input(at).replace('T', " ")
}

/// A moment as a date-time input holds it, in the viewer's time zone.
fn local_input(at: i64) -> String {
    crate::fhir::local_date_time(at, utc_offset_at(at))
}

/// What a date-time input holds, as seconds since the Unix epoch.
fn parse_local_input(text: &str) -> Option<i64> {
    // The offset of the moment typed: read it first as if in UTC, which is close enough to
    // find the zone's offset then.
    let near = crate::fhir::parse_local_date_time(text, 0)?;
    crate::fhir::parse_local_date_time(text, utc_offset_at(near))
}

#[function_component]
fn App() -> Html {
    let route = use_state(current_route);
    let auth = use_state(|| AuthState::Starting);
    {
        let (auth, route) = (auth.clone(), route.clone());
        use_effect_with((), move |_| {
            session::start(Callback::from(move |state: AuthState| {
                // Back from the sign-in page, the address names the page to show again.
                if matches!(state, AuthState::SignedIn(_)) {
                    route.set(current_route());
                }
                auth.set(state);
            }));
        });
    }
    {
        let route = route.clone();
        use_effect_with((), move |_| {
            let listener = web_sys::window().map(|window| {
                EventListener::new(&window, "hashchange", move |_| route.set(current_route()))
            });
            move || drop(listener)
        });
    }
    let page = match &*auth {
        AuthState::SignedIn(user) => page_of(&route, user),
        AuthState::Starting => html! {
            <section id="signing-in" class="signing-in"><p class="loading">{ "Signing in…" }</p></section>
        },
        AuthState::SignedOut(reason) => html! {
            <section id="signed-out" class="signed-out">
                <h1>{ "Signed out" }</h1>
                if let Some(reason) = reason {
                    <p>{ reason }</p>
                }
                <button id="sign-in" type="button" onclick={Callback::from(|_| session::sign_in())}>{ "Sign in" }</button>
            </section>
        },
    };
    let (account, teaching) = match &*auth {
        AuthState::SignedIn(user) => (account_bar(user), teaching_link(&route, user)),
        _ => (html! {}, html! {}),
    };
    let view = route.view().cloned().unwrap_or_default();
    let mode = match view {
        View::Live => None,
        View::Past(_) => Some("in-past"),
        View::Sandbox(_) => Some("in-sandbox"),
    };
    html! {
        <>
            <header class={classes!("topbar", mode)}>
                <a class="brand" href="#/">{ "Wardline" }</a>
                <nav id="ward-picker" class="ward-picker" aria-label="Wards">
                    { for WARDS.iter().map(|(id, name)| ward_link(&route, &view, id, name)) }
                </nav>
                <nav class="sections" aria-label="Sections">
                    <a href={Route::Patients { name: String::new() }.href()}
                       class={classes!(matches!(*route, Route::Patients { .. } | Route::Patient { .. }).then_some("active"))}>
                        { "Patients" }
                    </a>
                    { teaching }
                </nav>
                { account }
            </header>
            <main class="page">{ page }</main>
            <footer class="notice">{ "Synthetic data only: a teaching system, never for real patients." }</footer>
        </>
    }
}

/// Who is signed in, and the way out.
fn account_bar(user: &User) -> Html {
    let role = user.role.clone().unwrap_or_default();
    html! {
        <div id="account" class="account">
            <span id="signed-in-user" class="user" data-user={user.username.clone()} data-role={role.clone()}
                  title={format!("Signed in as {}", user.username)}>
                <span class="user-name">{ &user.name }</span>
                if !role.is_empty() {
                    <span class="user-role">{ role }</span>
                }
            </span>
            <button id="sign-out" type="button" class="sign-out" onclick={Callback::from(|_| session::sign_out())}>
                { "Sign out" }
            </button>
        </div>
    }
}

/// The page the route names.
fn page_of(route: &Route, user: &User) -> Html {
    // Keyed by the whole fragment: another ward, instant or sandbox is a page afresh.
    let key = route.href();
    match route {
        Route::Ward { ward, view } => {
            html! { <WardPage key={key} ward={ward.clone()} view={view.clone()} /> }
        }
        Route::Patients { name } => html! { <PatientsPage name={name.clone()} /> },
        Route::Patient { id, view } => {
            html! { <PatientPage key={key} id={id.clone()} view={view.clone()} /> }
        }
        Route::Teaching => html! { <TeachingPage user={user.clone()} /> },
        Route::NotFound => html! {
            <section class="not-found">
                <h1>{ "Page not found" }</h1>
                <p><a href={Route::ward(crate::route::DEFAULT_WARD).href()}>{ "Back to the ward" }</a></p>
            </section>
        },
    }
}

/// The teaching page's link: "Teaching" for those who manage it, "Sandboxes" for everyone
/// else (students find their classes' sandboxes there).
fn teaching_link(route: &Route, user: &User) -> Html {
    let label = if user.teaches() {
        "Teaching"
    } else {
        "Sandboxes"
    };
    let current = *route == Route::Teaching;
    html! {
        <a id="teaching-link" href={Route::Teaching.href()}
           class={classes!(current.then_some("active"))}
           aria-current={current.then_some("page")}>
            { label }
        </a>
    }
}

/// A ward of the picker, in the view of the record the page shows (a sandbox's wards, or the
/// wards at the same past instant).
fn ward_link(route: &Route, view: &View, id: &str, name: &str) -> Html {
    let current = matches!(route, Route::Ward { ward, .. } if ward == id);
    html! {
        <a href={Route::ward(id).in_view(view.clone()).href()} data-ward={id.to_owned()}
           class={classes!(current.then_some("active"))}
           aria-current={current.then_some("page")}>
            { name }
        </a>
    }
}
