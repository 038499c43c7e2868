//! Every band boundary of the chart, from both sides, and the aggregate rules.

use super::*;

/// (value, expected score) for a parameter function.
fn check(name: &str, score: fn(f64) -> u8, table: &[(f64, u8)]) {
    for &(value, expected) in table {
        assert_eq!(score(value), expected, "{name} {value}");
    }
}

#[test]
fn respiration_rate_bands() {
    check(
        "respiration rate",
        respiration_rate,
        &[
            (0.0, 3),
            (8.0, 3),
            (9.0, 1),
            (11.0, 1),
            (12.0, 0),
            (20.0, 0),
            (21.0, 2),
            (24.0, 2),
            (25.0, 3),
            (60.0, 3),
            // Read as whole numbers.
            (8.4, 3),
            (8.5, 1),
            (20.4, 0),
            (20.5, 2),
        ],
    );
}

#[test]
fn spo2_scale_1_bands() {
    check(
        "SpO2",
        spo2_scale_1,
        &[
            (70.0, 3),
            (91.0, 3),
            (92.0, 2),
            (93.0, 2),
            (94.0, 1),
            (95.0, 1),
            (96.0, 0),
            (100.0, 0),
            (95.6, 0),
            (91.4, 3),
        ],
    );
}

#[test]
fn systolic_blood_pressure_bands() {
    check(
        "systolic BP",
        systolic_bp,
        &[
            (60.0, 3),
            (90.0, 3),
            (91.0, 2),
            (100.0, 2),
            (101.0, 1),
            (110.0, 1),
            (111.0, 0),
            (219.0, 0),
            (220.0, 3),
            (250.0, 3),
        ],
    );
}

#[test]
fn pulse_bands() {
    check(
        "pulse",
        pulse,
        &[
            (30.0, 3),
            (40.0, 3),
            (41.0, 1),
            (50.0, 1),
            (51.0, 0),
            (90.0, 0),
            (91.0, 1),
            (110.0, 1),
            (111.0, 2),
            (130.0, 2),
            (131.0, 3),
            (180.0, 3),
        ],
    );
}

#[test]
fn temperature_bands_read_to_one_decimal() {
    check(
        "temperature",
        temperature,
        &[
            (33.0, 3),
            (35.0, 3),
            (35.1, 1),
            (36.0, 1),
            (36.1, 0),
            (38.0, 0),
            (38.1, 1),
            (39.0, 1),
            (39.1, 2),
            (41.0, 2),
            (35.04, 3),
            (35.05, 1),
            (38.04, 0),
        ],
    );
}

#[test]
fn air_oxygen_and_consciousness() {
    let on = |oxygen| {
        score(&Observations {
            on_oxygen: Some(oxygen),
            ..Observations::default()
        })
        .parameters
        .air_or_oxygen
    };
    assert_eq!((on(false), on(true)), (Some(0), Some(2)));
    assert_eq!(consciousness(Consciousness::Alert), 0);
    for level in [
        Consciousness::Confusion,
        Consciousness::Voice,
        Consciousness::Pain,
        Consciousness::Unresponsive,
    ] {
        assert_eq!(consciousness(level), 3, "{level:?}");
    }
}

fn normal() -> Observations {
    Observations {
        respiration_rate: Some(16.0),
        spo2: Some(97.0),
        on_oxygen: Some(false),
        systolic_bp: Some(125.0),
        pulse: Some(72.0),
        consciousness: Some(Consciousness::Alert),
        temperature: Some(36.8),
    }
}

#[test]
fn risk_bands_and_the_alert() {
    let assessed = score(&normal());
    assert_eq!(
        (
            assessed.total,
            assessed.risk,
            assessed.alert,
            assessed.complete
        ),
        (0, Risk::Low, false, true)
    );

    // 4 from ones and twos: low, no alert.
    let four = score(&Observations {
        respiration_rate: Some(22.0),
        pulse: Some(95.0),
        temperature: Some(38.5),
        ..normal()
    });
    assert_eq!((four.total, four.risk, four.alert), (4, Risk::Low, false));

    // A single 3: low-medium, and the alert.
    let red = score(&Observations {
        consciousness: Some(Consciousness::Confusion),
        ..normal()
    });
    assert_eq!((red.total, red.risk, red.alert), (3, Risk::LowMedium, true));

    // 5 and 6: medium.
    let five = score(&Observations {
        respiration_rate: Some(22.0),
        on_oxygen: Some(true),
        pulse: Some(95.0),
        ..normal()
    });
    assert_eq!((five.total, five.risk, five.alert), (5, Risk::Medium, true));
    let six = score(&Observations {
        respiration_rate: Some(22.0),
        on_oxygen: Some(true),
        pulse: Some(115.0),
        ..normal()
    });
    assert_eq!((six.total, six.risk), (6, Risk::Medium));

    // 7 and more: high.
    let seven = score(&Observations {
        respiration_rate: Some(26.0),
        on_oxygen: Some(true),
        pulse: Some(115.0),
        ..normal()
    });
    assert_eq!(
        (seven.total, seven.risk, seven.alert),
        (7, Risk::High, true)
    );
    let worst = score(&Observations {
        respiration_rate: Some(30.0),
        spo2: Some(85.0),
        on_oxygen: Some(true),
        systolic_bp: Some(85.0),
        pulse: Some(140.0),
        consciousness: Some(Consciousness::Unresponsive),
        temperature: Some(34.0),
    });
    assert_eq!((worst.total, worst.risk), (20, Risk::High));
    assert_eq!(Risk::LowMedium.label(), "low-medium");
}

#[test]
fn missing_parameters_leave_the_score_incomplete() {
    let partial = score(&Observations {
        respiration_rate: Some(26.0),
        ..Observations::default()
    });
    assert_eq!(
        (partial.total, partial.complete, partial.alert),
        (3, false, true)
    );
    assert_eq!(partial.parameters.pulse, None);
    let empty = score(&Observations::default());
    assert_eq!(
        (empty.total, empty.complete, empty.risk, empty.alert),
        (0, false, Risk::Low, false)
    );
}
