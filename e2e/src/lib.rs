//! End-to-end tests of Wardline through its nginx edge. The crate holds no code: the tests in
//! `tests/api` start the services in-process, render the edge's configuration with
//! `deploy/nginx/render` (the script `./deploy/dev up` uses) and run nginx in front of them.
