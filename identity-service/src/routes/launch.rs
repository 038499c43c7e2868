//! `POST /auth/launch`: an EHR launch. The EHR (the web app, with the signed-in user's token)
//! says which patient (and encounter) is open; the answer is a `launch` id that the app it
//! launches passes to `/authorize` with the `launch` scope, which binds that context to the
//! grant. A launch is good for five minutes, for the user who made it.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use fhir_model::ResourceId;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::bearer;
use crate::error::{Error, OAuthError};
use crate::transient::LaunchContext;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchRequest {
    patient: String,
    #[serde(default)]
    encounter: Option<String>,
}

pub async fn launch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, OAuthError> {
    let principal = bearer::principal(&state, &headers).await?;
    if principal.is_service() {
        return Err(
            Error::InvalidRequest("an EHR launch is made for a signed-in user".to_owned()).into(),
        );
    }
    let request: LaunchRequest = serde_json::from_slice(&body).map_err(|error| {
        Error::InvalidRequest(format!(
            "the body must be {{\"patient\", \"encounter\"?}}: {error}"
        ))
    })?;
    let id = |text: &str, what: &str| {
        ResourceId::parse(text)
            .map(|id| id.as_str().to_owned())
            .map_err(|_| Error::InvalidRequest(format!("'{text}' is not a valid {what} id")))
    };
    let context = LaunchContext {
        patient: id(&request.patient, "patient")?,
        encounter: request
            .encounter
            .as_deref()
            .map(|encounter| id(encounter, "encounter"))
            .transpose()?,
        user: principal.subject,
    };
    let launch = state.transient.put_launch(&context).await?;
    Ok(Json(json!({ "launch": launch })))
}
