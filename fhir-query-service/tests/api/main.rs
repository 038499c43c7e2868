//! Black-box tests of the query service: a command service, a projection service and a query
//! service over a fresh database and JetStream stream per test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod asof;
mod cache;
mod clients;
mod helpers;
mod history;
mod hostile;
mod metadata;
mod oracle;
mod past;
mod path_errors;
mod read;
mod search;
mod versions;
