//! A ward as the dashboard holds it: its beds, who lies in each, their recent vital signs and
//! their open orders and tasks, built from FHIR resources however they arrive.
//!
//! The first load (searches) and the live events feed the same [`Ward::apply`], and each
//! resource's version is remembered, so the order in which a search answer and an event about
//! the same resource arrive does not matter: an older version never overwrites a newer one.
//! That is what lets the page subscribe first and load second without losing a change made in
//! between. Who is on the ward is derived, never stored: an in-progress Encounter whose current
//! location is one of the ward's beds puts its patient in that bed; finishing it frees the bed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use crate::fhir;
use crate::orders::Order;
use crate::protocol::{Event, EventKind};
use crate::vitals::VitalSigns;

/// A bed: a Location that is `partOf` the ward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bed {
    pub id: String,
    /// `Location.name`, e.g. "Ward A (Acute Medicine), bed 3".
    pub name: String,
}

impl Bed {
    /// The short name a card shows: the part after the ward's name ("Bed 3").
    pub fn label(&self) -> String {
        let short = self.name.rsplit(", ").next().unwrap_or(&self.name);
        let mut chars = short.chars();
        match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => self.id.clone(),
        }
    }

    /// Beds in number order (`bed-2` before `bed-10`), by the number their id ends in.
    fn order(&self) -> (&str, u64, &str) {
        let prefix = self.id.trim_end_matches(|c: char| c.is_ascii_digit());
        let number = self.id[prefix.len()..].parse().unwrap_or(u64::MAX);
        (prefix, number, &self.id)
    }
}

/// What the ward shows of a patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    pub id: String,
    pub name: String,
    pub gender: Option<String>,
    pub birth_date: Option<String>,
}

impl Patient {
    pub fn from_resource(resource: &Value) -> Option<Patient> {
        Some(Patient {
            id: fhir::id(resource)?.to_owned(),
            name: fhir::human_name(resource).unwrap_or_else(|| "(no name)".to_owned()),
            gender: resource["gender"].as_str().map(str::to_owned),
            birth_date: resource["birthDate"].as_str().map(str::to_owned),
        })
    }
}

/// An in-progress inpatient Encounter: whose, and where now.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stay {
    patient: String,
    location: String,
    /// `period.start`, seconds since the Unix epoch.
    start: Option<i64>,
}

impl Stay {
    /// `None` unless the Encounter is in progress and has a current location: the last of
    /// `Encounter.location` that is active (or has no status).
    fn from_encounter(encounter: &Value) -> Option<Stay> {
        if encounter["status"] != "in-progress" {
            return None;
        }
        let location = encounter["location"]
            .as_array()?
            .iter()
            .rev()
            .filter(|place| matches!(place["status"].as_str(), None | Some("active")))
            .find_map(|place| fhir::reference_id(&place["location"], "Location"))?;
        Some(Stay {
            patient: fhir::reference_id(&encounter["subject"], "Patient")?.to_owned(),
            location: location.to_owned(),
            start: encounter["period"]["start"]
                .as_str()
                .and_then(fhir::parse_time),
        })
    }
}

/// Where a resource version came from; orders that arrive live are marked new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A search of the first load.
    Search,
    /// A notifier event.
    Live,
}

/// One bed as the dashboard draws it.
#[derive(Debug, Clone, Copy)]
pub struct BedView<'a> {
    pub bed: &'a Bed,
    pub occupant: Option<Occupant<'a>>,
}

/// The patient in a bed.
#[derive(Debug, Clone, Copy)]
pub struct Occupant<'a> {
    pub patient_id: &'a str,
    /// `None` until the Patient resource has been loaded.
    pub patient: Option<&'a Patient>,
    pub vitals: Option<&'a VitalSigns>,
    /// When the stay began.
    pub admitted: Option<i64>,
}

/// An open order or task of a patient on the ward.
#[derive(Debug, Clone, Copy)]
pub struct WorkItem<'a> {
    pub order: &'a Order,
    /// Written since the page opened.
    pub new: bool,
}

/// The ward's state.
#[derive(Debug, Clone, Default)]
pub struct Ward {
    id: String,
    name: Option<String>,
    /// By Location id.
    beds: BTreeMap<String, Bed>,
    /// By Encounter id.
    stays: BTreeMap<String, Stay>,
    /// By Patient id.
    patients: BTreeMap<String, Patient>,
    /// By Patient id.
    vitals: BTreeMap<String, VitalSigns>,
    /// By `Type/id`, with whether it arrived live.
    orders: BTreeMap<String, (Order, bool)>,
    /// The newest version taken in of each resource, by `Type/id`.
    versions: HashMap<String, u64>,
    /// Patients whose vital signs and orders have been asked for.
    charted: BTreeSet<String>,
}

impl Ward {
    /// An empty ward, by its Location id.
    pub fn new(id: impl Into<String>) -> Ward {
        Ward {
            id: id.into(),
            ..Ward::default()
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The ward's `Location.name`, once known; its id until then.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    /// Applies one event. Returns whether the ward changed.
    pub fn apply_event(&mut self, event: &Event) -> bool {
        match event.kind {
            EventKind::ResourceDeleted => self.remove(&event.resource, Some(event.version)),
            EventKind::ResourceCreated | EventKind::ResourceUpdated => {
                self.take(&event.resource, Some(event.version), Origin::Live)
            }
        }
    }

    /// Takes in a resource found by a search (its version from `meta.versionId`). Returns
    /// whether the ward changed.
    pub fn apply(&mut self, resource: &Value) -> bool {
        self.take(resource, fhir::version(resource), Origin::Search)
    }

    /// Whether `version` of `resource` is newer than any taken in before; remembers it if so.
    /// Resources without a version are always taken.
    fn is_newer(&mut self, resource: &Value, version: Option<u64>) -> bool {
        let (Some(key), Some(version)) = (fhir::key(resource), version) else {
            return true;
        };
        let newest = self.versions.entry(key).or_insert(0);
        if version <= *newest {
            return false;
        }
        *newest = version;
        true
    }

    fn take(&mut self, resource: &Value, version: Option<u64>, origin: Origin) -> bool {
        if !self.is_newer(resource, version) {
            return false;
        }
        let Some(id) = fhir::id(resource) else {
            return false;
        };
        match fhir::resource_type(resource) {
            Some("Location") => self.take_location(id, resource),
            Some("Encounter") => match Stay::from_encounter(resource) {
                Some(stay) => self.stays.insert(id.to_owned(), stay.clone()) != Some(stay),
                None => self.stays.remove(id).is_some(),
            },
            Some("Patient") => match Patient::from_resource(resource) {
                Some(patient) => {
                    self.patients.insert(id.to_owned(), patient.clone()) != Some(patient)
                }
                None => false,
            },
            Some("Observation") => {
                // A correction may name another patient: the old reading goes either way.
                let forgotten = self.forget_observation(id);
                let recorded =
                    fhir::reference_id(&resource["subject"], "Patient").is_some_and(|patient| {
                        self.vitals
                            .entry(patient.to_owned())
                            .or_default()
                            .record(resource)
                    });
                forgotten || recorded
            }
            Some("ServiceRequest" | "MedicationRequest" | "Task") => {
                let key = fhir::key(resource).unwrap_or_default();
                match Order::from_resource(resource) {
                    Some(order) => {
                        self.orders.insert(key, (order, origin == Origin::Live));
                        true
                    }
                    None => self.orders.remove(&key).is_some(),
                }
            }
            _ => false,
        }
    }

    fn take_location(&mut self, id: &str, location: &Value) -> bool {
        if id == self.id {
            let name = location["name"].as_str().map(str::to_owned);
            return std::mem::replace(&mut self.name, name) != self.name;
        }
        let in_ward = fhir::reference_id(&location["partOf"], "Location") == Some(&self.id)
            && location["status"] != "inactive";
        if !in_ward {
            return self.beds.remove(id).is_some();
        }
        let bed = Bed {
            id: id.to_owned(),
            name: location["name"].as_str().unwrap_or(id).to_owned(),
        };
        self.beds.insert(id.to_owned(), bed.clone()) != Some(bed)
    }

    /// Forgets a deleted resource (`resource` as it stood before the delete).
    fn remove(&mut self, resource: &Value, version: Option<u64>) -> bool {
        if !self.is_newer(resource, version) {
            return false;
        }
        let Some(id) = fhir::id(resource) else {
            return false;
        };
        match fhir::resource_type(resource) {
            Some("Location") if id == self.id => self.name.take().is_some(),
            Some("Location") => self.beds.remove(id).is_some(),
            Some("Encounter") => self.stays.remove(id).is_some(),
            Some("Patient") => self.patients.remove(id).is_some(),
            Some("Observation") => self.forget_observation(id),
            Some(_) => fhir::key(resource).is_some_and(|key| self.orders.remove(&key).is_some()),
            None => false,
        }
    }

    /// Drops the reading of an Observation, whoever's it was.
    fn forget_observation(&mut self, id: &str) -> bool {
        let mut forgotten = false;
        for vitals in self.vitals.values_mut() {
            forgotten |= vitals.remove(id);
        }
        forgotten
    }

    /// The current stay in a bed: the latest begun, should two claim it.
    fn stay_in(&self, bed: &str) -> Option<&Stay> {
        self.stays
            .values()
            .filter(|stay| stay.location == bed)
            .max_by_key(|stay| stay.start)
    }

    /// The beds in number order, each with its patient if it has one.
    pub fn beds(&self) -> Vec<BedView<'_>> {
        let mut beds: Vec<&Bed> = self.beds.values().collect();
        beds.sort_by(|a, b| a.order().cmp(&b.order()));
        beds.into_iter()
            .map(|bed| BedView {
                bed,
                occupant: self.stay_in(&bed.id).map(|stay| Occupant {
                    patient_id: &stay.patient,
                    patient: self.patients.get(&stay.patient),
                    vitals: self.vitals.get(&stay.patient),
                    admitted: stay.start,
                }),
            })
            .collect()
    }

    /// The patients in the ward's beds.
    pub fn occupants(&self) -> BTreeSet<&str> {
        self.beds()
            .iter()
            .filter_map(|view| view.occupant.map(|occupant| occupant.patient_id))
            .collect()
    }

    /// The bed a patient is in.
    pub fn bed_of(&self, patient: &str) -> Option<&Bed> {
        self.beds().into_iter().find_map(|view| {
            view.occupant
                .filter(|occupant| occupant.patient_id == patient)
                .map(|_| view.bed)
        })
    }

    pub fn patient(&self, id: &str) -> Option<&Patient> {
        self.patients.get(id)
    }

    /// The open orders and tasks of the patients in the ward's beds written during their stay
    /// (or undated), newest first. A repeat prescription from years ago is still an active
    /// MedicationRequest, but it is not news for the ward.
    pub fn work(&self) -> Vec<WorkItem<'_>> {
        let admitted: HashMap<&str, Option<i64>> = self
            .beds()
            .iter()
            .filter_map(|view| view.occupant)
            .map(|occupant| (occupant.patient_id, occupant.admitted))
            .collect();
        let during_stay =
            |order: &Order| match (admitted.get(order.patient.as_str()), order.authored) {
                (None, _) => false,
                (Some(Some(admitted)), Some(authored)) => authored >= *admitted,
                (Some(_), _) => true,
            };
        let mut work: Vec<WorkItem<'_>> = self
            .orders
            .values()
            .filter(|(order, _)| during_stay(order))
            .map(|(order, new)| WorkItem { order, new: *new })
            .collect();
        work.sort_by(|a, b| {
            b.order
                .authored
                .cmp(&a.order.authored)
                .then_with(|| a.order.key().cmp(&b.order.key()))
        });
        work
    }

    /// Patients in the ward's beds whose chart (vital signs, orders) has not been asked for
    /// yet; they count as asked for from now on. The page calls this after each change and
    /// loads what it returns, so a new admission brings its history with it.
    pub fn take_uncharted(&mut self) -> Vec<String> {
        let uncharted: Vec<String> = self
            .occupants()
            .into_iter()
            .filter(|patient| !self.charted.contains(*patient))
            .map(str::to_owned)
            .collect();
        self.charted.extend(uncharted.iter().cloned());
        uncharted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ServerMessage;
    use serde_json::json;

    fn versioned(mut resource: Value, version: u64) -> Value {
        resource["meta"] = json!({"versionId": version.to_string()});
        resource
    }

    fn bed(id: &str, ward: &str) -> Value {
        json!({"resourceType": "Location", "id": id, "status": "active",
            "name": format!("Ward A (Acute Medicine), {}", id.replace("ward-a-", "").replace('-', " ")),
            "partOf": {"reference": format!("Location/{ward}")}})
    }

    fn encounter(id: &str, patient: &str, bed: &str, status: &str) -> Value {
        json!({"resourceType": "Encounter", "id": id, "status": status,
            "subject": {"reference": format!("Patient/{patient}")},
            "period": {"start": "2026-06-01T08:00:00Z"},
            "location": [{"location": {"reference": format!("Location/{bed}")}, "status": "active"}]})
    }

    fn patient(id: &str, family: &str) -> Value {
        json!({"resourceType": "Patient", "id": id, "name": [{"family": family, "given": ["Ann"]}]})
    }

    fn pulse(id: &str, patient: &str, at: &str, value: f64) -> Value {
        json!({"resourceType": "Observation", "id": id, "status": "final",
            "category": [{"coding": [{"code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "effectiveDateTime": at, "valueQuantity": {"value": value}})
    }

    fn task(id: &str, patient: &str, status: &str, at: &str) -> Value {
        json!({"resourceType": "Task", "id": id, "status": status, "intent": "order",
            "description": format!("task {id}"), "for": {"reference": format!("Patient/{patient}")},
            "authoredOn": at})
    }

    fn event(position: u64, kind: &str, version: u64, resource: Value) -> Event {
        let message = json!({"type": "event", "position": position, "kind": kind,
            "resourceType": resource["resourceType"], "id": resource["id"], "version": version,
            "resource": resource, "subscriptions": ["s"]});
        match ServerMessage::parse(&message.to_string()).unwrap() {
            ServerMessage::Event(event) => event,
            other => panic!("{other:?}"),
        }
    }

    /// Ward A with beds 1, 2 and 10, and Ann Abara admitted to bed 2.
    fn ward() -> Ward {
        let mut ward = Ward::new("ward-a");
        ward.apply(
            &json!({"resourceType": "Location", "id": "ward-a", "name": "Ward A (Acute Medicine)"}),
        );
        for id in ["ward-a-bed-10", "ward-a-bed-2", "ward-a-bed-1"] {
            ward.apply(&versioned(bed(id, "ward-a"), 1));
        }
        ward.apply(&versioned(
            encounter("e1", "p1", "ward-a-bed-2", "in-progress"),
            1,
        ));
        ward.apply(&versioned(patient("p1", "Abara"), 1));
        ward
    }

    fn occupant_of(ward: &Ward, bed: &str) -> Option<String> {
        ward.beds()
            .iter()
            .find(|view| view.bed.id == bed)
            .and_then(|view| view.occupant)
            .map(|occupant| occupant.patient_id.to_owned())
    }

    #[test]
    fn beds_come_in_number_order_with_short_names() {
        let ward = ward();
        let beds: Vec<String> = ward.beds().iter().map(|view| view.bed.id.clone()).collect();
        assert_eq!(beds, ["ward-a-bed-1", "ward-a-bed-2", "ward-a-bed-10"]);
        assert_eq!(ward.beds()[2].bed.label(), "Bed 10");
        assert_eq!(ward.name(), "Ward A (Acute Medicine)");
    }

    #[test]
    fn an_in_progress_encounter_puts_its_patient_in_its_bed() {
        let ward = ward();
        assert_eq!(occupant_of(&ward, "ward-a-bed-2").as_deref(), Some("p1"));
        assert_eq!(occupant_of(&ward, "ward-a-bed-1"), None);
        let beds = ward.beds();
        let occupant = beds[1].occupant.unwrap();
        assert_eq!(occupant.patient.unwrap().name, "Ann Abara");
        assert_eq!(ward.bed_of("p1").unwrap().id, "ward-a-bed-2");
    }

    #[test]
    fn admission_and_discharge_events_fill_and_free_beds() {
        let mut ward = ward();
        let admitted = encounter("e2", "p2", "ward-a-bed-1", "in-progress");
        assert!(ward.apply_event(&event(10, "ResourceCreated", 1, admitted)));
        assert_eq!(occupant_of(&ward, "ward-a-bed-1").as_deref(), Some("p2"));

        let mut discharged = encounter("e1", "p1", "ward-a-bed-2", "finished");
        discharged["location"][0]["status"] = json!("completed");
        assert!(ward.apply_event(&event(11, "ResourceUpdated", 2, discharged)));
        assert_eq!(occupant_of(&ward, "ward-a-bed-2"), None);
    }

    #[test]
    fn a_transfer_moves_the_patient_to_the_active_location() {
        let mut ward = ward();
        let mut moved = encounter("e1", "p1", "ward-a-bed-2", "in-progress");
        moved["location"] = json!([
            {"location": {"reference": "Location/ward-a-bed-2"}, "status": "completed"},
            {"location": {"reference": "Location/ward-a-bed-10"}, "status": "active"},
        ]);
        ward.apply_event(&event(12, "ResourceUpdated", 2, moved));
        assert_eq!(occupant_of(&ward, "ward-a-bed-2"), None);
        assert_eq!(occupant_of(&ward, "ward-a-bed-10").as_deref(), Some("p1"));
    }

    #[test]
    fn an_older_version_never_overwrites_a_newer_one() {
        let mut ward = ward();
        // The discharge arrives live before the first load's (older) search answer.
        let discharged = encounter("e1", "p1", "ward-a-bed-2", "finished");
        ward.apply_event(&event(20, "ResourceUpdated", 2, discharged));
        let stale = versioned(encounter("e1", "p1", "ward-a-bed-2", "in-progress"), 1);
        assert!(!ward.apply(&stale));
        assert_eq!(occupant_of(&ward, "ward-a-bed-2"), None);
        // The same version twice changes nothing either.
        let again = encounter("e1", "p1", "ward-a-bed-2", "finished");
        assert!(!ward.apply_event(&event(21, "ResourceUpdated", 2, again)));
    }

    #[test]
    fn a_new_observation_updates_the_occupants_vitals_and_score() {
        let mut ward = ward();
        ward.apply(&versioned(
            pulse("o1", "p1", "2026-06-01T08:00:00Z", 80.0),
            1,
        ));
        let score = |ward: &Ward| {
            let beds = ward.beds();
            let vitals = beds[1].occupant.unwrap().vitals.unwrap();
            (
                vitals.latest(crate::vitals::Vital::Pulse).unwrap().value,
                vitals.assessment().unwrap().total,
            )
        };
        assert_eq!(score(&ward), (80.0, 0));
        let faster = pulse("o2", "p1", "2026-06-01T09:00:00Z", 135.0);
        assert!(ward.apply_event(&event(30, "ResourceCreated", 1, faster)));
        assert_eq!(score(&ward), (135.0, 3));
        // Deleting the newer reading brings the older one back.
        let deleted = pulse("o2", "p1", "2026-06-01T09:00:00Z", 135.0);
        assert!(ward.apply_event(&event(31, "ResourceDeleted", 2, deleted)));
        assert_eq!(score(&ward), (80.0, 0));
    }

    #[test]
    fn the_work_list_shows_open_work_of_patients_on_the_ward_newest_first() {
        let mut ward = ward();
        ward.apply(&versioned(
            task("t1", "p1", "requested", "2026-06-01T08:00:00Z"),
            1,
        ));
        ward.apply(&versioned(
            task("t-elsewhere", "p9", "requested", "2026-06-01T09:00:00Z"),
            1,
        ));
        let live = task("t2", "p1", "requested", "2026-06-01T10:00:00Z");
        ward.apply_event(&event(40, "ResourceCreated", 1, live));
        let work: Vec<(String, bool)> = ward
            .work()
            .iter()
            .map(|item| (item.order.id.clone(), item.new))
            .collect();
        assert_eq!(work, [("t2".into(), true), ("t1".into(), false)]);

        let done = task("t1", "p1", "completed", "2026-06-01T08:00:00Z");
        ward.apply_event(&event(41, "ResourceUpdated", 2, done));
        assert_eq!(ward.work().len(), 1);
    }

    #[test]
    fn work_written_before_the_stay_is_not_listed() {
        let mut ward = ward();
        // The stay began at 08:00.
        ward.apply(&versioned(
            task("before", "p1", "requested", "2026-05-20T08:00:00Z"),
            1,
        ));
        ward.apply(&versioned(
            task("during", "p1", "requested", "2026-06-01T08:00:00Z"),
            1,
        ));
        let mut undated = task("undated", "p1", "requested", "");
        undated.as_object_mut().unwrap().remove("authoredOn");
        ward.apply(&versioned(undated, 1));
        let listed: Vec<&str> = ward
            .work()
            .iter()
            .map(|item| item.order.id.as_str())
            .collect();
        assert_eq!(listed, ["during", "undated"]);
    }

    #[test]
    fn a_patients_work_leaves_the_list_with_them() {
        let mut ward = ward();
        ward.apply(&versioned(
            task("t1", "p1", "requested", "2026-06-01T08:00:00Z"),
            1,
        ));
        assert_eq!(ward.work().len(), 1);
        let discharged = encounter("e1", "p1", "ward-a-bed-2", "finished");
        ward.apply_event(&event(50, "ResourceUpdated", 2, discharged));
        assert!(ward.work().is_empty());
    }

    #[test]
    fn each_new_occupant_is_charted_once() {
        let mut ward = ward();
        assert_eq!(ward.take_uncharted(), ["p1"]);
        assert!(ward.take_uncharted().is_empty());
        let admitted = encounter("e2", "p2", "ward-a-bed-1", "in-progress");
        ward.apply_event(&event(60, "ResourceCreated", 1, admitted));
        assert_eq!(ward.take_uncharted(), ["p2"]);
        // A stay in another ward's bed charts no one.
        let elsewhere = encounter("e3", "p3", "ward-b-bed-1", "in-progress");
        ward.apply_event(&event(61, "ResourceCreated", 1, elsewhere));
        assert!(ward.take_uncharted().is_empty());
    }

    #[test]
    fn beds_follow_their_locations() {
        let mut ward = ward();
        ward.apply_event(&event(
            70,
            "ResourceCreated",
            1,
            bed("ward-a-bed-3", "ward-a"),
        ));
        assert_eq!(ward.beds().len(), 4);
        let mut closed = bed("ward-a-bed-3", "ward-a");
        closed["status"] = json!("inactive");
        ward.apply_event(&event(71, "ResourceUpdated", 2, closed));
        assert_eq!(ward.beds().len(), 3);
        ward.apply_event(&event(
            72,
            "ResourceUpdated",
            2,
            bed("ward-a-bed-10", "ward-b"),
        ));
        assert_eq!(ward.beds().len(), 2);
        // Beds of other wards never join.
        ward.apply(&bed("ward-b-bed-1", "ward-b"));
        assert_eq!(ward.beds().len(), 2);
    }

    #[test]
    fn two_stays_in_one_bed_show_the_latest() {
        let mut ward = ward();
        let mut later = encounter("e9", "p9", "ward-a-bed-2", "in-progress");
        later["period"]["start"] = json!("2026-06-01T12:00:00Z");
        ward.apply(&later);
        assert_eq!(occupant_of(&ward, "ward-a-bed-2").as_deref(), Some("p9"));
    }
}
