//! The discovery documents and the published keys.

use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;

use crate::helpers::{TestApp, json};

#[tokio::test]
async fn the_smart_configuration_names_every_endpoint_and_capability() {
    let app = TestApp::spawn().await;
    let issuer = app.identity.issuer().to_owned();
    for path in [
        "/.well-known/smart-configuration",
        "/fhir/.well-known/smart-configuration",
        "/auth/.well-known/smart-configuration",
    ] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        let config = json(response, 200).await;
        assert_eq!(config["issuer"], issuer.as_str(), "{path}");
        assert_eq!(
            config["authorization_endpoint"],
            format!("{issuer}/authorize")
        );
        assert_eq!(config["token_endpoint"], format!("{issuer}/token"));
        assert_eq!(
            config["introspection_endpoint"],
            format!("{issuer}/introspect")
        );
        assert_eq!(config["revocation_endpoint"], format!("{issuer}/revoke"));
        assert_eq!(config["jwks_uri"], format!("{issuer}/jwks"));
        assert_eq!(
            config["grant_types_supported"],
            serde_json::json!(["authorization_code", "refresh_token", "client_credentials"])
        );
        assert_eq!(
            config["response_types_supported"],
            serde_json::json!(["code"])
        );
        assert_eq!(
            config["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(
            config["token_endpoint_auth_methods_supported"],
            serde_json::json!(["private_key_jwt", "client_secret_basic", "none"])
        );
        assert_eq!(
            config["token_endpoint_auth_signing_alg_values_supported"],
            serde_json::json!(["RS384", "ES384"])
        );
        let capabilities: Vec<&str> = config["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|value| value.as_str().unwrap())
            .collect();
        for expected in [
            "launch-ehr",
            "launch-standalone",
            "client-public",
            "client-confidential-symmetric",
            "client-confidential-asymmetric",
            "context-ehr-patient",
            "context-standalone-patient",
            "sso-openid-connect",
            "permission-offline",
            "permission-patient",
            "permission-user",
            "permission-v1",
            "permission-v2",
            "authorize-post",
        ] {
            assert!(capabilities.contains(&expected), "{expected} missing");
        }
        assert!(
            config["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&Value::from("launch/patient"))
        );
    }
}

#[tokio::test]
async fn the_openid_configuration_says_id_tokens_are_es256() {
    let app = TestApp::spawn().await;
    let issuer = app.identity.issuer().to_owned();
    for path in [
        "/.well-known/openid-configuration",
        "/auth/.well-known/openid-configuration",
    ] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        let config = json(response, 200).await;
        assert_eq!(config["issuer"], issuer.as_str());
        assert_eq!(config["jwks_uri"], format!("{issuer}/jwks"));
        assert_eq!(
            config["authorization_endpoint"],
            format!("{issuer}/authorize")
        );
        assert_eq!(config["token_endpoint"], format!("{issuer}/token"));
        assert_eq!(
            config["id_token_signing_alg_values_supported"],
            serde_json::json!(["ES256"])
        );
        assert_eq!(
            config["subject_types_supported"],
            serde_json::json!(["public"])
        );
    }
}

#[tokio::test]
async fn the_jwks_publishes_the_signing_key_and_rotation_keeps_the_old_one() {
    let app = TestApp::spawn().await;
    let keys = |response: reqwest::Response| async move {
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age")
        );
        response.json::<JwkSet>().await.unwrap()
    };
    let published = keys(app.http.get(app.identity.jwks_url()).send().await.unwrap()).await;
    assert_eq!(published.keys.len(), 1);
    let first = published.keys[0].common.key_id.clone().unwrap();
    let raw: Value = app
        .http
        .get(app.url("/auth/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["keys"][0]["kty"], "EC");
    assert_eq!(raw["keys"][0]["crv"], "P-256");
    assert_eq!(raw["keys"][0]["alg"], "ES256");
    assert_eq!(raw["keys"][0]["use"], "sig");
    assert_eq!(raw["keys"][0]["kid"], first.as_str());
    assert!(raw["keys"][0].get("d").is_none(), "no private part");

    // A token signed before the rotation...
    let before = app.identity.system_token("system/Patient.rs").await;
    let header = jsonwebtoken::decode_header(&before.access_token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(first.as_str()));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);

    let admin = app
        .identity
        .user_token("admin", "openid user/*.rs", None)
        .await;
    let rotated = app
        .http
        .post(app.url("/auth/admin/keys/rotate"))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    let rotated = crate::helpers::json(rotated, 200).await;
    let second = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(second, first);

    let published = keys(app.http.get(app.identity.jwks_url()).send().await.unwrap()).await;
    let kids: Vec<String> = published
        .keys
        .iter()
        .map(|key| key.common.key_id.clone().unwrap())
        .collect();
    assert_eq!(
        kids,
        [first.clone(), second.clone()],
        "the old key stays published"
    );

    // ...is still good, and new tokens are signed with the new key.
    assert_eq!(app.introspect(&before.access_token).await["active"], true);
    let after = app.identity.system_token("system/Patient.rs").await;
    let header = jsonwebtoken::decode_header(&after.access_token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(second.as_str()));
    assert_eq!(app.introspect(&after.access_token).await["active"], true);
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let health = json(app.http.get(app.url("/health")).send().await.unwrap(), 200).await;
    assert_eq!(health["service"], "identity-service");
    let ready = json(app.http.get(app.url("/ready")).send().await.unwrap(), 200).await;
    assert_eq!(ready["checks"]["postgres"]["status"], "pass");
    assert_eq!(ready["checks"]["redis"]["status"], "pass");
    let missing = app.http.get(app.url("/auth/nothing")).send().await.unwrap();
    assert_eq!(json(missing, 404).await["error"], "not_found");
}
