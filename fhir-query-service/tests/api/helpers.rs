//! Starts the write side, the projection and the query service over a fresh database.

use std::time::Duration;

use reqwest::{Client, Response};
use serde_json::Value;
use test_support::identity::TestIdentity;
use test_support::{ServiceArgs, TestDatabase};

/// The base URL the projection indexes absolute references against.
pub const BASE_URL: &str = "http://fhir.test/fhir";

pub struct TestApp {
    /// `http://127.0.0.1:<port>/fhir` of the command service.
    pub writes: String,
    /// `http://127.0.0.1:<port>/fhir` of the query service.
    pub reads: String,
    pub client: Client,
    /// The test's database, for what a test checks underneath the API.
    pub database: sqlx::PgPool,
    pub database_url: String,
    /// The highest position a write of this test returned.
    last_position: std::sync::atomic::AtomicI64,
    /// The identity service the services trust (in-process, like them), kept for the test's
    /// length (its keys live in a temporary directory it owns).
    _identity: TestIdentity,
    /// The backend token `client` sends, for clients the tests drive themselves.
    pub token: String,
}

impl TestApp {
    /// The three services; `projection: false` leaves the projection service out.
    pub async fn spawn_with(projection: bool, consistency_wait_ms: u64) -> TestApp {
        Self::spawn_full(projection, consistency_wait_ms, &test_support::redis_url()).await
    }

    /// As `spawn_with`, with the query service's Redis at `query_redis_url`.
    pub async fn spawn_full(
        projection: bool,
        consistency_wait_ms: u64,
        query_redis_url: &str,
    ) -> TestApp {
        Self::spawn_configured(projection, consistency_wait_ms, query_redis_url, &[]).await
    }

    /// The three services, the query service with `query_args` (`--name`, value) besides.
    pub async fn spawn_with_query_args(query_args: &[(&str, &str)]) -> TestApp {
        Self::spawn_configured(true, 10_000, &test_support::redis_url(), query_args).await
    }

    async fn spawn_configured(
        projection: bool,
        consistency_wait_ms: u64,
        query_redis_url: &str,
        query_args: &[(&str, &str)],
    ) -> TestApp {
        let database = TestDatabase::create().await;
        let (stream, subject_prefix) = test_support::unique_stream();
        let identity = TestIdentity::spawn(&database.url).await;
        let (issuer, jwks) = (identity.issuer(), identity.jwks_url());
        let command = command_service::Application::build(
            service_kit::config::load_from(
                ServiceArgs::new("command-service", &database.url, 5)
                    .events(&stream, &subject_prefix)
                    .redis()
                    .auth(issuer, &jwks)
                    .arg("--reference-base-url", BASE_URL)
                    .into_args(),
            )
            .unwrap(),
        )
        .await
        .unwrap();
        let writes = format!("http://127.0.0.1:{}/fhir", command.port());
        tokio::spawn(command.run_until(std::future::pending()));
        if projection {
            let service = projection_service::Application::build(
                service_kit::config::load_from(
                    ServiceArgs::new("projection-service", &database.url, 5)
                        .events(&stream, &subject_prefix)
                        .redis()
                        .auth(issuer, &jwks)
                        .arg("--fhir-base-url", BASE_URL)
                        .into_args(),
                )
                .unwrap(),
            )
            .await
            .unwrap();
            tokio::spawn(service.run_until(std::future::pending()));
        }
        let args = query_args.iter().fold(
            ServiceArgs::new("fhir-query-service", &database.url, 16)
                .arg("--reference-base-url", BASE_URL)
                .arg("--consistency-wait-ms", consistency_wait_ms)
                .arg("--redis-url", query_redis_url)
                .auth(issuer, &jwks),
            |args, (name, value)| args.arg(name, value),
        );
        let query = fhir_query_service::Application::build(
            service_kit::config::load_from(args.into_args()).unwrap(),
        )
        .await
        .unwrap();
        let reads = format!("http://127.0.0.1:{}/fhir", query.port());
        let token = identity.system_token("system/*.cruds").await.access_token;
        tokio::spawn(query.run_until(std::future::pending()));
        TestApp {
            writes,
            reads,
            client: test_support::bearer_client(&token, Duration::from_secs(60)),
            _identity: identity,
            token,
            database: database.pool.clone(),
            database_url: database.url.clone(),
            last_position: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// Another query service over this app's database, for SMART apps: on a port known in
    /// advance (the FHIR base is the `aud` apps ask tokens for), trusting an identity service of
    /// its own that accepts that audience, searches it in its patient picker, and is named in
    /// the CapabilityStatement. Its FHIR base and that identity service.
    pub async fn spawn_smart_base(&self) -> (String, TestIdentity) {
        let port = test_support::free_port();
        let base = format!("http://127.0.0.1:{port}/fhir");
        let identity = TestIdentity::spawn_with(
            &self.database_url,
            &[("--audiences", &base), ("--internal-fhir-base", &base)],
        )
        .await;
        let query = fhir_query_service::Application::build(
            service_kit::config::load_from(
                ServiceArgs::new("fhir-query-service", &self.database_url, 5)
                    .port(port)
                    .redis()
                    .auth(identity.issuer(), &identity.jwks_url())
                    .arg("--auth-audience", &base)
                    .arg("--auth-public-url", format!("{}/auth", identity.base_url()))
                    .arg("--reference-base-url", BASE_URL)
                    .into_args(),
            )
            .unwrap(),
        )
        .await
        .unwrap();
        tokio::spawn(query.run_until(std::future::pending()));
        (base, identity)
    }

    pub async fn spawn() -> TestApp {
        Self::spawn_with(true, 10_000).await
    }

    /// Creates or updates `resource` by id, asserting success; remembers the position.
    pub async fn put(&self, resource: &Value) {
        let response = self
            .client
            .put(format!(
                "{}/{}/{}",
                self.writes,
                resource["resourceType"].as_str().unwrap(),
                resource["id"].as_str().unwrap()
            ))
            .header("content-type", "application/fhir+json")
            .body(resource.to_string())
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "PUT {}: {}",
            resource["id"],
            response.status()
        );
        self.record_position(&response);
    }

    /// Keeps the position a write returned, for the searches after it.
    fn record_position(&self, response: &Response) {
        let position: i64 = response.headers()["x-event-position"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        self.last_position
            .fetch_max(position, std::sync::atomic::Ordering::SeqCst);
    }

    pub async fn delete(&self, path: &str) {
        let response = self
            .client
            .delete(format!("{}/{path}", self.writes))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "DELETE {path}: {}",
            response.status()
        );
        self.record_position(&response);
    }

    pub async fn put_all(&self, resources: &[Value]) {
        for resource in resources {
            self.put(resource).await;
        }
    }

    /// The highest position a write of this test returned, as the `x-event-position`
    /// header's value: a search that presents it sees every write of the test.
    pub fn position(&self) -> String {
        self.last_position
            .load(std::sync::atomic::Ordering::SeqCst)
            .to_string()
    }

    /// `GET <reads>/<path_and_query>`, presenting the last write's position.
    pub async fn get(&self, path_and_query: &str) -> Response {
        self.client
            .get(format!("{}/{path_and_query}", self.reads))
            .header("x-event-position", self.position())
            .send()
            .await
            .unwrap()
    }

    /// A request that must fail with `status` and an OperationOutcome: the outcome.
    pub async fn outcome(&self, path_and_query: &str, status: u16) -> Value {
        let response = self.get(path_and_query).await;
        assert_eq!(response.status(), status, "GET {path_and_query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["resourceType"], "OperationOutcome",
            "GET {path_and_query}: {body}"
        );
        body
    }

    /// A search that must succeed: its Bundle.
    pub async fn search(&self, path_and_query: &str) -> Value {
        let response = self.get(path_and_query).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "GET {path_and_query}: {body}");
        assert_eq!(body["resourceType"], "Bundle");
        assert_eq!(body["type"], "searchset");
        body
    }

    /// The ids of the `match` entries of a search, sorted (for searches whose order is not
    /// specified).
    pub async fn set(&self, path_and_query: &str) -> Vec<String> {
        let mut ids = self.ids(path_and_query).await;
        ids.sort();
        ids
    }

    /// The ids of the `match` entries of a search, in order.
    pub async fn ids(&self, path_and_query: &str) -> Vec<String> {
        match_ids(&self.search(path_and_query).await)
    }
}

pub fn match_ids(bundle: &Value) -> Vec<String> {
    entries_with_mode(bundle, "match")
}

pub fn entries_with_mode(bundle: &Value, mode: &str) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|entry| entry["search"]["mode"] == mode)
                .map(|entry| {
                    entry["resource"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The URL of the link `relation`, if any.
pub fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"].as_array()?.iter().find_map(|link| {
        (link["relation"] == relation).then(|| link["url"].as_str().unwrap().to_owned())
    })
}
