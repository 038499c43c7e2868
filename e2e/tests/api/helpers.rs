//! What a browser or a FHIR client meets at `./deploy/dev up`'s port 8080, per test: the four
//! services and the identity service in-process over a fresh database and JetStream stream, a
//! web root, and the edge in front of them.
//!
//! The edge's port is chosen first, because the web app asks for tokens whose audience is its
//! own origin (`http://localhost:<port>/fhir`): the identity service and the services accept
//! that audience, and the web app's client may be sent back to that origin. The identity
//! service starts before the query service (which checks its tokens), so its patient picker is
//! pointed at the query service once that is up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use event_store::EventStore;
use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::{Value, json};
use test_support::identity::TestIdentity;
use test_support::{ServiceArgs, TestDatabase, spawn_service};

use crate::edge::{Edge, Upstreams};

/// The web root's page.
pub const INDEX_HTML: &str = "<!doctype html><title>Wardline test</title><p>dashboard</p>\n";

/// The smallest valid WebAssembly module: the magic number and version 1.
pub const WASM_MODULE: &[u8] = b"\0asm\x01\0\0\0";

pub struct TestApp {
    pub edge: Edge,
    /// Sends a backend client's token (`system/*.cruds`) with every request.
    pub client: Client,
    /// The identity service the services trust, in-process like them.
    pub identity: TestIdentity,
    /// The services' event store, to see what was (not) written.
    pub store: EventStore,
    stream: String,
    _web_root: Option<tempfile::TempDir>,
}

/// What the edge serves at `/`.
pub enum WebRoot {
    /// A page and a WebAssembly module, as `web/build` writes them, for the edge's own tests.
    Fixture,
    /// The real web app, as `web/build` builds it.
    App,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(&[]).await
    }

    /// With `options` added to `deploy/nginx/render`'s command line.
    pub async fn spawn_with(options: &[&str]) -> TestApp {
        TestApp::spawn_serving(WebRoot::Fixture, options).await
    }

    /// Serving `web` at `/`.
    pub async fn spawn_serving(web: WebRoot, options: &[&str]) -> TestApp {
        TestApp::spawn_configured(web, options, &[]).await
    }

    /// Serving `web`, with `identity_options` added to the identity service's command line
    /// (`("--access-token-ttl-secs", "10")`).
    pub async fn spawn_configured(
        web: WebRoot,
        options: &[&str],
        identity_options: &[(&str, &str)],
    ) -> TestApp {
        let database = TestDatabase::create().await;
        let (stream, subject_prefix) = test_support::unique_stream();
        let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let edge_port = reserved.local_addr().unwrap().port();
        let audiences = [
            "https://localhost:8443/fhir".to_owned(),
            format!("http://localhost:{edge_port}/fhir"),
            format!("http://127.0.0.1:{edge_port}/fhir"),
        ]
        .join(",");
        let mut overrides = vec![("--audiences", audiences.as_str())];
        overrides.extend_from_slice(identity_options);
        let identity = TestIdentity::spawn_with(&database.url, &overrides).await;
        identity
            .allow_web_redirects(&[
                format!("http://localhost:{edge_port}/"),
                format!("http://127.0.0.1:{edge_port}/"),
            ])
            .await;
        let (issuer, jwks) = (identity.issuer(), identity.jwks_url());

        let command_port = spawn_service!(
            command_service,
            ServiceArgs::new("command-service", &database.url, 5)
                .events(&stream, &subject_prefix)
                .auth(issuer, &jwks)
                .arg("--auth-audience", audiences.as_str())
                .arg("--warm-validators", false)
        );
        let query_port = spawn_service!(
            fhir_query_service,
            ServiceArgs::new("fhir-query-service", &database.url, 5)
                .redis()
                .auth(issuer, &jwks)
                .arg("--auth-audience", audiences.as_str())
        );
        identity.set_internal_fhir_base(&format!("http://127.0.0.1:{query_port}/fhir"));
        spawn_service!(
            projection_service,
            ServiceArgs::new("projection-service", &database.url, 5)
                .events(&stream, &subject_prefix)
                .redis()
                .auth(issuer, &jwks)
                .arg("--auth-audience", audiences.as_str())
        );
        let notifier_port = spawn_service!(
            notifier,
            ServiceArgs::new("notifier", &database.url, 5)
                .events(&stream, &subject_prefix)
                .redis()
                .auth(issuer, &jwks)
                .arg("--auth-audience", audiences.as_str())
                // Its own connection counts: the per-address cap is not shared with other tests
                // or a running stack.
                .arg("--redis-prefix", format!("ws-test-{stream}"))
                // The edge is its proxy: clients are counted under the address it forwards.
                .arg("--trusted-proxies", "127.0.0.1")
        );

        let (web_dir, web_root) = match web {
            WebRoot::Fixture => {
                let fixture = web_root();
                (fixture.path().to_owned(), Some(fixture))
            }
            WebRoot::App => (built_web_app(), None),
        };
        let edge = Edge::start_on(
            reserved,
            &Upstreams {
                command: command_port,
                query: query_port,
                notifier: notifier_port,
                identity: identity.port(),
            },
            &web_dir,
            options,
        );
        let token = identity.system_token("system/*.cruds").await.access_token;
        TestApp {
            edge,
            client: test_support::bearer_client(&token, Duration::from_secs(60)),
            identity,
            store: EventStore::new(database.pool.clone()),
            stream,
            _web_root: web_root,
        }
    }

    /// The origin a browser loads the web app from: `http://localhost:<edge port>` (a name
    /// browsers treat as secure, so the refresh cookie's `Secure` holds over plain HTTP).
    pub fn origin(&self) -> String {
        format!("http://localhost:{}", self.edge.port)
    }

    /// The edge's URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.edge.base())
    }

    /// A request to the edge.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.unwrap()
    }

    /// `method` on `path` with a FHIR JSON body.
    pub async fn send_fhir(&self, method: Method, path: &str, body: &Value) -> Response {
        self.request(method, path)
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// Creates `resource` through the edge, asserting 201; returns the created resource and the
    /// position its event committed at.
    pub async fn create(&self, resource: &Value) -> (Value, i64) {
        let path = format!("/fhir/{}", resource["resourceType"].as_str().unwrap());
        let response = self.send_fhir(Method::POST, &path, resource).await;
        assert_eq!(response.status(), 201, "POST {path}");
        let position = position(&response);
        (response.json().await.unwrap(), position)
    }

    /// A backend client's token for everything (`system/*.cruds`), as the seed data's writer.
    pub async fn system_token(&self) -> String {
        self.identity
            .system_token("system/*.cruds")
            .await
            .access_token
    }

    /// A demo user's token through the sign-in and consent pages, with `scope`, the launch
    /// context's patient chosen when given.
    pub async fn user_token(&self, role: &str, scope: &str, patient: Option<&str>) -> String {
        self.identity
            .user_token(role, scope, patient)
            .await
            .access_token
    }

    /// Creates `resource` through the edge with `token`, asserting 201; the created resource
    /// and the position its event committed at.
    pub async fn create_as(&self, token: &str, resource: &Value) -> (Value, i64) {
        let path = format!("/fhir/{}", resource["resourceType"].as_str().unwrap());
        let response = self
            .request(Method::POST, &path)
            .bearer_auth(token)
            .header("content-type", "application/fhir+json")
            .body(resource.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "POST {path}");
        let position = position(&response);
        (response.json().await.unwrap(), position)
    }

    /// Waits until the search indexes have applied the event at `position`.
    pub async fn wait_for_projections(&self, position: i64) {
        let response = self
            .request(Method::GET, "/fhir/Patient?_summary=count")
            .header("x-event-position", position.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "the projections did not reach {position}"
        );
    }

    pub async fn event_count(&self) -> i64 {
        self.store.count().await.unwrap()
    }

    /// Deletes the test's stream (a leftover one harms nothing).
    pub async fn cleanup(&self) {
        test_support::delete_stream(&test_support::nats_url(), &self.stream).await;
    }
}

/// A web root holding the page and a WebAssembly module, as `web/build` writes one.
pub fn web_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "index.html", INDEX_HTML.as_bytes());
    write(dir.path(), "wardline_bg.wasm", WASM_MODULE);
    dir
}

/// The web app's static site: `WARDLINE_WEB_DIST` when set (`./deploy/dev test` builds it once
/// for the run), else built here with `web/build`.
fn built_web_app() -> PathBuf {
    if let Some(dist) = std::env::var_os("WARDLINE_WEB_DIST") {
        let dist = PathBuf::from(dist);
        assert!(
            dist.join("index.html").is_file(),
            "WARDLINE_WEB_DIST={} holds no index.html",
            dist.display()
        );
        return dist;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dist = repo.join("target/e2e-web");
    let built = std::process::Command::new(repo.join("web/build"))
        .arg("--out")
        .arg(&dist)
        .status()
        .unwrap();
    assert!(built.success(), "web/build failed");
    dist
}

fn write(dir: &Path, name: &str, content: &[u8]) {
    std::fs::write(dir.join(name), content).unwrap();
}

/// The `X-Event-Position` of a write response.
pub fn position(response: &Response) -> i64 {
    response.headers()["x-event-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

pub fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap())
}

pub fn patient(family: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "name": [{"family": family, "given": ["Ann"]}],
        "gender": "female",
        "birthDate": "1970-02-03"
    })
}

/// Asserts an `OperationOutcome` with `status` and issue `code`; returns its body.
pub async fn assert_outcome(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let content_type = header(&response, "content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/fhir+json"),
        "{content_type}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    assert_eq!(body["issue"][0]["code"], code, "{body}");
    body
}

/// The headers the edge adds to every response, errors included.
pub fn assert_security_headers(response: &Response) {
    let url = response.url().clone();
    let csp = header(response, "content-security-policy")
        .unwrap_or_else(|| panic!("no Content-Security-Policy on {url}"));
    for directive in [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        // Its own origin only (CSP 3's 'self' covers ws: and wss: to it).
        "connect-src 'self';",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ] {
        assert!(csp.contains(directive), "{url}: {csp} lacks {directive}");
    }
    assert_eq!(
        header(response, "x-content-type-options"),
        Some("nosniff"),
        "{url}"
    );
    assert_eq!(header(response, "x-frame-options"), Some("DENY"), "{url}");
    assert_eq!(
        header(response, "referrer-policy"),
        Some("no-referrer"),
        "{url}"
    );
    assert!(header(response, "x-request-id").is_some(), "{url}");
}
