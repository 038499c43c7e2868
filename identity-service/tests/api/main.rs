//! Tests of the identity service against real Postgres and Redis: discovery, keys, every grant,
//! introspection, revocation, the admin API, users' classes, the browser flow and its defences.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod authorization_code;
mod classes;
mod client_credentials;
mod discovery;
mod flow;
mod helpers;
mod picker;
mod refresh;
mod revocation;
mod throttle;
mod web_app;
