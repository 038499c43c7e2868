//! The admin API: admins only; users and clients created and removed.

use serde_json::json;

use crate::flow::hidden_field;
use crate::helpers::{TestApp, json};

#[tokio::test]
async fn the_admin_api_refuses_anyone_but_an_admin() {
    let app = TestApp::spawn().await;
    let anonymous = app
        .http
        .get(app.url("/auth/admin/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert_eq!(json(anonymous, 401).await["error"], "invalid_token");

    let forged = app
        .http
        .get(app.url("/auth/admin/users"))
        .bearer_auth("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.")
        .send()
        .await
        .unwrap();
    assert_eq!(json(forged, 401).await["error"], "invalid_token");

    let service = app.identity.system_token("system/*.cruds").await;
    let nurse = app
        .identity
        .user_token("nurse", "openid user/*.rs", None)
        .await;
    for token in [&service.access_token, &nurse.access_token] {
        for (method, path) in [
            (reqwest::Method::GET, "/auth/admin/users"),
            (reqwest::Method::POST, "/auth/admin/users"),
            (reqwest::Method::GET, "/auth/admin/clients"),
            (reqwest::Method::DELETE, "/auth/admin/users/nurse"),
            (reqwest::Method::POST, "/auth/admin/keys/rotate"),
        ] {
            let response = app
                .http
                .request(method.clone(), app.url(path))
                .bearer_auth(token)
                .json(&json!({"username": "x", "password": "long-enough", "role": "admin"}))
                .send()
                .await
                .unwrap();
            let body = json(response, 403).await;
            assert_eq!(body["error"], "access_denied", "{method} {path}");
        }
    }
    // Nothing was changed.
    assert!(app.identity.store().user("nurse").await.unwrap().is_some());
    assert!(app.identity.store().user("x").await.unwrap().is_none());
}

#[tokio::test]
async fn an_admin_manages_users_and_clients() {
    let app = TestApp::spawn().await;
    let admin = app
        .identity
        .user_token("admin", "openid user/*.rs", None)
        .await;
    let send = |method: reqwest::Method, path: &str, body: Option<serde_json::Value>| {
        let mut request = app
            .http
            .request(method, app.url(path))
            .bearer_auth(&admin.access_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };

    let users = json(
        send(reqwest::Method::GET, "/auth/admin/users", None)
            .await
            .unwrap(),
        200,
    )
    .await;
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["username"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "admin",
            "instructor",
            "nurse",
            "pharmacist",
            "physician",
            "student"
        ]
    );
    assert_eq!(users[2]["role"], "nurse");
    assert_eq!(users[2]["fhirUser"], "Practitioner/demo-nurse");
    assert!(
        users[2].get("password_hash").is_none(),
        "hashes never leave"
    );

    let created = send(
        reqwest::Method::POST,
        "/auth/admin/users",
        Some(
            json!({"username": "rsmith", "password": "correct horse", "role": "physician",
                    "fhirUser": "Practitioner/rsmith", "name": "R. Smith"}),
        ),
    )
    .await
    .unwrap();
    let created = json(created, 201).await;
    assert_eq!(
        created,
        json!({"username": "rsmith", "role": "physician",
                               "fhirUser": "Practitioner/rsmith", "name": "R. Smith"})
    );
    let again = send(
        reqwest::Method::POST,
        "/auth/admin/users",
        Some(json!({"username": "rsmith", "password": "correct horse", "role": "physician"})),
    )
    .await
    .unwrap();
    assert!(
        json(again, 400).await["error_description"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
    let invalid = send(
        reqwest::Method::POST,
        "/auth/admin/users",
        Some(json!({"username": "bad name", "password": "short", "role": "surgeon"})),
    )
    .await
    .unwrap();
    assert_eq!(json(invalid, 400).await["error"], "invalid_request");
    let stored = app.identity.store().user("rsmith").await.unwrap().unwrap();
    assert!(stored.password_hash.starts_with("$argon2id$"));

    let deleted = send(reqwest::Method::DELETE, "/auth/admin/users/rsmith", None)
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = send(reqwest::Method::DELETE, "/auth/admin/users/rsmith", None)
        .await
        .unwrap();
    assert_eq!(json(gone, 404).await["error"], "not_found");

    let client = send(
        reqwest::Method::POST,
        "/auth/admin/clients",
        Some(
            json!({"client_id": "ward-app", "name": "Ward app", "kind": "public",
                    "redirect_uris": ["https://ward.example.org/callback"],
                    "allowed_scopes": "openid launch/patient patient/*.rs"}),
        ),
    )
    .await
    .unwrap();
    let client = json(client, 201).await;
    assert_eq!(client["client_id"], "ward-app");
    assert_eq!(client["kind"], "public");
    let secretive = send(
        reqwest::Method::POST,
        "/auth/admin/clients",
        Some(json!({"client_id": "reports", "kind": "confidential",
                    "allowed_scopes": "system/*.rs", "secret": "a-long-enough-client-secret"})),
    )
    .await
    .unwrap();
    let secretive = json(secretive, 201).await;
    assert!(secretive.get("secret").is_none() && secretive.get("secret_hash").is_none());
    let clients = json(
        send(reqwest::Method::GET, "/auth/admin/clients", None)
            .await
            .unwrap(),
        200,
    )
    .await;
    let ids: Vec<&str> = clients
        .as_array()
        .unwrap()
        .iter()
        .map(|client| client["client_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"ward-app") && ids.contains(&"wardline-web") && ids.contains(&"wardline-cli")
    );
    let deleted = send(
        reqwest::Method::DELETE,
        "/auth/admin/clients/ward-app",
        None,
    )
    .await
    .unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(
        app.identity
            .store()
            .client("ward-app")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn production_mode_has_no_demo_users() {
    let directory = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        directory.path(),
        "[[clients]]\nclient_id = \"ward-app\"\nkind = \"public\"\n\
         redirect_uris = [\"http://localhost:8080/\"]\nallowed_scopes = \"openid user/*.rs\"\n",
    )
    .unwrap();
    let path = directory.path().display().to_string();
    let app = TestApp::spawn_with(&[("--mode", "production"), ("--directory", &path)]).await;
    assert!(app.identity.store().users().await.unwrap().is_empty());
    let clients = app.identity.store().clients().await.unwrap();
    let ids: Vec<&str> = clients
        .iter()
        .map(|client| client.client_id.as_str())
        .collect();
    assert_eq!(ids, ["ward-app"], "no demo clients either");

    // The sign-in page lists no demo users, its cookie is for HTTPS only, and the demo
    // passwords open nothing.
    let challenge = identity_service::ids::pkce_challenge(&identity_service::ids::random_token());
    let params = TestApp::authorize_params(
        "openid user/*.rs",
        &challenge,
        "st",
        &[("client_id", "ward-app")],
    );
    let page = app.authorize(&TestApp::browser(), &params).await;
    assert_eq!(page.status(), 200);
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let csrf_cookie = cookie.split(';').next().unwrap().to_owned();
    let html = page.text().await.unwrap();
    assert!(!html.contains("Demo users") && !html.contains("nurse-wardline"));
    let response = app
        .http
        .post(app.url("/auth/login"))
        .header("cookie", csrf_cookie)
        .form(&[
            ("request", hidden_field(&html, "request").as_str()),
            ("csrf", hidden_field(&html, "csrf").as_str()),
            ("username", "nurse"),
            ("password", "nurse-wardline"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().get("set-cookie").is_none());
}
