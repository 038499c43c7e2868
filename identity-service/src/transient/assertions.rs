//! Client assertions already used: a `private_key_jwt` assertion is good once (RFC 7523 3,
//! SMART Backend Services), so its `jti` is remembered until the assertion expires.

use std::time::Duration;

use super::{Transient, TransientError};

impl Transient {
    /// Records `jti` as used by `client_id` until `ttl` has passed; false if it was used before.
    pub async fn claim_assertion(
        &self,
        client_id: &str,
        jti: &str,
        ttl: Duration,
    ) -> Result<bool, TransientError> {
        let set: Option<String> = self
            .run(
                redis::cmd("SET")
                    .arg(format!("identity:assertion:{client_id}:{jti}"))
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl.as_secs().max(1)),
            )
            .await?;
        Ok(set.is_some())
    }
}
