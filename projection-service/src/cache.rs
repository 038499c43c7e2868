//! Evicting the query service's cache entries that a batch made stale.
//!
//! The command service stores each version in the cache before acknowledging it, with a
//! version guard (`service_kit::resource_cache`); this is the second guard, for when it could not
//! reach Redis: after a batch commits, each entry older than the version just applied is
//! deleted. Never a plain delete, which could race a reader's store of an older version.
//! Redis being down must not stop projecting: failures are counted.

use service_kit::resource_cache::ResourceCache;

/// Evicts stale entries; connects lazily and survives Redis restarts.
pub struct CacheInvalidator {
    cache: ResourceCache,
}

impl CacheInvalidator {
    /// `url` is the Redis URL; an invalid one disables eviction (and is logged).
    pub fn new(url: &str) -> Self {
        Self {
            cache: ResourceCache::new(Some(url)),
        }
    }

    /// How many evictions failed (Redis unreachable): each may leave a stale entry until its
    /// TTL, unless the command service's own store succeeded.
    pub fn failures(&self) -> u64 {
        self.cache.failures()
    }

    /// Evicts the entries of `resources` (`(type, id, version)`) older than that version.
    pub async fn invalidate(&mut self, resources: &[(String, String, i32)]) {
        self.cache.evict_older(resources).await;
    }
}
