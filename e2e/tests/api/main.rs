//! Black-box tests through the nginx edge: the services started in-process over a database and
//! a JetStream stream of the test's own, nginx in front of them with the configuration
//! `deploy/nginx/render` writes, and requests only ever sent to nginx.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authorization;
mod browser;
mod dashboard;
mod edge;
mod fuzz;
mod headers;
mod helpers;
mod limits;
mod request_id;
mod routing;
mod sandboxes;
mod smart_launch;
mod teaching_ui;
mod tls;
mod websocket;
