//! Request rate limits per client address and per signed-in user, counted in Redis so that
//! they hold across every instance of every service behind the edge (the edge's own limit
//! counts per nginx).
//!
//! Each key is a GCRA bucket (the "theoretical arrival time" of the next request, one Redis
//! key, one script call per request): `rate` requests a second on average, up to `burst` at
//! once. A refused request is told when to come back (`Retry-After`).
//!
//! Rate limits protect the service's capacity, not its data: when Redis cannot be reached the
//! request is let through (and counted in the log), where authentication fails closed.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use ipnet::IpNet;
use redis::aio::ConnectionManager;
use tokio::sync::Mutex;

/// How fast clients may send requests.
#[derive(Debug, Clone, Args)]
pub struct RateLimitSettings {
    /// Requests a second one client address may send on average (0: no limit).
    #[arg(
        id = "rate_limit_per_address",
        long = "rate-limit-per-address",
        env = "RATE_LIMIT_PER_ADDRESS",
        default_value_t = 100
    )]
    pub rate_limit_per_address: u32,
    /// Requests a second one signed-in user or backend client may send on average (0: no limit).
    #[arg(
        id = "rate_limit_per_user",
        long = "rate-limit-per-user",
        env = "RATE_LIMIT_PER_USER",
        default_value_t = 100
    )]
    pub rate_limit_per_user: u32,
    /// How many seconds' worth of requests may come at once.
    #[arg(
        id = "rate_limit_burst_seconds",
        long = "rate-limit-burst-seconds",
        env = "RATE_LIMIT_BURST_SECONDS",
        default_value_t = 4
    )]
    pub rate_limit_burst_seconds: u32,
    /// Client addresses or CIDR blocks (comma-separated) never limited: by default the machine
    /// itself, where the tests, benchmarks and importer run, as at the edge.
    #[arg(
        id = "rate_limit_exempt",
        long = "rate-limit-exempt",
        env = "RATE_LIMIT_EXEMPT",
        value_delimiter = ',',
        value_parser = crate::config::parse_network,
        default_value = "127.0.0.0/8,::1"
    )]
    pub rate_limit_exempt: Vec<IpNet>,
}

/// `KEYS`: the buckets; `ARGV[1]`: the emission interval (µs), `ARGV[2]`: the burst tolerance
/// (µs). Returns 0 when the request fits every bucket (and charges them all), else the
/// microseconds until it would.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local wait = 0
local next = {}
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new_tat = tat + interval
  local over = new_tat - now - tolerance
  if over > wait then wait = over end
  next[i] = new_tat
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, next[i], 'PX', math.ceil((next[i] - now) / 1000) + 1)
end
return 0
";

const TIMEOUT: Duration = Duration::from_millis(250);

/// Counts requests; cheap to clone.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    settings: RateLimitSettings,
    client: redis::Client,
    /// The connection, or when connecting last failed (tried again at most every few seconds,
    /// so an unreachable Redis costs one request a wait, not every request).
    connection: Mutex<Link>,
    script: redis::Script,
    prefix: String,
}

#[derive(Default)]
struct Link {
    connection: Option<ConnectionManager>,
    failed_at: Option<std::time::Instant>,
}

const RECONNECT_EVERY: Duration = Duration::from_secs(5);

/// A refused request: come back after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

impl RateLimiter {
    /// Limits counted in the Redis at `redis_url` under keys starting `prefix`.
    pub fn new(settings: &RateLimitSettings, redis_url: &str, prefix: &str) -> RateLimiter {
        let off = settings.rate_limit_per_address == 0 && settings.rate_limit_per_user == 0;
        let inner = match redis::Client::open(redis_url) {
            Ok(client) if !off => Some(Arc::new(Inner {
                settings: settings.clone(),
                client,
                connection: Mutex::new(Link::default()),
                script: redis::Script::new(GCRA),
                prefix: prefix.to_owned(),
            })),
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(%error, "rate limits off: the Redis URL is not valid");
                None
            }
        };
        RateLimiter { inner }
    }

    /// No limits at all.
    pub fn off() -> RateLimiter {
        RateLimiter { inner: None }
    }

    /// Charges one request from `address`, by `user` when signed in.
    pub async fn check(&self, address: IpAddr, user: Option<&str>) -> Result<(), Throttled> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let settings = &inner.settings;
        if settings
            .rate_limit_exempt
            .iter()
            .any(|net| net.contains(&address))
        {
            return Ok(());
        }
        // Each bucket has its own rate: charge them in separate calls only when the rates
        // differ; the usual configuration (equal rates) costs one round trip.
        let mut buckets: Vec<(String, u32)> = Vec::new();
        if settings.rate_limit_per_address > 0 {
            buckets.push((
                format!("{}:ratelimit:address:{address}", inner.prefix),
                settings.rate_limit_per_address,
            ));
        }
        if let Some(user) = user.filter(|_| settings.rate_limit_per_user > 0) {
            buckets.push((
                format!("{}:ratelimit:user:{user}", inner.prefix),
                settings.rate_limit_per_user,
            ));
        }
        let mut groups: Vec<(u32, Vec<String>)> = Vec::new();
        for (key, rate) in buckets {
            match groups.iter_mut().find(|(r, _)| *r == rate) {
                Some((_, keys)) => keys.push(key),
                None => groups.push((rate, vec![key])),
            }
        }
        for (rate, keys) in groups {
            inner.charge(rate, &keys).await?;
        }
        Ok(())
    }
}

impl Inner {
    async fn charge(&self, rate: u32, keys: &[String]) -> Result<(), Throttled> {
        let interval = 1_000_000 / u64::from(rate.max(1));
        let tolerance =
            interval * u64::from(rate) * u64::from(self.settings.rate_limit_burst_seconds.max(1));
        let Some(mut connection) = self.connection().await else {
            return Ok(());
        };
        let mut invocation = self.script.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        invocation.arg(interval).arg(tolerance);
        match tokio::time::timeout(TIMEOUT, invocation.invoke_async::<u64>(&mut connection)).await {
            Ok(Ok(0)) => Ok(()),
            Ok(Ok(wait)) => Err(Throttled {
                retry_after: Duration::from_micros(wait),
            }),
            Ok(Err(error)) => {
                tracing::warn!(%error, "rate limits not counted: Redis refused");
                Ok(())
            }
            Err(_) => {
                tracing::warn!("rate limits not counted: Redis did not answer in time");
                Ok(())
            }
        }
    }

    async fn connection(&self) -> Option<ConnectionManager> {
        let mut link = self.connection.lock().await;
        if let Some(connection) = link.connection.as_ref() {
            return Some(connection.clone());
        }
        if link
            .failed_at
            .is_some_and(|failed| failed.elapsed() < RECONNECT_EVERY)
        {
            return None;
        }
        match tokio::time::timeout(TIMEOUT * 4, self.client.get_connection_manager()).await {
            Ok(Ok(connection)) => {
                link.connection = Some(connection.clone());
                Some(connection)
            }
            _ => {
                tracing::warn!("rate limits not counted: cannot reach Redis");
                link.failed_at = Some(std::time::Instant::now());
                None
            }
        }
    }
}
