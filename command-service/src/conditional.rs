//! Conditional writes: `If-None-Exist` on create, and `PUT`, `PATCH` and `DELETE` on
//! `/<Type>?criteria`. Each first finds which resources match the criteria, then acts on
//! none, one, or refuses several (412).
//!
//! The criteria are a FHIR search, parsed and run exactly as the query service runs searches
//! (`fhir_search::query`, `fhir_search::sql`) over the projected indexes, so a conditional write
//! and a search agree on what matches. Two things make the match trustworthy although the
//! indexes trail the event store:
//!
//! - **It sees every acknowledged write.** Before matching, it waits until the projections have
//!   applied the store's head position as it stood then, within a bound (past it, 503): a
//!   resource created a moment ago is found, not duplicated.
//! - **Same criteria, one at a time.** A Postgres advisory lock keyed on the type and the
//!   criteria is held from before the match until the write has committed (and the lock's
//!   transaction ends), so of two concurrent conditional creates of the same identifier,
//!   on one instance or several, the second waits, then finds the first's resource.
//!
//! Unknown or unsupported parameters are refused (400), never ignored: an ignored criterion
//! widens the match, and a conditional delete would remove what was not meant. The lock does
//! not cover two writes whose different criteria match the same resource, nor an unconditional
//! create racing a conditional one; HAPI FHIR leaves the same gaps.
//!
//! The locks and the matching run on a small pool of their own, so that writers holding a lock
//! while they wait for the indexes can never take every connection the writes need. Their
//! statements run under a `statement_timeout` (waiting for a lock counts), so neither costly
//! criteria nor a stuck holder of the same lock can keep a write, and its connection, for long.

use std::time::Duration;

use event_store::EventStore;
use fhir_model::ResourceType;
use fhir_search::Registry;
use fhir_search::query::{self, SearchQuery};
use fhir_search::sql::View;
use fhir_search::sql::checkpoint::Checkpoint;
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::error::WriteError;

/// Finds the resources conditional writes apply to; cheap to clone.
#[derive(Clone)]
pub struct Matcher {
    /// The pool the locks and matches run on (not the writes' pool).
    pool: PgPool,
    registry: &'static Registry,
    /// The base absolute references to this server start with, as the projector indexes them.
    reference_base: String,
    checkpoint: Checkpoint,
    /// Longest wait for the indexes to reach the store's head.
    wait: Duration,
    /// Longest any statement of a session may run (lock waits included).
    statement_timeout: Duration,
    /// The record matched: the live one, or a sandbox's view of the index.
    view: View,
}

/// What the criteria matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Nothing,
    One(String),
    /// At least this many (the match stops counting at two).
    Several(usize),
}

/// A match: what `criteria` found.
#[derive(Debug, Clone)]
pub struct Match {
    pub found: Found,
    /// `Type?criteria`, for messages.
    pub criteria: String,
}

impl Match {
    /// The one matching id, or 412 for several; `None` for no match.
    pub fn single(&self) -> Result<Option<&str>, WriteError> {
        match &self.found {
            Found::Nothing => Ok(None),
            Found::One(id) => Ok(Some(id)),
            Found::Several(_) => Err(WriteError::MultipleMatches(self.criteria.clone())),
        }
    }
}

/// The locks of a set of criteria, held until [`Session::release`] or drop, and the
/// connection their matches run on. A write that matched must commit before its session ends.
pub struct Session {
    matcher: Matcher,
    lock: Transaction<'static, Postgres>,
    /// `Type?criteria` of what the session was opened for, for messages.
    wanted: String,
}

impl Session {
    /// Matches `criteria` (a URL query string, `identifier=sys|123&active=true`) against the
    /// current resources of `resource_type`; the criteria must be among those the session was
    /// opened for, or their lock is not held.
    pub async fn find(
        &mut self,
        resource_type: ResourceType,
        criteria: &str,
    ) -> Result<Match, WriteError> {
        let params = parse_criteria(criteria);
        let query = self.matcher.parse(resource_type, &params)?;
        let rows = fhir_search::sql::select_matches(&query, None, 2, self.matcher.view)
            .build()
            .fetch_all(&mut *self.lock)
            .await
            .map_err(|error| self.matcher.failed(error, &self.wanted))?;
        let found = match rows.as_slice() {
            [] => Found::Nothing,
            [row] => Found::One(
                row.try_get(fhir_search::schema::hfj_resource::RES_ID)
                    .map_err(database)?,
            ),
            several => Found::Several(several.len()),
        };
        Ok(Match {
            found,
            criteria: format!("{resource_type}?{}", display_criteria(&params)),
        })
    }

    /// Ends the locks' transaction (dropping the session does the same, a moment later).
    pub async fn release(self) {
        if let Err(error) = self.lock.rollback().await {
            tracing::warn!(%error, "ending a conditional write's lock failed; the pool closes it");
        }
    }
}

impl Matcher {
    pub fn new(
        pool: PgPool,
        checkpoint: Checkpoint,
        reference_base: String,
        wait: Duration,
        statement_timeout: Duration,
    ) -> Self {
        Self {
            pool,
            registry: Registry::r4(),
            reference_base,
            checkpoint,
            wait,
            statement_timeout,
            view: View::Live,
        }
    }

    /// This matcher over `view` (a sandbox's).
    pub fn within(&self, view: View) -> Self {
        Self {
            view,
            ..self.clone()
        }
    }

    /// Opens a session for `wanted` criteria: each is parsed (400 for unusable ones, before any
    /// lock is taken), their locks are taken in key order (so two bundles wanting the same
    /// criteria cannot deadlock), then the indexes are awaited up to the store's head.
    pub async fn session(
        &self,
        store: &EventStore,
        wanted: &[(ResourceType, &str)],
    ) -> Result<Session, WriteError> {
        let mut keys = Vec::with_capacity(wanted.len());
        let mut names = Vec::with_capacity(wanted.len());
        for (resource_type, criteria) in wanted {
            let params = parse_criteria(criteria);
            self.parse(*resource_type, &params)?;
            keys.push(lock_key(*resource_type, &params));
            names.push(format!("{resource_type}?{}", display_criteria(&params)));
        }
        let wanted = names.join(", ");
        keys.sort_unstable();
        keys.dedup();
        let mut lock = self.pool.begin().await.map_err(database)?;
        let timeout = format!("{}ms", self.statement_timeout.as_millis().max(1));
        sqlx::query("SELECT set_config('statement_timeout', $1, true)")
            .bind(timeout)
            .execute(&mut *lock)
            .await
            .map_err(database)?;
        for key in keys {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(key)
                .execute(&mut *lock)
                .await
                .map_err(|error| self.failed(error, &wanted))?;
        }
        let head = store.head_position().await?;
        self.checkpoint
            .wait_for(head, self.wait)
            .await
            .map_err(|not_yet| WriteError::IndexBehind(not_yet.to_string()))?;
        Ok(Session {
            matcher: self.clone(),
            lock,
            wanted,
        })
    }

    /// Waits until the search indexes hold every event up to `position`; the message when they
    /// do not within the wait.
    pub async fn wait_for_index(&self, position: i64) -> Result<(), String> {
        self.checkpoint
            .wait_for(position, self.wait)
            .await
            .map_err(|not_yet| not_yet.to_string())
    }

    /// Checks that `criteria` can be matched (400 otherwise), without matching.
    pub fn check(&self, resource_type: ResourceType, criteria: &str) -> Result<(), WriteError> {
        self.parse(resource_type, &parse_criteria(criteria))
            .map(|_| ())
    }

    fn parse(
        &self,
        resource_type: ResourceType,
        params: &[(String, String)],
    ) -> Result<SearchQuery, WriteError> {
        let query = query::parse(
            self.registry,
            vec![resource_type.as_str().to_owned()],
            params,
            &self.reference_base,
        )
        .map_err(|error| WriteError::Criteria(error.to_string()))?;
        if !query.ignored.is_empty() {
            let names: Vec<String> = query
                .ignored
                .iter()
                .map(|ignored| format!("{}: {}", ignored.name, ignored.reason))
                .collect();
            return Err(WriteError::Criteria(format!(
                "a conditional write matches on known search parameters only: {}",
                names.join("; ")
            )));
        }
        if query.criteria.is_empty() {
            return Err(WriteError::Criteria(
                "a conditional write needs search criteria that select resources".to_owned(),
            ));
        }
        Ok(query)
    }
}

/// The criteria of an `If-None-Exist` header or a URL's query: `a=1&b=2`, optionally after
/// `Type?` (as some clients send the header), as decoded pairs.
fn parse_criteria(text: &str) -> Vec<(String, String)> {
    let query = text.split_once('?').map_or(text, |(_, query)| query);
    form_urlencoded::parse(query.trim().as_bytes())
        .into_owned()
        .filter(|(name, _)| !name.is_empty())
        .collect()
}

fn display_criteria(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The advisory-lock key of a conditional write: the same for the same type and criteria in
/// any order.
fn lock_key(resource_type: ResourceType, params: &[(String, String)]) -> i64 {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut parts = vec!["conditional-write", resource_type.as_str()];
    for (name, value) in sorted {
        parts.push(name);
        parts.push(value);
    }
    fhir_search::hash::hash_parts(&parts)
}

impl Matcher {
    /// A failed statement of a session: past the statement timeout, 503; else a store error.
    fn failed(&self, error: sqlx::Error, wanted: &str) -> WriteError {
        match &error {
            sqlx::Error::Database(database_error)
                if database_error.code().as_deref() == Some(QUERY_CANCELED) =>
            {
                let millis = u64::try_from(self.statement_timeout.as_millis()).unwrap_or(u64::MAX);
                WriteError::MatchTimeout(wanted.to_owned(), millis)
            }
            _ => database(error),
        }
    }
}

/// Postgres' SQLSTATE for a statement cancelled by `statement_timeout`.
const QUERY_CANCELED: &str = "57014";

fn database(error: sqlx::Error) -> WriteError {
    WriteError::Store(event_store::StoreError::Database(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_are_read_with_or_without_the_type() {
        let expected = vec![
            ("identifier".to_owned(), "http://x|1 2".to_owned()),
            ("active".to_owned(), "true".to_owned()),
        ];
        assert_eq!(
            parse_criteria("identifier=http://x%7C1+2&active=true"),
            expected
        );
        assert_eq!(
            parse_criteria("Patient?identifier=http://x|1%202&active=true"),
            expected
        );
        assert!(parse_criteria("").is_empty());
    }

    #[test]
    fn the_lock_ignores_the_order_of_the_criteria() {
        let patient = ResourceType::parse("Patient").unwrap_or_else(|_| unreachable!());
        let observation = ResourceType::parse("Observation").unwrap_or_else(|_| unreachable!());
        let a = parse_criteria("identifier=x|1&active=true");
        let b = parse_criteria("active=true&identifier=x|1");
        assert_eq!(lock_key(patient, &a), lock_key(patient, &b));
        assert_ne!(lock_key(patient, &a), lock_key(observation, &a));
        assert_ne!(
            lock_key(patient, &a),
            lock_key(patient, &parse_criteria("identifier=x|2&active=true"))
        );
    }
}
