//! Refresh tokens: rotated on every use; a spent one presented again ends the session; never
//! wider than the grant.

use serde_json::json;

use crate::flow::{APP_CLIENT, WEB_SCOPES};
use crate::helpers::{TestApp, claims, json};

#[tokio::test]
async fn a_refresh_rotates_the_refresh_token() {
    let app = TestApp::spawn().await;
    let tokens = app.user_tokens("nurse", WEB_SCOPES).await;
    let first = tokens.refresh_token.clone().unwrap();
    let response = app.refresh(&first, None).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let refreshed = json(response, 200).await;
    let second = refreshed["refresh_token"].as_str().unwrap();
    assert_ne!(second, first);
    assert_eq!(refreshed["scope"], tokens.scope.as_str());
    let access = refreshed["access_token"].as_str().unwrap();
    assert_ne!(access, tokens.access_token);
    assert_eq!(
        claims(access).sid,
        claims(&tokens.access_token).sid,
        "same session"
    );
    assert!(refreshed.get("id_token").is_none());
    let introspected = app.introspect(second).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["token_type"], "refresh_token");
    assert_eq!(introspected["username"], "nurse");
    // The next rotation works from the new token.
    assert_eq!(app.refresh(second, None).await.status(), 200);
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_whole_family() {
    let app = TestApp::spawn().await;
    let tokens = app.user_tokens("physician", WEB_SCOPES).await;
    let first = tokens.refresh_token.clone().unwrap();
    let sid = claims(&tokens.access_token).sid;
    let rotated = json(app.refresh(&first, None).await, 200).await;
    let second = rotated["refresh_token"].as_str().unwrap().to_owned();
    let new_access = rotated["access_token"].as_str().unwrap().to_owned();

    let replay = json(app.refresh(&first, None).await, 400).await;
    assert_eq!(replay["error"], "invalid_grant");
    assert!(
        replay["error_description"]
            .as_str()
            .unwrap()
            .contains("session is ended")
    );

    assert!(!app.session_exists(&sid).await, "session:<sid> is gone");
    assert_eq!(app.introspect(&second).await, json!({"active": false}));
    assert_eq!(app.introspect(&new_access).await, json!({"active": false}));
    assert_eq!(
        app.introspect(&tokens.access_token).await,
        json!({"active": false})
    );
    let after = json(app.refresh(&second, None).await, 400).await;
    assert_eq!(
        after["error"], "invalid_grant",
        "the rotation's token is dead too"
    );
}

#[tokio::test]
async fn a_refresh_may_narrow_but_not_widen_the_scope() {
    let app = TestApp::spawn().await;
    let tokens = app.user_tokens("nurse", WEB_SCOPES).await;
    let refresh = tokens.refresh_token.clone().unwrap();
    for wider in [
        "user/*.cruds",
        "user/Patient.rs offline_access",
        "system/*.rs",
    ] {
        let response = app.refresh(&refresh, Some(wider)).await;
        assert_eq!(
            json(response, 400).await["error"],
            "invalid_scope",
            "{wider}"
        );
    }
    // The refused requests left the token usable.
    let narrowed = json(
        app.refresh(&refresh, Some("user/Patient.rs openid")).await,
        200,
    )
    .await;
    assert_eq!(narrowed["scope"], "user/Patient.rs openid");
    assert_eq!(
        claims(narrowed["access_token"].as_str().unwrap()).scope,
        "user/Patient.rs openid"
    );
    // The next refresh may again have everything that was granted.
    let next = narrowed["refresh_token"].as_str().unwrap();
    let full = json(app.refresh(next, None).await, 200).await;
    assert_eq!(full["scope"], tokens.scope.as_str());
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_the_session() {
    let app = TestApp::spawn().await;
    let tokens = app.user_tokens("instructor", WEB_SCOPES).await;
    let refresh = tokens.refresh_token.clone().unwrap();
    let sid = claims(&tokens.access_token).sid;
    let revoked = app
        .http
        .post(app.url("/auth/revoke"))
        .form(&[
            ("token", refresh.as_str()),
            ("token_type_hint", "refresh_token"),
            ("client_id", APP_CLIENT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert!(!app.session_exists(&sid).await);
    assert_eq!(
        app.introspect(&tokens.access_token).await,
        json!({"active": false})
    );
    assert_eq!(
        json(app.refresh(&refresh, None).await, 400).await["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn without_online_or_offline_access_there_is_no_refresh_token() {
    let app = TestApp::spawn().await;
    let tokens = app.user_tokens("student", "openid user/*.rs").await;
    assert!(tokens.refresh_token.is_none());
    assert!(tokens.id_token.is_some());
    let offline = app.user_tokens("student", "offline_access user/*.rs").await;
    let introspected = app
        .introspect(offline.refresh_token.as_deref().unwrap())
        .await;
    let lifetime = introspected["exp"].as_i64().unwrap() - chrono::Utc::now().timestamp();
    assert!(
        lifetime > 29 * 24 * 3600,
        "offline_access lasts 30 days: {lifetime}"
    );
}
