//! Group sequencing: one call to `fhir_sequence_events()` at a time per process, for every
//! writer waiting at that moment.
//!
//! Sequencing is serialised across the whole store anyway (an advisory lock), so letting each
//! writer make its own call only adds round trips, transactions and lock waits under load.
//! Writers hand their event ids to this task and wait; the task takes everything that has
//! queued up, makes one call, and answers each writer with its positions. With one writer the
//! cost is the same as calling directly; with many, one call serves them all.

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

type Positions = Vec<(i64, Option<i64>)>;

struct Request {
    event_ids: Vec<i64>,
    reply: oneshot::Sender<Result<Positions, String>>,
}

/// The handle writers use; the task ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct GroupSequencer {
    requests: mpsc::UnboundedSender<Request>,
}

impl GroupSequencer {
    pub(crate) fn start(pool: PgPool) -> Self {
        let (requests, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, receiver));
        GroupSequencer { requests }
    }

    /// The positions of `event_ids` (committed events), sequencing them if need be.
    pub(crate) async fn positions(&self, event_ids: Vec<i64>) -> Result<Positions, String> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request { event_ids, reply })
            .map_err(|_| "the sequencer has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the sequencer has stopped".to_owned())?
    }
}

async fn run(pool: PgPool, mut receiver: mpsc::UnboundedReceiver<Request>) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = receiver.try_recv() {
            batch.push(more);
        }
        let all: Vec<i64> = batch
            .iter()
            .flat_map(|request| request.event_ids.iter().copied())
            .collect();
        let result: Result<Positions, sqlx::Error> =
            sqlx::query_as("SELECT event_id, event_position FROM fhir_sequence_events($1)")
                .bind(&all)
                .fetch_all(&pool)
                .await;
        for request in batch {
            let answer = match &result {
                Ok(rows) => Ok(rows
                    .iter()
                    .filter(|(id, _)| request.event_ids.contains(id))
                    .copied()
                    .collect()),
                Err(error) => Err(error.to_string()),
            };
            let _ = request.reply.send(answer);
        }
    }
}
