//! The consent page: what the application asks for, in words, and, when it asks to work with
//! one patient and none is in context, a patient picker (a search by name over the FHIR
//! server, or a patient id typed in).

use axum::http::StatusCode;
use axum::response::Response;

use super::{escape, hidden, page};

/// A patient found by the picker's search.
pub struct PatientChoice {
    pub id: String,
    pub name: String,
    pub birth_date: String,
}

/// What the consent page shows.
pub struct ConsentPage<'a> {
    pub request: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    /// The signed-in user's display name (or user name).
    pub user: &'a str,
    /// The scopes asked for, in words.
    pub scopes: Vec<String>,
    /// Whether the user must choose a patient.
    pub pick_patient: bool,
    /// The patient already in context (EHR launch).
    pub patient_in_context: Option<&'a str>,
    /// The picker's search text and results, when a search was made.
    pub search: Option<&'a str>,
    pub results: &'a [PatientChoice],
    /// Why the search gave nothing, or why the last decision was refused.
    pub problem: Option<&'a str>,
}

impl ConsentPage<'_> {
    pub fn render(&self, status: StatusCode) -> Response {
        let mut body = format!(
            "<p>Signed in as <strong>{}</strong>. \
             <strong>{}</strong> asks to:</p>\n<ul class=\"scopes\">\n",
            escape(self.user),
            escape(self.client_name)
        );
        for scope in &self.scopes {
            body.push_str(&format!("<li>{}</li>\n", escape(scope)));
        }
        body.push_str("</ul>\n");
        if let Some(patient) = self.patient_in_context {
            body.push_str(&format!(
                "<p>Patient in context: <code>Patient/{}</code></p>\n",
                escape(patient)
            ));
        }
        if let Some(problem) = self.problem {
            body.push_str(&format!("<p class=\"error\">{}</p>\n", escape(problem)));
        }
        if self.pick_patient {
            body.push_str(&format!(
                "<h2>Choose a patient</h2>\n\
                 <form method=\"get\" action=\"/auth/consent\">\n{}\
                 <label for=\"q\">Search by name</label>\n\
                 <input type=\"search\" id=\"q\" name=\"q\" value=\"{}\">\n\
                 <button type=\"submit\" class=\"secondary\">Search</button>\n</form>\n",
                hidden("request", self.request),
                escape(self.search.unwrap_or_default())
            ));
        }
        body.push_str("<form method=\"post\" action=\"/auth/consent\">\n");
        body.push_str(&hidden("request", self.request));
        body.push_str(&hidden("csrf", self.csrf));
        if self.pick_patient {
            if !self.results.is_empty() {
                body.push_str(
                    "<table>\n<tr><th></th><th>Name</th><th>Birth date</th><th>Id</th></tr>\n",
                );
                for (index, patient) in self.results.iter().enumerate() {
                    body.push_str(&format!(
                        "<tr><td><input type=\"radio\" id=\"patient-{index}\" name=\"patient\" \
                         value=\"{id}\"></td><td><label for=\"patient-{index}\">{name}</label>\
                         </td><td>{birth}</td><td><code>{id}</code></td></tr>\n",
                        id = escape(&patient.id),
                        name = escape(&patient.name),
                        birth = escape(&patient.birth_date),
                    ));
                }
                body.push_str("</table>\n");
            } else if self.search.is_some() {
                body.push_str("<p>No patient matches that name.</p>\n");
            }
            body.push_str(
                "<label for=\"patient_id\">Or the patient's id</label>\n\
                 <input type=\"text\" id=\"patient_id\" name=\"patient_id\">\n",
            );
        }
        body.push_str(
            "<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\n\
             <button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">\
             Deny</button>\n</form>\n",
        );
        page(status, "Allow access?", &body)
    }
}
