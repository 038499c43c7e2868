//! Who is connected, in Redis, shared by every notifier instance behind the edge:
//!
//! The keys, under a prefix (`ws` unless configured otherwise, so tests can keep apart):
//!
//! - `ws:connected`: a hash, one field per connection (`<instance>:<connection>`), whose value
//!   says where it comes from, when it connected and what it subscribed to;
//! - `ws:addresses`: a hash of open connections per client address, across instances, which is
//!   what the per-address cap counts;
//! - `ws:criteria`: a hash of search (`criteria`) subscriptions per client address, across
//!   instances, which is what the per-address search budget counts, and `ws:criteria-held`, how
//!   many of them each connection holds, so that a connection's removal gives them all back;
//! - `ws:instance:<instance>`: a key each instance refreshes while it lives. When an instance
//!   dies without cleaning up, the others notice its key has expired and remove its
//!   connections, so a crash does not leave addresses counted forever.
//!
//! Admission and removal are Lua scripts, so the count and the connection record change
//! together. Without Redis the notifier still serves: it counts addresses on its own.
//!
//! A [`Seat`] is given back however its connection ends: closed, failed, panicked or aborted.
//! Dropping it releases the local counts at once and schedules the Redis removal; a removal
//! that fails is retried by the upkeep. A leaked seat would lock its address out for good.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde_json::{Value, json};

const INSTANCE_TTL: Duration = Duration::from_secs(30);
const TIMEOUT: Duration = Duration::from_millis(500);
const RECONNECT_EVERY: Duration = Duration::from_secs(5);

/// Counts the address and records the connection, unless the address is at the cap; marks the
/// instance alive, so that no other instance sweeps the record away before the first upkeep.
const ADMIT: &str = r"
local count = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if count > tonumber(ARGV[2]) then
  redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
  return -1
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('SET', KEYS[3], 1, 'EX', ARGV[5])
return count";

/// Removes a connection's record and, if it was there, its count, and gives back the search
/// subscriptions it held: safe to run twice.
const LEAVE: &str = r"
if redis.call('HDEL', KEYS[2], ARGV[2]) == 1 then
  if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then
    redis.call('HDEL', KEYS[1], ARGV[1])
  end
end
local held = tonumber(redis.call('HGET', KEYS[4], ARGV[2]) or '0')
redis.call('HDEL', KEYS[4], ARGV[2])
if held > 0 and redis.call('HINCRBY', KEYS[3], ARGV[1], -held) <= 0 then
  redis.call('HDEL', KEYS[3], ARGV[1])
end
return 0";

/// Counts one more search subscription for the address and the connection, unless the address
/// is at its budget (-1); -2 when the connection's record is gone (nothing is counted).
const CLAIM_CRITERIA: &str = r"
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 0 then
  return -2
end
local count = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if count > tonumber(ARGV[3]) then
  redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
  return -1
end
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
return count";

/// Gives back one search subscription of the connection, if it holds one.
const RELEASE_CRITERIA: &str = r"
local held = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
if held <= 0 then
  return 0
end
if held == 1 then
  redis.call('HDEL', KEYS[2], ARGV[2])
else
  redis.call('HINCRBY', KEYS[2], ARGV[2], -1)
end
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0";

/// Updates a connection's record if it is still there.
const UPDATE: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 0";

/// A connection's place, and the search subscriptions it counts against its address: given
/// back by [`Seat::leave`], or, however the connection ends otherwise, when it is dropped.
pub struct Seat {
    presence: Arc<Presence>,
    address: IpAddr,
    field: String,
    /// Whether Redis holds it (else only the local count does).
    shared: bool,
    /// Search subscriptions counted locally for the address.
    criteria: usize,
    /// Given back already (by [`Seat::leave`]).
    left: bool,
}

impl std::fmt::Debug for Seat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seat")
            .field("address", &self.address)
            .field("field", &self.field)
            .field("shared", &self.shared)
            .field("criteria", &self.criteria)
            .finish_non_exhaustive()
    }
}

impl Seat {
    /// Gives the seat back now, waiting for Redis (a failure is retried by the upkeep).
    pub async fn leave(mut self) {
        self.left = true;
        self.presence.release_local(self.address, self.criteria);
        if self.shared {
            self.presence.forget(&self.field, self.address).await;
        }
    }
}

impl Drop for Seat {
    /// The connection ended without [`Seat::leave`] (an error, a panic, an aborted task): the
    /// local counts go at once, and the Redis removal is scheduled, or left to the upkeep when
    /// no runtime is there to run it.
    fn drop(&mut self) {
        if self.left {
            return;
        }
        self.presence.release_local(self.address, self.criteria);
        if !self.shared {
            return;
        }
        let field = std::mem::take(&mut self.field);
        let address = self.address;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let presence = self.presence.clone();
                runtime.spawn(async move { presence.forget(&field, address).await });
            }
            Err(_) => self.presence.remember(field, address.to_string()),
        }
    }
}

/// Refused: the address has as many connections as it may.
#[derive(Debug, thiserror::Error)]
#[error("too many connections")]
pub struct TooMany;

/// Refused: the address has as many search subscriptions, across all its connections, as it
/// may.
#[derive(Debug, thiserror::Error)]
#[error("this address has {0} search (criteria) subscriptions, as many as it may")]
pub struct CriteriaBudget(pub usize);

pub struct Presence {
    instance: String,
    /// `<prefix>:connected`, `<prefix>:addresses`, and the prefix itself.
    connected: String,
    addresses: String,
    /// `<prefix>:criteria` (per address) and `<prefix>:criteria-held` (per connection).
    criteria: String,
    criteria_held: String,
    prefix: String,
    max_per_address: usize,
    max_criteria_per_address: usize,
    client: Option<redis::Client>,
    manager: tokio::sync::Mutex<(Option<ConnectionManager>, Option<Instant>)>,
    /// Connections and search subscriptions per address on this instance.
    local: Mutex<HashMap<IpAddr, usize>>,
    local_criteria: Mutex<HashMap<IpAddr, usize>>,
    /// Records whose removal failed (Redis slow or away, as when ten thousand clients leave at
    /// once): `(field, address)`, removed again by the upkeep. Removal is idempotent.
    unforgotten: Mutex<Vec<(String, String)>>,
    admit: redis::Script,
    leave: redis::Script,
    update: redis::Script,
    claim_criteria: redis::Script,
    release_criteria: redis::Script,
}

impl Presence {
    /// At most `max_per_address` connections and `max_criteria_per_address` search
    /// subscriptions per client address, across the instances sharing `prefix` in Redis.
    pub fn new(
        redis_url: &str,
        prefix: &str,
        max_per_address: usize,
        max_criteria_per_address: usize,
    ) -> Self {
        let client = redis::Client::open(redis_url)
            .inspect_err(|error| tracing::error!(%error, "invalid Redis URL: presence is local"))
            .ok();
        Presence {
            instance: uuid::Uuid::new_v4().simple().to_string(),
            connected: format!("{prefix}:connected"),
            addresses: format!("{prefix}:addresses"),
            criteria: format!("{prefix}:criteria"),
            criteria_held: format!("{prefix}:criteria-held"),
            prefix: prefix.to_owned(),
            max_per_address,
            max_criteria_per_address,
            client,
            manager: tokio::sync::Mutex::new((None, None)),
            local: Mutex::new(HashMap::new()),
            local_criteria: Mutex::new(HashMap::new()),
            unforgotten: Mutex::new(Vec::new()),
            admit: redis::Script::new(ADMIT),
            leave: redis::Script::new(LEAVE),
            update: redis::Script::new(UPDATE),
            claim_criteria: redis::Script::new(CLAIM_CRITERIA),
            release_criteria: redis::Script::new(RELEASE_CRITERIA),
        }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn instance_key(&self) -> String {
        format!("{}:instance:{}", self.prefix, self.instance)
    }

    async fn connection(&self) -> Option<ConnectionManager> {
        let client = self.client.as_ref()?;
        let mut held = self.manager.lock().await;
        if let Some(manager) = &held.0 {
            return Some(manager.clone());
        }
        if held.1.is_some_and(|at| at.elapsed() < RECONNECT_EVERY) {
            return None;
        }
        held.1 = Some(Instant::now());
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
            Ok(Ok(manager)) => {
                held.0 = Some(manager.clone());
                Some(manager)
            }
            _ => {
                tracing::warn!("Redis is unreachable: connection state is kept locally");
                None
            }
        }
    }

    /// Admits a connection from `address`, numbered `connection` on this instance.
    pub async fn admit(
        self: &Arc<Self>,
        address: IpAddr,
        connection: u64,
    ) -> Result<Seat, TooMany> {
        {
            let mut local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
            let count = local.entry(address).or_default();
            if *count >= self.max_per_address {
                return Err(TooMany);
            }
            *count += 1;
        }
        let field = format!("{}:{connection}", self.instance);
        let record = json!({
            "instance": self.instance,
            "address": address.to_string(),
            "connectedAt": fhir_model::format_instant(chrono::Utc::now()),
            "subscriptions": [],
        });
        let mut seat = Seat {
            presence: self.clone(),
            address,
            field,
            shared: false,
            criteria: 0,
            left: false,
        };
        if let Some(mut redis) = self.connection().await {
            let admitted: Result<i64, _> = self
                .admit
                .key(&self.addresses)
                .key(&self.connected)
                .key(self.instance_key())
                .arg(address.to_string())
                .arg(self.max_per_address)
                .arg(&seat.field)
                .arg(record.to_string())
                .arg(INSTANCE_TTL.as_secs())
                .invoke_async(&mut redis)
                .await;
            match admitted {
                Ok(-1) => {
                    // Given back by the seat's drop, which Redis does not hold.
                    return Err(TooMany);
                }
                Ok(_) => seat.shared = true,
                Err(error) => {
                    // It may have been recorded all the same: take that back later.
                    tracing::debug!(%error, "recording a connection in Redis failed");
                    self.remember(seat.field.clone(), address.to_string());
                }
            }
        }
        Ok(seat)
    }

    /// Records the connection's subscriptions.
    pub async fn update(&self, seat: &Seat, subscriptions: &[String]) {
        if !seat.shared {
            return;
        }
        let Some(mut redis) = self.connection().await else {
            return;
        };
        let record = json!({
            "instance": self.instance,
            "address": seat.address.to_string(),
            "subscriptions": subscriptions,
        });
        let updated: Result<i64, _> = self
            .update
            .key(&self.connected)
            .arg(&seat.field)
            .arg(record.to_string())
            .invoke_async(&mut redis)
            .await;
        if let Err(error) = updated {
            tracing::debug!(%error, "updating a connection in Redis failed");
        }
    }

    /// Counts one more search subscription for the seat's address, unless the address has
    /// as many as it may (on this instance, or across instances in Redis).
    pub async fn claim_criteria(&self, seat: &mut Seat) -> Result<(), CriteriaBudget> {
        let max = self.max_criteria_per_address;
        {
            let mut local = self
                .local_criteria
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let count = local.entry(seat.address).or_default();
            if *count >= max {
                return Err(CriteriaBudget(max));
            }
            *count += 1;
        }
        seat.criteria += 1;
        if !seat.shared {
            return Ok(());
        }
        let Some(mut redis) = self.connection().await else {
            return Ok(());
        };
        let claimed: Result<i64, _> = self
            .claim_criteria
            .key(&self.criteria)
            .key(&self.criteria_held)
            .key(&self.connected)
            .arg(seat.address.to_string())
            .arg(&seat.field)
            .arg(max)
            .invoke_async(&mut redis)
            .await;
        match claimed {
            Ok(-1) => {
                seat.criteria -= 1;
                decrement(&self.local_criteria, seat.address, 1);
                Err(CriteriaBudget(max))
            }
            Ok(_) => Ok(()),
            Err(error) => {
                // Counted on this instance only; the removal of the connection squares Redis.
                tracing::debug!(%error, "counting a search subscription in Redis failed");
                Ok(())
            }
        }
    }

    /// Gives back one search subscription of the seat.
    pub async fn release_criteria(&self, seat: &mut Seat) {
        if seat.criteria == 0 {
            return;
        }
        seat.criteria -= 1;
        decrement(&self.local_criteria, seat.address, 1);
        if !seat.shared {
            return;
        }
        let Some(mut redis) = self.connection().await else {
            return;
        };
        let released: Result<i64, _> = self
            .release_criteria
            .key(&self.criteria)
            .key(&self.criteria_held)
            .arg(seat.address.to_string())
            .arg(&seat.field)
            .invoke_async(&mut redis)
            .await;
        if let Err(error) = released {
            // Still held in Redis: given back when the connection goes.
            tracing::debug!(%error, "releasing a search subscription in Redis failed");
        }
    }

    fn release_local(&self, address: IpAddr, criteria: usize) {
        decrement(&self.local, address, 1);
        decrement(&self.local_criteria, address, criteria);
    }

    /// Removes a connection's record and count; a failure is retried by the upkeep.
    async fn forget(&self, field: &str, address: impl ToString) {
        let address = address.to_string();
        let left: Result<i64, _> = match self.connection().await {
            Some(mut redis) => {
                self.leave
                    .key(&self.addresses)
                    .key(&self.connected)
                    .key(&self.criteria)
                    .key(&self.criteria_held)
                    .arg(&address)
                    .arg(field)
                    .invoke_async(&mut redis)
                    .await
            }
            None => Err(redis::RedisError::from((
                redis::ErrorKind::IoError,
                "Redis is unreachable",
            ))),
        };
        if let Err(error) = left {
            tracing::debug!(%error, "removing a connection from Redis failed; retried later");
            self.remember(field.to_owned(), address);
        }
    }

    fn remember(&self, field: String, address: String) {
        self.unforgotten
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((field, address));
    }

    /// Keeps this instance's liveness key fresh and removes the connections of instances whose
    /// key has expired; runs until the task is dropped.
    pub async fn maintain(&self) {
        let mut tick = tokio::time::interval(INSTANCE_TTL / 3);
        loop {
            tick.tick().await;
            if let Err(error) = self.sweep().await {
                tracing::debug!(%error, "Redis presence upkeep failed");
            }
        }
    }

    async fn sweep(&self) -> redis::RedisResult<()> {
        let retries = std::mem::take(
            &mut *self
                .unforgotten
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for (field, address) in retries {
            self.forget(&field, address).await;
        }
        let Some(mut redis) = self.connection().await else {
            return Ok(());
        };
        redis::cmd("SET")
            .arg(self.instance_key())
            .arg(1)
            .arg("EX")
            .arg(INSTANCE_TTL.as_secs())
            .query_async::<()>(&mut redis)
            .await?;
        let records: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&self.connected)
            .query_async(&mut redis)
            .await?;
        let mut alive: HashMap<String, bool> = HashMap::new();
        for (field, record) in records {
            let Some((instance, _)) = field.split_once(':') else {
                continue;
            };
            if !alive.contains_key(instance) {
                let exists: bool = redis::cmd("EXISTS")
                    .arg(format!("{}:instance:{instance}", self.prefix))
                    .query_async(&mut redis)
                    .await?;
                alive.insert(instance.to_owned(), exists);
            }
            if alive[instance] {
                continue;
            }
            let record: Value = serde_json::from_str(&record).unwrap_or(Value::Null);
            let address = record["address"].as_str().unwrap_or_default().to_owned();
            tracing::info!(%field, "removing a connection of a notifier that is gone");
            self.forget(&field, address).await;
        }
        Ok(())
    }
}

/// Takes `by` from the address's count, removing it at zero.
fn decrement(counts: &Mutex<HashMap<IpAddr, usize>>, address: IpAddr, by: usize) {
    if by == 0 {
        return;
    }
    let mut counts = counts.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(count) = counts.get_mut(&address) {
        *count = count.saturating_sub(by);
        if *count == 0 {
            counts.remove(&address);
        }
    }
}
