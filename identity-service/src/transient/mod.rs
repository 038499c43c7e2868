//! Short-lived state in Redis: what must be shared by every instance and forgotten on time.
//!
//! | key | holds | lives |
//! | --- | --- | --- |
//! | `session:<sid>` | a session (user, role, client, scopes, patient) | the session's remaining lifetime |
//! | `identity:request:<id>` | an authorization request waiting for sign-in and consent | 10 min |
//! | `identity:code:<code>` | an authorization code's grant | 60 s, taken once |
//! | `identity:code-spent:<sha256>` | the session of a code already exchanged | the session's lifetime |
//! | `identity:refresh:<sha256>` | a refresh token's grant (the token itself is never stored) | the session's lifetime |
//! | `identity:refresh-spent:<sha256>` | the grant of a refresh token already rotated | the session's lifetime |
//! | `identity:launch:<id>` | an EHR launch's context | 5 min |
//! | `identity:browser:<id>` | a browser's remembered sign-in | 8 h by default |
//! | `identity:browser-sessions:<id>` | the sessions started from that browser | as long as they may live |
//! | `identity:assertion:<client>:<jti>` | a client assertion already used | until it expires |
//! | `<prefix>:signin-failures:<user>:<address>` | sign-in attempts since the last success | the throttle's window |
//!
//! `session:<sid>` and the channel `session:revoked` are the contract with the resource servers
//! (`access_policy::AccessClaims::sid`): a token is alive while its session key exists, and an
//! ended session is announced so that their short caches forget it at once. Ids are random
//! (256 bits), so tests and instances sharing a Redis never collide; only the throttle's
//! counters, keyed by names anyone can type, take a configurable prefix.

mod assertions;
mod authorization;
mod browser;
mod refresh;
mod sessions;
mod throttle;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

pub use authorization::{
    CODE_TTL, CodeGrant, LAUNCH_TTL, LaunchContext, PendingRequest, REQUEST_TTL,
};
pub use browser::BrowserSignIn;
pub use refresh::RefreshGrant;
pub use sessions::{REVOCATION_CHANNEL, Session, session_key};

/// Whether a single-use secret (a code, a refresh token) was fresh, spent already, or unknown.
#[derive(Debug)]
pub enum Redeemed<T> {
    /// First use: here is what it grants; it is spent now.
    Fresh(T),
    /// Used before: here is what it granted (so that its session can be ended).
    Spent(T),
    /// Never issued, or expired.
    Unknown,
}

/// What can go wrong with Redis.
#[derive(Debug, Error)]
pub enum TransientError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("a record in Redis is unreadable: {0}")]
    Corrupt(#[from] serde_json::Error),
}

const TIMEOUT: Duration = Duration::from_secs(2);

/// Takes the value at KEYS[1] and, if there was one, keeps it at KEYS[2] until the `expires`
/// (Unix seconds) it holds: a single-use secret spent in one step, remembered as spent.
/// Returns {1, value} for a fresh secret, {2, value} for a spent one, {0} otherwise.
const REDEEM: &str = r"
local value = redis.call('GETDEL', KEYS[1])
if value then
  local expires = tonumber(cjson.decode(value).expires) or 0
  local now = tonumber(redis.call('TIME')[1])
  if expires > now then
    redis.call('SET', KEYS[2], value, 'EXAT', expires)
  end
  return {1, value}
end
local spent = redis.call('GET', KEYS[2])
if spent then
  return {2, spent}
end
return {0}";

/// The Redis side of the service; cheap to clone.
#[derive(Clone)]
pub struct Transient {
    redis: ConnectionManager,
    throttle_prefix: String,
    redeem: redis::Script,
}

impl Transient {
    /// Connects to the Redis at `url` (it reconnects by itself after a failure).
    pub async fn connect(url: &str, throttle_prefix: &str) -> Result<Transient, TransientError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(TIMEOUT)
            .set_response_timeout(TIMEOUT)
            .set_number_of_retries(2);
        let redis = tokio::time::timeout(
            TIMEOUT * 2,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| TransientError::Timeout(TIMEOUT * 2))??;
        Ok(Transient {
            redis,
            throttle_prefix: throttle_prefix.to_owned(),
            redeem: redis::Script::new(REDEEM),
        })
    }

    /// Runs one command.
    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, TransientError> {
        let mut connection = self.redis.clone();
        Ok(cmd.query_async(&mut connection).await?)
    }

    /// Stores `value` as JSON at `key` for `ttl`.
    async fn put<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), TransientError> {
        let json = serde_json::to_string(value)?;
        self.run::<()>(
            redis::cmd("SET")
                .arg(key)
                .arg(json)
                .arg("PX")
                .arg(ttl.as_millis().max(1) as u64),
        )
        .await
    }

    /// The JSON value at `key`, if any.
    async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, TransientError> {
        let json: Option<String> = self.run(redis::cmd("GET").arg(key)).await?;
        Ok(json.map(|json| serde_json::from_str(&json)).transpose()?)
    }

    /// The JSON value at `key`, removed in the same step.
    async fn take<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, TransientError> {
        let json: Option<String> = self.run(redis::cmd("GETDEL").arg(key)).await?;
        Ok(json.map(|json| serde_json::from_str(&json)).transpose()?)
    }

    /// Spends the single-use secret at `key`, remembering it at `spent_key` ([`REDEEM`]).
    async fn redeem<T: DeserializeOwned>(
        &self,
        key: &str,
        spent_key: &str,
    ) -> Result<Redeemed<T>, TransientError> {
        let mut connection = self.redis.clone();
        let (outcome, json): (i64, Option<String>) = self
            .redeem
            .key(key)
            .key(spent_key)
            .invoke_async::<Vec<redis::Value>>(&mut connection)
            .await
            .and_then(|values| {
                let mut values = values.into_iter();
                let outcome = values
                    .next()
                    .map(|value| redis::from_redis_value::<i64>(&value))
                    .transpose()?
                    .unwrap_or(0);
                let json = values
                    .next()
                    .map(|value| redis::from_redis_value::<String>(&value))
                    .transpose()?;
                Ok((outcome, json))
            })?;
        Ok(match (outcome, json) {
            (1, Some(json)) => Redeemed::Fresh(serde_json::from_str(&json)?),
            (2, Some(json)) => Redeemed::Spent(serde_json::from_str(&json)?),
            _ => Redeemed::Unknown,
        })
    }

    /// Removes `key`; whether it was there.
    async fn delete(&self, key: &str) -> Result<bool, TransientError> {
        let removed: i64 = self.run(redis::cmd("DEL").arg(key)).await?;
        Ok(removed > 0)
    }

    /// Whether Redis answers (for `/ready`).
    pub async fn ping(&self) -> Result<(), TransientError> {
        self.run::<String>(&redis::cmd("PING")).await.map(|_| ())
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The time left until `expires` (Unix seconds), or zero.
pub fn until(expires: i64) -> Duration {
    Duration::from_secs(u64::try_from(expires - now()).unwrap_or(0))
}
