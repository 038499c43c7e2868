//! Refresh tokens. Only their SHA-256 is stored: a copy of Redis gives nobody a usable token.
//! Each use spends the token and issues the next one; a spent token presented again means two
//! parties hold the family, so the whole session ends (OAuth 2.0 Security BCP, 4.14).

use serde::{Deserialize, Serialize};

use super::{Redeemed, Transient, TransientError, until};
use crate::ids::{random_token, sha256_hex};

/// What a refresh token grants.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshGrant {
    pub sid: String,
    pub client_id: String,
    /// The scopes of the grant (a refresh may ask for fewer, never more).
    pub scope: String,
    /// When the session ends: the token's expiry.
    pub expires: i64,
}

fn refresh_key(token: &str) -> String {
    format!("identity:refresh:{}", sha256_hex(token))
}

fn refresh_spent_key(token: &str) -> String {
    format!("identity:refresh-spent:{}", sha256_hex(token))
}

impl Transient {
    /// Issues a refresh token for `grant`, good until the grant expires.
    pub async fn issue_refresh(&self, grant: &RefreshGrant) -> Result<String, TransientError> {
        let token = random_token();
        self.put(&refresh_key(&token), grant, until(grant.expires))
            .await?;
        Ok(token)
    }

    /// Spends a refresh token ([`Redeemed`]).
    pub async fn redeem_refresh(
        &self,
        token: &str,
    ) -> Result<Redeemed<RefreshGrant>, TransientError> {
        self.redeem(&refresh_key(token), &refresh_spent_key(token))
            .await
    }

    /// What an unspent refresh token grants, without spending it (introspection, revocation).
    pub async fn refresh(&self, token: &str) -> Result<Option<RefreshGrant>, TransientError> {
        self.get(&refresh_key(token)).await
    }

    /// Removes a refresh token.
    pub async fn forget_refresh(&self, token: &str) -> Result<(), TransientError> {
        self.delete(&refresh_key(token)).await.map(|_| ())
    }
}
