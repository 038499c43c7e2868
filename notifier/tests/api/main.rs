//! Tests of the notifier against real servers (Postgres, NATS JetStream, Redis, and the command
//! and projection services), and of its published contracts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod budget;
mod helpers;
mod limits;
mod protocol;
mod resume;
mod subscriptions;
