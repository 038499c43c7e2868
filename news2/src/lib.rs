//! NEWS2, the National Early Warning Score 2 of the Royal College of Physicians (2017), as one
//! pure function: [`score`] takes one set of observations and gives each parameter's score, the
//! total, the clinical-risk band and whether to alert. The ward dashboard (compiled to wasm)
//! and the services share it, so a score is the same wherever it is shown.
//!
//! The chart, with SpO2 on scale 1 (scale 2, for patients with hypercapnic respiratory failure,
//! needs a clinician's decision this data does not carry):
//!
//! | parameter | 3 | 2 | 1 | 0 | 1 | 2 | 3 |
//! |---|---|---|---|---|---|---|---|
//! | respiration rate /min | ≤8 | | 9–11 | 12–20 | | 21–24 | ≥25 |
//! | SpO2 scale 1 % | ≤91 | 92–93 | 94–95 | ≥96 | | | |
//! | air or oxygen | | oxygen | | air | | | |
//! | systolic BP mmHg | ≤90 | 91–100 | 101–110 | 111–219 | | | ≥220 |
//! | pulse /min | ≤40 | | 41–50 | 51–90 | 91–110 | 111–130 | ≥131 |
//! | consciousness | | | | alert | | | new confusion, voice, pain, unresponsive |
//! | temperature °C | ≤35.0 | | 35.1–36.0 | 36.1–38.0 | 38.1–39.0 | ≥39.1 | |
//!
//! Measurements are rounded as the chart reads them: temperature to one decimal, the others to
//! whole numbers. Risk bands: 0–4 low, a 3 in any single parameter low–medium, 5–6 medium, 7 or
//! more high; the alert is raised at a total of 5 or a 3 in any parameter.

/// Level of consciousness on the ACVPU scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consciousness {
    Alert,
    /// New confusion (or new disorientation, agitation).
    Confusion,
    Voice,
    Pain,
    Unresponsive,
}

/// One set of observations; a parameter not measured is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Observations {
    /// Breaths per minute.
    pub respiration_rate: Option<f64>,
    /// Oxygen saturation, percent (scale 1).
    pub spo2: Option<f64>,
    /// Whether the patient breathes supplemental oxygen (`false`: room air).
    pub on_oxygen: Option<bool>,
    /// Systolic blood pressure, mmHg.
    pub systolic_bp: Option<f64>,
    /// Pulse (heart rate), beats per minute.
    pub pulse: Option<f64>,
    pub consciousness: Option<Consciousness>,
    /// Temperature, degrees Celsius.
    pub temperature: Option<f64>,
}

/// The clinical-risk band of a score, which decides the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Risk {
    /// Total 0–4, no parameter at 3: ward-based response.
    Low,
    /// A 3 in a single parameter (total under 5): urgent ward-based response.
    LowMedium,
    /// Total 5–6: key threshold for urgent response.
    Medium,
    /// Total 7 or more: urgent or emergency response.
    High,
}

impl Risk {
    /// The band's name as the chart gives it.
    pub fn label(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::LowMedium => "low-medium",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

/// The score of each parameter, in chart order, `None` where not measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParameterScores {
    pub respiration_rate: Option<u8>,
    pub spo2: Option<u8>,
    pub air_or_oxygen: Option<u8>,
    pub systolic_bp: Option<u8>,
    pub pulse: Option<u8>,
    pub consciousness: Option<u8>,
    pub temperature: Option<u8>,
}

impl ParameterScores {
    fn all(&self) -> [Option<u8>; 7] {
        [
            self.respiration_rate,
            self.spo2,
            self.air_or_oxygen,
            self.systolic_bp,
            self.pulse,
            self.consciousness,
            self.temperature,
        ]
    }
}

/// A scored set of observations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assessment {
    pub parameters: ParameterScores,
    /// The sum of the parameters measured.
    pub total: u8,
    /// Whether all seven parameters were measured (a NEWS2 proper); otherwise the total is a
    /// lower bound.
    pub complete: bool,
    pub risk: Risk,
    /// A total of 5 or more, or a 3 in any single parameter.
    pub alert: bool,
}

/// Scores one set of observations.
pub fn score(observations: &Observations) -> Assessment {
    let parameters = ParameterScores {
        respiration_rate: observations.respiration_rate.map(respiration_rate),
        spo2: observations.spo2.map(spo2_scale_1),
        air_or_oxygen: observations
            .on_oxygen
            .map(|oxygen| if oxygen { 2 } else { 0 }),
        systolic_bp: observations.systolic_bp.map(systolic_bp),
        pulse: observations.pulse.map(pulse),
        consciousness: observations.consciousness.map(consciousness),
        temperature: observations.temperature.map(temperature),
    };
    let scores = parameters.all();
    let total: u8 = scores.iter().flatten().sum();
    let red = scores.iter().flatten().any(|score| *score >= 3);
    let risk = match total {
        7.. => Risk::High,
        5..=6 => Risk::Medium,
        _ if red => Risk::LowMedium,
        _ => Risk::Low,
    };
    Assessment {
        parameters,
        total,
        complete: scores.iter().all(Option::is_some),
        risk,
        alert: total >= 5 || red,
    }
}

/// A measurement as the chart reads it: to whole numbers.
fn whole(value: f64) -> i64 {
    value.round() as i64
}

/// Breaths per minute.
pub fn respiration_rate(rate: f64) -> u8 {
    match whole(rate) {
        ..=8 => 3,
        9..=11 => 1,
        12..=20 => 0,
        21..=24 => 2,
        _ => 3,
    }
}

/// SpO2 on scale 1, percent.
pub fn spo2_scale_1(saturation: f64) -> u8 {
    match whole(saturation) {
        ..=91 => 3,
        92..=93 => 2,
        94..=95 => 1,
        _ => 0,
    }
}

/// Systolic blood pressure, mmHg.
pub fn systolic_bp(pressure: f64) -> u8 {
    match whole(pressure) {
        ..=90 => 3,
        91..=100 => 2,
        101..=110 => 1,
        111..=219 => 0,
        _ => 3,
    }
}

/// Pulse, beats per minute.
pub fn pulse(rate: f64) -> u8 {
    match whole(rate) {
        ..=40 => 3,
        41..=50 => 1,
        51..=90 => 0,
        91..=110 => 1,
        111..=130 => 2,
        _ => 3,
    }
}

pub fn consciousness(level: Consciousness) -> u8 {
    match level {
        Consciousness::Alert => 0,
        _ => 3,
    }
}

/// Temperature, °C, read to one decimal.
pub fn temperature(celsius: f64) -> u8 {
    let tenths = (celsius * 10.0).round() as i64;
    match tenths {
        ..=350 => 3,
        351..=360 => 1,
        361..=380 => 0,
        381..=390 => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests;
