//! The `wardline` commands against real servers: each test in a database and a JetStream stream
//! of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod import;
mod run;
mod sandbox;
mod scenario;
mod servers;
mod sign_in;
mod simulate;
