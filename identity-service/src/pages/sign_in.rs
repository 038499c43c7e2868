//! The sign-in form. In development mode it lists the demo users and their passwords, which
//! are public by design (the demo accounts exist so that anyone can try every role).

use axum::http::StatusCode;
use axum::response::Response;

use super::{escape, hidden, page};

/// A demo account shown on the form.
pub struct DemoUser {
    pub username: String,
    pub password: String,
    pub role: String,
}

/// What the sign-in page shows.
pub struct SignInPage<'a> {
    /// The pending authorization request the form answers.
    pub request: &'a str,
    pub csrf: &'a str,
    /// The application asking (its registered name).
    pub client_name: &'a str,
    /// The name typed last time, after a failure.
    pub username: &'a str,
    /// Why the last attempt failed.
    pub problem: Option<&'a str>,
    pub demo_users: &'a [DemoUser],
}

impl SignInPage<'_> {
    pub fn render(&self, status: StatusCode) -> Response {
        let mut body = format!(
            "<p><strong>{}</strong> asks you to sign in to Wardline.</p>\n",
            escape(self.client_name)
        );
        if let Some(problem) = self.problem {
            body.push_str(&format!("<p class=\"error\">{}</p>\n", escape(problem)));
        }
        body.push_str("<form method=\"post\" action=\"/auth/login\">\n");
        body.push_str(&hidden("request", self.request));
        body.push_str(&hidden("csrf", self.csrf));
        body.push_str(&format!(
            "<label for=\"username\">User name</label>\n\
             <input type=\"text\" id=\"username\" name=\"username\" value=\"{}\" \
             autocomplete=\"username\" required autofocus>\n\
             <label for=\"password\">Password</label>\n\
             <input type=\"password\" id=\"password\" name=\"password\" \
             autocomplete=\"current-password\" required>\n\
             <button type=\"submit\">Sign in</button>\n</form>\n",
            escape(self.username)
        ));
        if !self.demo_users.is_empty() {
            body.push_str(
                "<h2>Demo users</h2>\n<p>This server runs in development mode: one user per \
                 role, with these passwords.</p>\n<table>\n\
                 <tr><th>User name</th><th>Password</th><th>Role</th></tr>\n",
            );
            for user in self.demo_users {
                body.push_str(&format!(
                    "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>\n",
                    escape(&user.username),
                    escape(&user.password),
                    escape(&user.role)
                ));
            }
            body.push_str("</table>\n");
        }
        page(status, "Sign in", &body)
    }
}
