//! The command line signs in as a backend client, as `wardline token` and every command that
//! talks to the API do: a client assertion signed with the client's key, its `aud` the token
//! endpoint the identity service advertises (not the address the command line posts to).

use std::time::Duration;

use test_support::TestDatabase;
use test_support::identity::TestIdentity;
use wardline::auth::{Credentials, TokenSource};

fn credentials(identity: &TestIdentity, client_id: &str, key: std::path::PathBuf) -> Credentials {
    Credentials {
        token: None,
        token_url: identity.token_url(),
        client_id: client_id.to_owned(),
        client_key: Some(key),
        scope: "system/Patient.rs".to_owned(),
    }
}

#[tokio::test]
async fn a_backend_client_signs_in_with_its_key_and_reads() {
    let database = TestDatabase::create().await;
    let identity = TestIdentity::spawn(&database.url).await;
    let client = identity.backend_client("system/Patient.rs").await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("client.key");
    std::fs::write(&key, &client.private_key_pem).unwrap();

    let source = TokenSource::new(credentials(&identity, &client.client_id, key.clone()));
    let token = source.bearer().await.unwrap();
    // Kept: the second call does not sign in again.
    assert_eq!(source.bearer().await.unwrap(), token);
    let introspected: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/auth/introspect", identity.base_url()))
        .bearer_auth(&token)
        .form(&[("token", token.as_str())])
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["client_id"], client.client_id.as_str());
    assert_eq!(introspected["scope"], "system/Patient.rs");

    // Another client's key is refused, and says so.
    let stranger = identity.backend_client("system/Patient.rs").await;
    let refused = TokenSource::new(credentials(&identity, &stranger.client_id, key))
        .bearer()
        .await
        .unwrap_err();
    assert!(
        format!("{refused:#}").contains("refused (401"),
        "{refused:#}"
    );
}
