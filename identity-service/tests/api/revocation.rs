//! Revocation (RFC 7009) ends the session; introspection (RFC 7662) says so.

use serde_json::Value;

use crate::helpers::{TestApp, claims, json};

async fn revoke(app: &TestApp, token: &str, client_form: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![("token", token)];
    form.extend_from_slice(client_form);
    app.http
        .post(app.url("/auth/revoke"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn revoking_an_access_token_ends_its_session() {
    let app = TestApp::spawn().await;
    let client = app.identity.backend_client("system/*.rs").await;
    let response = app
        .client_credentials(&app.identity.assertion(&client), "system/Patient.rs")
        .await;
    let token: Value = json(response, 200).await;
    let token = token["access_token"].as_str().unwrap().to_owned();
    let sid = claims(&token).sid;
    assert!(app.session_exists(&sid).await);

    // Another client's revocation changes nothing.
    let other = app.identity.backend_client("system/*.rs").await;
    let ignored = revoke(
        &app,
        &token,
        &[
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &app.identity.assertion(&other)),
        ],
    )
    .await;
    assert_eq!(ignored.status(), 200);
    assert_eq!(app.introspect(&token).await["active"], true);

    let revoked = revoke(
        &app,
        &token,
        &[
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &app.identity.assertion(&client)),
        ],
    )
    .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(revoked.headers()["cache-control"], "no-store");
    assert!(!app.session_exists(&sid).await, "session:<sid> is gone");
    assert_eq!(
        app.introspect(&token).await,
        serde_json::json!({"active": false})
    );

    // Unknown tokens are answered 200 too (nothing to learn from the answer).
    let unknown = revoke(&app, "not-a-token", &[("client_id", "wardline-web")]).await;
    assert_eq!(unknown.status(), 200);
}

#[tokio::test]
async fn introspection_needs_an_authenticated_caller() {
    let app = TestApp::spawn().await;
    let token = app.identity.system_token("system/Patient.rs").await;
    let public = app
        .http
        .post(app.url("/auth/introspect"))
        .form(&[
            ("token", token.access_token.as_str()),
            ("client_id", "wardline-web"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(json(public, 401).await["error"], "invalid_client");
    // A valid bearer token of the service will do.
    let with_bearer = app
        .http
        .post(app.url("/auth/introspect"))
        .bearer_auth(&token.access_token)
        .form(&[("token", token.access_token.as_str())])
        .send()
        .await
        .unwrap();
    let body = json(with_bearer, 200).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        app.introspect("garbage").await,
        serde_json::json!({"active": false})
    );
}
