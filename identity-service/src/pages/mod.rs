//! The HTML a person sees: the sign-in form, the consent page with its patient picker, and
//! messages (errors, signed out). Plain forms, no JavaScript, no inline styles (the edge's
//! Content-Security-Policy forbids both); every value written into a page is escaped.
//!
//! The pages are never cached (they carry anti-forgery tokens) and say that the system holds
//! synthetic data only.

mod consent;
mod sign_in;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

pub use consent::{ConsentPage, PatientChoice};
pub use sign_in::{DemoUser, SignInPage};

/// The style sheet the pages link to (`/auth/assets/style.css`).
pub const STYLE_SHEET: &str = include_str!("../../assets/style.css");

/// `text` safe inside HTML text and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A hidden form field.
fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
        escape(name),
        escape(value)
    )
}

/// A whole page around `body`, answered with `status`.
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · Wardline</title>\n\
         <link rel=\"stylesheet\" href=\"/auth/assets/style.css\">\n</head>\n<body>\n\
         <div class=\"notice\">Wardline is a teaching system with synthetic patients only. \
         Never enter real patient data.</div>\n<main>\n<h1>{title}</h1>\n{body}</main>\n\
         </body>\n</html>\n",
        title = escape(title),
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A page with one message.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    page(status, title, &format!("<p>{}</p>\n", escape(text)))
}
