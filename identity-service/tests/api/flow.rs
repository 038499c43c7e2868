//! The browser side of the authorization-code flow, step by step: a browser keeping cookies,
//! the sign-in form, the consent page, the redirect back with the code.
//!
//! The client is a public SMART app registered for the tests ([`APP_CLIENT`]), which gets its
//! refresh tokens in the JSON like any SMART app; the web app's own client, whose refresh
//! token travels in a cookie, has its tests in `web_app`.

use std::collections::HashMap;
use std::time::Duration;

use identity_service::ids::{pkce_challenge, random_token};
use reqwest::redirect::Policy;
use reqwest::{Client, Response};
use test_support::identity::TokenResponse;

pub use test_support::identity::{hidden_field, location};

use crate::helpers::{AUDIENCE, TestApp};

/// The redirect URI the tests use.
pub const REDIRECT_URI: &str = "http://localhost:8080/";

/// The public client of the tests (`TestApp::spawn` registers it in development mode).
pub const APP_CLIENT: &str = "test-app";

/// Its name, as the sign-in and consent pages show it.
pub const APP_NAME: &str = "Test app";

/// What the web app asks for in most tests.
pub const WEB_SCOPES: &str = "openid fhirUser online_access user/*.rs patient/*.rs";

/// One browser's way through the authorization-code flow.
pub struct Flow {
    pub browser: Client,
    pub verifier: String,
    pub state: String,
    /// The pending request's id and the anti-forgery token, from the sign-in page.
    pub request: String,
    pub csrf: String,
}

impl TestApp {
    /// A browser: keeps cookies, shows redirects instead of following them.
    pub fn browser() -> Client {
        Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// The authorization parameters of the test app with PKCE, `overrides` replacing (or, with
    /// an empty value, removing) some.
    pub fn authorize_params(
        scope: &str,
        challenge: &str,
        state: &str,
        overrides: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let mut params: Vec<(String, String)> = [
            ("response_type", "code"),
            ("client_id", APP_CLIENT),
            ("redirect_uri", REDIRECT_URI),
            ("scope", scope),
            ("state", state),
            ("aud", AUDIENCE),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        for (name, value) in overrides {
            params.retain(|(existing, _)| existing != name);
            if !value.is_empty() {
                params.push(((*name).to_owned(), (*value).to_owned()));
            }
        }
        params
    }

    /// `GET /auth/authorize` in `browser`.
    pub async fn authorize(&self, browser: &Client, params: &[(String, String)]) -> Response {
        browser
            .get(self.url("/auth/authorize"))
            .query(params)
            .send()
            .await
            .unwrap()
    }

    /// A new browser at the sign-in page for `scope` (with `overrides` of the parameters).
    pub async fn start(&self, scope: &str, overrides: &[(&str, &str)]) -> Flow {
        let browser = TestApp::browser();
        let verifier = random_token();
        let state = random_token();
        let params =
            TestApp::authorize_params(scope, &pkce_challenge(&verifier), &state, overrides);
        let response = self.authorize(&browser, &params).await;
        assert_eq!(response.status(), 200, "the sign-in page");
        let page = response.text().await.unwrap();
        Flow {
            browser,
            verifier,
            state,
            request: hidden_field(&page, "request"),
            csrf: hidden_field(&page, "csrf"),
        }
    }

    /// Posts the sign-in form.
    pub async fn sign_in(&self, flow: &Flow, username: &str, password: &str) -> Response {
        self.sign_in_with(flow, username, password, &flow.csrf)
            .await
    }

    pub async fn sign_in_with(
        &self,
        flow: &Flow,
        username: &str,
        password: &str,
        csrf: &str,
    ) -> Response {
        let mut form = vec![
            ("request", flow.request.as_str()),
            ("username", username),
            ("password", password),
        ];
        if !csrf.is_empty() {
            form.push(("csrf", csrf));
        }
        flow.browser
            .post(self.url("/auth/login"))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Signs the demo user of `role` in, and opens the consent page; its HTML.
    pub async fn sign_in_to_consent(&self, flow: &Flow, role: &str) -> String {
        let response = self.sign_in(flow, role, &format!("{role}-wardline")).await;
        assert_eq!(response.status(), 303, "{role} signs in");
        let consent = flow
            .browser
            .get(self.url(&location(&response)))
            .send()
            .await
            .unwrap();
        assert_eq!(consent.status(), 200);
        consent.text().await.unwrap()
    }

    /// Posts the consent form with `extra` fields.
    pub async fn consent(&self, flow: &Flow, csrf: &str, extra: &[(&str, &str)]) -> Response {
        let mut form: Vec<(&str, &str)> = vec![("request", flow.request.as_str())];
        if !csrf.is_empty() {
            form.push(("csrf", csrf));
        }
        form.extend_from_slice(extra);
        flow.browser
            .post(self.url("/auth/consent"))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// The whole browser part for the demo user of `role`: the flow and the code.
    pub async fn code(&self, role: &str, scope: &str, extra: &[(&str, &str)]) -> (Flow, String) {
        let flow = self.start(scope, &[]).await;
        self.sign_in_to_consent(&flow, role).await;
        let mut form = vec![("decision", "allow")];
        form.extend_from_slice(extra);
        let csrf = flow.csrf.clone();
        let response = self.consent(&flow, &csrf, &form).await;
        assert_eq!(response.status(), 303, "consent redirects");
        let back = redirect_query(&response);
        assert_eq!(back.get("state"), Some(&flow.state));
        let code = back.get("code").expect("a code").clone();
        (flow, code)
    }

    /// Exchanges a code at the token endpoint as the test app.
    pub async fn exchange(&self, code: &str, verifier: &str) -> Response {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", APP_CLIENT),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// A token of the demo user of `role` with `scope`, through the whole flow.
    pub async fn user_tokens(&self, role: &str, scope: &str) -> TokenResponse {
        let (flow, code) = self.code(role, scope, &[]).await;
        let response = self.exchange(&code, &flow.verifier).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Refreshes as the test app.
    pub async fn refresh(&self, refresh_token: &str, scope: Option<&str>) -> Response {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", APP_CLIENT),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        self.token(&form).await
    }
}

/// The query parameters of a redirect's `Location`.
pub fn redirect_query(response: &Response) -> HashMap<String, String> {
    reqwest::Url::parse(&location(response))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}
