//! The servers the commands talk to, started in-process for a test.

use test_support::{ServiceArgs, TestDatabase};

/// A command service on `database`, with a stream of its own; its FHIR base URL.
pub async fn command_service(database: &TestDatabase) -> String {
    let (stream, subject_prefix) = test_support::unique_stream();
    command_service_on(database, &stream, &subject_prefix).await
}

/// A command service on `database` publishing to `stream`; its FHIR base URL.
pub async fn command_service_on(
    database: &TestDatabase,
    stream: &str,
    subject_prefix: &str,
) -> String {
    let settings: command_service::Settings = service_kit::config::load_from(
        ServiceArgs::new("command-service", &database.url, 16)
            .events(stream, subject_prefix)
            .arg("--warm-validators", false)
            .into_args(),
    )
    .unwrap();
    let application = command_service::Application::build(settings).await.unwrap();
    let url = format!("http://127.0.0.1:{}/fhir", application.port());
    tokio::spawn(application.run_until(std::future::pending()));
    url
}

/// A projection service on `database`, consuming `stream`.
pub async fn projection_on(database: &TestDatabase, stream: &str, subject_prefix: &str) {
    let projection = projection_service::Application::build(
        service_kit::config::load_from(
            ServiceArgs::new("projection-service", &database.url, 5)
                .events(stream, subject_prefix)
                .redis()
                .into_args(),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    tokio::spawn(projection.run_until(std::future::pending()));
}
