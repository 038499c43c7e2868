//! Test harness shared by the integration tests: every test gets a database and a JetStream
//! stream of its own, so tests run in parallel against the same real servers without seeing
//! each other; a test that needs to stop NATS starts a nats-server of its own; and a test that
//! needs access tokens gets them from a real identity service (`identity`).
//!
//! The servers are the ones `./deploy/dev test` starts (or names): `DATABASE_URL` must be a
//! role that may create databases, `NATS_URL` a JetStream-enabled server, and
//! `NATS_SERVER_BIN` the nats-server executable for tests that run their own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::postgres::PgPool;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

pub mod identity;
pub mod synthea;

/// The database server tests use (a role with CREATEDB).
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://wardline:wardline@127.0.0.1:5432/wardline".to_owned())
}

/// The shared NATS server.
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// The shared Redis server.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A database created for one test, with the migrations applied: the event store's and the
/// index schema's, as the services apply them.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        let database = TestDatabase::empty().await;
        event_store::store::migrate(&database.pool).await.unwrap();
        fhir_search::schema::migrate(&database.pool).await.unwrap();
        database
    }

    /// A database created for one test, with nothing in it (for tests of the migrations).
    pub async fn empty() -> TestDatabase {
        let admin_url = database_url();
        let name = format!("wl_test_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .expect("cannot connect to DATABASE_URL: start the servers with ./deploy/dev test");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("cannot create a test database (does the role have CREATEDB?)");
        admin.close().await.ok();
        let url = with_database(&admin_url, &name);
        let pool = event_store::EventStore::connect(&url, 20).await.unwrap();
        TestDatabase { name, url, pool }
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |index| index + 3);
    let path_start = base[scheme_end..].find('/').map(|index| scheme_end + index);
    let server = path_start.map_or(base, |index| &base[..index]);
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// A JetStream stream name and subject prefix no other test uses.
pub fn unique_stream() -> (String, String) {
    let tag = Uuid::new_v4().simple().to_string();
    (format!("TEST_{tag}"), format!("test.{tag}.fhir.events"))
}

/// Deletes a test's stream (tests call it at the end; a leftover stream harms nothing).
pub async fn delete_stream(nats_url: &str, stream: &str) {
    if let Ok(client) = event_store::relay::connect_nats(nats_url).await {
        let _ = async_nats::jetstream::new(client)
            .delete_stream(stream)
            .await;
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A nats-server owned by one test, which the test can stop and start again (same port, same
/// storage) to simulate an outage.
pub struct NatsServer {
    pub port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        let mut server = NatsServer {
            port: free_port(),
            store: tempfile::tempdir().unwrap(),
            child: None,
        };
        server.start_again();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (after `stop`), and waits until it accepts connections.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        let binary = std::env::var("NATS_SERVER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|_| "nats-server".into());
        let child = Command::new(&binary)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run {}: {error} (set NATS_SERVER_BIN)",
                    binary.display()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server abruptly (SIGKILL), as a crash or a network cut would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An HTTP client that sends `token` as its bearer token with every request.
pub fn bearer_client(token: &str, timeout: Duration) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    value.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(timeout)
        .build()
        .unwrap()
}

/// Polls `check` until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/wardline", "t1"),
            "postgres://u:p@h:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "t1"),
            "postgres://u@h/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "t1"),
            "postgres://h:5432/t1"
        );
    }
}

/// Starts a service crate's `Application` in the background from a [`ServiceArgs`] and gives
/// its port: `spawn_service!(command_service, ServiceArgs::new(...).events(...))`. A macro, so
/// that this crate need not depend on the services (each test crate names the ones it runs);
/// the caller needs `service_kit` and `tokio`.
#[macro_export]
macro_rules! spawn_service {
    ($service:ident, $args:expr) => {{
        let settings = ::service_kit::config::load_from($args.into_args()).unwrap();
        let service = $service::Application::build(settings).await.unwrap();
        let port = service.port();
        ::tokio::spawn(service.run_until(::std::future::pending()));
        port
    }};
}

/// The command line that starts a service in a test or a benchmark: any free port, a database,
/// and what the caller adds; `into_args` gives what `service_kit::config::load_from` takes.
#[derive(Debug, Clone)]
pub struct ServiceArgs(Vec<String>);

impl ServiceArgs {
    /// `service` (its binary name) on port 0 over `database_url`, with at most
    /// `max_connections` to it.
    pub fn new(service: &str, database_url: &str, max_connections: u32) -> Self {
        ServiceArgs(vec![
            service.to_owned(),
            "--port".to_owned(),
            "0".to_owned(),
            "--database-url".to_owned(),
            database_url.to_owned(),
            "--database-max-connections".to_owned(),
            max_connections.to_string(),
        ])
    }

    /// The shared NATS server, and the JetStream stream and subject prefix given.
    pub fn events(self, stream: &str, subject_prefix: &str) -> Self {
        self.events_on(&nats_url(), stream, subject_prefix)
    }

    /// The NATS server at `nats_url`, and the JetStream stream and subject prefix given.
    pub fn events_on(self, nats_url: &str, stream: &str, subject_prefix: &str) -> Self {
        self.arg("--nats-url", nats_url)
            .arg("--events-stream", stream)
            .arg("--events-subject-prefix", subject_prefix)
    }

    /// The shared Redis.
    pub fn redis(self) -> Self {
        self.arg("--redis-url", redis_url())
    }

    /// Tokens from the identity service at `issuer`, whose keys are at `jwks_url`, with its
    /// sessions in the shared Redis.
    pub fn auth(self, issuer: &str, jwks_url: &str) -> Self {
        self.arg("--auth-issuer", issuer)
            .arg("--auth-jwks-url", jwks_url)
            .arg("--auth-redis-url", redis_url())
    }

    /// On `port` instead of any free one (for a service whose URL must be known before it
    /// starts).
    pub fn port(mut self, port: u16) -> Self {
        if let Some(index) = self.0.iter().position(|arg| arg == "--port") {
            self.0[index + 1] = port.to_string();
        }
        self
    }

    /// One more option that takes no value (`--auth-disabled`).
    pub fn flag(mut self, name: &str) -> Self {
        self.0.push(name.to_owned());
        self
    }

    /// One more option and its value.
    pub fn arg(mut self, name: &str, value: impl ToString) -> Self {
        self.0.push(name.to_owned());
        self.0.push(value.to_string());
        self
    }

    pub fn into_args(self) -> Vec<std::ffi::OsString> {
        self.0.into_iter().map(Into::into).collect()
    }
}
