//! Starts an identity service over a fresh database (and the shared Redis) through the shared
//! harness, and calls its endpoints as a client application would.

use std::time::Duration;

use access_policy::AccessClaims;
use identity_service::directory::WEB_CLIENT;
use identity_service::store::{Client as OAuthClient, ClientKind};
use reqwest::redirect::Policy;
use reqwest::{Client, Response};
use serde_json::Value;
use test_support::TestDatabase;
use test_support::identity::{BackendClient, TestIdentity};

use crate::flow::{APP_CLIENT, APP_NAME};

/// The FHIR base tokens are for by default.
pub const AUDIENCE: &str = "https://localhost:8443/fhir";

pub struct TestApp {
    pub identity: TestIdentity,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A client that does not follow redirects and keeps no cookies.
    pub http: Client,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(&[]).await
    }

    /// In development mode the test app's client ([`APP_CLIENT`]) is registered beside the
    /// demo clients, with what the web app may be granted.
    pub async fn spawn_with(options: &[(&str, &str)]) -> TestApp {
        let database = TestDatabase::empty().await;
        let identity = TestIdentity::spawn_with(&database.url, options).await;
        let production = options
            .iter()
            .any(|&(name, value)| name == "--mode" && value == "production");
        if !production {
            let web = identity.store().client(WEB_CLIENT).await.unwrap().unwrap();
            identity
                .store()
                .put_client(&OAuthClient {
                    client_id: APP_CLIENT.to_owned(),
                    name: APP_NAME.to_owned(),
                    kind: ClientKind::Public,
                    redirect_uris: web.redirect_uris,
                    allowed_scopes: web.allowed_scopes,
                    jwks: None,
                    jwks_uri: None,
                    secret_hash: None,
                })
                .await
                .unwrap();
        }
        TestApp {
            base: identity.base_url(),
            identity,
            http: Client::builder()
                .redirect(Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /auth/token` with `form`.
    pub async fn token(&self, form: &[(&str, &str)]) -> Response {
        self.http
            .post(self.url("/auth/token"))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// `client_credentials` for `client` with `assertion`.
    pub async fn client_credentials(&self, assertion: &str, scope: &str) -> Response {
        self.token(&[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .await
    }

    /// What introspection says of `token`, asked by a backend client of its own.
    pub async fn introspect(&self, token: &str) -> Value {
        let caller: BackendClient = self.identity.backend_client("system/Patient.rs").await;
        let response = self
            .http
            .post(self.url("/auth/introspect"))
            .form(&[
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &self.identity.assertion(&caller)),
                ("token", token),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Whether `session:<sid>` is in Redis.
    pub async fn session_exists(&self, sid: &str) -> bool {
        let client = redis::Client::open(test_support::redis_url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let exists: i64 = redis::cmd("EXISTS")
            .arg(format!("session:{sid}"))
            .query_async(&mut connection)
            .await
            .unwrap();
        exists == 1
    }
}

/// The claims of an access token (its signature is checked by the service's own tests of
/// introspection and the JWKS).
pub fn claims(token: &str) -> AccessClaims {
    jsonwebtoken::dangerous::insecure_decode_claims(token).unwrap()
}

/// The JSON body of a response, asserting its status.
pub async fn json(response: Response, status: u16) -> Value {
    let actual = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "body: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Serves `router` on a free port (a FHIR server or a client's JWKS host, faked); its base URL.
pub async fn fake_server(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}
