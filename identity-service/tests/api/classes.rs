//! Teaching classes: a user's classes are in every access token of their sessions (`classes`),
//! refreshed ones included; the admin API and the directory file put users in classes; the
//! demo student and instructor are in the demo class.

use identity_service::directory::DEMO_CLASS;
use identity_service::store::User;
use serde_json::json;
use test_support::TestDatabase;
use test_support::identity::TestIdentity;

use crate::flow::{WEB_SCOPES, location, redirect_query};
use crate::helpers::{TestApp, claims, json};

#[tokio::test]
async fn a_signed_in_students_token_names_the_demo_class_and_a_refresh_keeps_it() {
    let app = TestApp::spawn().await;
    let tokens = app.user_tokens("student", WEB_SCOPES).await;
    let access = claims(&tokens.access_token);
    assert_eq!(access.sub, "student");
    assert_eq!(access.classes, [DEMO_CLASS]);
    assert_eq!(DEMO_CLASS, "demo");
    let introspected = app.introspect(&tokens.access_token).await;
    assert_eq!(introspected["classes"], json!(["demo"]));

    let refreshed = json(
        app.refresh(tokens.refresh_token.as_deref().unwrap(), None)
            .await,
        200,
    )
    .await;
    let again = claims(refreshed["access_token"].as_str().unwrap());
    assert_eq!(again.sid, access.sid, "same session");
    assert_eq!(again.classes, ["demo"], "a refresh keeps the classes");
    let narrowed = json(
        app.refresh(
            refreshed["refresh_token"].as_str().unwrap(),
            Some("user/Patient.rs"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        claims(narrowed["access_token"].as_str().unwrap()).classes,
        ["demo"],
        "whatever the scope"
    );

    // The instructor is in the class too (here through the shared harness); the other demo
    // users and backend services are in none, and their tokens have no `classes` at all.
    let instructor = app
        .identity
        .user_token("instructor", "openid user/*.rs", None)
        .await;
    assert_eq!(claims(&instructor.access_token).classes, ["demo"]);
    let nurse = app.user_tokens("nurse", WEB_SCOPES).await;
    assert!(claims(&nurse.access_token).classes.is_empty());
    assert!(
        app.introspect(&nurse.access_token)
            .await
            .get("classes")
            .is_none()
    );
    let service = app.identity.system_token("system/Patient.rs").await;
    assert!(claims(&service.access_token).classes.is_empty());
}

#[tokio::test]
async fn the_admin_api_puts_users_in_classes_and_refuses_bad_class_names() {
    let app = TestApp::spawn().await;
    let admin = app
        .identity
        .user_token("admin", "openid user/*.rs", None)
        .await;
    let create = |body: serde_json::Value| {
        app.http
            .post(app.url("/auth/admin/users"))
            .bearer_auth(&admin.access_token)
            .json(&body)
            .send()
    };

    let created = create(json!({"username": "tlee", "password": "correct horse",
                                "role": "student",
                                "classes": ["ward-7", "night_shift", "ward-7"]}))
    .await
    .unwrap();
    assert_eq!(
        json(created, 201).await,
        json!({"username": "tlee", "role": "student", "classes": ["ward-7", "night_shift"]}),
        "a class named twice is one class"
    );
    let stored = app.identity.store().user("tlee").await.unwrap().unwrap();
    assert_eq!(stored.classes, ["ward-7", "night_shift"]);
    let users = json(
        app.http
            .get(app.url("/auth/admin/users"))
            .bearer_auth(&admin.access_token)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let listed = |name: &str| {
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|user| user["username"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(listed("tlee")["classes"], json!(["ward-7", "night_shift"]));
    assert_eq!(listed("student")["classes"], json!(["demo"]));
    assert!(
        listed("nurse").get("classes").is_none(),
        "no class, no list"
    );

    // The new user's sign-in gives tokens naming their classes.
    let flow = app.start(WEB_SCOPES, &[]).await;
    let signed_in = app.sign_in(&flow, "tlee", "correct horse").await;
    assert_eq!(signed_in.status(), 303);
    let consent = flow
        .browser
        .get(app.url(&location(&signed_in)))
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 200);
    let allowed = app
        .consent(&flow, &flow.csrf, &[("decision", "allow")])
        .await;
    assert_eq!(allowed.status(), 303);
    let code = redirect_query(&allowed)["code"].clone();
    let tokens = json(app.exchange(&code, &flow.verifier).await, 200).await;
    let access = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access.sub, "tlee");
    assert_eq!(access.classes, ["ward-7", "night_shift"]);

    let too_long = "x".repeat(65);
    for bad in [
        json!([""]),
        json!(["ward 7"]),
        json!(["ward.7"]),
        json!(["ward/7"]),
        json!(["ward-7", "Straße"]),
        json!([too_long]),
        json!("demo"),
        json!([7]),
    ] {
        let refused = create(json!({"username": "jdoe", "password": "correct horse",
                                    "role": "student", "classes": bad}))
        .await
        .unwrap();
        let body = json(refused, 400).await;
        assert_eq!(body["error"], "invalid_request", "{bad}");
        assert!(body["error_description"].is_string(), "{bad}");
    }
    let named = create(json!({"username": "jdoe", "password": "correct horse",
                              "role": "student", "classes": ["ward 7"]}))
    .await
    .unwrap();
    assert!(
        json(named, 400).await["error_description"]
            .as_str()
            .unwrap()
            .contains("class 'ward 7'")
    );
    assert!(app.identity.store().user("jdoe").await.unwrap().is_none());
    // 64 characters is still a name.
    let longest = "x".repeat(64);
    let created = create(json!({"username": "jdoe", "password": "correct horse",
                                "role": "instructor", "classes": [longest]}))
    .await
    .unwrap();
    assert_eq!(json(created, 201).await["classes"], json!([longest]));
}

#[tokio::test]
async fn the_test_harness_signs_in_a_user_of_other_classes() {
    let app = TestApp::spawn().await;
    let tokens = app
        .identity
        .user_token_in("student", "openid user/*.rs", None, &["ward-7", "ward-9"])
        .await;
    let access = claims(&tokens.access_token);
    assert!(access.sub.starts_with("student-"), "{}", access.sub);
    assert_eq!(access.role.as_deref(), Some("student"));
    assert_eq!(
        access.fhir_user.as_deref(),
        Some("Practitioner/demo-student")
    );
    assert_eq!(access.classes, ["ward-7", "ward-9"]);
    let classless = app
        .identity
        .user_token_in("nurse", "openid user/*.rs", None, &[])
        .await;
    assert!(claims(&classless.access_token).classes.is_empty());
}

#[tokio::test]
async fn demo_users_stored_before_classes_join_the_demo_class() {
    let database = TestDatabase::empty().await;
    let first = TestIdentity::spawn(&database.url).await;
    let store = first.store();
    // As an earlier version left them: in no class; the instructor since put in another.
    for (name, classes) in [
        ("student", vec![]),
        ("instructor", vec!["ward-7".to_owned()]),
    ] {
        let user = store.user(name).await.unwrap().unwrap();
        store.put_user(&User { classes, ..user }).await.unwrap();
    }
    assert!(
        store
            .user("student")
            .await
            .unwrap()
            .unwrap()
            .classes
            .is_empty()
    );

    let restarted = TestIdentity::spawn(&database.url).await;
    let store = restarted.store();
    let classes =
        |name: &'static str| async move { store.user(name).await.unwrap().unwrap().classes };
    assert_eq!(classes("student").await, ["demo"]);
    assert_eq!(
        classes("instructor").await,
        ["ward-7"],
        "other classes stay"
    );
    assert!(classes("nurse").await.is_empty());
    assert!(classes("admin").await.is_empty());
    let student = restarted
        .user_token("student", "openid user/*.rs", None)
        .await;
    assert_eq!(claims(&student.access_token).classes, ["demo"]);
}

#[tokio::test]
async fn the_directory_file_puts_users_in_classes() {
    let directory = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        directory.path(),
        "[[users]]\nusername = \"rsmith\"\n\
         password_hash = \"$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo\"\n\
         role = \"student\"\nclasses = [\"ward-7\"]\n\n\
         [[users]]\nusername = \"jdoe\"\n\
         password_hash = \"$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo\"\n\
         role = \"nurse\"\n",
    )
    .unwrap();
    let path = directory.path().display().to_string();
    let app = TestApp::spawn_with(&[("--mode", "production"), ("--directory", &path)]).await;
    let store = app.identity.store();
    assert_eq!(
        store.user("rsmith").await.unwrap().unwrap().classes,
        ["ward-7"]
    );
    assert!(
        store
            .user("jdoe")
            .await
            .unwrap()
            .unwrap()
            .classes
            .is_empty()
    );
}
