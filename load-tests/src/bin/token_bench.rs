//! Token issue benchmark of the identity service, in one run on one machine: how many tokens it
//! hands out per second, and how fast, through each of its grants.
//!
//! - **Sign-in**: a person signing in through the web app's authorization-code flow with PKCE,
//!   as a browser does it: `GET /auth/authorize` (the sign-in page), `POST /auth/login` (the
//!   password), `GET` and `POST /auth/consent`, then the code exchanged at `POST /auth/token`
//!   for an access token, an ID token and a refresh token (`openid fhirUser online_access
//!   user/*.cruds`). Passwords are hashed with the service's production Argon2id parameters
//!   (its defaults: 19 MiB, two passes, one lane), and checking the password dominates. Each
//!   client signs in as a user of its own, so the sign-in throttle (which counts attempts in
//!   flight per user) is not what is measured, and each sign-in starts from a browser with no
//!   cookies, so none skips the password.
//! - **Client credentials**: a backend service's grant (SMART Backend Services), each with a
//!   fresh ES384 client assertion signed in the load generator, as the client would.
//! - **Refresh**: the web app's refresh token exchanged for new tokens; each client keeps its
//!   own chain, since every refresh spends the token and issues the next.
//!
//! Baselines, measured in the same run: a trivial axum handler answering a form `POST` with a
//! small JSON body (HTTP alone); one Argon2id check of a password with the same parameters, on
//! one core and on every core (the bound on sign-ins); and the ES384 assertion signing alone, on
//! one core (what each client-credentials grant costs the load generator before it is sent).
//! Printed: requests/s, p50/p95/p99 per grant and concurrency, the ratios to the baselines, and
//! the memory of the process (identity service and load generator).
//!
//! Run with `load-tests/run-token-bench.sh` (which starts the servers).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clap::Parser;
use futures::StreamExt;
use futures::future::BoxFuture;
use identity_service::directory::WEB_CLIENT;
use identity_service::ids::{pkce_challenge, random_token};
use identity_service::password::Passwords;
use identity_service::settings::PasswordSettings;
use identity_service::store::User;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use load_tests::{Measurement, drive, print_table, resident_mib};
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use test_support::identity::TestIdentity;

#[derive(Debug, Parser)]
#[command(name = "token-bench")]
struct Args {
    /// Concurrent clients for the client-credentials and refresh grants, comma-separated.
    #[arg(long, default_value = "1,16,64", value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Concurrent sign-ins, comma-separated (each holds 19 MiB while its password is checked).
    #[arg(long, default_value = "1,4,16", value_delimiter = ',')]
    sign_in_concurrency: Vec<usize>,
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    #[arg(long, default_value = "load-tests/results/token-bench.json")]
    output: String,
}

/// The identity service's own settings, parsed as it parses them, for its production Argon2id
/// parameters (its defaults, or `IDENTITY_ARGON2_*` when set).
#[derive(Debug, Parser)]
struct Production {
    #[command(flatten)]
    passwords: PasswordSettings,
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where the web app's demo client may be sent back to.
const REDIRECT_URI: &str = "http://localhost:8080/";
/// What the web app asks for when a person signs in.
const USER_SCOPES: &str = "openid fhirUser online_access user/*.cruds";
const PASSWORD: &str = "bench-wardline";

const SIGN_IN: &str = "sign-in (authorization code)";
const CLIENT_CREDENTIALS: &str = "client_credentials grant";
const REFRESH: &str = "refresh_token grant";
const TRIVIAL: &str = "trivial axum handler";
const ARGON2: &str = "Argon2id password check";
const ASSERTION: &str = "ES384 assertion signing";

/// The user the worker `n` (as `drive` numbers operations) signs in as.
fn user_of(n: u64) -> String {
    format!("bench-{}", n >> 40)
}

/// Peak resident memory of this process so far, in MiB.
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// A browser's cookies, for one sign-in.
#[derive(Default)]
struct Cookies(BTreeMap<String, String>);

impl Cookies {
    fn keep(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            if let Some((name, value)) = value
                .to_str()
                .ok()
                .and_then(|text| text.split(';').next())
                .and_then(|pair| pair.split_once('='))
            {
                self.0
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The value of hidden form field `name` in a page.
fn field(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')? + start;
    Some(page[start..end].to_owned())
}

fn location(response: &reqwest::Response) -> Option<String> {
    Some(
        response
            .headers()
            .get(reqwest::header::LOCATION)?
            .to_str()
            .ok()?
            .to_owned(),
    )
}

/// A person's sign-in, from the authorization request to the token response; `None` if any
/// step answered otherwise than it should.
async fn sign_in(http: &reqwest::Client, base: &str, user: &str) -> Option<Value> {
    let mut cookies = Cookies::default();
    let verifier = random_token();
    let state = random_token();
    let page = http
        .get(format!("{base}/auth/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", WEB_CLIENT),
            ("redirect_uri", REDIRECT_URI),
            ("scope", USER_SCOPES),
            ("state", &state),
            ("aud", "https://localhost:8443/fhir"),
            ("code_challenge", &pkce_challenge(&verifier)),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .ok()
        .filter(|response| response.status() == 200)?;
    cookies.keep(&page);
    let page = page.text().await.ok()?;
    let request = field(&page, "request")?;
    let signed_in = http
        .post(format!("{base}/auth/login"))
        .header(reqwest::header::COOKIE, cookies.header())
        .form(&[
            ("request", request.as_str()),
            ("csrf", field(&page, "csrf")?.as_str()),
            ("username", user),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .ok()
        .filter(|response| response.status() == 303)?;
    cookies.keep(&signed_in);
    let consent = http
        .get(format!("{base}{}", location(&signed_in)?))
        .header(reqwest::header::COOKIE, cookies.header())
        .send()
        .await
        .ok()
        .filter(|response| response.status() == 200)?;
    cookies.keep(&consent);
    let page = consent.text().await.ok()?;
    let allowed = http
        .post(format!("{base}/auth/consent"))
        .header(reqwest::header::COOKIE, cookies.header())
        .form(&[
            ("request", request.as_str()),
            ("csrf", field(&page, "csrf")?.as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .ok()
        .filter(|response| response.status() == 303)?;
    let back = reqwest::Url::parse(&location(&allowed)?).ok()?;
    let query: BTreeMap<_, _> = back.query_pairs().into_owned().collect();
    if query.get("state") != Some(&state) {
        return None;
    }
    let tokens = http
        .post(format!("{base}/auth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", query.get("code")?.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", WEB_CLIENT),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .ok()
        .filter(|response| response.status() == 200)?;
    let tokens: Value = tokens.json().await.ok()?;
    tokens["access_token"].is_string().then_some(tokens)
}

/// A backend client of the identity service, with its key ready to sign.
struct Backend {
    client_id: String,
    kid: String,
    key: EncodingKey,
    /// The token endpoint as the issuer names it (the assertion's `aud`).
    audience: String,
}

impl Backend {
    async fn register(identity: &TestIdentity) -> Backend {
        let client = identity.backend_client(load_tests::BACKEND_SCOPES).await;
        Backend {
            key: EncodingKey::from_ec_pem(client.private_key_pem.as_bytes()).unwrap(),
            client_id: client.client_id,
            kid: client.kid,
            audience: format!("{}/token", identity.issuer()),
        }
    }

    /// A fresh client assertion (`private_key_jwt`), as SMART Backend Services asks.
    fn assertion(&self) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut header = Header::new(Algorithm::ES384);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(
            &header,
            &json!({
                "iss": self.client_id, "sub": self.client_id, "aud": self.audience,
                "exp": now + 240, "iat": now, "jti": uuid::Uuid::new_v4().to_string(),
            }),
            &self.key,
        )
        .unwrap()
    }
}

type Operation = Box<dyn Fn(u64) -> BoxFuture<'static, bool> + Send + Sync>;

fn sign_in_operation(http: &reqwest::Client, base: &str) -> Operation {
    let (http, base) = (http.clone(), base.to_owned());
    Box::new(move |n| {
        let (http, base) = (http.clone(), base.clone());
        Box::pin(async move { sign_in(&http, &base, &user_of(n)).await.is_some() })
    })
}

fn client_credentials_operation(
    http: &reqwest::Client,
    token_url: &str,
    backend: &Arc<Backend>,
) -> Operation {
    let (http, url, backend) = (http.clone(), token_url.to_owned(), backend.clone());
    Box::new(move |_| {
        let request = http.post(&url).form(&[
            ("grant_type", "client_credentials"),
            ("scope", load_tests::BACKEND_SCOPES),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &backend.assertion()),
        ]);
        Box::pin(async move { request.send().await.is_ok_and(|r| r.status() == 200) })
    })
}

/// Each worker refreshes its own chain: `chains[worker]` holds its current refresh token.
fn refresh_operation(
    http: &reqwest::Client,
    token_url: &str,
    chains: &Arc<Vec<Mutex<String>>>,
) -> Operation {
    let (http, url, chains) = (http.clone(), token_url.to_owned(), chains.clone());
    Box::new(move |n| {
        let (http, url, chains) = (http.clone(), url.clone(), chains.clone());
        Box::pin(async move {
            let chain = &chains[(n >> 40) as usize];
            let current = chain.lock().unwrap_or_else(PoisonError::into_inner).clone();
            let Ok(response) = http
                .post(&url)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", current.as_str()),
                    ("client_id", WEB_CLIENT),
                ])
                .send()
                .await
            else {
                return false;
            };
            if response.status() != 200 {
                return false;
            }
            let Ok(tokens) = response.json::<Value>().await else {
                return false;
            };
            let Some(next) = tokens["refresh_token"].as_str() else {
                return false;
            };
            *chain.lock().unwrap_or_else(PoisonError::into_inner) = next.to_owned();
            true
        })
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (warmup, duration) = (
        Duration::from_secs(args.warmup),
        Duration::from_secs(args.seconds),
    );
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let production = Production::parse_from(["identity-service"]).passwords;
    println!(
        "Argon2id: {} KiB, {} passes, {} lanes (the identity service's production parameters); {cores} cores",
        production.argon2_memory_kib, production.argon2_iterations, production.argon2_lanes
    );
    let database = test_support::TestDatabase::create().await;
    let identity = TestIdentity::spawn_with(
        &database.url,
        &[
            (
                "--argon2-memory-kib",
                &production.argon2_memory_kib.to_string(),
            ),
            (
                "--argon2-iterations",
                &production.argon2_iterations.to_string(),
            ),
            ("--argon2-lanes", &production.argon2_lanes.to_string()),
            ("--log-filter", "warn"),
        ],
    )
    .await;
    let base = identity.base_url();
    let token_url = identity.token_url();
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .build()?;

    // One user per concurrent client (for the sign-ins and the refresh chains), each with the
    // same password hashed once with the production parameters.
    let passwords = Passwords::new(&production)?;
    let hash = passwords.hash(PASSWORD).await?;
    let workers = args
        .concurrency
        .iter()
        .chain(&args.sign_in_concurrency)
        .copied()
        .max()
        .unwrap_or(1);
    for worker in 0..workers {
        identity
            .store()
            .insert_user(&User {
                username: user_of((worker as u64) << 40),
                password_hash: hash.clone(),
                role: access_policy::Role::Nurse,
                fhir_user: Some(format!("Practitioner/bench-{worker}")),
                display_name: Some(format!("Bench Nurse {worker}")),
                classes: Vec::new(),
            })
            .await?;
    }
    let backend = Arc::new(Backend::register(&identity).await);
    // Every worker's refresh chain starts with a sign-in (a few at a time, so that the peak
    // memory is the measurements').
    let chains: Vec<Mutex<String>> = futures::stream::iter(0..workers)
        .map(|worker| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let tokens = sign_in(&http, &base, &user_of((worker as u64) << 40))
                    .await
                    .expect("the bench users sign in");
                Mutex::new(tokens["refresh_token"].as_str().unwrap().to_owned())
            }
        })
        .buffered(cores)
        .collect()
        .await;
    let chains = Arc::new(chains);

    let trivial = axum::Router::new().route(
        "/auth/token",
        axum::routing::post(|| async {
            axum::Json(json!({"access_token": "x", "token_type": "Bearer", "expires_in": 900}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let trivial_url = format!(
        "http://127.0.0.1:{}/auth/token",
        listener.local_addr()?.port()
    );
    tokio::spawn(async move { axum::serve(listener, trivial).await });

    let memory_before = resident_mib().unwrap_or(0.0);
    let mut results: Vec<Measurement> = Vec::new();

    // Baselines that need no server: the password check, and signing an assertion.
    for concurrency in [1, cores] {
        let passwords = passwords.clone();
        let hash = hash.clone();
        results.push(
            drive(ARGON2, concurrency, warmup, duration, move |_| {
                let (passwords, hash) = (passwords.clone(), hash.clone());
                async move { passwords.verify(PASSWORD, Some(&hash)).await }
            })
            .await,
        );
    }
    {
        let backend = backend.clone();
        results.push(
            drive(ASSERTION, 1, warmup, duration, move |_| {
                let backend = backend.clone();
                async move {
                    tokio::task::spawn_blocking(move || !backend.assertion().is_empty())
                        .await
                        .unwrap_or(false)
                }
            })
            .await,
        );
    }

    for &concurrency in &args.sign_in_concurrency {
        results.push(
            drive(
                SIGN_IN,
                concurrency,
                warmup,
                duration,
                sign_in_operation(&http, &base),
            )
            .await,
        );
    }
    let memory_signed_in = resident_mib().unwrap_or(0.0);
    let peak_signed_in = peak_mib();
    for &concurrency in &args.concurrency {
        let form = [("grant_type", "client_credentials"), ("scope", "x")];
        let trivial_request = {
            let (http, url) = (http.clone(), trivial_url.clone());
            move |_| {
                let request = http.post(&url).form(&form);
                Box::pin(async move { request.send().await.is_ok_and(|r| r.status() == 200) })
                    as BoxFuture<'static, bool>
            }
        };
        results.push(drive(TRIVIAL, concurrency, warmup, duration, trivial_request).await);
        results.push(
            drive(
                CLIENT_CREDENTIALS,
                concurrency,
                warmup,
                duration,
                client_credentials_operation(&http, &token_url, &backend),
            )
            .await,
        );
        results.push(
            drive(
                REFRESH,
                concurrency,
                warmup,
                duration,
                refresh_operation(&http, &token_url, &chains),
            )
            .await,
        );
    }
    let memory_after = resident_mib().unwrap_or(0.0);

    println!();
    print_table(&results);
    let rate = |name: &str, concurrency: usize| {
        results
            .iter()
            .find(|m| m.name == name && m.concurrency == concurrency)
            .map_or(0.0, |m| m.per_second)
    };
    let argon2_all = rate(ARGON2, cores);
    println!(
        "\nArgon2id checks/s: {:.1} on one core, {argon2_all:.1} on {cores}; ES384 assertions signed/s on one core: {:.0}",
        rate(ARGON2, 1),
        rate(ASSERTION, 1)
    );
    for &concurrency in &args.sign_in_concurrency {
        println!(
            "{concurrency:>3} sign-ins at once: {:.1}/s = {:.2} of the Argon2id checks the machine can do",
            rate(SIGN_IN, concurrency),
            rate(SIGN_IN, concurrency) / argon2_all
        );
    }
    for &concurrency in &args.concurrency {
        let trivial = rate(TRIVIAL, concurrency);
        println!(
            "{concurrency:>3} clients: client_credentials {:.0}/s = {:.3} of the trivial handler; refresh {:.0}/s = {:.3}",
            rate(CLIENT_CREDENTIALS, concurrency),
            rate(CLIENT_CREDENTIALS, concurrency) / trivial,
            rate(REFRESH, concurrency),
            rate(REFRESH, concurrency) / trivial,
        );
    }
    println!(
        "memory (identity service and load generator in one process): {memory_before:.0} MiB before, \
         {memory_signed_in:.0} MiB after the sign-ins (peak {peak_signed_in:.0} MiB), \
         {memory_after:.0} MiB after the grants (peak {:.0} MiB)",
        peak_mib()
    );
    if let Some(parent) = std::path::Path::new(&args.output).parent() {
        std::fs::create_dir_all(parent)?;
    }
    let report = json!({
        "recordedAt": chrono::Utc::now().to_rfc3339(),
        "argon2": {"memoryKiB": production.argon2_memory_kib, "iterations": production.argon2_iterations, "lanes": production.argon2_lanes},
        "measurements": results,
        "memoryMiB": {"before": memory_before, "afterSignIns": memory_signed_in,
            "peakAfterSignIns": peak_signed_in, "after": memory_after, "peak": peak_mib()},
    });
    std::fs::write(&args.output, serde_json::to_string_pretty(&report)?)?;
    Ok(())
}
