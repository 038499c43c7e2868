//! Starts a command service and a query service on free ports over a fresh database.

use std::time::Duration;

use command_service::Settings;
use event_store::EventStore;
use reqwest::{Client, Response};
use serde_json::Value;
use test_support::identity::TestIdentity;
use test_support::{ServiceArgs, TestDatabase};

pub struct TestApp {
    /// `http://127.0.0.1:<port>/fhir` of the command service.
    pub writes: String,
    /// `http://127.0.0.1:<port>/fhir` of the query service.
    pub reads: String,
    pub command_port: u16,
    pub query_port: u16,
    pub store: EventStore,
    pub database_url: String,
    pub client: Client,
    pub nats_url: String,
    pub stream: String,
    pub subject_prefix: String,
    /// The extra command-service arguments, which further instances get too.
    extra_args: Vec<String>,
    /// The identity service the services trust (in-process, like them).
    pub identity: TestIdentity,
}

impl TestApp {
    /// With the shared NATS server.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with_nats(&test_support::nats_url()).await
    }

    pub async fn spawn_with_nats(nats_url: &str) -> TestApp {
        TestApp::spawn_full(nats_url, &[]).await
    }

    /// With the shared NATS server and `extra` command-service arguments.
    pub async fn spawn_with_args(extra: &[&str]) -> TestApp {
        TestApp::spawn_full(&test_support::nats_url(), extra).await
    }

    async fn spawn_full(nats_url: &str, extra: &[&str]) -> TestApp {
        let database = TestDatabase::create().await;
        let (stream, subject_prefix) = test_support::unique_stream();
        let identity = TestIdentity::spawn(&database.url).await;
        let settings = command_settings_with(
            &database.url,
            nats_url,
            &stream,
            &subject_prefix,
            &identity,
            extra,
        );
        let command = command_service::Application::build(settings).await.unwrap();
        let command_port = command.port();
        tokio::spawn(command.run_until(std::future::pending()));

        let query_settings: fhir_query_service::Settings = service_kit::config::load_from(
            ServiceArgs::new("fhir-query-service", &database.url, 5)
                .redis()
                .auth(identity.issuer(), &identity.jwks_url())
                .into_args(),
        )
        .unwrap();
        let query = fhir_query_service::Application::build(query_settings)
            .await
            .unwrap();
        let query_port = query.port();
        tokio::spawn(query.run_until(std::future::pending()));

        TestApp {
            writes: format!("http://127.0.0.1:{command_port}/fhir"),
            reads: format!("http://127.0.0.1:{query_port}/fhir"),
            command_port,
            query_port,
            store: EventStore::new(database.pool.clone()),
            database_url: database.url.clone(),
            client: test_support::bearer_client(
                &identity.system_token("system/*.cruds").await.access_token,
                Duration::from_secs(30),
            ),
            identity,
            nats_url: nats_url.to_owned(),
            stream,
            subject_prefix,
            extra_args: extra.iter().map(|arg| (*arg).to_owned()).collect(),
        }
    }

    pub async fn create(&self, resource: &Value) -> Response {
        self.client
            .post(format!(
                "{}/{}",
                self.writes,
                resource["resourceType"].as_str().unwrap()
            ))
            .header("content-type", "application/fhir+json")
            .body(resource.to_string())
            .send()
            .await
            .unwrap()
    }

    /// Creates and returns the id, asserting success.
    pub async fn create_ok(&self, resource: &Value) -> String {
        let response = self.create(resource).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn update(&self, resource: &Value, if_match: Option<&str>) -> Response {
        let mut request = self
            .client
            .put(format!(
                "{}/{}/{}",
                self.writes,
                resource["resourceType"].as_str().unwrap(),
                resource["id"].as_str().unwrap()
            ))
            .header("content-type", "application/fhir+json")
            .body(resource.to_string());
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        request.send().await.unwrap()
    }

    pub async fn read(&self, path: &str) -> Response {
        self.client
            .get(format!("{}/{path}", self.reads))
            .send()
            .await
            .unwrap()
    }

    /// Another command service on the same database and stream (with its own relay and this
    /// app's extra arguments), stopped
    /// when the returned sender is dropped or fired. Returns its `/fhir` base URL.
    pub async fn spawn_another_command_service(
        &self,
    ) -> (String, tokio::sync::oneshot::Sender<()>) {
        let extra: Vec<&str> = self.extra_args.iter().map(String::as_str).collect();
        let settings = command_settings_with(
            &self.database_url,
            &self.nats_url,
            &self.stream,
            &self.subject_prefix,
            &self.identity,
            &extra,
        );
        let command = command_service::Application::build(settings).await.unwrap();
        let port = command.port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(command.run_until(async move {
            let _ = stopped.await;
        }));
        (format!("http://127.0.0.1:{port}/fhir"), stop)
    }

    /// Reads `path` from the query service and returns the body, asserting 200.
    pub async fn read_json(&self, path: &str) -> Value {
        let response = self.read(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// `DELETE /fhir/<path>` on the command service.
    pub async fn delete(&self, path: &str) -> Response {
        self.client
            .delete(format!("{}/{path}", self.writes))
            .send()
            .await
            .unwrap()
    }

    /// Starts a projection service on this app's database and stream, as conditional writes
    /// need the search indexes.
    pub async fn start_projection(&self) {
        let service = projection_service::Application::build(
            service_kit::config::load_from(
                ServiceArgs::new("projection-service", &self.database_url, 5)
                    .events_on(&self.nats_url, &self.stream, &self.subject_prefix)
                    .redis()
                    .auth(self.identity.issuer(), &self.identity.jwks_url())
                    .into_args(),
            )
            .unwrap(),
        )
        .await
        .unwrap();
        tokio::spawn(service.run_until(std::future::pending()));
    }

    /// A request to the command service: `method` on `path` (relative to `/fhir`), with a FHIR
    /// JSON body if given.
    pub fn write_request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::RequestBuilder {
        let request = self
            .client
            .request(method, format!("{}/{path}", self.writes));
        match body {
            Some(body) => request
                .header("content-type", "application/fhir+json")
                .body(body.to_string()),
            None => request,
        }
    }

    pub async fn event_count(&self) -> i64 {
        self.store.count().await.unwrap()
    }

    pub async fn cleanup(&self) {
        test_support::delete_stream(&self.nats_url, &self.stream).await;
    }
}

fn command_settings_with(
    database_url: &str,
    nats_url: &str,
    stream: &str,
    subject_prefix: &str,
    identity: &TestIdentity,
    extra: &[&str],
) -> Settings {
    let mut args = ServiceArgs::new("command-service", database_url, 20)
        .events_on(nats_url, stream, subject_prefix)
        .redis()
        .auth(identity.issuer(), &identity.jwks_url())
        .arg("--warm-validators", false);
    if !extra.contains(&"--max-body-bytes") {
        args = args.arg("--max-body-bytes", 1_048_576);
    }
    for pair in extra.chunks(2) {
        if let [name, value] = pair {
            args = args.arg(name, value);
        }
    }
    service_kit::config::load_from(args.into_args()).unwrap()
}

pub fn patient(family: &str) -> Value {
    serde_json::json!({
        "resourceType": "Patient",
        "name": [{"family": family, "given": ["Ann"]}],
        "gender": "female",
        "birthDate": "1970-02-03"
    })
}

/// Asserts an `OperationOutcome` body with an error issue, and returns it.
pub async fn assert_outcome(response: Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/fhir+json"),
        "{content_type}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    assert!(body["issue"][0]["severity"].is_string(), "{body}");
    assert!(body["issue"][0]["code"].is_string(), "{body}");
    body
}
