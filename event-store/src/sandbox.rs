//! Teaching sandboxes (ADR 0014): named copies of the record that take writes of their own.
//!
//! A sandbox is a row of `sandbox`: its name, the class whose students may write in it, the
//! live record's position it starts from (its fork), and the partition of the event store its
//! current run writes to. Its streams are the live events up to the fork, then its own
//! ([`Record::Sandbox`]). Nothing is copied: creating one is one row, and a reset is a new
//! partition for the same row, so both take the same time whatever the size of the record.
//! The events of earlier runs stay in the store (the audit trail keeps what students did); the
//! search index drops their rows afterwards.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::store::{Record, SandboxRecord};

/// A sandbox as `sandbox` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Sandbox {
    pub name: String,
    /// The class whose students may write in it.
    pub class: Option<String>,
    pub description: Option<String>,
    /// The live record's position it starts from.
    pub fork_position: i64,
    /// The partition its current run writes to.
    pub partition: i64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub reset_at: Option<DateTime<Utc>>,
    /// The scenario whose starting state it starts as (then its fork is 0: nothing live).
    pub scenario_name: Option<String>,
    pub scenario_version: Option<i32>,
}

impl Sandbox {
    /// The record its current run reads and writes.
    pub fn record(&self) -> Record {
        Record::Sandbox(SandboxRecord {
            name: self.name.clone(),
            partition: self.partition,
            fork: self.fork_position,
        })
    }
}

/// What a new sandbox is made of.
#[derive(Debug, Clone)]
pub struct NewSandbox {
    pub name: String,
    pub class: Option<String>,
    pub description: Option<String>,
    pub fork_position: i64,
    pub created_by: String,
    /// The scenario it starts as, by name and version.
    pub scenario: Option<(String, i32)>,
}

/// Why a sandbox could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("a sandbox named `{0}` exists already")]
    Exists(String),
    #[error(
        "`{0}` is not a sandbox name: 1 to 63 lower-case letters, digits and `-`, starting with a letter or digit"
    )]
    InvalidName(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Whether `name` can name a sandbox (a URL path segment and a NATS subject token).
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0] != b'-'
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || *byte == b'-')
}

const COLUMNS: &str = "name, class, description, fork_position, partition, created_by, \
     created_at, reset_at, scenario_name, scenario_version";

/// The sandbox named `name`, if there is one.
pub async fn find(pool: &PgPool, name: &str) -> Result<Option<Sandbox>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM sandbox WHERE name = $1"))
        .bind(name)
        .fetch_optional(pool)
        .await
}

/// Every sandbox, by name.
pub async fn list(pool: &PgPool) -> Result<Vec<Sandbox>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM sandbox ORDER BY name"))
        .fetch_all(pool)
        .await
}

/// Creates a sandbox with a partition of its own.
pub async fn create(pool: &PgPool, new: &NewSandbox) -> Result<Sandbox, SandboxError> {
    if !valid_name(&new.name) {
        return Err(SandboxError::InvalidName(new.name.clone()));
    }
    let created = sqlx::query_as(&format!(
        "INSERT INTO sandbox (name, class, description, fork_position, created_by, \
         scenario_name, scenario_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(&new.name)
    .bind(&new.class)
    .bind(&new.description)
    .bind(new.fork_position)
    .bind(&new.created_by)
    .bind(new.scenario.as_ref().map(|(name, _)| name))
    .bind(new.scenario.as_ref().map(|(_, version)| *version))
    .fetch_optional(pool)
    .await?;
    created.ok_or_else(|| SandboxError::Exists(new.name.clone()))
}

/// Starts the sandbox `name` again from its fork: a new partition. Returns the sandbox as it
/// now is and the partition of the run that ended.
pub async fn reset(pool: &PgPool, name: &str) -> Result<Option<(Sandbox, i64)>, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT partition FROM sandbox WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    let Some((ended,)) = row else {
        return Ok(None);
    };
    let sandbox: Option<Sandbox> = sqlx::query_as(&format!(
        "UPDATE sandbox SET partition = nextval('sandbox_partition'), reset_at = now() \
         WHERE name = $1 AND partition = $2 RETURNING {COLUMNS}"
    ))
    .bind(name)
    .bind(ended)
    .fetch_optional(pool)
    .await?;
    // A concurrent reset or delete won the row: the caller sees the sandbox as it now is.
    match sandbox {
        Some(sandbox) => Ok(Some((sandbox, ended))),
        None => Ok(find(pool, name)
            .await?
            .map(|sandbox| (sandbox.clone(), sandbox.partition))),
    }
}

/// Deletes the sandbox `name`; returns it as it was.
pub async fn delete(pool: &PgPool, name: &str) -> Result<Option<Sandbox>, sqlx::Error> {
    sqlx::query_as(&format!(
        "DELETE FROM sandbox WHERE name = $1 RETURNING {COLUMNS}"
    ))
    .bind(name)
    .fetch_optional(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names_are_path_segments_and_subject_tokens() {
        for good in ["ward-7", "a", "class-2026-night", &"x".repeat(63)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "",
            "-ward",
            "Ward",
            "ward 7",
            "ward.7",
            "ward/7",
            "ward*",
            "ward>",
            &"x".repeat(64),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
