//! The authorization-code flow's state between its steps: the pending request (from
//! `/authorize` to consent), the code (from consent to `/token`), and EHR launch contexts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Redeemed, Transient, TransientError};
use crate::ids::{random_token, sha256_hex};

/// How long a user has to sign in and consent.
pub const REQUEST_TTL: Duration = Duration::from_secs(600);
/// How long a code may wait to be exchanged (RFC 6749 recommends at most 10 minutes; a client
/// exchanges it at once).
pub const CODE_TTL: Duration = Duration::from_secs(60);
/// How long an EHR launch id is good for.
pub const LAUNCH_TTL: Duration = Duration::from_secs(300);

/// An authorization request that passed its checks, waiting for the user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// The scopes asked for (already narrowed to what the client may have).
    pub scope: String,
    pub state: Option<String>,
    pub aud: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    /// The EHR launch the request named, if any.
    pub launch: Option<LaunchContext>,
    /// The anti-forgery token its forms must carry, equal to the browser's cookie.
    pub csrf: String,
    /// Who signed in, once someone has.
    pub user: Option<String>,
    /// The browser sign-in that user came with.
    pub browser: Option<String>,
}

/// The context an EHR launch binds: the patient (and encounter) open in the EHR.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaunchContext {
    pub patient: String,
    pub encounter: Option<String>,
    /// The user who launched; only they may use it.
    pub user: String,
}

/// What an authorization code grants, until it is exchanged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    /// The session its tokens will belong to.
    pub sid: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    /// When the user signed in (Unix seconds).
    pub auth_time: i64,
    /// When its session ends at the latest: how long it is remembered once spent.
    pub expires: i64,
}

fn request_key(id: &str) -> String {
    format!("identity:request:{id}")
}

fn code_key(code: &str) -> String {
    format!("identity:code:{code}")
}

fn code_spent_key(code: &str) -> String {
    format!("identity:code-spent:{}", sha256_hex(code))
}

fn launch_key(id: &str) -> String {
    format!("identity:launch:{id}")
}

impl Transient {
    /// Keeps a request for [`REQUEST_TTL`]; its id.
    pub async fn put_request(&self, request: &PendingRequest) -> Result<String, TransientError> {
        let id = random_token();
        self.put(&request_key(&id), request, REQUEST_TTL).await?;
        Ok(id)
    }

    pub async fn request(&self, id: &str) -> Result<Option<PendingRequest>, TransientError> {
        self.get(&request_key(id)).await
    }

    /// Replaces a request's record, keeping its expiry.
    pub async fn update_request(
        &self,
        id: &str,
        request: &PendingRequest,
    ) -> Result<(), TransientError> {
        let json = serde_json::to_string(request)?;
        self.run::<Option<String>>(
            redis::cmd("SET")
                .arg(request_key(id))
                .arg(json)
                .arg("XX")
                .arg("KEEPTTL"),
        )
        .await
        .map(|_| ())
    }

    /// Takes a request (it is answered now).
    pub async fn take_request(&self, id: &str) -> Result<Option<PendingRequest>, TransientError> {
        self.take(&request_key(id)).await
    }

    /// Issues a code for `grant`.
    pub async fn issue_code(&self, grant: &CodeGrant) -> Result<String, TransientError> {
        let code = random_token();
        self.put(&code_key(&code), grant, CODE_TTL).await?;
        Ok(code)
    }

    /// Spends a code: its grant the first time, `Spent` with the grant ever after (while its
    /// session could live), so that a replay can end what the first exchange issued.
    pub async fn redeem_code(&self, code: &str) -> Result<Redeemed<CodeGrant>, TransientError> {
        self.redeem(&code_key(code), &code_spent_key(code)).await
    }

    /// Keeps an EHR launch context for [`LAUNCH_TTL`]; its id.
    pub async fn put_launch(&self, context: &LaunchContext) -> Result<String, TransientError> {
        let id = random_token();
        self.put(&launch_key(&id), context, LAUNCH_TTL).await?;
        Ok(id)
    }

    pub async fn launch(&self, id: &str) -> Result<Option<LaunchContext>, TransientError> {
        self.get(&launch_key(id)).await
    }
}
