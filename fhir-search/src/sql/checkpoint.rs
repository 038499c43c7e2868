//! Read-your-writes over the search indexes: a reader that must see the writes up to some event
//! position waits until the projections have applied it, within a bound. A search carrying the
//! position of its client's last write (`X-Event-Position`, as every write response gives it)
//! waits for that position; a conditional write waits for the store's head, so that its match
//! sees every write acknowledged before it.
//!
//! One task per process follows the projection checkpoint: it listens for the
//! `projection_checkpoint` notification the projector sends when the checkpoint moves and
//! re-reads the checkpoint row then (the payload is not trusted: a rebuild advancing its own
//! copy notifies too), and polls as a fallback in case a notification is lost with a dropped
//! connection. Waiting requests watch a `watch` channel, so a thousand waiters cost one query.

use std::sync::LazyLock;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use crate::schema::projection_checkpoint::{NAME, POSITION, TABLE};
use crate::schema::{CHECKPOINT_CHANNEL, SEARCH_CHECKPOINT};

/// How often the checkpoint is read when no notification arrives.
const FALLBACK_POLL: Duration = Duration::from_millis(200);

/// The projections' checkpoint as last seen; cheap to clone.
#[derive(Clone)]
pub struct Checkpoint {
    seen: watch::Receiver<i64>,
}

/// Why a wait ended without reaching the position.
#[derive(Debug, thiserror::Error)]
#[error("the search indexes have reached position {reached}, not yet {wanted}; try again shortly")]
pub struct NotYet {
    pub wanted: i64,
    pub reached: i64,
}

impl Checkpoint {
    /// Starts following the checkpoint in the background.
    pub fn follow(pool: PgPool) -> Self {
        let (sender, seen) = watch::channel(0);
        tokio::spawn(follow(pool, sender));
        Self { seen }
    }

    /// Waits until the checkpoint reaches `position`, at most `bound`.
    pub async fn wait_for(&self, position: i64, bound: Duration) -> Result<(), NotYet> {
        let mut seen = self.seen.clone();
        let reached = tokio::time::timeout(bound, seen.wait_for(|at| *at >= position)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(NotYet {
                wanted: position,
                reached: *self.seen.borrow(),
            }),
        }
    }
}

/// Reads the search projections' checkpoint.
static READ: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {POSITION} FROM {TABLE} WHERE {NAME} = '{SEARCH_CHECKPOINT}'")
});

/// The search projections' checkpoint as it stands now (`None` before the index schema is
/// migrated), for a caller that reads it once rather than following it.
pub async fn position(pool: &PgPool) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(&READ).fetch_optional(pool).await
}

async fn read(pool: &PgPool) -> Option<i64> {
    position(pool).await.ok().flatten()
}

async fn follow(pool: PgPool, sender: watch::Sender<i64>) {
    let publish = |position: Option<i64>| {
        if let Some(position) = position {
            sender.send_if_modified(|seen| {
                let newer = position > *seen;
                if newer {
                    *seen = position;
                }
                newer
            });
        }
    };
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(CHECKPOINT_CHANNEL).await {
                Ok(()) => Some(listener),
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for checkpoint notifications; polling");
                    None
                }
            },
            Err(error) => {
                tracing::warn!(%error, "cannot listen for checkpoint notifications; polling");
                None
            }
        };
        publish(read(&pool).await);
        loop {
            if sender.is_closed() {
                return;
            }
            let notified = match listener.as_mut() {
                Some(listener) => {
                    match tokio::time::timeout(FALLBACK_POLL, listener.try_recv()).await {
                        Ok(Ok(Some(_))) | Err(_) => true,
                        // The connection dropped: reconnect.
                        Ok(Ok(None)) | Ok(Err(_)) => false,
                    }
                }
                None => {
                    tokio::time::sleep(FALLBACK_POLL).await;
                    true
                }
            };
            publish(read(&pool).await);
            if !notified {
                break;
            }
        }
    }
}
