//! Wardline's browser app: the ward dashboard (beds, vital signs with NEWS2, orders and tasks,
//! kept live from the notifier), the patient list and the patient page, for a user signed in
//! at the identity service; the ward and the patient as they stood at a past instant, or in a
//! teaching sandbox ([`view`]); and the teaching page, where instructors record scenarios,
//! make sandboxes and play scenarios into them, and students find their classes' sandboxes
//! ([`teaching`]).
//!
//! Everything that can be decided without a browser lives in plain modules that compile and
//! are tested on the host: signing in and the tokens ([`sign_in`], [`tokens`]), reading FHIR
//! resources ([`fhir`], [`vitals`], [`orders`], [`record`]), the ward's state and how events
//! change it ([`ward`]), the notifier protocol and reconnection rules ([`protocol`],
//! [`live`]), trend-line geometry ([`trend`]), routes and requests ([`route`], [`queries`]),
//! which record a page reads ([`view`]) and the teaching API ([`teaching`]).
//! The Yew components, the HTTP client, the session and the WebSocket (`ui`) exist only in the
//! wasm build, and stay thin: they fetch, feed these modules, and draw.

pub mod fhir;
pub mod live;
pub mod orders;
pub mod protocol;
pub mod queries;
pub mod record;
pub mod route;
pub mod sign_in;
pub mod teaching;
pub mod tokens;
pub mod trend;
pub mod view;
pub mod vitals;
pub mod ward;

#[cfg(target_arch = "wasm32")]
mod ui;

/// Starts the app when the wasm module is instantiated (by `boot.js`).
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    ui::mount();
}
