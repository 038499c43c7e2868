//! The sign-in throttle: five failures of one account from one address, then nothing (not even
//! the right password) until the window has passed.

use crate::flow::WEB_SCOPES;
use crate::helpers::TestApp;

#[tokio::test]
async fn five_failures_then_429_even_with_the_right_password() {
    let app = TestApp::spawn().await;
    let flow = app.start(WEB_SCOPES, &[]).await;
    for attempt in 1..=5 {
        let response = app
            .sign_in(&flow, "nurse", &format!("guess-{attempt}"))
            .await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
        let page = response.text().await.unwrap();
        assert!(page.contains("The user name or the password is wrong."));
        assert!(page.contains("value=\"nurse\""), "the name is kept");
    }
    let refused = app.sign_in(&flow, "nurse", "nurse-wardline").await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert!(
        refused.headers().get("set-cookie").is_none(),
        "not signed in"
    );
    assert!(
        refused.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("Too many failed sign-ins")
    );

    // Other accounts are not locked out by it.
    let other = app.start(WEB_SCOPES, &[]).await;
    let response = app.sign_in(&other, "physician", "physician-wardline").await;
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn parallel_guesses_do_not_slip_past_the_limit() {
    let app = TestApp::spawn().await;
    let flow = app.start(WEB_SCOPES, &[]).await;
    let attempts = (0..12).map(|attempt| {
        let app = &app;
        let flow = &flow;
        async move {
            app.sign_in(flow, "admin", &format!("guess-{attempt}"))
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    let checked = statuses.iter().filter(|status| **status == 401).count();
    let refused = statuses.iter().filter(|status| **status == 429).count();
    assert_eq!((checked, refused), (5, 7), "{statuses:?}");
}
