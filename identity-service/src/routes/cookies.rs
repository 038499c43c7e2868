//! The cookies of the browser flow, all HttpOnly and limited to `/auth`:
//!
//! - `wl_csrf` (`SameSite=Lax`): the anti-forgery token of the sign-in and consent forms. The
//!   same token is stored with the pending request and written into the forms, so a form is
//!   accepted only from the browser that was given it, for the request it was given for.
//! - `wl_signin` (`SameSite=Lax`): the browser's remembered sign-in, so that a second
//!   authorization skips the password (consent is still asked).
//! - `wl_refresh` (`SameSite=Strict`, always `Secure`): the web app's refresh token. The app
//!   keeps its access token in memory only, so a reload or a new tab needs another way to stay
//!   signed in; a refresh token readable by scripts would let any injected script carry the
//!   session off for weeks, so the token endpoint keeps it where no script can reach it. Browsers
//!   accept `Secure` cookies from `http://localhost`, so development over plain HTTP works too.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};

use crate::AppState;
use crate::ids::is_token;

pub const CSRF: &str = "wl_csrf";
pub const SIGN_IN: &str = "wl_signin";
pub const REFRESH: &str = "wl_refresh";

/// The value of cookie `name`, if the request has it and it has the shape of a token.
pub fn get<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| is_token(value))
}

/// A `Set-Cookie` value for `name` = `value`, kept for `max_age`.
pub fn set(state: &AppState, name: &str, value: &str, max_age: Duration) -> HeaderValue {
    let secure = if state.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/auth; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        max_age.as_secs()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A `Set-Cookie` value that removes cookie `name`.
pub fn clear(state: &AppState, name: &str) -> HeaderValue {
    set(state, name, "", Duration::ZERO)
}

/// A `Set-Cookie` value holding the web app's refresh token for `max_age` (the session's
/// remaining lifetime).
pub fn set_refresh(token: &str, max_age: Duration) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{REFRESH}={token}; Path=/auth; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
        max_age.as_secs()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A `Set-Cookie` value that removes the web app's refresh token.
pub fn clear_refresh() -> HeaderValue {
    set_refresh("", Duration::ZERO)
}

/// Whether two tokens are equal, in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |difference, (x, y)| difference | (x ^ y))
            == 0
}

/// Whether a form's anti-forgery token matches both the browser's cookie and the request's.
pub fn csrf_matches(headers: &HeaderMap, form_token: Option<&str>, stored: &str) -> bool {
    match (get(headers, CSRF), form_token) {
        (Some(cookie), Some(form)) => same(cookie, form) && same(form, stored),
        _ => false,
    }
}
