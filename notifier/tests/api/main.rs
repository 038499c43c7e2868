//! Tests of the notifier against real servers, and of its published contracts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod protocol;
