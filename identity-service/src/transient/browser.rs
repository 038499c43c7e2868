//! A browser's remembered sign-in (the `wl_signin` cookie names it), and the sessions started
//! from it, which signing out ends.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Transient, TransientError};
use crate::ids::random_token;

/// Who is signed in in a browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BrowserSignIn {
    pub user: String,
    /// When they typed their password (Unix seconds): the ID token's `auth_time`.
    pub auth_time: i64,
}

fn browser_key(id: &str) -> String {
    format!("identity:browser:{id}")
}

fn browser_sessions_key(id: &str) -> String {
    format!("identity:browser-sessions:{id}")
}

impl Transient {
    /// Remembers a sign-in for `ttl`; its id (the cookie's value).
    pub async fn sign_in_browser(
        &self,
        sign_in: &BrowserSignIn,
        ttl: Duration,
    ) -> Result<String, TransientError> {
        let id = random_token();
        self.put(&browser_key(&id), sign_in, ttl).await?;
        Ok(id)
    }

    pub async fn browser(&self, id: &str) -> Result<Option<BrowserSignIn>, TransientError> {
        self.get(&browser_key(id)).await
    }

    /// Notes that session `sid` was started from browser `id`, remembered as long as the
    /// session may live.
    pub async fn note_browser_session(
        &self,
        id: &str,
        sid: &str,
        lifetime: Duration,
    ) -> Result<(), TransientError> {
        let key = browser_sessions_key(id);
        self.run::<i64>(redis::cmd("SADD").arg(&key).arg(sid))
            .await?;
        // GT: a shorter session never shortens what a longer one needs.
        self.run::<i64>(
            redis::cmd("EXPIRE")
                .arg(&key)
                .arg(lifetime.as_secs().max(1))
                .arg("GT"),
        )
        .await?;
        // A new set has no expiry, which GT does not replace.
        self.run::<i64>(
            redis::cmd("EXPIRE")
                .arg(&key)
                .arg(lifetime.as_secs().max(1))
                .arg("NX"),
        )
        .await
        .map(|_| ())
    }

    /// Forgets the sign-in; the sessions started from it (the caller ends them).
    pub async fn sign_out_browser(&self, id: &str) -> Result<Vec<String>, TransientError> {
        self.delete(&browser_key(id)).await?;
        let key = browser_sessions_key(id);
        let sessions: Vec<String> = self.run(redis::cmd("SMEMBERS").arg(&key)).await?;
        self.delete(&key).await?;
        Ok(sessions)
    }
}
