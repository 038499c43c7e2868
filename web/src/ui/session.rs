//! The signed-in session in the browser: signing in (the redirect to the identity service and
//! back), the access token in memory, refreshing it, and signing out. What the flow must check
//! is decided in [`crate::sign_in`] and [`crate::tokens`]; this module stores, redirects and
//! fetches.
//!
//! On start the app either finishes a sign-in (the query carries `code` and `state`), or asks
//! the token endpoint for a token with the refresh token the browser holds in its HttpOnly
//! cookie, so a reload or a new tab does not show the sign-in page again; only when that fails
//! because there is no session does it send the browser to sign in. The access token is kept
//! here and nowhere else (never in `localStorage`), and refreshed shortly before it expires.
//!
//! Refreshing spends the cookie's refresh token and sets the next, and a spent one presented
//! again ends the session. So refreshes never overlap: one at a time in a tab (later callers
//! wait for the one under way), and one at a time across the app's tabs, under the browser's
//! Web Lock `wardline-refresh` where the browser has the Web Locks API.

use std::cell::RefCell;
use std::future::Future;

use futures::channel::oneshot;
use gloo_net::http::Request;
use gloo_timers::callback::Timeout;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::{Closure, JsValue};
use wasm_bindgen_futures::{JsFuture, future_to_promise, spawn_local};
use yew::Callback;

use crate::sign_in::{self, PENDING_KEY, PendingSignIn};
use crate::tokens::{AccessToken, OAuthError, TokenResponse, User, id_token_matches};

/// How long to wait before trying again when the identity service could not be reached.
const RETRY_MS: u32 = 15_000;

/// The name of the Web Lock held while refreshing.
const REFRESH_LOCK: &str = "wardline-refresh";

/// Where the app stands, as far as signing in goes.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthState {
    /// Finding out: a code being exchanged, the cookie being tried, or the browser on its way
    /// to the sign-in page.
    Starting,
    SignedIn(User),
    /// Not signed in, and why when there is something to say.
    SignedOut(Option<String>),
}

#[derive(Default)]
struct Held {
    access: Option<AccessToken>,
    /// Told of every change of [`AuthState`] (the app's root component).
    listener: Option<Callback<AuthState>>,
    /// The next refresh; replacing it cancels the one before.
    timer: Option<Timeout>,
    /// While a refresh is under way: the callers waiting for it.
    waiting: Option<Vec<oneshot::Sender<bool>>>,
    /// Signed out in this page: a refresh that was under way must not sign it in again (only
    /// a new sign-in, which loads the page afresh, does).
    signed_out: bool,
}

thread_local! {
    static HELD: RefCell<Held> = RefCell::new(Held::default());
}

/// What a refresh came to.
enum Refreshed {
    Done(AccessToken),
    /// No session to resume: no cookie, or its session ended (signed out, revoked, expired).
    Ended,
    /// The identity service could not be asked; the session may well be alive.
    Unavailable(String),
}

/// Starts the session: `listener` hears where the app stands, now and at every change.
pub fn start(listener: Callback<AuthState>) {
    HELD.with(|held| held.borrow_mut().listener = Some(listener));
    spawn_local(begin());
}

async fn begin() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let location = window.location();
    let search = location.search().unwrap_or_default();
    let answer = sign_in::Callback::parse(&search);
    if answer != sign_in::Callback::None {
        finish_sign_in(&answer).await;
        return;
    }
    match exclusively(request_refresh()).await {
        Refreshed::Done(access) => hold(access),
        Refreshed::Ended => sign_in(),
        Refreshed::Unavailable(problem) => tell(AuthState::SignedOut(Some(format!(
            "Wardline could not reach its sign-in service ({problem}). Try again in a moment."
        )))),
    }
}

/// The browser is back from the identity service: takes the code this tab asked for and
/// exchanges it.
async fn finish_sign_in(answer: &sign_in::Callback) {
    let pending = take_pending();
    let outcome = sign_in::complete(pending.as_ref(), answer);
    // The code goes from the address bar (and history) whatever happens to it, and the page
    // the sign-in started from comes back.
    let back = pending
        .as_ref()
        .map_or("#/", |pending| pending.return_to.as_str());
    replace_address(&format!("/{back}"));
    let (code, pending) = match (outcome, pending) {
        (Ok(Some(code)), Some(pending)) => (code, pending),
        (Err(error), _) => {
            tell(AuthState::SignedOut(Some(format!(
                "Signing in failed: {error}."
            ))));
            return;
        }
        _ => {
            tell(AuthState::SignedOut(None));
            return;
        }
    };
    match exchange(&pending, &code).await {
        Ok(access) => hold(access),
        Err(problem) => tell(AuthState::SignedOut(Some(format!(
            "Signing in failed: {problem}."
        )))),
    }
}

/// Exchanges `code` for tokens at the token endpoint.
async fn exchange(pending: &PendingSignIn, code: &str) -> Result<AccessToken, String> {
    let origin = origin().ok_or("the page has no origin")?;
    let (status, body) =
        post_form(sign_in::TOKEN_PATH, pending.token_request(&origin, code)).await?;
    if status != 200 {
        return Err(OAuthError::parse(&body)
            .map(|error| error.error_description.unwrap_or(error.error))
            .unwrap_or_else(|| format!("the token endpoint answered {status}")));
    }
    let response =
        TokenResponse::parse(&body).ok_or("the token endpoint's answer is unreadable")?;
    if let Some(id_token) = &response.id_token
        && !id_token_matches(id_token, &pending.nonce)
    {
        return Err("the ID token was not issued for this sign-in".to_owned());
    }
    AccessToken::new(&response, now()).ok_or_else(|| "the access token is unreadable".to_owned())
}

/// Sends the browser to the identity service's sign-in page, coming back to the page shown
/// now.
pub fn sign_in() {
    let started = (|| {
        let window = web_sys::window()?;
        let location = window.location();
        let origin = location.origin().ok()?;
        let hash = location.hash().unwrap_or_default();
        let crypto = window.crypto().ok()?;
        let mut random = [[0u8; 32]; 3];
        for secret in &mut random {
            crypto.get_random_values_with_u8_array(secret).ok()?;
        }
        let pending = PendingSignIn::new(random, &hash);
        window
            .session_storage()
            .ok()
            .flatten()?
            .set_item(PENDING_KEY, &pending.to_json())
            .ok()?;
        tell(AuthState::Starting);
        location.assign(&pending.authorize_url(&origin)).ok()
    })();
    if started.is_none() {
        tell(AuthState::SignedOut(Some(
            "This browser cannot sign in: it needs session storage and secure random numbers."
                .to_owned(),
        )));
    }
}

/// Signs out at the identity service (which ends the session, so the token stops working
/// everywhere, and removes the refresh cookie), then forgets the token.
pub fn sign_out() {
    spawn_local(async {
        let signed_out = match Request::post(sign_in::LOGOUT_PATH).send().await {
            Ok(response) if response.ok() => None,
            Ok(response) => Some(format!("the server answered {}", response.status())),
            Err(error) => Some(error.to_string()),
        };
        forget();
        HELD.with(|held| held.borrow_mut().signed_out = true);
        tell(AuthState::SignedOut(Some(match signed_out {
            None => "You are signed out.".to_owned(),
            Some(problem) => format!(
                "This page forgot you, but signing out at the server failed ({problem}): \
                 close the browser to be sure."
            ),
        })));
    });
}

/// A token to send now: the one held, refreshed first if it is about to expire. `None` when
/// signed out.
pub async fn access_token() -> Option<String> {
    let held = HELD.with(|held| held.borrow().access.clone())?;
    if held.is_fresh(now()) {
        return Some(held.token);
    }
    refresh().await;
    HELD.with(|held| held.borrow().access.clone())
        .filter(|access| !access.is_expired(now()))
        .map(|access| access.token)
}

/// Gets a new access token with the refresh cookie; whether one is held now. A refresh under
/// way is joined, not repeated. If the session has ended, the app is told it is signed out.
pub async fn refresh() -> bool {
    let joined = HELD.with(|held| {
        let mut held = held.borrow_mut();
        match &mut held.waiting {
            Some(waiting) => {
                let (sender, receiver) = oneshot::channel();
                waiting.push(sender);
                Some(receiver)
            }
            None => {
                held.waiting = Some(Vec::new());
                None
            }
        }
    });
    if let Some(receiver) = joined {
        return receiver.await.unwrap_or(false);
    }
    let refreshed = match exclusively(request_refresh()).await {
        Refreshed::Done(access) => {
            hold(access);
            true
        }
        Refreshed::Ended => {
            forget();
            tell(AuthState::SignedOut(Some(
                "Your session has ended. Sign in again to go on.".to_owned(),
            )));
            false
        }
        Refreshed::Unavailable(problem) => {
            web_sys::console::warn_1(
                &format!("refreshing the access token failed: {problem}").into(),
            );
            schedule(RETRY_MS);
            false
        }
    };
    let waiting = HELD.with(|held| held.borrow_mut().waiting.take());
    for waiter in waiting.into_iter().flatten() {
        let _ = waiter.send(refreshed);
    }
    refreshed
}

/// Asks the token endpoint for a token with the cookie's refresh token.
async fn request_refresh() -> Refreshed {
    let (status, body) = match post_form(sign_in::TOKEN_PATH, sign_in::refresh_request()).await {
        Ok(answer) => answer,
        Err(problem) => return Refreshed::Unavailable(problem),
    };
    if status == 200 {
        return match TokenResponse::parse(&body)
            .and_then(|response| AccessToken::new(&response, now()))
        {
            Some(access) => Refreshed::Done(access),
            None => Refreshed::Unavailable("the token endpoint's answer is unreadable".to_owned()),
        };
    }
    match OAuthError::parse(&body) {
        Some(error) if error.session_ended() => Refreshed::Ended,
        Some(error) => Refreshed::Unavailable(error.error_description.unwrap_or(error.error)),
        None => Refreshed::Unavailable(format!("the token endpoint answered {status}")),
    }
}

/// Runs `task` holding the Web Lock [`REFRESH_LOCK`], so that the app's tabs refresh one at a
/// time (each then sends the cookie the one before set); without the Web Locks API, just runs
/// it.
async fn exclusively(task: impl Future<Output = Refreshed> + 'static) -> Refreshed {
    let locks = web_sys::window()
        .map(|window| window.navigator())
        .and_then(|navigator| js_sys::Reflect::get(&navigator, &"locks".into()).ok())
        .filter(|locks| locks.is_object());
    let request = locks.as_ref().and_then(|locks| {
        js_sys::Reflect::get(locks, &"request".into())
            .ok()?
            .dyn_into::<js_sys::Function>()
            .ok()
    });
    let (Some(locks), Some(request)) = (locks, request) else {
        return task.await;
    };
    let (sender, receiver) = oneshot::channel();
    // Called once the lock is granted; the lock is held until the promise it returns settles.
    let holder = Closure::<dyn FnMut(JsValue) -> js_sys::Promise>::once_into_js(move |_lock| {
        future_to_promise(async move {
            let _ = sender.send(task.await);
            Ok(JsValue::UNDEFINED)
        })
    });
    let granted = request
        .call2(&locks, &REFRESH_LOCK.into(), &holder)
        .ok()
        .and_then(|promise| promise.dyn_into::<js_sys::Promise>().ok());
    if let Some(promise) = granted {
        let _ = JsFuture::from(promise).await;
    }
    receiver
        .await
        .unwrap_or_else(|_| Refreshed::Unavailable("the refresh lock was not granted".to_owned()))
}

/// Keeps `access`, schedules its refresh, and tells the app who is signed in.
fn hold(access: AccessToken) {
    let user = access.user.clone();
    let wait = access.refresh_in_ms(now());
    let changed = HELD.with(|held| {
        let mut held = held.borrow_mut();
        if held.signed_out {
            return None;
        }
        let changed = held.access.as_ref().map(|old| &old.user) != Some(&user);
        held.access = Some(access);
        Some(changed)
    });
    let Some(changed) = changed else {
        return;
    };
    schedule(wait);
    if changed {
        tell(AuthState::SignedIn(user));
    }
}

/// Forgets the token and the scheduled refresh.
fn forget() {
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        held.access = None;
        held.timer = None;
    });
}

/// Refreshes in `wait` ms.
fn schedule(wait: u32) {
    let timer = Timeout::new(wait, || {
        spawn_local(async {
            refresh().await;
        })
    });
    HELD.with(|held| held.borrow_mut().timer = Some(timer));
}

fn tell(state: AuthState) {
    if let Some(listener) = HELD.with(|held| held.borrow().listener.clone()) {
        listener.emit(state);
    }
}

/// The pending sign-in of this tab, removed from storage so that an answer is taken once.
fn take_pending() -> Option<PendingSignIn> {
    let storage = web_sys::window()?.session_storage().ok().flatten()?;
    let json = storage.get_item(PENDING_KEY).ok().flatten()?;
    let _ = storage.remove_item(PENDING_KEY);
    PendingSignIn::from_json(&json)
}

/// Replaces the address (without loading a page or adding to history).
fn replace_address(url: &str) {
    if let Some(history) = web_sys::window().and_then(|window| window.history().ok()) {
        let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(url));
    }
}

fn origin() -> Option<String> {
    web_sys::window()?.location().origin().ok()
}

/// `POST` of a form to the identity service on the page's origin (its cookies go with it);
/// the status and the body.
async fn post_form(path: &str, body: String) -> Result<(u16, String), String> {
    let response = Request::post(path)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .map_err(|error| error.to_string())?
        .send()
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status();
    let text = response.text().await.map_err(|error| error.to_string())?;
    Ok((status, text))
}

/// The browser's clock, in milliseconds.
fn now() -> f64 {
    js_sys::Date::now()
}
