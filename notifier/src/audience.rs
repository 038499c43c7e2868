//! Who an event concerns: the topics ([`Topic`]) it falls under, which the hub and the replay
//! of a resuming client both use, so that a live event and a replayed one reach the same
//! subscriptions.
//!
//! - Its resource type, always.
//! - Patients: the Patient itself, or the patients the resource's Patient-compartment
//!   references point to (the same index values the projection writes, so the same rule as
//!   compartment search).
//! - Wards: a ward's own Locations; the wards of an Encounter's locations (an admission, a
//!   transfer, a discharge all reach the ward); and for anything else, the wards on which its
//!   patients have an in-progress encounter. The census comes from the projection's
//!   `ward_census` view, reloaded after the projections have applied an Encounter or Location
//!   change; events are handled in position order, so every event sees a census that includes
//!   all admissions before it.
//! - Criteria: the searches run against the projections, restricted to the resource, once the
//!   projections have applied the event, with the query service's own SQL: all the distinct
//!   searches on the event's type in one statement (a `UNION ALL`, [`CRITERIA_PER_QUERY`] at a
//!   time), so an event costs one round trip however many subscriptions ask; a statement the
//!   database refuses is split until the one search it cannot run is alone. A delete is sent
//!   to every search subscription of its type: a deleted resource no longer matches anything,
//!   and the client needs to hear that it is gone.

use std::collections::{BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use fhir_search::extract::ExtractOptions;
use fhir_search::sql::checkpoint::Checkpoint;
use fhir_search::{Registry, compartment};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::event::Event;
use crate::protocol::{Criteria, Topic};

/// Searches evaluated per statement: bounds a statement's bind parameters well below
/// Postgres' 65,535 however long each search is (a client message is at most 16 KiB).
pub const CRITERIA_PER_QUERY: usize = 64;

/// What a set of subscriptions needs to know of an event; what nobody asks for is not computed.
#[derive(Debug, Default)]
pub struct Interest<'a> {
    pub patients: bool,
    pub wards: bool,
    /// Search subscriptions on the event's resource type.
    pub criteria: Vec<&'a Criteria>,
}

/// Works out an event's topics.
pub struct Audience {
    pool: PgPool,
    checkpoint: Checkpoint,
    registry: &'static Registry,
    extract: ExtractOptions,
    reference_base: String,
    /// How long to wait for the projections before evaluating anyway.
    wait: Duration,
    census: Mutex<Arc<Census>>,
    /// The position of the newest Encounter or Location change the hub has seen.
    census_changed_at: AtomicI64,
}

impl Audience {
    pub fn new(
        pool: PgPool,
        checkpoint: Checkpoint,
        reference_base: String,
        wait: Duration,
    ) -> Self {
        Audience {
            pool,
            checkpoint,
            registry: Registry::r4(),
            extract: ExtractOptions {
                base_url: Some(reference_base.clone()),
            },
            reference_base,
            wait,
            census: Mutex::new(Arc::new(Census {
                loaded_at: None,
                ..Census::default()
            })),
            census_changed_at: AtomicI64::new(0),
        }
    }

    pub fn registry(&self) -> &'static Registry {
        self.registry
    }

    pub fn reference_base(&self) -> &str {
        &self.reference_base
    }

    /// The live path calls this for every event, in order, before [`Audience::topics`]: later
    /// census lookups reload once the projections have applied a census change.
    pub fn seen(&self, event: &Event) {
        if matches!(event.resource_type.as_str(), "Encounter" | "Location") {
            self.census_changed_at
                .fetch_max(event.position, Ordering::Relaxed);
        }
    }

    /// The topics of `event` that `interest` asks about, without duplicates.
    pub async fn topics(
        &self,
        event: &Event,
        interest: &Interest<'_>,
        view: fhir_search::sql::View,
    ) -> Vec<Topic> {
        let mut topics = vec![Topic::Type(event.resource_type.clone())];
        let patients = if interest.patients || interest.wards {
            self.patients(event)
        } else {
            BTreeSet::new()
        };
        if interest.wards {
            for ward in self.wards(event, &patients).await {
                topics.push(Topic::Ward(ward));
            }
        }
        if interest.patients {
            topics.extend(patients.into_iter().map(Topic::Patient));
        }
        if !interest.criteria.is_empty() {
            let matched = self.matching(event, &interest.criteria, view).await;
            topics.extend(matched.into_iter().map(|c| Topic::Criteria(c.clone())));
        }
        topics
    }

    /// The patients whose compartment holds the resource.
    fn patients(&self, event: &Event) -> BTreeSet<String> {
        compartment::patients_of(
            self.registry,
            &self.extract,
            &event.resource_type,
            &event.id,
            &event.resource,
        )
    }

    async fn wards(&self, event: &Event, patients: &BTreeSet<String>) -> BTreeSet<String> {
        let before = self.census(event.position).await;
        let mut wards = BTreeSet::new();
        match event.resource_type.as_str() {
            "Location" => {
                let own = before.ward_of(&event.id).unwrap_or(&event.id).to_owned();
                wards.insert(own);
                if let Some(parent) = reference_id(event.resource.pointer("/partOf/reference")) {
                    wards.insert(before.ward_of(parent).unwrap_or(parent).to_owned());
                }
            }
            "Encounter" => {
                // Where it was (a transfer or discharge leaves that ward) and where it is.
                wards.extend(before.encounter_wards(&event.id));
                let locations = event.resource.get("location").and_then(Value::as_array);
                for location in locations.into_iter().flatten() {
                    if let Some(id) = reference_id(location.pointer("/location/reference")) {
                        wards.insert(before.ward_of(id).unwrap_or(id).to_owned());
                    }
                }
            }
            _ => {}
        }
        let census = if event.resource_type == "Encounter" {
            self.census(event.position).await
        } else {
            before
        };
        for patient in patients {
            wards.extend(census.patient_wards(patient));
        }
        wards
    }

    /// The census, reloaded first when a change the hub has seen at or before `position` is not
    /// in it yet.
    async fn census(&self, position: i64) -> Arc<Census> {
        let mut census = self.census.lock().await;
        let wanted = self.census_changed_at.load(Ordering::Relaxed).min(position);
        if census.loaded_at.is_some_and(|loaded| loaded >= wanted) {
            return census.clone();
        }
        // Past the bound the census is read as it is; it is read again at the next event.
        let reached = match self.checkpoint.wait_for(wanted, self.wait).await {
            Ok(()) => wanted,
            Err(not_yet) => {
                tracing::warn!(%not_yet, "ward census read before the projections caught up");
                not_yet.reached
            }
        };
        match Census::load(&self.pool).await {
            Ok(mut loaded) => {
                loaded.loaded_at = Some(reached);
                *census = Arc::new(loaded);
            }
            Err(error) => tracing::warn!(%error, "cannot read the ward census"),
        }
        census.clone()
    }

    /// Which of the searches the resource matches, once the projections have applied the
    /// event.
    async fn matching<'c>(
        &self,
        event: &Event,
        all: &[&'c Criteria],
        view: fhir_search::sql::View,
    ) -> Vec<&'c Criteria> {
        if event.is_delete() {
            return all.to_vec();
        }
        // Each was parsed when subscribed; a search that fails (or panics) now matches nothing
        // rather than stopping every other subscriber's events.
        let mut parsed = Vec::with_capacity(all.len());
        for criteria in all {
            let query = std::panic::catch_unwind(AssertUnwindSafe(|| {
                criteria.query(self.registry, &self.reference_base, None)
            }));
            match query {
                Ok(Ok(query)) => parsed.push((*criteria, query)),
                Ok(Err(error)) => {
                    tracing::warn!(%error, criteria = %criteria.text, "subscription criteria failed");
                }
                Err(_) => {
                    tracing::error!(criteria = %criteria.text, "subscription criteria panicked");
                }
            }
        }
        if parsed.is_empty() {
            return Vec::new();
        }
        if let Err(not_yet) = self.checkpoint.wait_for(event.position, self.wait).await {
            tracing::warn!(%not_yet, "criteria evaluated before the projections caught up");
        }
        // A statement that fails (one search the database refuses, too many bind parameters)
        // is split in halves and tried again, so one bad search costs only itself a match.
        let mut matched = Vec::new();
        let mut pending: Vec<&[(&Criteria, fhir_search::query::SearchQuery)]> =
            parsed.chunks(CRITERIA_PER_QUERY).rev().collect();
        while let Some(chunk) = pending.pop() {
            let queries: Vec<&fhir_search::query::SearchQuery> =
                chunk.iter().map(|(_, query)| query).collect();
            let found: Result<Vec<i32>, sqlx::Error> = fhir_search::sql::select_matching_queries(
                &queries,
                &event.resource_type,
                &event.id,
                view,
            )
            .build_query_scalar()
            .fetch_all(&self.pool)
            .await;
            match found {
                Ok(indexes) => matched.extend(
                    indexes
                        .into_iter()
                        .filter_map(|index| chunk.get(usize::try_from(index).ok()?))
                        .map(|(criteria, _)| *criteria),
                ),
                Err(_) if chunk.len() > 1 => {
                    let (first, second) = chunk.split_at(chunk.len() / 2);
                    pending.push(second);
                    pending.push(first);
                }
                Err(error) => {
                    let criteria = &chunk[0].0.text;
                    tracing::warn!(%error, %criteria, "evaluating criteria failed");
                }
            }
        }
        matched
    }
}

/// `Type/id` (or `id`) of a reference, as its id.
fn reference_id(reference: Option<&Value>) -> Option<&str> {
    let text = reference?.as_str()?;
    Some(text.rsplit_once('/').map_or(text, |(_, id)| id))
}

/// Which patients and encounters are on which ward, from the projections.
#[derive(Debug, Default)]
struct Census {
    /// The position the projections had reached when it was read; `None` before the first read.
    loaded_at: Option<i64>,
    patient_wards: HashMap<String, BTreeSet<String>>,
    encounter_wards: HashMap<String, BTreeSet<String>>,
    /// Every location's ward (a ward is its own).
    location_ward: HashMap<String, String>,
}

impl Census {
    async fn load(pool: &PgPool) -> Result<Census, sqlx::Error> {
        let mut census = Census::default();
        let placed: Vec<(Option<String>, String, Option<String>)> =
            sqlx::query_as("SELECT ward_id, encounter_id, patient_id FROM ward_census")
                .fetch_all(pool)
                .await?;
        for (ward, encounter, patient) in placed {
            let Some(ward) = ward else { continue };
            if let Some(patient) = patient {
                census
                    .patient_wards
                    .entry(patient)
                    .or_default()
                    .insert(ward.clone());
            }
            census
                .encounter_wards
                .entry(encounter)
                .or_default()
                .insert(ward);
        }
        let locations: Vec<(String, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT res_id, physical_type, part_of_id FROM locations")
                .fetch_all(pool)
                .await?;
        let by_id: HashMap<&str, (Option<&str>, Option<&str>)> = locations
            .iter()
            .map(|(id, kind, parent)| (id.as_str(), (kind.as_deref(), parent.as_deref())))
            .collect();
        for (id, _, _) in &locations {
            // Up to three levels, as the census view looks (bed, room, ward).
            let mut at = Some(id.as_str());
            let mut ward = None;
            for _ in 0..3 {
                let Some((kind, parent)) = at.and_then(|at| by_id.get(at)) else {
                    break;
                };
                if *kind == Some("wa") {
                    ward = at;
                    break;
                }
                at = *parent;
            }
            if let Some(ward) = ward {
                census.location_ward.insert(id.clone(), ward.to_owned());
            }
        }
        Ok(census)
    }

    fn ward_of(&self, location: &str) -> Option<&str> {
        self.location_ward.get(location).map(String::as_str)
    }

    fn patient_wards(&self, patient: &str) -> impl Iterator<Item = String> + '_ {
        self.patient_wards
            .get(patient)
            .into_iter()
            .flatten()
            .cloned()
    }

    fn encounter_wards(&self, encounter: &str) -> impl Iterator<Item = String> + '_ {
        self.encounter_wards
            .get(encounter)
            .into_iter()
            .flatten()
            .cloned()
    }
}
