//! The web app's refresh token lives in an HttpOnly cookie: the token endpoint sets it instead
//! of answering it, a refresh without a `refresh_token` parameter takes it (from the page's own
//! origin only), rotation and reuse detection hold as for any refresh token, and signing out
//! ends its session and removes it.

use identity_service::directory::WEB_CLIENT;
use reqwest::Response;
use serde_json::{Value, json};

use crate::flow::{APP_CLIENT, Flow, REDIRECT_URI, redirect_query};
use crate::helpers::{TestApp, claims, json};

/// What the web app asks for.
const SCOPES: &str = "openid fhirUser offline_access user/*.cruds";

/// The demo user of `role` through sign-in and consent as the web app; the flow and the code.
async fn web_code(app: &TestApp, role: &str) -> (Flow, String) {
    let flow = app.start(SCOPES, &[("client_id", WEB_CLIENT)]).await;
    app.sign_in_to_consent(&flow, role).await;
    let csrf = flow.csrf.clone();
    let allowed = app.consent(&flow, &csrf, &[("decision", "allow")]).await;
    assert_eq!(allowed.status(), 303, "consent redirects to the web app");
    let back = redirect_query(&allowed);
    assert_eq!(back.get("state"), Some(&flow.state));
    let code = back["code"].clone();
    (flow, code)
}

/// The code exchanged as the web app does it.
async fn exchange(app: &TestApp, code: &str, verifier: &str) -> Response {
    app.token(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", WEB_CLIENT),
        ("code_verifier", verifier),
    ])
    .await
}

/// A refresh as the web app's page makes it: no `refresh_token` parameter, the cookie (if
/// any), and the `Sec-Fetch-Site` a browser sends (if any).
async fn refresh(app: &TestApp, cookie: Option<&str>, site: Option<&str>) -> Response {
    let mut request = app
        .http
        .post(app.url("/auth/token"))
        .form(&[("grant_type", "refresh_token"), ("client_id", WEB_CLIENT)]);
    if let Some(token) = cookie {
        request = request.header("cookie", format!("wl_refresh={token}"));
    }
    if let Some(site) = site {
        request = request.header("sec-fetch-site", site);
    }
    request.send().await.unwrap()
}

/// The `Set-Cookie` of the refresh cookie in `response`, if there is one.
fn refresh_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .find(|value| value.starts_with("wl_refresh="))
}

/// The value of a `Set-Cookie`.
fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_owned()
}

/// The `Max-Age` of a `Set-Cookie`.
fn max_age(set_cookie: &str) -> i64 {
    set_cookie
        .split(';')
        .find_map(|attribute| attribute.trim().strip_prefix("Max-Age="))
        .unwrap()
        .parse()
        .unwrap()
}

/// Signs the nurse in as the web app: the token response's JSON and the refresh cookie's value.
async fn signed_in(app: &TestApp) -> (Value, String) {
    let (flow, code) = web_code(app, "nurse").await;
    let response = exchange(app, &code, &flow.verifier).await;
    let cookie = refresh_cookie(&response).expect("the refresh token is set as a cookie");
    (json(response, 200).await, cookie_value(&cookie))
}

#[tokio::test]
async fn the_web_app_gets_its_refresh_token_as_an_http_only_cookie_not_in_the_json() {
    let app = TestApp::spawn().await;
    let (flow, code) = web_code(&app, "nurse").await;
    let response = exchange(&app, &code, &flow.verifier).await;
    let set_cookie = refresh_cookie(&response).expect("a wl_refresh cookie");
    for attribute in ["Path=/auth", "HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(
            set_cookie.split("; ").any(|part| part == attribute),
            "{attribute} in {set_cookie}"
        );
    }
    let lifetime = max_age(&set_cookie);
    assert!(
        (29 * 24 * 3600..=30 * 24 * 3600).contains(&lifetime),
        "the cookie lasts as long as the offline_access session: {lifetime}"
    );
    let tokens = json(response, 200).await;
    assert!(
        tokens.get("refresh_token").is_none(),
        "no refresh token in the JSON: {tokens}"
    );
    assert!(tokens["access_token"].is_string() && tokens["id_token"].is_string());
    assert_eq!(
        tokens["scope"],
        "user/*.cruds openid fhirUser offline_access"
    );

    let refresh_token = cookie_value(&set_cookie);
    let introspected = app.introspect(&refresh_token).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["token_type"], "refresh_token");
    assert_eq!(introspected["client_id"], WEB_CLIENT);
    assert_eq!(introspected["username"], "nurse");
}

#[tokio::test]
async fn a_refresh_without_a_parameter_takes_the_cookie_and_rotates_it() {
    let app = TestApp::spawn().await;
    let (tokens, first) = signed_in(&app).await;
    let first_access = tokens["access_token"].as_str().unwrap().to_owned();
    let sid = claims(&first_access).sid;

    let response = refresh(&app, Some(&first), Some("same-origin")).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let rotated = cookie_value(&refresh_cookie(&response).expect("the next refresh token"));
    assert_ne!(rotated, first, "rotated");
    let refreshed = json(response, 200).await;
    assert!(refreshed.get("refresh_token").is_none(), "{refreshed}");
    let access = refreshed["access_token"].as_str().unwrap();
    assert_ne!(access, first_access);
    assert_eq!(claims(access).sid, sid, "same session");
    assert_eq!(claims(access).role.as_deref(), Some("nurse"));

    // A client that is no browser sends no Sec-Fetch-Site: the cookie is taken all the same.
    let again = refresh(&app, Some(&rotated), None).await;
    let third = cookie_value(&refresh_cookie(&again).unwrap());
    assert_eq!(again.status(), 200);

    // The spent first token presented again ends the session, and the cookie is removed.
    let replay = refresh(&app, Some(&first), Some("same-origin")).await;
    let cleared = refresh_cookie(&replay).expect("the spent cookie is removed");
    assert_eq!(cookie_value(&cleared), "");
    assert_eq!(max_age(&cleared), 0);
    assert_eq!(json(replay, 400).await["error"], "invalid_grant");
    assert!(!app.session_exists(&sid).await, "the session is ended");
    assert_eq!(app.introspect(access).await, json!({"active": false}));
    assert_eq!(app.introspect(&third).await, json!({"active": false}));
    let after = refresh(&app, Some(&third), Some("same-origin")).await;
    assert_eq!(
        json(after, 400).await["error"],
        "invalid_grant",
        "the latest token of the rotation is dead too"
    );
}

#[tokio::test]
async fn a_refresh_from_another_site_or_without_a_cookie_is_refused() {
    let app = TestApp::spawn().await;
    let (_, cookie) = signed_in(&app).await;

    for site in ["cross-site", "same-site"] {
        let response = refresh(&app, Some(&cookie), Some(site)).await;
        assert!(refresh_cookie(&response).is_none(), "{site}: nothing set");
        assert_eq!(
            json(response, 400).await["error"],
            "invalid_request",
            "{site}"
        );
    }
    let without = refresh(&app, None, Some("same-origin")).await;
    assert_eq!(json(without, 400).await["error"], "invalid_grant");
    // Another client must still name its refresh token.
    let other = app
        .token(&[("grant_type", "refresh_token"), ("client_id", APP_CLIENT)])
        .await;
    assert_eq!(json(other, 400).await["error"], "invalid_request");

    // The refused requests did not spend the cookie.
    let response = refresh(&app, Some(&cookie), Some("same-origin")).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn signing_out_ends_the_web_apps_session_and_removes_the_cookie() {
    let app = TestApp::spawn().await;
    let (tokens, cookie) = signed_in(&app).await;
    let access = tokens["access_token"].as_str().unwrap();
    let sid = claims(access).sid;

    // The page signs out with its cookies only: no sign-in cookie is needed to end the web
    // app's session (the browser's sign-in may have expired before it).
    let signed_out = app
        .http
        .post(app.url("/auth/logout"))
        .header("cookie", format!("wl_refresh={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), 200);
    let cleared = refresh_cookie(&signed_out).expect("the refresh cookie is removed");
    assert_eq!(cookie_value(&cleared), "");
    assert_eq!(max_age(&cleared), 0);
    assert!(cleared.contains("Path=/auth"), "{cleared}");

    assert!(!app.session_exists(&sid).await);
    assert_eq!(app.introspect(access).await, json!({"active": false}));
    let refreshed = refresh(&app, Some(&cookie), Some("same-origin")).await;
    assert_eq!(json(refreshed, 400).await["error"], "invalid_grant");
}
