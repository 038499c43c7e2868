//! The servers the commands talk to, started in-process for a test, with the identity service
//! whose tokens they accept.

use std::time::Duration;

use test_support::identity::TestIdentity;
use test_support::{ServiceArgs, TestDatabase};
use wardline::auth::{Credentials, TokenSource};

/// A command service, and how to sign in to it.
pub struct Api {
    /// Its FHIR base URL.
    pub url: String,
    pub identity: TestIdentity,
    /// A backend client's token (`system/*.cruds`).
    pub token: String,
}

impl Api {
    /// What the command line signs in with: the backend client's token.
    pub fn auth(&self) -> TokenSource {
        TokenSource::new(Credentials {
            token: Some(self.token.clone()),
            token_url: self.identity.token_url(),
            client_id: "unused".to_owned(),
            client_key: None,
            scope: "system/*.cruds".to_owned(),
        })
    }

    /// The command service's address (where `/teaching/` is), without the FHIR base's path.
    pub fn server_url(&self) -> String {
        self.url.trim_end_matches("/fhir").to_owned()
    }

    /// An HTTP client sending the token.
    pub fn client(&self) -> reqwest::Client {
        test_support::bearer_client(&self.token, Duration::from_secs(60))
    }

    /// The arguments that make a service trust this identity service.
    fn trusting(&self, args: ServiceArgs) -> ServiceArgs {
        args.auth(self.identity.issuer(), &self.identity.jwks_url())
    }
}

/// A command service on `database`, with a stream of its own.
pub async fn command_service(database: &TestDatabase) -> Api {
    let (stream, subject_prefix) = test_support::unique_stream();
    command_service_on(database, &stream, &subject_prefix).await
}

/// A command service on `database` publishing to `stream`.
pub async fn command_service_on(
    database: &TestDatabase,
    stream: &str,
    subject_prefix: &str,
) -> Api {
    let identity = TestIdentity::spawn(&database.url).await;
    let token = identity.system_token("system/*.cruds").await.access_token;
    let api = Api {
        url: String::new(),
        identity,
        token,
    };
    let settings: command_service::Settings = service_kit::config::load_from(
        api.trusting(
            ServiceArgs::new("command-service", &database.url, 16)
                .events(stream, subject_prefix)
                .redis()
                .arg("--warm-validators", false),
        )
        .into_args(),
    )
    .unwrap();
    let application = command_service::Application::build(settings).await.unwrap();
    let url = format!("http://127.0.0.1:{}/fhir", application.port());
    tokio::spawn(application.run_until(std::future::pending()));
    Api { url, ..api }
}

/// A projection service on `database`, consuming `stream`.
pub async fn projection_on(api: &Api, database: &TestDatabase, stream: &str, subject_prefix: &str) {
    let projection = projection_service::Application::build(
        service_kit::config::load_from(
            api.trusting(
                ServiceArgs::new("projection-service", &database.url, 5)
                    .events(stream, subject_prefix)
                    .redis(),
            )
            .into_args(),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    tokio::spawn(projection.run_until(std::future::pending()));
}

/// A query service on `database`; its FHIR base URL.
pub async fn query_service(api: &Api, database: &TestDatabase) -> String {
    let query = fhir_query_service::Application::build(
        service_kit::config::load_from(
            api.trusting(ServiceArgs::new("fhir-query-service", &database.url, 5).redis())
                .into_args(),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let url = format!("http://127.0.0.1:{}/fhir", query.port());
    tokio::spawn(query.run_until(std::future::pending()));
    url
}
