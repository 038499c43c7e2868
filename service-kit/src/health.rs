//! `GET /health` says the process is alive; `GET /ready` says whether its dependencies answer.
//!
//! A dependency is either required (the service cannot do its job without it: `/ready` answers
//! 503) or optional (reported, but the service still works: the command service keeps taking
//! writes while NATS is down, because the outbox holds the events).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde_json::{Map, Value, json};

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One dependency to probe.
pub struct DependencyCheck {
    pub name: &'static str,
    pub required: bool,
    probe: Box<dyn Fn() -> CheckFuture + Send + Sync>,
}

impl DependencyCheck {
    pub fn new<F, Fut>(name: &'static str, required: bool, probe: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        DependencyCheck {
            name,
            required,
            probe: Box::new(move || Box::pin(probe())),
        }
    }
}

/// Routes `/health` and `/ready` for these checks.
pub fn routes(service: &'static str, checks: Vec<DependencyCheck>) -> Router {
    let state = Arc::new((service, checks));
    Router::new()
        .route(
            "/health",
            get(move || async move { Json(json!({"status": "pass", "service": service})) }),
        )
        .route("/ready", get(ready))
        .with_state(state)
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

async fn ready(
    State(state): State<Arc<(&'static str, Vec<DependencyCheck>)>>,
) -> impl IntoResponse {
    let (service, checks) = &*state;
    let results = futures::future::join_all(checks.iter().map(|check| {
        let probe = (check.probe)();
        async move {
            let outcome = match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
            };
            (check.name, check.required, outcome)
        }
    }))
    .await;
    let mut ready = true;
    let mut report = Map::new();
    for (name, required, outcome) in results {
        let entry = match outcome {
            Ok(()) => json!({"status": "pass", "required": required}),
            Err(problem) => {
                ready &= !required;
                json!({"status": "fail", "required": required, "error": problem})
            }
        };
        report.insert(name.to_owned(), entry);
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "pass" } else { "fail" },
        "service": service,
        "checks": Value::Object(report),
    });
    (status, Json(body))
}

/// A required check that Postgres answers a query on `pool`.
pub fn postgres_check(pool: sqlx::PgPool) -> DependencyCheck {
    DependencyCheck::new("postgres", true, move || {
        let pool = pool.clone();
        async move {
            sqlx::query("SELECT 1")
                .execute(&pool)
                .await
                .map(|_| ())
                .map_err(|error| error.to_string())
        }
    })
}

/// A check that a TCP connection to the host and port of `url` (`scheme://[user@]host:port`)
/// can be opened: enough to say a dependency is reachable before a service uses it.
pub fn tcp_check(name: &'static str, required: bool, url: &str) -> DependencyCheck {
    let address = host_port(url);
    DependencyCheck::new(name, required, move || {
        let address = address.clone();
        async move {
            tokio::net::TcpStream::connect(&address)
                .await
                .map(|_| ())
                .map_err(|error| format!("{address}: {error}"))
        }
    })
}

fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split(['/', '?']).next().unwrap_or(rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_of_urls() {
        assert_eq!(host_port("nats://127.0.0.1:4222"), "127.0.0.1:4222");
        assert_eq!(
            host_port("redis://:secret@localhost:6379/0"),
            "localhost:6379"
        );
    }
}
