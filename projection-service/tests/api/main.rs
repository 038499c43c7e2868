//! Integration tests of the projection service against the real Postgres, NATS and Redis:
//! the index rows of each parameter type, the version rule under updates, deletes, redelivery
//! and reordering, rebuilds, two instances, status and cache invalidation, and the Synthea set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod apply_rules;
mod helpers;
mod indexes;
mod instances;
mod rebuild;
mod refused_values;
mod status;
mod synthea;
