//! A generator of coherent synthetic patients, for demos and load tests where no Synthea output
//! is at hand: deterministic for a seed and an anchor time ("now" of the story).
//!
//! [`facility`] is the hospital: an Organization, practitioners, and wards with beds (Location
//! resources a ward dashboard shows). [`Generator::patient`] is one patient's transaction
//! Bundle in Synthea's shape (`POST`s with `urn:uuid:` fullUrls, which `import` turns into
//! repeatable `PUT`s): demographics; chronic conditions with medication requests; an allergy;
//! immunisations; past clinic visits with vital signs and laboratory results (reference ranges,
//! interpretations); and for the first patients, one per bed, a current inpatient stay on a
//! named ward with vital signs every four hours since admission, admission bloods, an order, a
//! nursing task, an admission note and sometimes imaging. One inpatient in four deteriorates over
//! the last day: respiratory and heart rate rise, blood pressure and saturation fall.
//!
//! Every resource validates against the R4 JSON Schema (tested).

pub mod codes;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use codes::*;

/// The identifier system of generated medical record numbers.
pub const MRN_SYSTEM: &str = "http://wardline.example/mrn";
const HOSPITAL: &str = "wardline-hospital";
const PRACTITIONERS: usize = 6;
/// The roles of the identity service's demo users, each with a `Practitioner/demo-<role>`.
const DEMO_ROLES: [&str; 6] = [
    "student",
    "nurse",
    "physician",
    "pharmacist",
    "instructor",
    "admin",
];

/// The hospital every generated patient is treated in, as a transaction Bundle of `PUT`s with
/// fixed ids (`Organization/wardline-hospital`, `Location/ward-a`, `Location/ward-a-bed-1`, ...).
pub fn facility() -> Value {
    let mut entries = vec![put(json!({
        "resourceType": "Organization", "id": HOSPITAL, "active": true,
        "name": "Wardline Teaching Hospital",
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov", "display": "Healthcare Provider"}]}],
    }))];
    for n in 1..=PRACTITIONERS {
        let family = FAMILY[(n * 7) % FAMILY.len()];
        let given = if n % 2 == 0 { GIVEN_FEMALE } else { GIVEN_MALE }[(n * 3) % 20];
        entries.push(put(json!({
            "resourceType": "Practitioner", "id": format!("pr-{n}"), "active": true,
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": format!("99999{n:05}")}],
            "name": [{"family": family, "given": [given], "prefix": ["Dr."]}],
        })));
    }
    // The demo users' own records: the identity service names them as each user's fhirUser.
    for role in DEMO_ROLES {
        let title = format!("{}{}", role[..1].to_uppercase(), &role[1..]);
        entries.push(put(json!({
            "resourceType": "Practitioner", "id": format!("demo-{role}"), "active": true,
            "identifier": [{"system": "http://wardline.example/demo-user", "value": role}],
            "name": [{"family": "Demo", "given": [title], "text": format!("Demo {title}")}],
        })));
    }
    for (ward, name, beds) in WARDS {
        entries.push(put(json!({
            "resourceType": "Location", "id": ward, "status": "active", "name": name, "mode": "instance",
            "physicalType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/location-physical-type", "code": "wa", "display": "Ward"}]},
            "managingOrganization": {"reference": format!("Organization/{HOSPITAL}")},
        })));
        for bed in 1..=*beds {
            entries.push(put(json!({
                "resourceType": "Location", "id": format!("{ward}-bed-{bed}"), "status": "active",
                "name": format!("{name}, bed {bed}"), "mode": "instance",
                "physicalType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/location-physical-type", "code": "bd", "display": "Bed"}]},
                "partOf": {"reference": format!("Location/{ward}"), "display": name},
                "managingOrganization": {"reference": format!("Organization/{HOSPITAL}")},
            })));
        }
    }
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

/// Every bed of the demo hospital: (its Location id, its name as `Location.name` gives it).
fn beds() -> Vec<(String, String)> {
    WARDS
        .iter()
        .flat_map(|(ward, name, beds)| {
            (1..=*beds).map(move |bed| (format!("{ward}-bed-{bed}"), format!("{name}, bed {bed}")))
        })
        .collect()
}

fn put(resource: Value) -> Value {
    let url = format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap_or_default(),
        resource["id"].as_str().unwrap_or_default()
    );
    json!({"resource": resource, "request": {"method": "PUT", "url": url}})
}

/// Generates patients; the same seed and anchor give the same patients.
pub struct Generator {
    rng: StdRng,
    seed: u64,
    anchor: DateTime<Utc>,
}

/// One patient's Bundle being built.
struct Chart<'g> {
    generator: &'g mut Generator,
    entries: Vec<Value>,
    patient: String,
}

impl Generator {
    pub fn new(seed: u64, anchor: DateTime<Utc>) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            seed,
            anchor,
        }
    }

    /// Patient number `index` (0-based) as a transaction Bundle. Patients `0..beds` are in
    /// hospital now, one per bed.
    pub fn patient(&mut self, index: usize) -> Value {
        let mut chart = Chart {
            patient: String::new(),
            entries: Vec::new(),
            generator: self,
        };
        chart.build(index);
        json!({"resourceType": "Bundle", "type": "transaction", "entry": chart.entries})
    }

    fn uuid(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.random())
            .into_uuid()
            .to_string()
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())]
    }

    /// A value around `mean`, within `spread`.
    fn around(&mut self, mean: f64, spread: f64) -> f64 {
        mean + self.rng.random_range(-spread..=spread)
    }

    fn practitioner(&mut self) -> String {
        format!(
            "Practitioner/pr-{}",
            self.rng.random_range(1..=PRACTITIONERS)
        )
    }
}

/// One set of the vital signs NEWS2 scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vitals {
    pub respiratory_rate: f64,
    pub heart_rate: f64,
    pub saturation: f64,
    pub systolic: f64,
    pub diastolic: f64,
    pub temperature: f64,
    pub on_oxygen: bool,
    pub confused: bool,
}

impl Vitals {
    /// Plausible values for a patient `worsening` from 0 (stable) to 1 (deteriorated: fast
    /// breathing and pulse, low pressure and saturation, on oxygen, newly confused).
    pub fn sample(rng: &mut impl Rng, worsening: f64) -> Self {
        let mut around = |mean: f64, spread: f64| mean + rng.random_range(-spread..=spread);
        Vitals {
            respiratory_rate: around(15.0 + 12.0 * worsening, 2.0),
            heart_rate: around(76.0 + 40.0 * worsening, 6.0),
            saturation: around(97.0 - 8.0 * worsening, 1.0).min(100.0),
            systolic: around(124.0 - 32.0 * worsening, 8.0),
            diastolic: around(78.0 - 18.0 * worsening, 6.0),
            temperature: around(36.8 + 1.6 * worsening, 0.3),
            on_oxygen: worsening > 0.6,
            confused: worsening > 0.9,
        }
    }
}

/// `vitals` as Observations (category vital-signs, LOINC, UCUM) of `patient` in `encounter` at
/// `at`: respiratory rate, heart rate, saturation, temperature, a blood pressure panel,
/// level of consciousness and inhaled oxygen. References are as given (`Patient/1`, or a
/// bundle's `urn:uuid:`).
pub fn vital_signs(
    vitals: &Vitals,
    patient: &str,
    encounter: &str,
    at: DateTime<Utc>,
) -> Vec<Value> {
    let base = |vital: &Vital| {
        json!({
            "resourceType": "Observation", "status": "final",
            "category": category("vital-signs", "Vital Signs"),
            "code": coding(LOINC, vital.code, vital.display),
            "subject": {"reference": patient}, "encounter": {"reference": encounter},
            "effectiveDateTime": when(at), "issued": when(at),
        })
    };
    let mut out = Vec::with_capacity(7);
    for (vital, value, decimals) in [
        (&RESPIRATORY_RATE, vitals.respiratory_rate, 0),
        (&HEART_RATE, vitals.heart_rate, 0),
        (&OXYGEN_SATURATION, vitals.saturation, 0),
        (&BODY_TEMPERATURE, vitals.temperature, 1),
    ] {
        let mut observation = base(vital);
        observation["valueQuantity"] = quantity(value, vital.unit, decimals);
        out.push(observation);
    }
    let mut pressure = base(&BLOOD_PRESSURE);
    pressure["component"] = json!([
        {"code": coding(LOINC, SYSTOLIC.code, SYSTOLIC.display), "valueQuantity": quantity(vitals.systolic, SYSTOLIC.unit, 0)},
        {"code": coding(LOINC, DIASTOLIC.code, DIASTOLIC.display), "valueQuantity": quantity(vitals.diastolic, DIASTOLIC.unit, 0)},
    ]);
    out.push(pressure);
    let mut consciousness = base(&CONSCIOUSNESS);
    let (code, display) = if vitals.confused {
        NEW_CONFUSION
    } else {
        ALERT
    };
    consciousness["valueCodeableConcept"] = coding(SNOMED, code, display);
    out.push(consciousness);
    let mut oxygen = base(&INHALED_OXYGEN);
    oxygen["valueQuantity"] = quantity(
        if vitals.on_oxygen { 4.0 } else { 0.0 },
        INHALED_OXYGEN.unit,
        0,
    );
    out.push(oxygen);
    out
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}], "text": display})
}

fn quantity(value: f64, unit: &str, decimals: usize) -> Value {
    let number: Value = serde_json::from_str(&format!("{value:.decimals$}")).unwrap_or(json!(0));
    json!({"value": number, "unit": unit, "system": UCUM, "code": unit})
}

fn category(code: &str, display: &str) -> Value {
    json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": code, "display": display}]}])
}

impl Chart<'_> {
    /// Adds `resource` under a new `urn:uuid:` and returns the reference to it.
    fn add(&mut self, resource: Value) -> String {
        let id = self.generator.uuid();
        let resource_type = resource["resourceType"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.entries.push(json!({
            "fullUrl": format!("urn:uuid:{id}"),
            "resource": resource,
            "request": {"method": "POST", "url": resource_type},
        }));
        format!("urn:uuid:{id}")
    }

    fn build(&mut self, index: usize) {
        let anchor = self.generator.anchor;
        self.patient = self.add_patient(index);
        let conditions = self.generator.rng.random_range(1..=3);
        for _ in 0..conditions {
            self.add_condition();
        }
        if self.generator.rng.random_bool(0.4) {
            let (code, display) = self.generator.pick(ALLERGIES);
            let patient = self.patient.clone();
            self.add(json!({
                "resourceType": "AllergyIntolerance",
                "clinicalStatus": coding("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active"),
                "verificationStatus": coding("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed", "Confirmed"),
                "type": "allergy", "category": ["medication"], "criticality": "high",
                "code": coding(SNOMED, code, display),
                "patient": {"reference": patient},
                "recordedDate": when(anchor - Duration::days(400)),
            }));
        }
        for n in 0..self.generator.rng.random_range(1..=3) {
            let (code, display) = self.generator.pick(VACCINES);
            let patient = self.patient.clone();
            self.add(json!({
                "resourceType": "Immunization", "status": "completed",
                "vaccineCode": coding(CVX, code, display),
                "patient": {"reference": patient},
                "occurrenceDateTime": when(anchor - Duration::days(90 + 200 * n)),
                "primarySource": true,
            }));
        }
        for visit in 0..2 {
            let start = anchor
                - Duration::days(60 + 180 * visit)
                - Duration::hours(self.generator.rng.random_range(0..8));
            let encounter = self.add_encounter(
                "AMB",
                "ambulatory",
                "finished",
                start,
                Some(start + Duration::minutes(40)),
                None,
                None,
            );
            self.add_vitals(&encounter, start + Duration::minutes(10), 0.0);
            self.add_labs(&encounter, start + Duration::minutes(30));
        }
        let beds = beds();
        if let Some((bed, bed_name)) = beds.get(index) {
            self.add_stay(bed, bed_name, index % 4 == 3);
        }
    }

    fn add_patient(&mut self, index: usize) -> String {
        let generator = &mut *self.generator;
        let female = generator.rng.random_bool(0.5);
        let given = generator.pick(if female { GIVEN_FEMALE } else { GIVEN_MALE });
        let family = generator.pick(FAMILY);
        let (city, state) = generator.pick(CITIES);
        let age_days = generator.rng.random_range(18 * 365..95 * 365);
        let birth = (generator.anchor - Duration::days(age_days))
            .format("%Y-%m-%d")
            .to_string();
        let phone = format!("555-{:04}", generator.rng.random_range(0..10_000));
        let seed = generator.seed;
        self.add(json!({
            "resourceType": "Patient",
            "identifier": [{
                "type": coding("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical record number"),
                "system": MRN_SYSTEM, "value": format!("MRN-{seed}-{index:05}"),
            }],
            "active": true,
            "name": [{"use": "official", "family": family, "given": [given]}],
            "telecom": [{"system": "phone", "value": phone, "use": "home"}],
            "gender": if female { "female" } else { "male" },
            "birthDate": birth,
            "address": [{"line": [format!("{} Main Street", 10 + index)], "city": city, "state": state, "country": "US"}],
            "managingOrganization": {"reference": format!("Organization/{HOSPITAL}")},
        }))
    }

    fn add_condition(&mut self) {
        let anchor = self.generator.anchor;
        let (code, display) = self.generator.pick(CONDITIONS);
        let onset = anchor - Duration::days(self.generator.rng.random_range(200..4000));
        let patient = self.patient.clone();
        let condition = self.add(json!({
            "resourceType": "Condition",
            "clinicalStatus": coding("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
            "verificationStatus": coding("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"),
            "category": [coding("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item", "Problem List Item")],
            "code": coding(SNOMED, code, display),
            "subject": {"reference": patient},
            "onsetDateTime": when(onset),
            "recordedDate": when(onset),
        }));
        if self.generator.rng.random_bool(0.7) {
            let (code, display) = self.generator.pick(MEDICATIONS);
            let requester = self.generator.practitioner();
            let patient = self.patient.clone();
            self.add(json!({
                "resourceType": "MedicationRequest", "status": "active", "intent": "order",
                "medicationCodeableConcept": coding(RXNORM, code, display),
                "subject": {"reference": patient},
                "authoredOn": when(onset + Duration::days(3)),
                "requester": {"reference": requester},
                "reasonReference": [{"reference": condition}],
                "dosageInstruction": [{"text": "one tablet by mouth once daily", "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}],
            }));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_encounter(
        &mut self,
        class: &str,
        class_display: &str,
        status: &str,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
        place: Option<(&str, &str)>,
        reason: Option<(&str, &str)>,
    ) -> String {
        let practitioner = self.generator.practitioner();
        let mut encounter = json!({
            "resourceType": "Encounter", "status": status,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": class, "display": class_display},
            "subject": {"reference": self.patient},
            "participant": [{"individual": {"reference": practitioner}}],
            "period": {"start": when(start)},
            "serviceProvider": {"reference": format!("Organization/{HOSPITAL}")},
        });
        if let Some(end) = end {
            encounter["period"]["end"] = json!(when(end));
        }
        if let Some((bed, display)) = place {
            encounter["location"] = json!([{"location": {"reference": format!("Location/{bed}"), "display": display}, "status": "active"}]);
        }
        if let Some((code, display)) = reason {
            encounter["reasonCode"] = json!([coding(SNOMED, code, display)]);
        }
        self.add(encounter)
    }

    /// A current inpatient stay: admitted 12 to 72 hours before the anchor.
    fn add_stay(&mut self, bed: &str, bed_name: &str, deteriorating: bool) {
        let anchor = self.generator.anchor;
        let hours = self.generator.rng.random_range(12..=72);
        let admitted = anchor - Duration::hours(hours);
        let reason = self.generator.pick(ADMISSION_REASONS);
        let encounter = self.add_encounter(
            "IMP",
            "inpatient encounter",
            "in-progress",
            admitted,
            None,
            Some((bed, bed_name)),
            Some(reason),
        );
        let mut at = admitted + Duration::minutes(30);
        while at <= anchor {
            // Deterioration runs over the last 24 hours, from 0 to 1.
            let worsening = if deteriorating {
                (1.0 - (anchor - at).num_minutes() as f64 / (24.0 * 60.0)).clamp(0.0, 1.0)
            } else {
                0.0
            };
            self.add_vitals(&encounter, at, worsening);
            at += Duration::hours(4);
        }
        self.add_labs(&encounter, admitted + Duration::hours(1));
        let patient = self.patient.clone();
        let requester = self.generator.practitioner();
        let order = self.add(json!({
            "resourceType": "ServiceRequest", "status": "active", "intent": "order", "priority": "routine",
            "category": [coding(SNOMED, "108252007", "Laboratory procedure")],
            "code": coding(LOINC, "24323-8", "Comprehensive metabolic 2000 panel - Serum or Plasma"),
            "subject": {"reference": patient}, "encounter": {"reference": encounter},
            "authoredOn": when(anchor - Duration::hours(2)),
            "requester": {"reference": requester},
        }));
        self.add(json!({
            "resourceType": "Task", "status": "requested", "intent": "order", "priority": "routine",
            "description": "Repeat observations and escalate if NEWS2 rises",
            "focus": {"reference": order},
            "for": {"reference": patient}, "encounter": {"reference": encounter},
            "authoredOn": when(anchor - Duration::hours(1)),
            "requester": {"reference": requester},
        }));
        let note = format!(
            "Admission note. {} admitted with {}. Observations on admission recorded; plan: treat, observe, review in the morning.",
            reason.1,
            reason.1.to_lowercase()
        );
        self.add(json!({
            "resourceType": "DocumentReference", "status": "current", "docStatus": "final",
            "type": coding(LOINC, "34117-2", "History and physical note"),
            "category": [coding("http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", "clinical-note", "Clinical Note")],
            "subject": {"reference": patient},
            "date": when(admitted + Duration::hours(1)),
            "author": [{"reference": requester}],
            "description": format!("Admission note: {}", reason.1),
            "content": [{"attachment": {"contentType": "text/plain", "title": "Admission note",
                "data": base64::engine::general_purpose::STANDARD.encode(note)}}],
            "context": {"encounter": [{"reference": encounter}], "period": {"start": when(admitted)}},
        }));
        if self.generator.rng.random_bool(0.5) {
            let (modality, site, site_display) = self.generator.pick(IMAGING);
            let series_uid = format!("2.25.{}", self.generator.rng.random::<u64>());
            let study_uid = format!("2.25.{}", self.generator.rng.random::<u64>());
            self.add(json!({
                "resourceType": "ImagingStudy", "status": "available",
                "identifier": [{"system": "urn:dicom:uid", "value": format!("urn:oid:{study_uid}")}],
                "subject": {"reference": patient}, "encounter": {"reference": encounter},
                "started": when(admitted + Duration::hours(2)),
                "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": modality}],
                "numberOfSeries": 1, "numberOfInstances": 1,
                "series": [{"uid": series_uid, "number": 1,
                    "modality": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": modality},
                    "bodySite": {"system": SNOMED, "code": site, "display": site_display},
                    "numberOfInstances": 1,
                    "instance": [{"uid": format!("{series_uid}.1"), "number": 1,
                        "sopClass": {"system": "urn:ietf:rfc:3986", "code": "urn:oid:1.2.840.10008.5.1.4.1.1.1"}}]}],
            }));
        }
    }

    /// One set of vital signs at `at`; `worsening` from 0 (stable) to 1 (deteriorated).
    fn add_vitals(&mut self, encounter: &str, at: DateTime<Utc>, worsening: f64) {
        let vitals = Vitals::sample(&mut self.generator.rng, worsening);
        let patient = self.patient.clone();
        for observation in vital_signs(&vitals, &patient, encounter, at) {
            self.add(observation);
        }
    }

    /// A set of laboratory results at `at`, each with its reference range and interpretation.
    fn add_labs(&mut self, encounter: &str, at: DateTime<Utc>) {
        for lab in LABS {
            let value = self.generator.around(lab.mean, lab.spread).max(0.0);
            let (code, display) = if value < lab.low {
                ("L", "Low")
            } else if value > lab.high {
                ("H", "High")
            } else {
                ("N", "Normal")
            };
            let patient = self.patient.clone();
            self.add(json!({
                "resourceType": "Observation", "status": "final",
                "category": category("laboratory", "Laboratory"),
                "code": coding(LOINC, lab.code, lab.display),
                "subject": {"reference": patient}, "encounter": {"reference": encounter},
                "effectiveDateTime": when(at), "issued": when(at + Duration::hours(1)),
                "valueQuantity": quantity(value, lab.unit, lab.decimals),
                "interpretation": [coding("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", code, display)],
                "referenceRange": [{"low": quantity(lab.low, lab.unit, lab.decimals), "high": quantity(lab.high, lab.unit, lab.decimals)}],
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchor() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
            .map(|at| at.with_timezone(&Utc))
            .unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn every_generated_resource_is_valid_r4() {
        let mut bundles = vec![facility()];
        let mut generator = Generator::new(7, anchor());
        bundles.extend((0..34).map(|n| generator.patient(n)));
        let mut checked = 0;
        for bundle in &bundles {
            for entry in bundle["entry"].as_array().into_iter().flatten() {
                let resource = &entry["resource"];
                if let Err(issues) = fhir_model::check_resource(resource) {
                    panic!("{}: {issues:?}", resource);
                }
                checked += 1;
            }
        }
        assert!(checked > 3_000, "{checked}");
    }

    #[test]
    fn the_same_seed_gives_the_same_patients() {
        let one = Generator::new(42, anchor()).patient(3);
        let two = Generator::new(42, anchor()).patient(3);
        assert_eq!(one, two);
        assert_ne!(one, Generator::new(43, anchor()).patient(3));
    }

    #[test]
    fn inpatients_fill_the_beds_and_some_deteriorate() {
        let mut generator = Generator::new(1, anchor());
        let beds = beds().len();
        let patients: Vec<Value> = (0..beds + 2).map(|n| generator.patient(n)).collect();
        let in_hospital = |bundle: &Value| {
            bundle["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|entry| {
                    entry["resource"]["resourceType"] == "Encounter"
                        && entry["resource"]["status"] == "in-progress"
                })
        };
        assert!(patients[..beds].iter().all(in_hospital));
        assert!(!patients[beds..].iter().any(in_hospital));
        // The last respiratory rate of a deteriorating patient (index 3) is high.
        let rates: Vec<f64> = patients[3]["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["resource"]["code"]["coding"][0]["code"] == RESPIRATORY_RATE.code)
            .filter_map(|entry| entry["resource"]["valueQuantity"]["value"].as_f64())
            .collect();
        assert!(rates.last().copied().unwrap_or(0.0) >= 22.0, "{rates:?}");
    }
}
