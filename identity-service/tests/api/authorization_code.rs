//! The authorization-code flow with PKCE, as a browser and the web app go through it, and the
//! mistakes and attacks it must refuse.

use identity_service::ids::{pkce_challenge, random_token};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};

use crate::flow::{
    APP_CLIENT, APP_NAME, REDIRECT_URI, WEB_SCOPES, hidden_field, location, redirect_query,
};
use crate::helpers::{AUDIENCE, TestApp, claims, json};

#[tokio::test]
async fn the_whole_flow_gives_tokens_for_the_user_and_the_chosen_patient() {
    let app = TestApp::spawn().await;
    let scope = "openid fhirUser profile online_access launch/patient user/*.rs patient/*.rs";
    let flow = app.start(scope, &[("nonce", "n-0S6_WzA2Mj")]).await;

    // The sign-in page lists the demo users, and sets the anti-forgery cookie.
    let browser = TestApp::browser();
    let challenge = pkce_challenge(&random_token());
    let page = app
        .authorize(
            &browser,
            &TestApp::authorize_params(scope, &challenge, "s", &[]),
        )
        .await;
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("wl_csrf="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/auth"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(html.contains("nurse-wardline") && html.contains("admin-wardline"));
    assert!(html.contains(&format!("<strong>{APP_NAME}</strong> asks you to sign in")));
    assert!(!html.contains("<script"), "no JavaScript");

    let consent = app.sign_in_to_consent(&flow, "nurse").await;
    assert!(
        consent.contains("Signed in as <strong>Demo Nurse</strong>"),
        "{consent}"
    );
    assert!(consent.contains("Read and search all records you have access to"));
    assert!(consent.contains("Work with one patient, whom you choose now"));
    assert!(consent.contains("Choose a patient"), "the patient picker");

    let csrf = flow.csrf.clone();
    let allowed = app
        .consent(
            &flow,
            &csrf,
            &[("decision", "allow"), ("patient_id", "p123")],
        )
        .await;
    assert_eq!(allowed.status(), 303);
    assert!(location(&allowed).starts_with(REDIRECT_URI));
    let back = redirect_query(&allowed);
    assert_eq!(back.get("state"), Some(&flow.state), "state is echoed");
    let code = back["code"].clone();

    let response = app.exchange(&code, &flow.verifier).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let tokens = json(response, 200).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert_eq!(tokens["patient"], "p123");
    assert_eq!(tokens["need_patient_banner"], true);
    // `profile` is not among the app's scopes: the grant is narrowed, not refused.
    assert_eq!(
        tokens["scope"],
        "user/*.rs patient/*.rs openid fhirUser online_access launch/patient"
    );
    assert!(
        tokens["refresh_token"].is_string(),
        "online_access gives a refresh token"
    );

    // The access token is signed with a published key and carries the claims contract.
    let access = tokens["access_token"].as_str().unwrap();
    let jwks: JwkSet = app
        .http
        .get(app.identity.jwks_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jsonwebtoken::decode_header(access).unwrap().kid.unwrap();
    let key = DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap();
    let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[app.identity.issuer()]);
    validation.set_audience(&[AUDIENCE]);
    let verified = jsonwebtoken::decode::<access_policy::AccessClaims>(access, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(verified, claims(access));
    assert_eq!(verified.sub, "nurse");
    assert_eq!(verified.role.as_deref(), Some("nurse"));
    assert_eq!(
        verified.fhir_user.as_deref(),
        Some("Practitioner/demo-nurse")
    );
    assert_eq!(verified.name.as_deref(), Some("Demo Nurse"));
    assert_eq!(verified.patient.as_deref(), Some("p123"));
    assert_eq!(verified.client_id, APP_CLIENT);
    assert_eq!(verified.aud, AUDIENCE);
    assert!(app.session_exists(&verified.sid).await);
    let principal = access_policy::Principal::from_claims(verified).unwrap();
    assert_eq!(principal.role, Some(access_policy::Role::Nurse));

    // The ID token: for the client, with the nonce and fhirUser.
    let id_token = tokens["id_token"].as_str().unwrap();
    let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[app.identity.issuer()]);
    validation.set_audience(&[APP_CLIENT]);
    let id: Value = jsonwebtoken::decode(id_token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(id["sub"], "nurse");
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(
        id["fhirUser"],
        format!("{AUDIENCE}/Practitioner/demo-nurse")
    );
    assert!(id.get("name").is_none(), "no profile scope, no name");
    assert!(id["auth_time"].as_i64().unwrap() <= id["iat"].as_i64().unwrap());

    let introspected = app.introspect(access).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["username"], "nurse");
    assert_eq!(introspected["patient"], "p123");
}

#[tokio::test]
async fn pkce_is_required_and_checked() {
    let app = TestApp::spawn().await;
    let browser = TestApp::browser();
    let challenge = pkce_challenge(&random_token());
    for (overrides, expected) in [
        (
            vec![("code_challenge", ""), ("code_challenge_method", "")],
            "PKCE is required",
        ),
        (
            vec![("code_challenge_method", "plain")],
            "'plain' is not supported",
        ),
        (
            vec![("code_challenge_method", "")],
            "code_challenge_method is required",
        ),
        (vec![("code_challenge", "too-short")], "43 characters"),
    ] {
        let params = TestApp::authorize_params(WEB_SCOPES, &challenge, "st-1", &overrides);
        let response = app.authorize(&browser, &params).await;
        assert_eq!(response.status(), 303, "{overrides:?}");
        let back = redirect_query(&response);
        assert_eq!(back["error"], "invalid_request");
        assert!(back["error_description"].contains(expected), "{back:?}");
        assert_eq!(back["state"], "st-1");
    }

    // A wrong verifier is refused, and the code is spent with it.
    let (flow, code) = app.code("physician", WEB_SCOPES, &[]).await;
    let wrong = app.exchange(&code, &random_token()).await;
    assert_eq!(wrong.headers()["cache-control"], "no-store");
    let body = json(wrong, 400).await;
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("code_verifier")
    );
    let retried = app.exchange(&code, &flow.verifier).await;
    assert_eq!(json(retried, 400).await["error"], "invalid_grant");
    let missing = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", APP_CLIENT),
        ])
        .await;
    assert_eq!(json(missing, 400).await["error"], "invalid_request");
}

#[tokio::test]
async fn an_unregistered_redirect_or_unknown_client_is_shown_never_followed() {
    let app = TestApp::spawn().await;
    let browser = TestApp::browser();
    let challenge = pkce_challenge(&random_token());
    for overrides in [
        vec![("redirect_uri", "https://attacker.example/steal")],
        vec![("redirect_uri", "http://localhost:8080/callback")],
        vec![("redirect_uri", "http://localhost:8080")],
        vec![("client_id", "no-such-app")],
        vec![("client_id", "")],
    ] {
        let params = TestApp::authorize_params(WEB_SCOPES, &challenge, "st", &overrides);
        let response = app.authorize(&browser, &params).await;
        assert_eq!(response.status(), 400, "{overrides:?}");
        assert!(
            response.headers().get("location").is_none(),
            "never redirects"
        );
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let page = response.text().await.unwrap();
        assert!(
            !page.contains("attacker.example"),
            "the address is not even a link"
        );
        assert!(
            page.contains("redirect_uri") || page.contains("client"),
            "{page}"
        );
    }
}

#[tokio::test]
async fn other_mistakes_go_back_to_the_client_with_its_state() {
    let app = TestApp::spawn().await;
    let browser = TestApp::browser();
    let challenge = pkce_challenge(&random_token());
    for (overrides, error) in [
        (
            vec![("aud", "https://other.example/fhir")],
            "invalid_request",
        ),
        (vec![("aud", "")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("scope", "patient/NotAType.rs")], "invalid_scope"),
        (vec![("scope", "system/*.cruds")], "invalid_scope"),
        (
            vec![("launch", "no-such-launch"), ("scope", "launch openid")],
            "invalid_request",
        ),
    ] {
        let params = TestApp::authorize_params(WEB_SCOPES, &challenge, "xyz-state", &overrides);
        let response = app.authorize(&browser, &params).await;
        assert_eq!(response.status(), 303, "{overrides:?}");
        assert!(location(&response).starts_with(REDIRECT_URI));
        let back = redirect_query(&response);
        assert_eq!(back["error"], error, "{overrides:?}");
        assert_eq!(back["state"], "xyz-state");
        assert!(!back.contains_key("code"));
    }
    // Parameters may also come by POST.
    let params = TestApp::authorize_params(WEB_SCOPES, &challenge, "posted", &[]);
    let response = browser
        .post(app.url("/auth/authorize"))
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("name=\"csrf\""));
}

#[tokio::test]
async fn sign_in_without_the_anti_forgery_token_is_refused() {
    let app = TestApp::spawn().await;
    let flow = app.start(WEB_SCOPES, &[]).await;
    let other = app.start(WEB_SCOPES, &[]).await;
    for csrf in [
        "",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        other.csrf.as_str(),
    ] {
        let response = app
            .sign_in_with(&flow, "nurse", "nurse-wardline", csrf)
            .await;
        assert!(
            response.headers().get("set-cookie").is_none(),
            "no sign-in cookie"
        );
        assert!(response.headers().get("location").is_none());
        assert_eq!(response.status(), 403, "csrf {csrf:?}");
        assert!(response.text().await.unwrap().contains("Form refused"));
    }
    // The right form from another browser (no cookie) is refused too.
    let stranger = TestApp::browser();
    let response = stranger
        .post(app.url("/auth/login"))
        .form(&[
            ("request", flow.request.as_str()),
            ("csrf", flow.csrf.as_str()),
            ("username", "nurse"),
            ("password", "nurse-wardline"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // Nobody signed in for the request.
    let consent = flow
        .browser
        .get(app.url(&format!("/auth/consent?request={}", flow.request)))
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 403);
}

#[tokio::test]
async fn consent_without_the_anti_forgery_token_is_refused_and_issues_nothing() {
    let app = TestApp::spawn().await;
    let flow = app.start(WEB_SCOPES, &[]).await;
    app.sign_in_to_consent(&flow, "physician").await;
    let other = app.start(WEB_SCOPES, &[]).await;
    for csrf in [
        "",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        other.csrf.as_str(),
    ] {
        let response = app.consent(&flow, csrf, &[("decision", "allow")]).await;
        assert!(response.headers().get("location").is_none(), "no code");
        assert_eq!(response.status(), 403, "csrf {csrf:?}");
    }
    // The page's own form, posted from another browser.
    let stranger = TestApp::browser();
    let response = stranger
        .post(app.url("/auth/consent"))
        .form(&[
            ("request", flow.request.as_str()),
            ("csrf", flow.csrf.as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("location").is_none());
    // The genuine form still works, once.
    let csrf = flow.csrf.clone();
    let allowed = app.consent(&flow, &csrf, &[("decision", "allow")]).await;
    assert_eq!(allowed.status(), 303);
    assert!(redirect_query(&allowed).contains_key("code"));
    let again = app.consent(&flow, &csrf, &[("decision", "allow")]).await;
    assert_eq!(again.status(), 400, "a request is answered once");
}

#[tokio::test]
async fn a_user_who_denies_sends_access_denied_back() {
    let app = TestApp::spawn().await;
    let flow = app.start(WEB_SCOPES, &[]).await;
    app.sign_in_to_consent(&flow, "student").await;
    let csrf = flow.csrf.clone();
    let denied = app.consent(&flow, &csrf, &[("decision", "deny")]).await;
    assert_eq!(denied.status(), 303);
    let back = redirect_query(&denied);
    assert_eq!(back["error"], "access_denied");
    assert_eq!(back["state"], flow.state);
    assert!(!back.contains_key("code"));
}

#[tokio::test]
async fn a_code_used_twice_revokes_what_it_issued() {
    let app = TestApp::spawn().await;
    let (flow, code) = app.code("nurse", WEB_SCOPES, &[]).await;
    let first = json(app.exchange(&code, &flow.verifier).await, 200).await;
    let access = first["access_token"].as_str().unwrap();
    let sid = claims(access).sid;
    assert_eq!(app.introspect(access).await["active"], true);

    let second = json(app.exchange(&code, &flow.verifier).await, 400).await;
    assert_eq!(second["error"], "invalid_grant");
    assert!(
        second["error_description"]
            .as_str()
            .unwrap()
            .contains("used already")
    );
    assert!(!app.session_exists(&sid).await);
    assert_eq!(app.introspect(access).await, json!({"active": false}));
    let refresh = app
        .refresh(first["refresh_token"].as_str().unwrap(), None)
        .await;
    assert_eq!(json(refresh, 400).await["error"], "invalid_grant");
}

#[tokio::test]
async fn a_browser_signed_in_skips_the_password_and_signing_out_ends_its_sessions() {
    let app = TestApp::spawn().await;
    let (flow, code) = app.code("pharmacist", WEB_SCOPES, &[]).await;
    let tokens = json(app.exchange(&code, &flow.verifier).await, 200).await;
    let access = tokens["access_token"].as_str().unwrap();

    // Same browser, a new authorization: straight to consent.
    let verifier = random_token();
    let params = TestApp::authorize_params(WEB_SCOPES, &pkce_challenge(&verifier), "second", &[]);
    let response = app.authorize(&flow.browser, &params).await;
    assert_eq!(response.status(), 303);
    let consent_url = location(&response);
    assert!(
        consent_url.starts_with("/auth/consent?request="),
        "{consent_url}"
    );
    let page = flow
        .browser
        .get(app.url(&consent_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Allow access?"), "consent is still asked");

    let signed_out = flow
        .browser
        .get(app.url("/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), 200);
    assert!(
        signed_out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert!(signed_out.text().await.unwrap().contains("signed out"));
    assert_eq!(app.introspect(access).await, json!({"active": false}));
    let refresh = app
        .refresh(tokens["refresh_token"].as_str().unwrap(), None)
        .await;
    assert_eq!(json(refresh, 400).await["error"], "invalid_grant");
    let response = app.authorize(&flow.browser, &params).await;
    assert_eq!(response.status(), 200, "the password is asked again");
    assert!(response.text().await.unwrap().contains("name=\"password\""));
}

#[tokio::test]
async fn an_ehr_launch_binds_its_patient() {
    let app = TestApp::spawn().await;
    let ehr = app
        .identity
        .user_token("nurse", "openid user/*.rs", None)
        .await;
    let launched = app
        .http
        .post(app.url("/auth/launch"))
        .bearer_auth(&ehr.access_token)
        .json(&json!({"patient": "p-42", "encounter": "e-7"}))
        .send()
        .await
        .unwrap();
    let launch = json(launched, 200).await["launch"]
        .as_str()
        .unwrap()
        .to_owned();
    let anonymous = app
        .http
        .post(app.url("/auth/launch"))
        .json(&json!({"patient": "p-42"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json(anonymous, 401).await["error"], "invalid_token");

    let scope = "launch openid user/*.rs patient/*.rs";
    let flow = app.start(scope, &[("launch", &launch)]).await;
    let page = app.sign_in_to_consent(&flow, "nurse").await;
    assert!(page.contains("Patient/p-42"));
    assert!(
        !page.contains("Choose a patient"),
        "no picker: the patient is in context"
    );
    let csrf = flow.csrf.clone();
    let allowed = app.consent(&flow, &csrf, &[("decision", "allow")]).await;
    let code = redirect_query(&allowed)["code"].clone();
    let tokens = json(app.exchange(&code, &flow.verifier).await, 200).await;
    assert_eq!(tokens["patient"], "p-42");
    assert_eq!(tokens["encounter"], "e-7");
    assert_eq!(tokens["need_patient_banner"], false);
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())
            .patient
            .as_deref(),
        Some("p-42")
    );

    // Another user cannot take the nurse's launch.
    let flow = app.start(scope, &[("launch", &launch)]).await;
    app.sign_in_to_consent(&flow, "physician").await;
    let csrf = flow.csrf.clone();
    let refused = app.consent(&flow, &csrf, &[("decision", "allow")]).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.headers().get("location").is_none());
}

#[tokio::test]
async fn the_patient_picker_needs_a_patient() {
    let app = TestApp::spawn().await;
    let flow = app.start("openid launch/patient patient/*.rs", &[]).await;
    app.sign_in_to_consent(&flow, "physician").await;
    let csrf = flow.csrf.clone();
    let missing = app.consent(&flow, &csrf, &[("decision", "allow")]).await;
    assert_eq!(missing.status(), 400);
    assert!(
        missing
            .text()
            .await
            .unwrap()
            .contains("Choose a patient first")
    );
    let invalid = app
        .consent(
            &flow,
            &csrf,
            &[("decision", "allow"), ("patient_id", "no spaces!")],
        )
        .await;
    assert_eq!(invalid.status(), 400);
    // The search goes to the FHIR server; none answers here, and the page says so.
    let searched = flow
        .browser
        .get(app.url(&format!("/auth/consent?request={}&q=smith", flow.request)))
        .send()
        .await
        .unwrap();
    assert_eq!(searched.status(), 200);
    let page = searched.text().await.unwrap();
    assert!(page.contains("not available right now"), "{page}");
    assert_eq!(hidden_field(&page, "csrf"), csrf);
    let allowed = app
        .consent(&flow, &csrf, &[("decision", "allow"), ("patient", "p-1")])
        .await;
    assert_eq!(allowed.status(), 303);
}
