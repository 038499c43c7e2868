//! Users and OAuth clients in Postgres (tables `identity_user` and `identity_client`, created
//! by `identity-service/migrations`). They change rarely and must survive restarts; everything
//! short-lived is in Redis ([`crate::transient`]).

mod clients;
mod users;

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use thiserror::Error;

pub use clients::{Client, ClientKind};
pub use users::User;

/// The identity service's migrations. Other sets in the same database (the event store's, the
/// index schema's) record their versions in the same `_sqlx_migrations` table, so versions this
/// set does not hold are ignored; a changed file of this set is still refused.
pub fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
}

/// What can go wrong reading or writing users and clients.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Exists(String),
    #[error("identity store: {0}")]
    Database(#[from] sqlx::Error),
    #[error("identity store: a stored value is unreadable: {0}")]
    Corrupt(String),
}

/// Users and clients.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects to `url` with at most `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Store { pool })
    }

    /// Applies the pending migrations (concurrent runs are serialised by sqlx's lock).
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        migrator().run(&self.pool).await
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// `Exists(what)` for a unique violation, the database error otherwise.
fn unique(error: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Exists(what()),
        _ => StoreError::Database(error),
    }
}
