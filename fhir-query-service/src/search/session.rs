//! One search's database session: a transaction whose statements are bounded by a statement
//! timeout, and which is cancelled on the server when the request goes away.
//!
//! Dropping a future that awaits a query does not stop the query: sqlx only stops reading its
//! result, and Postgres runs it to the end (a search of 3,000 `:contains` criteria was seen
//! running minutes after its client left). Two things stop it. `statement_timeout`, set for
//! the transaction, bounds every statement whatever happens to the client. And a [`Session`]
//! dropped before [`Session::finish`] (the handler's future was dropped) asks Postgres to
//! cancel whatever its backend is running (`pg_cancel_backend`), from a task that owns the
//! transaction until the cancel is sent, so the connection cannot have gone back to the pool
//! and be running someone else's statement when the cancel arrives.

use std::time::Duration;

use sqlx::{PgConnection, PgPool, Postgres, Transaction};

/// A search's transaction; see the module documentation.
pub struct Session {
    transaction: Option<Transaction<'static, Postgres>>,
    /// The backend running the transaction's statements.
    backend: i32,
    pool: PgPool,
}

/// Postgres' SQLSTATE for a statement cancelled by `statement_timeout` or a cancel request.
pub const QUERY_CANCELED: &str = "57014";

impl Session {
    /// Begins a transaction on `pool` whose statements may each run at most `timeout`.
    pub async fn begin(pool: &PgPool, timeout: Duration) -> Result<Self, sqlx::Error> {
        let mut transaction = pool.begin().await?;
        let (backend, _): (i32, String) =
            sqlx::query_as("SELECT pg_backend_pid(), set_config('statement_timeout', $1, true)")
                .bind(format!("{}ms", timeout.as_millis().max(1)))
                .fetch_one(&mut *transaction)
                .await?;
        Ok(Self {
            transaction: Some(transaction),
            backend,
            pool: pool.clone(),
        })
    }

    /// The connection to run the search's statements on.
    pub fn connection(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        match self.transaction.as_mut() {
            Some(transaction) => Ok(&mut **transaction),
            None => Err(sqlx::Error::PoolClosed),
        }
    }

    /// Commits what the search wrote (its kept result list), or ends the transaction a failed
    /// statement aborted; the session is done.
    pub async fn finish(mut self) -> Result<(), sqlx::Error> {
        match self.transaction.take() {
            Some(transaction) => transaction.commit().await,
            None => Ok(()),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let Some(transaction) = self.transaction.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pool = self.pool.clone();
        let backend = self.backend;
        runtime.spawn(async move {
            // Harmless when the backend is idle: a cancel only stops a running statement.
            let cancelled = sqlx::query("SELECT pg_cancel_backend($1)")
                .bind(backend)
                .execute(&pool)
                .await;
            if let Err(error) = cancelled {
                tracing::warn!(%error, backend, "could not cancel an abandoned search");
            }
            // Rolled back when dropped; only now may the connection serve another request.
            drop(transaction);
        });
    }
}
