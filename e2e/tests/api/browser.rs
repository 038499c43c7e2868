//! Headless Chromium for the browser tests, driven over WebDriver (chromedriver), and the few
//! things the tests do with a page: wait for something to show, type, click, read an
//! attribute, keep a screenshot in `target/test-artifacts/`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// Headless Chromium under chromedriver, both stopped on [`Browser::stop`] (or drop).
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Browser {
        let driver_binary = find_binary("chromedriver");
        let port = test_support::free_port();
        // Its own process group, with the browsers it starts, so that a failing test can end
        // them all.
        let driver = Command::new(&driver_binary)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", driver_binary.display()));
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": find_binary("chromium"),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::new(connector.clone())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!("cannot open a Chromium session through {url}: {error}"),
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Ends the session; dropping ends the processes.
    pub async fn stop(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}

/// `name` on the PATH or in /usr/bin (Debian's chromium and chromium-driver).
fn find_binary(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed: run the tests with ./deploy/dev test, which installs Debian's chromium and chromium-driver"))
}

pub async fn wait_for(page: &Client, css: &str, bound: Duration) -> Instant {
    wait_for_all(page, &[css], bound).await
}

/// Polls until every selector matches; the moment they all did.
pub async fn wait_for_all(page: &Client, selectors: &[&str], bound: Duration) -> Instant {
    let deadline = Instant::now() + bound;
    loop {
        let mut missing = None;
        for css in selectors {
            if page.find(Locator::Css(css)).await.is_err() {
                missing = Some(*css);
                break;
            }
        }
        let Some(css) = missing else {
            return Instant::now();
        };
        if Instant::now() > deadline {
            let shot = save_screenshot(page, &timeout_shot_name(css)).await;
            panic!(
                "`{css}` did not appear within {bound:?}; screenshot {}",
                shot.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn attribute(page: &Client, css: &str, name: &str) -> Option<String> {
    page.find(Locator::Css(css))
        .await
        .ok()?
        .attr(name)
        .await
        .ok()?
}

/// Saves the page's screenshot among the test run's artifacts; its path.
pub async fn save_screenshot(page: &Client, name: &str) -> PathBuf {
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let png = page.screenshot().await.unwrap();
    std::fs::write(&path, png).unwrap();
    path
}

/// `target/test-artifacts` of the workspace (or of `CARGO_TARGET_DIR`).
fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("test-artifacts")
}

/// A screenshot's file name for a wait for `css` that timed out.
fn timeout_shot_name(css: &str) -> String {
    let slug: String = css
        .chars()
        .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '-' })
        .collect();
    let slug = slug.trim_matches('-');
    format!("timeout-{}.png", &slug[..slug.len().min(60)])
}

/// Types `text` into the field `css` (waiting for it to show first).
pub async fn type_into(page: &Client, css: &str, text: &str) {
    wait_for(page, css, Duration::from_secs(30)).await;
    page.find(Locator::Css(css))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

/// Clicks `css` (waiting for it to show first).
pub async fn click(page: &Client, css: &str) {
    wait_for(page, css, Duration::from_secs(30)).await;
    page.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The text of `css`.
pub async fn text(page: &Client, css: &str) -> String {
    page.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Signs the demo user of `role` in on the identity service's sign-in page the browser is
/// on (or about to reach), typing the user name and password, and allows on the consent page
/// that follows.
pub async fn sign_in_and_allow(page: &Client, role: &str) {
    sign_in(page, role).await;
    click(page, r#"button[name="decision"][value="allow"]"#).await;
}

/// Types the demo user's name and password into the sign-in page and submits it.
pub async fn sign_in(page: &Client, role: &str) {
    type_into(page, "#username", role).await;
    type_into(page, "#password", &format!("{role}-wardline")).await;
    click(page, r#"form[action="/auth/login"] button[type="submit"]"#).await;
    wait_for(
        page,
        r#"form[action="/auth/consent"]"#,
        Duration::from_secs(30),
    )
    .await;
}
