//! Invalidating the query service's Redis entries of the resources a batch changed.
//!
//! The query service caches each resource under `fhir:resource:<Type>/<id>`. Deleting the key
//! after the change is projected keeps that cache from outliving a newer version by more than
//! the projection lag; the query service's own read path is what guarantees never serving an
//! older version than one already acknowledged. Redis being down must not stop projecting:
//! failures are logged and counted, and the connection is retried on a later batch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// The cache key of one resource; the query service reads and writes the same key.
pub fn resource_key(resource_type: &str, resource_id: &str) -> String {
    format!("fhir:resource:{resource_type}/{resource_id}")
}

const TIMEOUT: Duration = Duration::from_millis(500);
const RECONNECT_EVERY: Duration = Duration::from_secs(5);

/// Deletes cache entries; connects lazily and survives Redis restarts.
pub struct CacheInvalidator {
    client: Option<redis::Client>,
    connection: Option<ConnectionManager>,
    last_attempt: Option<Instant>,
    failures: AtomicU64,
}

impl CacheInvalidator {
    /// `url` is the Redis URL; an invalid one disables invalidation (and is logged).
    pub fn new(url: &str) -> Self {
        let client = redis::Client::open(url)
            .inspect_err(
                |error| tracing::error!(%error, "invalid Redis URL: cache invalidation is off"),
            )
            .ok();
        Self {
            client,
            connection: None,
            last_attempt: None,
            failures: AtomicU64::new(0),
        }
    }

    /// How many invalidations failed (Redis unreachable): each may leave a stale entry until
    /// its TTL.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Deletes the entries of `resources` (`(type, id)` pairs).
    pub async fn invalidate(&mut self, resources: &[(String, String)]) {
        if resources.is_empty() {
            return;
        }
        let keys: Vec<String> = resources
            .iter()
            .map(|(resource_type, id)| resource_key(resource_type, id))
            .collect();
        let Some(connection) = self.connection().await else {
            self.failures.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let deleted: Result<Result<i64, _>, _> = tokio::time::timeout(
            TIMEOUT,
            redis::cmd("DEL").arg(&keys).query_async(connection),
        )
        .await;
        if !matches!(deleted, Ok(Ok(_))) {
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                keys = keys.len(),
                "cannot invalidate cache entries in Redis"
            );
        }
    }

    async fn connection(&mut self) -> Option<&mut ConnectionManager> {
        if self.connection.is_none() {
            let client = self.client.as_ref()?;
            if self
                .last_attempt
                .is_some_and(|at| at.elapsed() < RECONNECT_EVERY)
            {
                return None;
            }
            self.last_attempt = Some(Instant::now());
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(TIMEOUT)
                .set_response_timeout(TIMEOUT)
                .set_number_of_retries(1);
            match tokio::time::timeout(
                TIMEOUT * 2,
                client.get_connection_manager_with_config(config),
            )
            .await
            {
                Ok(Ok(connection)) => self.connection = Some(connection),
                Ok(Err(error)) => tracing::warn!(%error, "cannot connect to Redis"),
                Err(_) => tracing::warn!("cannot connect to Redis: timed out"),
            }
        }
        self.connection.as_mut()
    }
}
