//! Backend services: `client_credentials` with `private_key_jwt` (and `client_secret_basic`).

use base64::Engine;
use identity_service::password::Passwords;
use identity_service::settings::PasswordSettings;
use identity_service::store::{Client, ClientKind};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::Generate;
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{AUDIENCE, TestApp, claims, json};

/// An assertion of `client_id` with these claims changed, signed with `key` and `header`.
fn assertion(
    app: &TestApp,
    client_id: &str,
    header: &Header,
    key: &EncodingKey,
    changes: Value,
) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": format!("{}/token", app.identity.issuer()),
        "exp": now + 240,
        "iat": now,
        "jti": Uuid::new_v4().to_string(),
    });
    for (name, value) in changes.as_object().unwrap() {
        claims[name] = value.clone();
    }
    jsonwebtoken::encode(header, &claims, key).unwrap()
}

fn es384(kid: &str) -> Header {
    let mut header = Header::new(Algorithm::ES384);
    header.kid = Some(kid.to_owned());
    header
}

#[tokio::test]
async fn a_good_assertion_gets_a_system_token() {
    let app = TestApp::spawn().await;
    let client = app
        .identity
        .backend_client("system/Patient.rs system/Observation.cruds")
        .await;
    let response = app
        .client_credentials(&app.identity.assertion(&client), "system/Observation.rs")
        .await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body = json(response, 200).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "system/Observation.rs");
    assert_eq!(body["expires_in"], 900);
    assert!(body.get("refresh_token").is_none());
    assert!(body.get("id_token").is_none());

    let token = body["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert!(header.kid.is_some());
    let claims = claims(token);
    assert_eq!(claims.iss, app.identity.issuer());
    assert_eq!(claims.sub, client.client_id);
    assert_eq!(claims.client_id, client.client_id);
    assert_eq!(claims.aud, AUDIENCE);
    assert_eq!(claims.scope, "system/Observation.rs");
    assert_eq!(claims.role, None);
    assert_eq!(claims.exp - claims.iat, 900);
    assert!(app.session_exists(&claims.sid).await);

    let introspected = app.introspect(token).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["scope"], "system/Observation.rs");
    assert_eq!(introspected["client_id"], client.client_id.as_str());

    // Without a scope, everything the client may have.
    let all = app
        .client_credentials(&app.identity.assertion(&client), "")
        .await;
    assert_eq!(
        json(all, 200).await["scope"],
        "system/Patient.rs system/Observation.cruds"
    );
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let app = TestApp::spawn().await;
    let client = app.identity.backend_client("system/*.rs").await;
    let assertion = app.identity.assertion(&client);
    let first = app
        .client_credentials(&assertion, "system/Patient.rs")
        .await;
    assert_eq!(first.status(), 200);
    let again = app
        .client_credentials(&assertion, "system/Patient.rs")
        .await;
    assert_eq!(again.headers()["cache-control"], "no-store");
    let body = json(again, 401).await;
    assert_eq!(body["error"], "invalid_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("used before"),
        "{body}"
    );
}

#[tokio::test]
async fn an_assertion_expiring_more_than_five_minutes_ahead_is_refused() {
    let app = TestApp::spawn().await;
    let client = app.identity.backend_client("system/*.rs").await;
    let key = EncodingKey::from_ec_pem(client.private_key_pem.as_bytes()).unwrap();
    let far = chrono::Utc::now().timestamp() + 600;
    let signed = assertion(
        &app,
        &client.client_id,
        &es384(&client.kid),
        &key,
        json!({"exp": far}),
    );
    let body = json(
        app.client_credentials(&signed, "system/Patient.rs").await,
        401,
    )
    .await;
    assert_eq!(body["error"], "invalid_client");
    assert!(
        body["error_description"].as_str().unwrap().contains("exp"),
        "{body}"
    );

    // Expired, or for another audience, or without a jti: refused too.
    for changes in [
        json!({"exp": chrono::Utc::now().timestamp() - 60}),
        json!({"aud": "https://elsewhere.example/token"}),
        json!({"jti": null}),
        json!({"sub": "someone-else"}),
    ] {
        let signed = assertion(
            &app,
            &client.client_id,
            &es384(&client.kid),
            &key,
            changes.clone(),
        );
        let body = json(
            app.client_credentials(&signed, "system/Patient.rs").await,
            401,
        )
        .await;
        assert_eq!(body["error"], "invalid_client", "{changes}");
    }
}

#[tokio::test]
async fn the_wrong_key_or_algorithm_is_refused() {
    let app = TestApp::spawn().await;
    let client = app.identity.backend_client("system/*.rs").await;

    // Another ES384 key, presented under the registered kid.
    let (other_pem, _) = identity_service::directory::backend_key_pair().unwrap();
    let other = EncodingKey::from_ec_pem(other_pem.as_bytes()).unwrap();
    let signed = assertion(
        &app,
        &client.client_id,
        &es384(&client.kid),
        &other,
        json!({}),
    );
    let body = json(
        app.client_credentials(&signed, "system/Patient.rs").await,
        401,
    )
    .await;
    assert_eq!(body["error"], "invalid_client");

    // ES256 (a P-256 key): not an accepted algorithm.
    let p256_pem = p256::SecretKey::generate()
        .to_pkcs8_pem(LineEnding::LF)
        .unwrap()
        .to_string();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(client.kid.clone());
    let key = EncodingKey::from_ec_pem(p256_pem.as_bytes()).unwrap();
    let signed = assertion(&app, &client.client_id, &header, &key, json!({}));
    let body = json(
        app.client_credentials(&signed, "system/Patient.rs").await,
        401,
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("RS384 and ES384"),
        "{body}"
    );

    // RS384 claimed, but the client's key is an EC key.
    let mut header = Header::new(Algorithm::RS384);
    header.kid = Some(client.kid.clone());
    let forged = format!(
        "{}.{}.c2lnbmF0dXJl",
        base64url(&serde_json::to_vec(&header).unwrap()),
        base64url(
            &serde_json::to_vec(&json!({"iss": client.client_id, "sub": client.client_id,
                "aud": format!("{}/token", app.identity.issuer()),
                "exp": chrono::Utc::now().timestamp() + 60, "jti": "x"}))
            .unwrap()
        )
    );
    let body = json(
        app.client_credentials(&forged, "system/Patient.rs").await,
        401,
    )
    .await;
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn an_hs256_assertion_is_refused() {
    let app = TestApp::spawn().await;
    let client = app.identity.backend_client("system/*.rs").await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(client.kid.clone());
    // Signed with the public key as the HMAC secret: the classic confusion attack.
    let secret = EncodingKey::from_secret(client.kid.as_bytes()).unwrap();
    let signed = assertion(&app, &client.client_id, &header, &secret, json!({}));
    let body = json(
        app.client_credentials(&signed, "system/Patient.rs").await,
        401,
    )
    .await;
    assert_eq!(body["error"], "invalid_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("HS256"),
        "{body}"
    );
}

#[tokio::test]
async fn scopes_beyond_the_client_or_outside_system_are_refused() {
    let app = TestApp::spawn().await;
    let client = app.identity.backend_client("system/Patient.rs").await;
    for scope in [
        "system/Patient.cruds",
        "system/Observation.rs",
        "user/Patient.rs",
        "openid",
    ] {
        let response = app
            .client_credentials(&app.identity.assertion(&client), scope)
            .await;
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(
            json(response, 400).await["error"],
            "invalid_scope",
            "{scope}"
        );
    }
}

#[tokio::test]
async fn a_public_client_cannot_use_client_credentials() {
    let app = TestApp::spawn().await;
    let response = app
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "wardline-web"),
            ("scope", "system/Patient.rs"),
        ])
        .await;
    assert_eq!(json(response, 400).await["error"], "unauthorized_client");
    let unknown = app
        .token(&[("grant_type", "password"), ("client_id", "wardline-web")])
        .await;
    assert_eq!(json(unknown, 400).await["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn a_confidential_client_may_use_its_secret() {
    let app = TestApp::spawn().await;
    let passwords = Passwords::new(&PasswordSettings {
        argon2_memory_kib: 8,
        argon2_iterations: 1,
        argon2_lanes: 1,
    })
    .unwrap();
    let secret = "a-long-enough-client-secret";
    app.identity
        .store()
        .put_client(&Client {
            client_id: "reporting".to_owned(),
            name: "Reporting".to_owned(),
            kind: ClientKind::Confidential,
            redirect_uris: Vec::new(),
            allowed_scopes: "system/*.rs".to_owned(),
            jwks: None,
            jwks_uri: None,
            secret_hash: Some(passwords.hash(secret).await.unwrap()),
        })
        .await
        .unwrap();
    let basic = |secret: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("reporting:{secret}"))
        )
    };
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "system/Patient.rs"),
    ];
    let response = app
        .http
        .post(app.url("/auth/token"))
        .header("authorization", basic(secret))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(json(response, 200).await["scope"], "system/Patient.rs");
    let wrong = app
        .http
        .post(app.url("/auth/token"))
        .header("authorization", basic("not-the-secret"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(wrong.headers().contains_key("www-authenticate"));
    assert_eq!(json(wrong, 401).await["error"], "invalid_client");
    // Naming a confidential client is not authenticating it.
    let named = app
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "reporting"),
        ])
        .await;
    assert_eq!(json(named, 401).await["error"], "invalid_client");
}

fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn keys_may_be_fetched_from_the_clients_jwks_uri() {
    let app = TestApp::spawn().await;
    let (pem, jwks) = identity_service::directory::backend_key_pair().unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    let served = jwks.clone();
    let host = crate::helpers::fake_server(axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let served = served.clone();
            async move { axum::Json(served) }
        }),
    ))
    .await;
    app.identity
        .store()
        .put_client(&Client {
            client_id: "hosted-keys".to_owned(),
            name: "Hosted keys".to_owned(),
            kind: ClientKind::Confidential,
            redirect_uris: Vec::new(),
            allowed_scopes: "system/Patient.rs".to_owned(),
            jwks: None,
            jwks_uri: Some(format!("{host}/jwks.json")),
            secret_hash: None,
        })
        .await
        .unwrap();
    let key = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    let signed = assertion(&app, "hosted-keys", &es384(&kid), &key, json!({}));
    let body = json(
        app.client_credentials(&signed, "system/Patient.rs").await,
        200,
    )
    .await;
    assert_eq!(body["scope"], "system/Patient.rs");
}

#[tokio::test]
async fn an_rs384_assertion_is_accepted() {
    use rsa::Generate as _;
    use rsa::pkcs8::EncodePrivateKey as _;
    let app = TestApp::spawn().await;
    let pem = rsa::PrivateKey::generate()
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .unwrap()
        .to_string();
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::RS384).unwrap();
    jwk.common.key_id = Some("rsa-1".to_owned());
    app.identity
        .store()
        .put_client(&Client {
            client_id: "rsa-client".to_owned(),
            name: "RSA client".to_owned(),
            kind: ClientKind::Confidential,
            redirect_uris: Vec::new(),
            allowed_scopes: "system/*.rs".to_owned(),
            jwks: Some(json!({"keys": [jwk]})),
            jwks_uri: None,
            secret_hash: None,
        })
        .await
        .unwrap();
    let mut header = Header::new(Algorithm::RS384);
    header.kid = Some("rsa-1".to_owned());
    let signed = assertion(&app, "rsa-client", &header, &key, json!({}));
    let body = json(
        app.client_credentials(&signed, "system/Observation.rs")
            .await,
        200,
    )
    .await;
    assert_eq!(body["scope"], "system/Observation.rs");
}
