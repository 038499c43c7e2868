//! A real identity service for tests, and tokens obtained from it the way clients obtain them:
//! over HTTP, through the token endpoint, with nothing forged.
//!
//! [`TestIdentity::spawn`] starts the service in-process on a free port (development mode, so
//! the demo users exist; Argon2 at its cheapest; keys in a temporary directory; an issuer and a
//! throttle prefix of its own, so parallel tests never accept each other's tokens or share
//! counters). Then:
//!
//! - [`TestIdentity::system_token`]: registers a backend client with a fresh ES384 key and
//!   runs `client_credentials` with a signed assertion (SMART Backend Services);
//! - [`TestIdentity::user_token`]: signs a demo user in through the whole authorization-code
//!   flow with PKCE (authorize, the sign-in form with its anti-forgery token, consent with the
//!   patient chosen, the code exchanged), as a browser and the web app would. The demo
//!   `student` and `instructor` are in the class [`DEMO_CLASS`] (`demo`), so their tokens carry
//!   `classes: ["demo"]`; the other demo users are in no class;
//! - [`TestIdentity::user_token_in`]: the same for a new user of a role in the classes the test
//!   names (created as the admin API creates users), for tests of who may write where.
//!
//! A service under test checks the tokens with [`TestIdentity::issuer`],
//! [`TestIdentity::jwks_url`] and [`TestIdentity::audience`], and the same Redis (sessions).
//! The patient picker searches the FHIR server at `--internal-fhir-base`; a test that starts
//! its query service after the identity service points it there with
//! [`TestIdentity::set_internal_fhir_base`].

use std::time::Duration;

pub use identity_service::directory::DEMO_CLASS;
use identity_service::directory::{UserEntry, WEB_CLIENT, backend_key_pair};
pub use identity_service::ids::{pkce_challenge, random_token};
use identity_service::store::{Client, ClientKind, Store};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::redirect::Policy;
use serde_json::json;
use uuid::Uuid;

pub use identity_service::TokenResponse;

use crate::ServiceArgs;

/// The redirect URI of the web app's demo client that the user flow uses.
const REDIRECT_URI: &str = "http://localhost:8080/";

/// An identity service running in the test's process.
pub struct TestIdentity {
    port: u16,
    issuer: String,
    store: Store,
    state: identity_service::AppState,
    http: reqwest::Client,
    /// The signing keys' directory, removed with the harness.
    _data_dir: tempfile::TempDir,
}

/// A backend client registered by [`TestIdentity::backend_client`]: its id and its private key.
pub struct BackendClient {
    pub client_id: String,
    /// The ES384 private key, PKCS#8 PEM.
    pub private_key_pem: String,
    /// The key's id in the client's JWK Set.
    pub kid: String,
}

impl TestIdentity {
    /// The identity service over `database_url` (its tables are created there) and the shared
    /// Redis.
    pub async fn spawn(database_url: &str) -> TestIdentity {
        TestIdentity::spawn_with(database_url, &[]).await
    }

    /// The same, with options added or replaced (`("--mode", "production")`).
    pub async fn spawn_with(database_url: &str, overrides: &[(&str, &str)]) -> TestIdentity {
        let data_dir = tempfile::tempdir().unwrap();
        let tag = Uuid::new_v4().simple().to_string();
        let issuer = format!("https://identity-{}.test/auth", &tag[..12]);
        let mut options: Vec<(String, String)> = [
            ("--mode", "development".to_owned()),
            ("--issuer", issuer.clone()),
            ("--data-dir", data_dir.path().display().to_string()),
            ("--argon2-memory-kib", "8".to_owned()),
            ("--argon2-iterations", "1".to_owned()),
            ("--throttle-prefix", format!("identity-test-{tag}")),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        for (name, value) in overrides {
            options.retain(|(existing, _)| existing != name);
            options.push(((*name).to_owned(), (*value).to_owned()));
        }
        let issuer = options
            .iter()
            .find(|(name, _)| name == "--issuer")
            .map_or(issuer, |(_, value)| value.clone());
        let mut args = ServiceArgs::new("identity-service", database_url, 5).redis();
        for (name, value) in &options {
            args = args.arg(name, value);
        }
        let settings: identity_service::Settings =
            service_kit::config::load_from(args.into_args()).unwrap();
        let application = identity_service::Application::build(settings)
            .await
            .expect("the identity service starts");
        let port = application.port();
        let state = application.state();
        tokio::spawn(application.run_until(std::future::pending()));
        TestIdentity {
            port,
            issuer,
            state,
            store: Store::connect(database_url, 2).await.unwrap(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .redirect(Policy::none())
                .build()
                .unwrap(),
            _data_dir: data_dir,
        }
    }

    /// The port the service listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`: where the service listens (its paths start with `/auth`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The tokens' `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The tokens' `aud`: the default FHIR base.
    pub fn audience(&self) -> &str {
        "https://localhost:8443/fhir"
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.base_url())
    }

    pub fn token_url(&self) -> String {
        format!("{}/auth/token", self.base_url())
    }

    /// The users and clients, for tests that arrange them directly.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Has the patient picker search the FHIR server at `base` (`http://127.0.0.1:<port>/fhir`).
    pub fn set_internal_fhir_base(&self, base: &str) {
        self.state.picker.set_base(base);
    }

    /// Registers a public client (a SMART app running in a browser) that may be granted
    /// `allowed_scopes` and sent codes at `redirect_uri`; its client id.
    pub async fn public_client(&self, redirect_uri: &str, allowed_scopes: &str) -> String {
        let client_id = format!("test-app-{}", Uuid::new_v4().simple());
        self.store
            .put_client(&Client {
                client_id: client_id.clone(),
                name: "Test SMART app".to_owned(),
                kind: ClientKind::Public,
                redirect_uris: vec![redirect_uri.to_owned()],
                allowed_scopes: allowed_scopes.to_owned(),
                jwks: None,
                jwks_uri: None,
                secret_hash: None,
            })
            .await
            .unwrap();
        client_id
    }

    /// Adds `redirect_uris` to the web app's client (`wardline-web`), for an app served on
    /// another origin than the development defaults.
    pub async fn allow_web_redirects(&self, redirect_uris: &[String]) {
        let mut client = self.store.client(WEB_CLIENT).await.unwrap().unwrap();
        client.redirect_uris.extend(redirect_uris.iter().cloned());
        self.store.put_client(&client).await.unwrap();
    }

    /// Registers a backend client that may be granted `allowed_scopes`, with a fresh ES384
    /// key (as the admin API would).
    pub async fn backend_client(&self, allowed_scopes: &str) -> BackendClient {
        let (private_key_pem, jwks) = backend_key_pair().unwrap();
        let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
        let client_id = format!("test-backend-{}", Uuid::new_v4().simple());
        self.store
            .put_client(&Client {
                client_id: client_id.clone(),
                name: "Test backend".to_owned(),
                kind: ClientKind::Confidential,
                redirect_uris: Vec::new(),
                allowed_scopes: allowed_scopes.to_owned(),
                jwks: Some(jwks),
                jwks_uri: None,
                secret_hash: None,
            })
            .await
            .unwrap();
        BackendClient {
            client_id,
            private_key_pem,
            kid,
        }
    }

    /// A client assertion (`private_key_jwt`) of `client` for this service's token endpoint.
    pub fn assertion(&self, client: &BackendClient) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut header = Header::new(Algorithm::ES384);
        header.kid = Some(client.kid.clone());
        jsonwebtoken::encode(
            &header,
            &json!({
                "iss": client.client_id,
                "sub": client.client_id,
                "aud": format!("{}/token", self.issuer),
                "exp": now + 240,
                "iat": now,
                "jti": Uuid::new_v4().to_string(),
            }),
            &EncodingKey::from_ec_pem(client.private_key_pem.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    /// A backend service's token with `scopes` (`system/Patient.rs system/Observation.cruds`).
    pub async fn system_token(&self, scopes: &str) -> TokenResponse {
        let client = self.backend_client(scopes).await;
        let response = self
            .http
            .post(self.token_url())
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", scopes),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &self.assertion(&client)),
            ])
            .send()
            .await
            .unwrap();
        token_response(response).await
    }

    /// A token of the demo user of `role` (`nurse`), granted `scopes` through the web app's
    /// client, with `patient` chosen on the consent page (`launch/patient` is asked for then).
    /// The demo `student` and `instructor` are in the class [`DEMO_CLASS`], which their tokens
    /// carry (`classes`); the other demo users are in none.
    pub async fn user_token(
        &self,
        role: &str,
        scopes: &str,
        patient: Option<&str>,
    ) -> TokenResponse {
        let password = format!("{role}-wardline");
        self.sign_in(role, &password, scopes, patient).await
    }

    /// A token, as [`TestIdentity::user_token`] gets it, of a new user of `role` (`student`) in
    /// `classes` (`["ward-7"]`, or none): the user is created as the admin API creates one (its
    /// class names checked), named `<role>-<random>`, with the demo user's `fhirUser`
    /// (`Practitioner/demo-<role>`). The token's `sub` is the new user's name.
    pub async fn user_token_in(
        &self,
        role: &str,
        scopes: &str,
        patient: Option<&str>,
        classes: &[&str],
    ) -> TokenResponse {
        let username = format!("{role}-{}", &Uuid::new_v4().simple().to_string()[..12]);
        let password = random_token();
        let entry: UserEntry = serde_json::from_value(json!({
            "username": username,
            "password": password,
            "role": role,
            "fhirUser": format!("Practitioner/demo-{role}"),
            "classes": classes,
        }))
        .unwrap_or_else(|error| panic!("a user of role '{role}': {error}"));
        let user = entry
            .into_user(&self.state.passwords)
            .await
            .unwrap_or_else(|error| panic!("a user of role '{role}' in {classes:?}: {error}"));
        self.store.insert_user(&user).await.unwrap();
        self.sign_in(&username, &password, scopes, patient).await
    }

    /// Signs `username` in with `password` through the whole authorization-code flow.
    async fn sign_in(
        &self,
        username: &str,
        password: &str,
        scopes: &str,
        patient: Option<&str>,
    ) -> TokenResponse {
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut scopes = scopes.to_owned();
        if patient.is_some() && !scopes.split(' ').any(|scope| scope == "launch/patient") {
            scopes.push_str(" launch/patient");
        }
        let verifier = random_token();
        let state = random_token();
        let sign_in = browser
            .get(format!("{}/auth/authorize", self.base_url()))
            .query(&[
                ("response_type", "code"),
                ("client_id", WEB_CLIENT),
                ("redirect_uri", REDIRECT_URI),
                ("scope", &scopes),
                ("state", &state),
                ("aud", self.audience()),
                ("code_challenge", &pkce_challenge(&verifier)),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(sign_in.status(), 200, "authorize shows the sign-in page");
        let page = sign_in.text().await.unwrap();
        let request = hidden_field(&page, "request");
        let csrf = hidden_field(&page, "csrf");
        let signed_in = browser
            .post(format!("{}/auth/login", self.base_url()))
            .form(&[
                ("request", request.as_str()),
                ("csrf", csrf.as_str()),
                ("username", username),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(signed_in.status(), 303, "the user {username} signs in");
        let consent_url = location(&signed_in);
        let consent = browser
            .get(format!("{}{consent_url}", self.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(consent.status(), 200, "the consent page");
        let page = consent.text().await.unwrap();
        let csrf = hidden_field(&page, "csrf");
        let mut form = vec![
            ("request", request.clone()),
            ("csrf", csrf),
            ("decision", "allow".to_owned()),
        ];
        if let Some(patient) = patient {
            form.push(("patient_id", patient.to_owned()));
        }
        let allowed = browser
            .post(format!("{}/auth/consent", self.base_url()))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(allowed.status(), 303, "consent redirects to the app");
        let back = reqwest::Url::parse(&location(&allowed)).unwrap();
        let query: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
        assert_eq!(query.get("state"), Some(&state), "the state comes back");
        let code = query.get("code").expect("a code").clone();
        let response = self
            .http
            .post(self.token_url())
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", WEB_CLIENT),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
            .await
            .unwrap();
        token_response(response).await
    }
}

async fn token_response(response: reqwest::Response) -> TokenResponse {
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, 200, "the token endpoint answered {body}");
    serde_json::from_str(&body).unwrap()
}

/// The value of the hidden form field `name` in an HTML page of the identity service.
pub fn hidden_field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden field '{name}' in the page:\n{page}"))
        + marker.len();
    let end = page[start..].find('"').unwrap() + start;
    page[start..end].to_owned()
}

/// A redirect's `Location`.
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_owned()
}
