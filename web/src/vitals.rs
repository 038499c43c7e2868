//! Vital-sign Observations turned into the seven readings NEWS2 scores, and a patient's recent
//! readings kept so that the latest of each can be scored and the last few drawn as a trend.
//!
//! The codes are the ones Wardline writes (the generator and the ward simulator): LOINC for the
//! measurements, the blood pressure as the systolic component of the 85354-9 panel, the level
//! of consciousness as a SNOMED CT ACVPU finding under LOINC 67775-7, and supplemental oxygen
//! as the inhaled oxygen flow rate (LOINC 3151-8; 0 L/min is room air). Scoring itself is
//! `news2::score`, shared with the services, never redone here.

use std::collections::BTreeMap;

use news2::{Consciousness, Observations, ParameterScores};
use serde_json::Value;

use crate::fhir;

const LOINC: &str = "http://loinc.org";
const SNOMED: &str = "http://snomed.info/sct";

/// One of the seven NEWS2 parameters, in chart order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Vital {
    RespiratoryRate,
    Spo2,
    Oxygen,
    Systolic,
    Pulse,
    Consciousness,
    Temperature,
}

impl Vital {
    /// Chart order, as NEWS2 lists them.
    pub const ALL: [Vital; 7] = [
        Vital::RespiratoryRate,
        Vital::Spo2,
        Vital::Oxygen,
        Vital::Systolic,
        Vital::Pulse,
        Vital::Consciousness,
        Vital::Temperature,
    ];

    /// The value of the `data-vital` attribute tests find the reading by.
    pub fn hook(self) -> &'static str {
        match self {
            Vital::RespiratoryRate => "respiratory-rate",
            Vital::Spo2 => "spo2",
            Vital::Oxygen => "oxygen",
            Vital::Systolic => "systolic",
            Vital::Pulse => "pulse",
            Vital::Consciousness => "consciousness",
            Vital::Temperature => "temperature",
        }
    }

    /// Short label for a bed card.
    pub fn label(self) -> &'static str {
        match self {
            Vital::RespiratoryRate => "Resp",
            Vital::Spo2 => "SpO₂",
            Vital::Oxygen => "O₂",
            Vital::Systolic => "Sys BP",
            Vital::Pulse => "Pulse",
            Vital::Consciousness => "ACVPU",
            Vital::Temperature => "Temp",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Vital::RespiratoryRate | Vital::Pulse => "/min",
            Vital::Spo2 => "%",
            Vital::Oxygen => "L/min",
            Vital::Systolic => "mmHg",
            Vital::Consciousness => "",
            Vital::Temperature => "°C",
        }
    }

    /// The smallest value range a trend line spans, so that the noise of a stable patient
    /// (a pulse of 76 then 78) does not look like a swing.
    pub fn trend_span(self) -> f64 {
        match self {
            Vital::RespiratoryRate => 8.0,
            Vital::Spo2 => 6.0,
            Vital::Oxygen => 4.0,
            Vital::Systolic => 40.0,
            Vital::Pulse => 30.0,
            Vital::Consciousness => 4.0,
            Vital::Temperature => 2.0,
        }
    }

    /// This parameter's NEWS2 score in an assessment.
    pub fn score(self, scores: &ParameterScores) -> Option<u8> {
        match self {
            Vital::RespiratoryRate => scores.respiration_rate,
            Vital::Spo2 => scores.spo2,
            Vital::Oxygen => scores.air_or_oxygen,
            Vital::Systolic => scores.systolic_bp,
            Vital::Pulse => scores.pulse,
            Vital::Consciousness => scores.consciousness,
            Vital::Temperature => scores.temperature,
        }
    }

    /// A reading's value as the card shows it: whole numbers, temperature to one decimal,
    /// `Air` or the oxygen flow, the ACVPU letter.
    pub fn display(self, value: f64) -> String {
        match self {
            Vital::Temperature => format!("{value:.1}"),
            Vital::Oxygen if value <= 0.0 => "Air".to_owned(),
            Vital::Oxygen => format!("{value:.0}"),
            Vital::Consciousness => acvpu_letter(value).to_owned(),
            _ => format!("{value:.0}"),
        }
    }
}

/// The ACVPU levels in order of worsening, as the numbers a [`Reading`] of consciousness holds
/// (0 alert ... 4 unresponsive), with their SNOMED CT findings.
const ACVPU: [(Consciousness, &str, &str); 5] = [
    (Consciousness::Alert, "248234008", "A"),
    (Consciousness::Confusion, "130987000", "C"),
    (Consciousness::Voice, "300202002", "V"),
    (Consciousness::Pain, "450847001", "P"),
    (Consciousness::Unresponsive, "422768004", "U"),
];

fn acvpu_level(value: f64) -> Option<Consciousness> {
    ACVPU.get(value as usize).map(|(level, _, _)| *level)
}

fn acvpu_letter(value: f64) -> &'static str {
    ACVPU
        .get(value as usize)
        .map_or("?", |(_, _, letter)| letter)
}

/// One measured value of one parameter. Consciousness is held as its ACVPU level (0 alert to
/// 4 unresponsive) and oxygen as the flow in L/min (0: room air), so that every parameter can
/// be drawn the same way.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub vital: Vital,
    pub value: f64,
    /// When it was measured: seconds since the Unix epoch.
    pub at: i64,
    /// The Observation it came from, so that a new version of it replaces it.
    pub observation: String,
}

/// The reading an Observation carries, one parameter each (a blood-pressure panel gives its
/// systolic component); `None` when it is not a usable vital sign: another code, no value,
/// no time, entered in error.
pub fn reading(observation: &Value) -> Option<Reading> {
    if matches!(
        observation["status"].as_str(),
        Some("entered-in-error" | "cancelled" | "registered")
    ) {
        return None;
    }
    let code = &observation["code"];
    let loinc = |wanted: &str| fhir::has_coding(code, LOINC, wanted);
    let (vital, value) = if loinc("9279-1") {
        (
            Vital::RespiratoryRate,
            quantity(&observation["valueQuantity"])?,
        )
    } else if loinc("59408-5") || loinc("2708-6") {
        (Vital::Spo2, quantity(&observation["valueQuantity"])?)
    } else if loinc("3151-8") {
        (Vital::Oxygen, quantity(&observation["valueQuantity"])?)
    } else if loinc("8480-6") {
        (Vital::Systolic, quantity(&observation["valueQuantity"])?)
    } else if loinc("85354-9") {
        let systolic = observation["component"]
            .as_array()?
            .iter()
            .find(|component| fhir::has_coding(&component["code"], LOINC, "8480-6"))?;
        (Vital::Systolic, quantity(&systolic["valueQuantity"])?)
    } else if loinc("8867-4") {
        (Vital::Pulse, quantity(&observation["valueQuantity"])?)
    } else if loinc("67775-7") {
        let finding = &observation["valueCodeableConcept"];
        let level = ACVPU
            .iter()
            .position(|(_, snomed, _)| fhir::has_coding(finding, SNOMED, snomed))?;
        (Vital::Consciousness, level as f64)
    } else if loinc("8310-5") {
        (Vital::Temperature, celsius(&observation["valueQuantity"])?)
    } else {
        return None;
    };
    Some(Reading {
        vital,
        value,
        at: effective_time(observation)?,
        observation: observation["id"].as_str()?.to_owned(),
    })
}

fn quantity(quantity: &Value) -> Option<f64> {
    quantity["value"].as_f64().filter(|value| value.is_finite())
}

/// A temperature in °C, converted when it was recorded in °F.
fn celsius(quantity_value: &Value) -> Option<f64> {
    let value = quantity(quantity_value)?;
    Some(if quantity_value["code"] == "[degF]" {
        (value - 32.0) * 5.0 / 9.0
    } else {
        value
    })
}

/// When an Observation was made: `effectiveDateTime`, the start of `effectivePeriod`,
/// `effectiveInstant`, else when it was `issued`.
pub fn effective_time(observation: &Value) -> Option<i64> {
    [
        &observation["effectiveDateTime"],
        &observation["effectivePeriod"]["start"],
        &observation["effectiveInstant"],
        &observation["issued"],
    ]
    .into_iter()
    .find_map(|value| value.as_str().and_then(fhir::parse_time))
}

/// The readings of one patient: all of the last few of each parameter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VitalSigns {
    /// Oldest first.
    readings: BTreeMap<Vital, Vec<Reading>>,
}

impl VitalSigns {
    /// How many readings of each parameter are kept: enough for a trend line, few enough
    /// that a ward watched for days does not grow without end.
    pub const KEPT: usize = 24;

    /// How far back from the newest reading a trend line reaches, in seconds.
    pub const TREND_WINDOW: i64 = 24 * 3_600;

    /// Takes in a version of an Observation: its reading replaces any earlier reading from
    /// the same Observation (a correction), or disappears with it (entered in error).
    /// Returns whether anything changed.
    pub fn record(&mut self, observation: &Value) -> bool {
        let Some(id) = observation["id"].as_str() else {
            return false;
        };
        let removed = self.remove(id);
        let Some(reading) = reading(observation) else {
            return removed;
        };
        let series = self.readings.entry(reading.vital).or_default();
        let at = series.partition_point(|earlier| earlier.at <= reading.at);
        series.insert(at, reading);
        if series.len() > Self::KEPT {
            series.drain(..series.len() - Self::KEPT);
        }
        true
    }

    /// Forgets the reading of a deleted Observation. Returns whether there was one.
    pub fn remove(&mut self, observation: &str) -> bool {
        let mut removed = false;
        for series in self.readings.values_mut() {
            let before = series.len();
            series.retain(|reading| reading.observation != observation);
            removed |= series.len() != before;
        }
        removed
    }

    /// The newest reading of a parameter.
    pub fn latest(&self, vital: Vital) -> Option<&Reading> {
        self.readings.get(&vital)?.last()
    }

    /// The kept readings of a parameter, oldest first.
    pub fn series(&self, vital: Vital) -> &[Reading] {
        self.readings.get(&vital).map_or(&[], Vec::as_slice)
    }

    /// The readings of a parameter a trend line shows, oldest first: those of the day before
    /// the newest, so that a clinic visit months ago does not squash the stay into a corner.
    pub fn recent(&self, vital: Vital) -> &[Reading] {
        let series = self.series(vital);
        let Some(newest) = series.last() else {
            return series;
        };
        let start = series.partition_point(|reading| reading.at < newest.at - Self::TREND_WINDOW);
        &series[start..]
    }

    /// When the newest reading of any parameter was taken.
    pub fn last_taken(&self) -> Option<i64> {
        self.readings
            .values()
            .filter_map(|series| series.last())
            .map(|reading| reading.at)
            .max()
    }

    pub fn is_empty(&self) -> bool {
        self.readings.values().all(Vec::is_empty)
    }

    /// The latest reading of each parameter, as NEWS2 takes them.
    pub fn news2_observations(&self) -> Observations {
        let latest = |vital| self.latest(vital).map(|reading| reading.value);
        Observations {
            respiration_rate: latest(Vital::RespiratoryRate),
            spo2: latest(Vital::Spo2),
            on_oxygen: latest(Vital::Oxygen).map(|flow| flow > 0.0),
            systolic_bp: latest(Vital::Systolic),
            pulse: latest(Vital::Pulse),
            consciousness: latest(Vital::Consciousness).and_then(acvpu_level),
            temperature: latest(Vital::Temperature),
        }
    }

    /// The NEWS2 assessment of the latest readings; `None` before any reading.
    pub fn assessment(&self) -> Option<news2::Assessment> {
        (!self.is_empty()).then(|| news2::score(&self.news2_observations()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn observation(id: &str, code: &str, at: &str, value: Value) -> Value {
        let mut observation = json!({
            "resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "effectiveDateTime": at,
        });
        let object = observation.as_object_mut().unwrap();
        for (name, element) in value.as_object().unwrap() {
            object.insert(name.clone(), element.clone());
        }
        observation
    }

    fn measured(id: &str, code: &str, at: &str, value: f64) -> Value {
        observation(id, code, at, json!({"valueQuantity": {"value": value}}))
    }

    fn consciousness(id: &str, at: &str, snomed: &str) -> Value {
        observation(
            id,
            "67775-7",
            at,
            json!({"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": snomed}]}}),
        )
    }

    const T0: &str = "2026-06-01T08:00:00Z";
    const T1: &str = "2026-06-01T12:00:00Z";

    #[test]
    fn each_generated_code_gives_its_parameter() {
        let cases = [
            (
                measured("a", "9279-1", T0, 18.0),
                Vital::RespiratoryRate,
                18.0,
            ),
            (measured("b", "59408-5", T0, 95.0), Vital::Spo2, 95.0),
            (measured("c", "2708-6", T0, 93.0), Vital::Spo2, 93.0),
            (measured("d", "3151-8", T0, 4.0), Vital::Oxygen, 4.0),
            (measured("e", "8867-4", T0, 88.0), Vital::Pulse, 88.0),
            (measured("f", "8310-5", T0, 38.4), Vital::Temperature, 38.4),
            (measured("g", "8480-6", T0, 101.0), Vital::Systolic, 101.0),
            (
                consciousness("h", T0, "130987000"),
                Vital::Consciousness,
                1.0,
            ),
        ];
        for (resource, vital, value) in cases {
            let reading = reading(&resource).unwrap_or_else(|| panic!("{resource}"));
            assert_eq!((reading.vital, reading.value), (vital, value), "{resource}");
            assert_eq!(reading.at, fhir::parse_time(T0).unwrap());
        }
    }

    #[test]
    fn the_systolic_pressure_comes_from_the_panel_component() {
        let panel = observation(
            "bp",
            "85354-9",
            T0,
            json!({"component": [
                {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": {"value": 70}},
                {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": {"value": 96}},
            ]}),
        );
        let reading = reading(&panel).unwrap();
        assert_eq!((reading.vital, reading.value), (Vital::Systolic, 96.0));
    }

    #[test]
    fn unusable_observations_give_no_reading() {
        let lab = measured("x", "718-7", T0, 13.0);
        assert_eq!(reading(&lab), None);
        let mut in_error = measured("x", "8867-4", T0, 80.0);
        in_error["status"] = json!("entered-in-error");
        assert_eq!(reading(&in_error), None);
        let no_value = observation("x", "8867-4", T0, json!({}));
        assert_eq!(reading(&no_value), None);
        let mut no_time = measured("x", "8867-4", T0, 80.0);
        no_time.as_object_mut().unwrap().remove("effectiveDateTime");
        assert_eq!(reading(&no_time), None);
        let unknown_level = consciousness("x", T0, "1234");
        assert_eq!(reading(&unknown_level), None);
    }

    #[test]
    fn fahrenheit_temperatures_are_converted() {
        let observation = observation(
            "t",
            "8310-5",
            T0,
            json!({"valueQuantity": {"value": 100.4, "code": "[degF]"}}),
        );
        let reading = reading(&observation).unwrap();
        assert!((reading.value - 38.0).abs() < 1e-9, "{}", reading.value);
    }

    #[test]
    fn the_latest_reading_wins_whatever_the_order_they_arrive_in() {
        let mut vitals = VitalSigns::default();
        vitals.record(&measured("late", "8867-4", T1, 120.0));
        vitals.record(&measured("early", "8867-4", T0, 70.0));
        assert_eq!(vitals.latest(Vital::Pulse).unwrap().value, 120.0);
        let series: Vec<f64> = vitals
            .series(Vital::Pulse)
            .iter()
            .map(|r| r.value)
            .collect();
        assert_eq!(series, [70.0, 120.0]);
        assert_eq!(vitals.last_taken(), fhir::parse_time(T1));
    }

    #[test]
    fn a_new_version_replaces_its_reading_and_an_error_removes_it() {
        let mut vitals = VitalSigns::default();
        vitals.record(&measured("p", "8867-4", T0, 70.0));
        assert!(vitals.record(&measured("p", "8867-4", T0, 72.0)));
        assert_eq!(vitals.series(Vital::Pulse).len(), 1);
        assert_eq!(vitals.latest(Vital::Pulse).unwrap().value, 72.0);
        let mut in_error = measured("p", "8867-4", T0, 72.0);
        in_error["status"] = json!("entered-in-error");
        assert!(vitals.record(&in_error));
        assert!(vitals.is_empty());
        assert_eq!(vitals.assessment(), None);
    }

    #[test]
    fn trends_cover_the_last_day_before_the_newest_reading() {
        let mut vitals = VitalSigns::default();
        vitals.record(&measured("clinic", "8867-4", "2026-03-01T10:00:00Z", 70.0));
        vitals.record(&measured(
            "day-start",
            "8867-4",
            "2026-05-31T12:00:00Z",
            80.0,
        ));
        vitals.record(&measured("morning", "8867-4", T0, 90.0));
        vitals.record(&measured("noon", "8867-4", T1, 100.0));
        let recent: Vec<&str> = vitals
            .recent(Vital::Pulse)
            .iter()
            .map(|reading| reading.observation.as_str())
            .collect();
        assert_eq!(recent, ["day-start", "morning", "noon"]);
        assert!(vitals.recent(Vital::Spo2).is_empty());
    }

    #[test]
    fn only_the_newest_readings_are_kept() {
        let mut vitals = VitalSigns::default();
        for hour in 0..30 {
            let at = format!("2026-06-01T{:02}:00:00Z", hour % 24);
            let day = if hour < 24 { "01" } else { "02" };
            let at = at.replace("-01T", &format!("-{day}T"));
            vitals.record(&measured(&format!("o{hour}"), "9279-1", &at, hour as f64));
        }
        let series = vitals.series(Vital::RespiratoryRate);
        assert_eq!(series.len(), VitalSigns::KEPT);
        assert_eq!(series.first().unwrap().value, 6.0);
        assert_eq!(series.last().unwrap().value, 29.0);
    }

    #[test]
    fn the_latest_set_maps_onto_news2() {
        let mut vitals = VitalSigns::default();
        for resource in [
            measured("1", "9279-1", T1, 22.0),
            measured("2", "59408-5", T1, 93.0),
            measured("3", "3151-8", T1, 4.0),
            measured("4", "8480-6", T1, 105.0),
            measured("5", "8867-4", T1, 112.0),
            consciousness("6", T1, "248234008"),
            measured("7", "8310-5", T1, 38.3),
            // An older, worse consciousness reading does not count.
            consciousness("8", T0, "422768004"),
        ] {
            vitals.record(&resource);
        }
        let observations = vitals.news2_observations();
        assert_eq!(
            observations,
            Observations {
                respiration_rate: Some(22.0),
                spo2: Some(93.0),
                on_oxygen: Some(true),
                systolic_bp: Some(105.0),
                pulse: Some(112.0),
                consciousness: Some(Consciousness::Alert),
                temperature: Some(38.3),
            }
        );
        // 2 + 2 + 2 + 1 + 2 + 0 + 1, as news2 scores it.
        let assessment = vitals.assessment().unwrap();
        assert_eq!(assessment.total, 10);
        assert_eq!(assessment.risk, news2::Risk::High);
        assert!(assessment.alert && assessment.complete);
    }

    #[test]
    fn room_air_scores_nothing_and_new_confusion_alerts() {
        let mut vitals = VitalSigns::default();
        vitals.record(&measured("o2", "3151-8", T1, 0.0));
        vitals.record(&consciousness("c", T1, "130987000"));
        let observations = vitals.news2_observations();
        assert_eq!(observations.on_oxygen, Some(false));
        assert_eq!(observations.consciousness, Some(Consciousness::Confusion));
        let assessment = vitals.assessment().unwrap();
        assert_eq!(assessment.total, 3);
        assert_eq!(assessment.risk, news2::Risk::LowMedium);
        assert!(assessment.alert);
        assert!(!assessment.complete);
    }

    #[test]
    fn values_display_as_the_chart_reads_them() {
        assert_eq!(Vital::Temperature.display(38.04), "38.0");
        assert_eq!(Vital::Oxygen.display(0.0), "Air");
        assert_eq!(Vital::Oxygen.display(4.0), "4");
        assert_eq!(Vital::Consciousness.display(0.0), "A");
        assert_eq!(Vital::Consciousness.display(3.0), "P");
        assert_eq!(Vital::Pulse.display(88.4), "88");
    }
}
