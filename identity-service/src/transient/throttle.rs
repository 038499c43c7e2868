//! The sign-in throttle: failed sign-ins counted per account and client address, in a window
//! that starts at the first failure. Past the limit, every attempt is refused until the window
//! ends, the right password included, so that guessing gains nothing by persisting.

use std::time::Duration;

use super::{Transient, TransientError};

/// Failures so far, and how long until the window ends.
#[derive(Debug, Clone, Copy)]
pub struct Failures {
    pub count: u32,
    pub resets_in: Duration,
}

impl Transient {
    fn failures_key(&self, user: &str, address: &str) -> String {
        format!(
            "{}:signin-failures:{}:{address}",
            self.throttle_prefix,
            user.to_lowercase()
        )
    }

    /// The failures counted for `user` from `address`.
    pub async fn sign_in_failures(
        &self,
        user: &str,
        address: &str,
    ) -> Result<Failures, TransientError> {
        let key = self.failures_key(user, address);
        let count: Option<u32> = self.run(redis::cmd("GET").arg(&key)).await?;
        let ttl_ms: i64 = self.run(redis::cmd("PTTL").arg(&key)).await?;
        Ok(Failures {
            count: count.unwrap_or(0),
            resets_in: Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0)),
        })
    }

    /// Counts one more failure; the window starts with the first.
    pub async fn count_sign_in_failure(
        &self,
        user: &str,
        address: &str,
        window: Duration,
    ) -> Result<u32, TransientError> {
        let key = self.failures_key(user, address);
        let count: u32 = self.run(redis::cmd("INCR").arg(&key)).await?;
        self.run::<i64>(
            redis::cmd("PEXPIRE")
                .arg(&key)
                .arg(window.as_millis().max(1) as u64)
                .arg("NX"),
        )
        .await?;
        Ok(count)
    }
}

impl Transient {
    /// Forgets the failures of `user` from `address` (after a successful sign-in).
    pub async fn clear_sign_in_failures(
        &self,
        user: &str,
        address: &str,
    ) -> Result<(), TransientError> {
        self.delete(&self.failures_key(user, address))
            .await
            .map(|_| ())
    }
}
