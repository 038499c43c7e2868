//! The Redis cache of current resources, `fhir:resource:<Type>/<id>` (TTL one hour), shared by
//! the three services that touch it.
//!
//! The rule it keeps: a read never returns a version older than one whose write was already
//! acknowledged. Plain cache-aside cannot keep it (a reader that fetched version 1 from
//! Postgres just before version 2 committed would store version 1 after the writer's
//! invalidation). So every entry carries its version and every store is conditional, in one
//! Lua script: an entry is only ever replaced by a newer version.
//!
//! The entry alone is not enough, because it can vanish: it expires, Redis evicts it under
//! memory pressure, an operator deletes it. A reader that read version 1 from Postgres before
//! version 2 committed, and stores it after version 2's entry has vanished, would otherwise
//! bring version 1 back. So writers also record the newest committed version in a key of its
//! own, `fhir:version:<Type>/<id>`, and a reader's store is refused below it.
//! - The command service stores each version it commits *before* acknowledging the write
//!   ([`ResourceCache::store_committed`]: entry and newest version).
//! - The query service stores what it read from Postgres on a miss
//!   ([`ResourceCache::store_read`]); one older than the entry or the newest version is refused.
//! - The projection service, after applying a version, evicts entries older than it and raises
//!   the newest version: a second guard for the case where the command service could not
//!   reach Redis.
//!
//! Redis being down makes reads slower, never wrong and never failing: every call has a short
//! timeout, a failed connection is retried at most every few seconds by one call while the
//! others go straight to Postgres, and failures are counted.
//! What remains: if Redis refuses the writer's store but accepts a concurrent reader's stale
//! one, that entry lives until the projection's eviction (milliseconds, the projection lag).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

/// Seconds an entry lives.
pub const TTL_SECONDS: u64 = 3600;
const TIMEOUT: Duration = Duration::from_millis(250);
const RECONNECT_EVERY: Duration = Duration::from_secs(5);
/// Entry format version, first field of every value.
const FORMAT: &str = "r1";

/// Stores the entry `ARGV[2]` of version `ARGV[1]` in `KEYS[1]` unless the entry holds that
/// version or a newer one. `ARGV[4]` says where the version comes from: `committed` (a write)
/// first raises the newest version `KEYS[2]` to it; `read` (from Postgres) is refused below it.
const STORE: &str = r"
local version = tonumber(ARGV[1])
local newest = tonumber(redis.call('GET', KEYS[2]))
if ARGV[4] == 'committed' then
  if (not newest) or newest < version then
    redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[3])
  end
elseif newest and newest > version then
  return 0
end
local current = redis.call('GET', KEYS[1])
if current then
  local cached = tonumber(string.match(current, '^r1|(%d+)|'))
  if cached and cached >= version then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
";

/// An applied version: raises the newest version `KEYS[2]` to `ARGV[1]` (TTL `ARGV[2]`) and
/// deletes the entry `KEYS[1]` if it holds an older version.
const EVICT_IF_OLDER: &str = r"
local newest = tonumber(redis.call('GET', KEYS[2]))
if (not newest) or newest < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
end
local current = redis.call('GET', KEYS[1])
if current then
  local version = tonumber(string.match(current, '^r1|(%d+)|'))
  if (not version) or version < tonumber(ARGV[1]) then
    redis.call('DEL', KEYS[1])
    return 1
  end
end
return 0
";

/// The cache key of one resource.
pub fn resource_key(resource_type: &str, resource_id: &str) -> String {
    format!("fhir:resource:{resource_type}/{resource_id}")
}

/// The key of the newest version committed of one resource (see the module's documentation).
pub fn version_key(resource_type: &str, resource_id: &str) -> String {
    format!("fhir:version:{resource_type}/{resource_id}")
}

/// One cached version: what a read needs to answer without Postgres.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedVersion {
    pub version: i32,
    pub recorded_at: DateTime<Utc>,
    pub deleted: bool,
    /// The resource's exact JSON text (for a deleted resource, as it stood before).
    pub resource: String,
}

impl CachedVersion {
    fn encode(&self) -> String {
        format!(
            "{FORMAT}|{}|{}|{}|{}",
            self.version,
            self.recorded_at.timestamp_micros(),
            if self.deleted { "d" } else { "l" },
            self.resource
        )
    }

    fn decode(text: &str) -> Option<Self> {
        let mut parts = text.splitn(5, '|');
        if parts.next()? != FORMAT {
            return None;
        }
        let version = parts.next()?.parse().ok()?;
        let micros: i64 = parts.next()?.parse().ok()?;
        let deleted = match parts.next()? {
            "d" => true,
            "l" => false,
            _ => return None,
        };
        Some(Self {
            version,
            recorded_at: Utc.timestamp_micros(micros).single()?,
            deleted,
            resource: parts.next()?.to_owned(),
        })
    }
}

/// A handle on the cache; cheap to clone. Connects lazily and survives Redis restarts.
#[derive(Clone)]
pub struct ResourceCache {
    inner: Arc<Inner>,
}

struct Inner {
    client: Option<redis::Client>,
    /// The live connection, read on every call without waiting.
    manager: RwLock<Option<ConnectionManager>>,
    /// Held by the one call that is (re)connecting, with the time of the last attempt; other
    /// calls meanwhile go without the cache instead of queueing behind the attempt.
    connecting: Mutex<Option<Instant>>,
    store_script: redis::Script,
    failures: AtomicU64,
}

impl ResourceCache {
    /// A cache at `url`; an invalid URL disables caching (logged), as does `None`.
    pub fn new(url: Option<&str>) -> Self {
        let client = url.and_then(|url| {
            redis::Client::open(url)
                .inspect_err(|error| tracing::error!(%error, "invalid Redis URL: caching is off"))
                .ok()
        });
        Self {
            inner: Arc::new(Inner {
                client,
                manager: RwLock::new(None),
                connecting: Mutex::new(None),
                store_script: redis::Script::new(STORE),
                failures: AtomicU64::new(0),
            }),
        }
    }

    /// How many cache operations failed (Redis unreachable or slow).
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    fn failed(&self, what: &str) {
        self.inner.failures.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(what, "Redis cache operation failed");
    }

    async fn connection(&self) -> Option<ConnectionManager> {
        let client = self.inner.client.as_ref()?;
        if let Some(manager) = self
            .inner
            .manager
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            return Some(manager.clone());
        }
        let Ok(mut last_attempt) = self.inner.connecting.try_lock() else {
            return None;
        };
        if last_attempt.is_some_and(|at| at.elapsed() < RECONNECT_EVERY) {
            return None;
        }
        *last_attempt = Some(Instant::now());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(TIMEOUT)
            .set_response_timeout(TIMEOUT)
            .set_number_of_retries(1);
        match tokio::time::timeout(
            TIMEOUT * 2,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        {
            Ok(Ok(manager)) => {
                *self
                    .inner
                    .manager
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Some(manager.clone());
                Some(manager)
            }
            _ => {
                tracing::warn!("Redis is unreachable: serving without the cache");
                self.inner.failures.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// The cached current version of a resource, if any.
    pub async fn get(&self, resource_type: &str, resource_id: &str) -> Option<CachedVersion> {
        let mut connection = self.connection().await?;
        let key = resource_key(resource_type, resource_id);
        let read: Result<Result<Option<String>, _>, _> = tokio::time::timeout(
            TIMEOUT,
            redis::cmd("GET").arg(&key).query_async(&mut connection),
        )
        .await;
        match read {
            Ok(Ok(value)) => value.and_then(|text| CachedVersion::decode(&text)),
            _ => {
                self.failed("get");
                None
            }
        }
    }

    /// The cached current versions of several resources, in one round trip (`MGET`); `None`
    /// for each one not cached, and for all of them when Redis is unreachable.
    pub async fn get_many(&self, resources: &[(&str, &str)]) -> Vec<Option<CachedVersion>> {
        let none = || vec![None; resources.len()];
        if resources.is_empty() {
            return Vec::new();
        }
        let Some(mut connection) = self.connection().await else {
            return none();
        };
        let keys: Vec<String> = resources
            .iter()
            .map(|(resource_type, id)| resource_key(resource_type, id))
            .collect();
        let read: Result<Result<Vec<Option<String>>, _>, _> = tokio::time::timeout(
            TIMEOUT,
            redis::cmd("MGET").arg(&keys).query_async(&mut connection),
        )
        .await;
        match read {
            Ok(Ok(values)) if values.len() == resources.len() => values
                .into_iter()
                .map(|value| value.and_then(|text| CachedVersion::decode(&text)))
                .collect(),
            _ => {
                self.failed("mget");
                none()
            }
        }
    }

    /// A version just committed, stored before its write is acknowledged: it becomes the
    /// newest version, and the entry unless the cache already holds that version or a newer one.
    pub async fn store_committed(
        &self,
        resource_type: &str,
        resource_id: &str,
        entry: &CachedVersion,
    ) {
        self.store("committed", resource_type, resource_id, entry)
            .await;
    }

    /// A version read from the event store: stored unless a newer one was committed since, or
    /// the cache holds that version or a newer one.
    pub async fn store_read(&self, resource_type: &str, resource_id: &str, entry: &CachedVersion) {
        self.store("read", resource_type, resource_id, entry).await;
    }

    /// Stores `entry` by the script [`STORE`]; `source` is `committed` or `read`.
    async fn store(
        &self,
        source: &str,
        resource_type: &str,
        resource_id: &str,
        entry: &CachedVersion,
    ) {
        let Some(mut connection) = self.connection().await else {
            return;
        };
        let mut invocation = self
            .inner
            .store_script
            .key(resource_key(resource_type, resource_id));
        invocation
            .key(version_key(resource_type, resource_id))
            .arg(entry.version)
            .arg(entry.encode())
            .arg(TTL_SECONDS)
            .arg(source);
        let stored: Result<Result<i64, _>, _> =
            tokio::time::timeout(TIMEOUT, invocation.invoke_async(&mut connection)).await;
        if !matches!(stored, Ok(Ok(_))) {
            self.failed("store");
        }
    }

    /// Evicts the entries of `resources` (`(type, id, version)`) that hold an older version,
    /// and raises their newest versions, so that a reader cannot store an older one after.
    pub async fn evict_older(&self, resources: &[(String, String, i32)]) {
        if resources.is_empty() {
            return;
        }
        let Some(mut connection) = self.connection().await else {
            return;
        };
        let mut pipeline = redis::pipe();
        for (resource_type, resource_id, version) in resources {
            pipeline
                .cmd("EVAL")
                .arg(EVICT_IF_OLDER)
                .arg(2)
                .arg(resource_key(resource_type, resource_id))
                .arg(version_key(resource_type, resource_id))
                .arg(*version)
                .arg(TTL_SECONDS)
                .ignore();
        }
        let evicted: Result<Result<(), _>, _> =
            tokio::time::timeout(TIMEOUT * 4, pipeline.query_async(&mut connection)).await;
        if !matches!(evicted, Ok(Ok(()))) {
            self.failed("evict");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_with_pipes_in_the_resource() {
        let entry = CachedVersion {
            version: 12,
            recorded_at: Utc.timestamp_micros(1_700_000_000_123_456).unwrap(),
            deleted: false,
            resource: r#"{"resourceType":"Basic","id":"a|b"}"#.to_owned(),
        };
        assert_eq!(CachedVersion::decode(&entry.encode()), Some(entry));
        assert_eq!(CachedVersion::decode("r0|1|2|l|{}"), None);
        assert_eq!(CachedVersion::decode("r1|x|2|l|{}"), None);
    }
}
