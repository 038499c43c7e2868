//! Starts a command service and a projection service over a fresh database and stream, and
//! reads the projection tables back in a form that compares across instances and rebuilds.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Client, Response};
use serde_json::Value;
use sqlx::PgPool;
use test_support::identity::TestIdentity;
use test_support::{ServiceArgs, TestDatabase};

pub struct TestApp {
    /// `http://127.0.0.1:<port>/fhir` of the command service.
    pub writes: String,
    /// `http://127.0.0.1:<port>` of the first projection service.
    pub projection: String,
    pub pool: PgPool,
    pub database_url: String,
    pub client: Client,
    pub stream: String,
    pub subject_prefix: String,
    pub consumer: String,
    /// Stops the first projection service, and its task, which ends when it has stopped.
    stop_projection: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    )>,
    /// The identity service the services trust (in-process, like them).
    pub identity: TestIdentity,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let database = TestDatabase::create().await;
        let (stream, subject_prefix) = test_support::unique_stream();
        let identity = TestIdentity::spawn(&database.url).await;
        let command = command_service::Application::build(command_settings(
            &database.url,
            &stream,
            &subject_prefix,
            &identity,
        ))
        .await
        .unwrap();
        let command_port = command.port();
        tokio::spawn(command.run_until(std::future::pending()));
        let mut app = TestApp {
            writes: format!("http://127.0.0.1:{command_port}/fhir"),
            projection: String::new(),
            pool: database.pool.clone(),
            database_url: database.url.clone(),
            client: test_support::bearer_client(
                &identity.system_token("system/*.cruds").await.access_token,
                Duration::from_secs(120),
            ),
            identity,
            consumer: format!("projection-{stream}"),
            stream,
            subject_prefix,
            stop_projection: None,
        };
        let (base, stop, task) = app.start_projection().await;
        app.projection = base;
        app.stop_projection = Some((stop, task));
        app
    }

    /// Settings of a projection service on this app's database, stream and consumer.
    pub fn projection_settings(&self) -> projection_service::Settings {
        service_kit::config::load_from(
            ServiceArgs::new("projection-service", &self.database_url, 5)
                .events(&self.stream, &self.subject_prefix)
                .redis()
                .auth(self.identity.issuer(), &self.identity.jwks_url())
                .arg("--consumer", &self.consumer)
                .arg("--fhir-base-url", BASE_URL)
                .into_args(),
        )
        .unwrap()
    }

    /// Another projection service instance sharing the consumer; stopped when the sender fires
    /// or is dropped. Returns its base URL.
    pub async fn spawn_projection(&self) -> (String, tokio::sync::oneshot::Sender<()>) {
        let (base, stop, _task) = self.start_projection().await;
        (base, stop)
    }

    async fn start_projection(
        &self,
    ) -> (
        String,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let service = projection_service::Application::build(self.projection_settings())
            .await
            .unwrap();
        let port = service.port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(service.run_until(async move {
            let _ = stopped.await;
        }));
        (format!("http://127.0.0.1:{port}"), stop, task)
    }

    /// Stops the first projection service and waits until its consumer has stopped (writes
    /// go on; the durable consumer keeps their events).
    pub async fn stop_projection(&mut self) {
        if let Some((stop, task)) = self.stop_projection.take() {
            let _ = stop.send(());
            task.await.unwrap().unwrap();
        }
    }

    pub async fn put(&self, resource: &Value) -> Response {
        self.client
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
            .unwrap()
    }

    /// Writes `resource` (create or update by id), asserting success.
    pub async fn put_ok(&self, resource: &Value) {
        let response = self.put(resource).await;
        let status = response.status();
        assert!(
            status.is_success(),
            "PUT {}/{}: {status} {}",
            resource["resourceType"],
            resource["id"],
            response.text().await.unwrap()
        );
    }

    pub async fn delete_ok(&self, path: &str) {
        let response = self
            .client
            .delete(format!("{}/{path}", self.writes))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "DELETE {path}");
    }

    pub async fn status(&self, base: &str) -> Value {
        self.client
            .get(format!("{base}/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `base`'s `/status` once `ready` holds for it. Counters move after the checkpoint does,
    /// so a status read right after `caught_up` may not show them yet.
    pub async fn status_when(
        &self,
        base: &str,
        what: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        test_support::eventually(what, Duration::from_secs(30), || async {
            let status = self.status(base).await;
            ready(&status).then_some(status)
        })
        .await
    }

    /// Waits until the projections have applied everything the store holds.
    pub async fn caught_up(&self) {
        self.caught_up_within(Duration::from_secs(120)).await;
    }

    /// Waits until the projections have applied everything the store holds, failing after
    /// `within`: for tests where the time is what is tested.
    pub async fn caught_up_within(&self, within: Duration) {
        let store = event_store::EventStore::new(self.pool.clone());
        test_support::eventually("projection lag reaches 0", within, || async {
            let head = store.head_position().await.unwrap();
            let (position,): (i64,) =
                sqlx::query_as("SELECT position FROM projection_checkpoint WHERE name = 'search'")
                    .fetch_one(&self.pool)
                    .await
                    .unwrap();
            (head > 0 && position == head).then_some(())
        })
        .await;
    }

    /// The ids of the `resource_type` resources a search with `params` finds, by the query
    /// service's own statement.
    pub async fn search(&self, resource_type: &str, params: &[(&str, &str)]) -> Vec<String> {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        let query = fhir_search::query::parse(
            fhir_search::Registry::r4(),
            vec![resource_type.to_owned()],
            &params,
            BASE_URL,
        )
        .unwrap();
        let rows: Vec<(i64, String, String)> =
            fhir_search::sql::select_matches(&query, None, 100, fhir_search::sql::View::Live)
                .build_query_as()
                .fetch_all(&self.pool)
                .await
                .unwrap();
        rows.into_iter().map(|(_, _, id)| id).collect()
    }

    /// The rows of `table` for one resource, as JSON text without `res_pk`, sorted.
    pub async fn rows(&self, table: &str, resource_type: &str, id: &str) -> Vec<Value> {
        let rows: Vec<(Value,)> = sqlx::query_as(&format!(
            "SELECT to_jsonb(t) - 'res_pk' FROM {table} t JOIN hfj_resource r USING (res_pk) \
             WHERE r.res_type = $1 AND r.res_id = $2 ORDER BY 1"
        ))
        .bind(resource_type)
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .unwrap();
        rows.into_iter().map(|(row,)| row).collect()
    }

    /// The rows of `table` for one resource and parameter.
    pub async fn param_rows(
        &self,
        table: &str,
        resource_type: &str,
        id: &str,
        param: &str,
    ) -> Vec<Value> {
        self.rows(table, resource_type, id)
            .await
            .into_iter()
            .filter(|row| row["sp_name"] == param)
            .collect()
    }

    pub async fn snapshot(&self) -> BTreeMap<String, Vec<String>> {
        snapshot(&self.pool).await
    }

    pub async fn cleanup(&self) {
        test_support::delete_stream(&test_support::nats_url(), &self.stream).await;
    }
}

/// The base URL the projection treats as local in these tests.
pub const BASE_URL: &str = "http://fhir.test/fhir";

/// Every projection table's content, with `res_pk` (a surrogate that differs between
/// instances and rebuilds) replaced by the resource's type and id, sorted.
pub async fn snapshot(pool: &PgPool) -> BTreeMap<String, Vec<String>> {
    let mut tables = BTreeMap::new();
    let twins = fhir_search::schema::HISTORY.iter().map(|(_, twin)| twin);
    for table in projection_service::tables::ROW_TABLES.iter().chain(twins) {
        let rows: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT r.res_type || '/' || r.res_id || ' ' || (to_jsonb(t) - 'res_pk')::text \
             FROM {table} t JOIN (SELECT res_pk, res_type, res_id FROM hfj_resource \
                 UNION ALL SELECT res_pk, res_type, res_id || ' sandbox ' || partition FROM hfj_sandbox_resource) r \
             USING (res_pk) ORDER BY 1"
        ))
        .fetch_all(pool)
        .await
        .unwrap();
        tables.insert(
            (*table).to_owned(),
            rows.into_iter().map(|(row,)| row).collect(),
        );
    }
    let resources: Vec<(String,)> = sqlx::query_as(
        "SELECT (to_jsonb(r) - 'res_pk' - 'position')::text FROM hfj_resource r ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    tables.insert(
        "hfj_resource".to_owned(),
        resources.into_iter().map(|(row,)| row).collect(),
    );
    // Every version with the positions it was current over.
    let versions: Vec<(String,)> =
        sqlx::query_as("SELECT (to_jsonb(v) - 'res_pk')::text FROM hfj_res_ver v ORDER BY 1")
            .fetch_all(pool)
            .await
            .unwrap();
    tables.insert(
        "hfj_res_ver".to_owned(),
        versions.into_iter().map(|(row,)| row).collect(),
    );
    let sandboxed: Vec<(String,)> = sqlx::query_as(
        "SELECT (to_jsonb(s) - 'res_pk')::text FROM hfj_sandbox_resource s ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    tables.insert(
        "hfj_sandbox_resource".to_owned(),
        sandboxed.into_iter().map(|(row,)| row).collect(),
    );
    tables
}

pub fn command_settings(
    database_url: &str,
    stream: &str,
    subject_prefix: &str,
    identity: &TestIdentity,
) -> command_service::Settings {
    service_kit::config::load_from(
        ServiceArgs::new("command-service", database_url, 10)
            .events(stream, subject_prefix)
            .redis()
            .auth(identity.issuer(), &identity.jwks_url())
            .arg("--warm-validators", false)
            .arg("--fhir-base-url", BASE_URL)
            .into_args(),
    )
    .unwrap()
}
