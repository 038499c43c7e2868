//! Black-box tests of the FHIR write API (and the reads that observe it), each against real
//! Postgres and NATS, in a database and a JetStream stream of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod bundle;
mod concurrency;
mod conditional;
mod create;
mod delete;
mod forged_headers;
mod helpers;
mod limits;
mod nats_outage;
mod one_path;
mod patch;
mod references;
mod relay;
mod service;
mod update;
