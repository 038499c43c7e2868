//! Sessions: one per sign-in grant or client-credentials grant. Every token names its session
//! (`sid`), and lives only as long as `session:<sid>` does.

use std::time::Duration;

use access_policy::Role;
use serde::{Deserialize, Serialize};

use super::{Transient, TransientError, now, until};
use crate::ids::random_token;

// The key of a live session and the channel that announces its end are the contract with the
// services that check tokens: they are defined once, where those checks are.
pub use access_policy::verify::{REVOCATION_CHANNEL, session_key};

/// What a session is: who, through which client, with what.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The user's name, or the client id of a backend service.
    pub user: String,
    /// `None` for a backend service.
    pub role: Option<Role>,
    pub client: String,
    /// The scopes granted, space-separated.
    pub scopes: String,
    pub patient: Option<String>,
    pub encounter: Option<String>,
    #[serde(rename = "fhirUser")]
    pub fhir_user: Option<String>,
    pub name: Option<String>,
    /// The teaching classes of the user when they signed in (the tokens' `classes`); none for
    /// a backend service, and for a session stored before sessions had them.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Whether the app should show the patient's banner (a standalone launch; in an EHR
    /// launch the EHR shows it).
    #[serde(default)]
    pub need_patient_banner: bool,
    /// The FHIR base its tokens are for.
    pub aud: String,
    /// When the user signed in, or the client authenticated (Unix seconds).
    pub created: i64,
    /// When the session ends at the latest (Unix seconds).
    pub expires: i64,
}

impl Transient {
    /// Starts a session, kept for `keep` at first (a session waiting for its code to be
    /// exchanged lives only as long as the code); its id.
    pub async fn start_session(
        &self,
        session: &Session,
        keep: Duration,
    ) -> Result<String, TransientError> {
        let sid = random_token();
        self.put(
            &session_key(&sid),
            session,
            keep.min(until(session.expires)),
        )
        .await?;
        Ok(sid)
    }

    /// Keeps a session until its end; false if it has ended already.
    pub async fn confirm_session(
        &self,
        sid: &str,
        session: &Session,
    ) -> Result<bool, TransientError> {
        let kept: i64 = self
            .run(
                redis::cmd("EXPIREAT")
                    .arg(session_key(sid))
                    .arg(session.expires.max(now() + 1)),
            )
            .await?;
        Ok(kept == 1)
    }

    /// The session, while it is alive.
    pub async fn session(&self, sid: &str) -> Result<Option<Session>, TransientError> {
        self.get(&session_key(sid)).await
    }

    /// Ends a session: its key goes, and its id is announced on [`REVOCATION_CHANNEL`] so that
    /// resource servers drop it from their caches. Whether it was alive.
    pub async fn end_session(&self, sid: &str) -> Result<bool, TransientError> {
        let ended = self.delete(&session_key(sid)).await?;
        let _: i64 = self
            .run(redis::cmd("PUBLISH").arg(REVOCATION_CHANNEL).arg(sid))
            .await?;
        if ended {
            tracing::info!(sid = %&sid[..8.min(sid.len())], "session ended");
        }
        Ok(ended)
    }
}
