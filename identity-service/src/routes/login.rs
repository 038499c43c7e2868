//! `POST /auth/login`: the sign-in form's answer.
//!
//! The form must come from the browser the page was given to (anti-forgery token in the form,
//! the cookie and the pending request, all equal), and the account must not be throttled for
//! the client's address (`transient::throttle`). A wrong password shows the form again; a right one remembers the
//! sign-in in this browser and moves on to consent.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use service_kit::forwarded::client_address;

use crate::AppState;
use crate::directory::demo_users;
use crate::error::{Error, PageError};
use crate::ids::is_token;
use crate::pages::SignInPage;
use crate::params::Params;
use crate::routes::cookies;
use crate::settings::Mode;
use crate::transient::{BrowserSignIn, now};

/// The longest user name there can be (`directory` allows 64 characters).
const MAX_USERNAME: usize = 64;

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let params = Params::parse(&body)?;
    let request_id = params.require("request")?;
    if !is_token(request_id) {
        return Err(Error::RequestExpired.into());
    }
    let mut pending = state
        .transient
        .request(request_id)
        .await?
        .ok_or(Error::RequestExpired)?;
    if !cookies::csrf_matches(&headers, params.get("csrf"), &pending.csrf) {
        return Err(Error::Forgery.into());
    }
    let username = params.require("username")?.trim();
    let username = &username[..username.floor_char_boundary(MAX_USERNAME + 1)];
    let password = params.get("password").unwrap_or_default();
    let address = client_address(peer, &headers, &state.trusted_proxies).to_string();

    let limits = &state.settings.sign_in;
    let attempts = state
        .transient
        .count_sign_in_attempt(
            username,
            &address,
            Duration::from_secs(limits.signin_window_secs.max(1)),
        )
        .await?;
    if attempts.count > limits.signin_max_failures {
        tracing::warn!(%username, %address, "sign-in refused: throttled");
        return Err(Error::Throttled {
            retry_after: attempts.resets_in.as_secs_f64().ceil().max(1.0) as u64,
        }
        .into());
    }
    // Names longer than any user's are not looked up (nor hashed into a key any longer).
    let user = if username.len() <= MAX_USERNAME {
        state.store.user(username).await?
    } else {
        None
    };
    let verified = state
        .passwords
        .verify(
            password,
            user.as_ref().map(|user| user.password_hash.as_str()),
        )
        .await;
    let Some(user) = user.filter(|_| verified) else {
        tracing::info!(%username, %address, failures = attempts.count, "sign-in failed");
        let client_name = state
            .store
            .client(&pending.client_id)
            .await?
            .map(|client| client.name)
            .unwrap_or_default();
        let demo = if state.settings.mode == Mode::Development {
            demo_users()
        } else {
            Vec::new()
        };
        return Ok(SignInPage {
            request: request_id,
            csrf: &pending.csrf,
            client_name: &client_name,
            username,
            problem: Some("The user name or the password is wrong."),
            demo_users: &demo,
        }
        .render(StatusCode::UNAUTHORIZED));
    };
    state
        .transient
        .clear_sign_in_attempts(username, &address)
        .await?;
    let ttl = Duration::from_secs(limits.browser_session_ttl_secs.max(1));
    let browser = state
        .transient
        .sign_in_browser(
            &BrowserSignIn {
                user: user.username.clone(),
                auth_time: now(),
            },
            ttl,
        )
        .await?;
    tracing::info!(username = %user.username, role = %user.role, %address, "signed in");
    pending.user = Some(user.username);
    pending.browser = Some(browser.clone());
    state.transient.update_request(request_id, &pending).await?;
    let mut response = Redirect::to(&format!("/auth/consent?request={request_id}")).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookies::set(&state, cookies::SIGN_IN, &browser, ttl),
    );
    Ok(response)
}
