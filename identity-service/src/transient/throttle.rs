//! The sign-in throttle: sign-in attempts counted per account and client address, in a window
//! that starts at the first attempt. Every attempt is counted before its password is checked
//! and a successful one clears the count, so what accumulates is failures (and attempts in
//! flight): parallel guesses cannot slip past the limit between a check and a count. Past the
//! limit, every attempt is refused until the window ends, the right password included, so
//! that guessing gains nothing by persisting.

use std::time::Duration;

use super::{Transient, TransientError};

/// The attempts counted so far (this one included), and how long until the window ends.
#[derive(Debug, Clone, Copy)]
pub struct Attempts {
    pub count: u32,
    pub resets_in: Duration,
}

impl Transient {
    fn attempts_key(&self, user: &str, address: &str) -> String {
        format!(
            "{}:signin-failures:{}:{address}",
            self.throttle_prefix,
            user.to_lowercase()
        )
    }

    /// Counts an attempt to sign in as `user` from `address`; the window starts with the first.
    pub async fn count_sign_in_attempt(
        &self,
        user: &str,
        address: &str,
        window: Duration,
    ) -> Result<Attempts, TransientError> {
        let key = self.attempts_key(user, address);
        let mut connection = self.redis.clone();
        let (count, _, ttl_ms): (u32, i64, i64) = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(&key)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(window.as_millis().max(1) as u64)
            .arg("NX")
            .cmd("PTTL")
            .arg(&key)
            .query_async(&mut connection)
            .await?;
        Ok(Attempts {
            count,
            resets_in: Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0)),
        })
    }

    /// Forgets the attempts of `user` from `address` (after a successful sign-in).
    pub async fn clear_sign_in_attempts(
        &self,
        user: &str,
        address: &str,
    ) -> Result<(), TransientError> {
        self.delete(&self.attempts_key(user, address))
            .await
            .map(|_| ())
    }
}
