//! UCUM unit expressions reduced to base units, so quantities in different units compare.
//!
//! `value-quantity=5.4|http://unitsofmeasure.org|mmol/L` should find 5.4 mmol/L, and a search in
//! `mg/dL` should find values recorded in `g/L`. Quantity rows therefore carry, beside the value
//! as written, the value in canonical units: the unit expression is parsed ([`parser`]) into a
//! factor and a dimension over base units ([`units`]), and the value is multiplied out with exact
//! decimal arithmetic (1.5 mg is 0.0015 g, not a binary approximation of it). The query service
//! calls [`canonicalize`] on the searched value, so both sides agree.
//!
//! Canonical codes are products of base units in UCUM syntax, sorted by symbol, with exponents
//! (`g.m-3` for mg/dL, `m3.s-1` for mL/min, `1` for dimensionless units such as `%` or
//! `{score}`). Base units are UCUM's (`m`, `s`, `g`, `rad`, `K`, `C`, `cd`) plus `mol`: UCUM
//! defines the mole as a plain number (6.0221367e23), which would turn every concentration into a
//! 24-digit count per cubic metre; keeping `mol` as a base is equivalent for comparison and keeps
//! values readable. Temperatures (`Cel`, `[degF]`) convert to kelvin with their offset, and only
//! as a whole expression (`Cel/h` has no canonical form here). Arbitrary units (`[iU]`), unknown
//! symbols and malformed expressions have no canonical form: the caller stores `None`.

pub mod parser;
pub mod units;

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::ucum::units::Special;

/// UCUM's code system URI, the `system` of quantities whose `code` is a UCUM expression.
pub const UCUM_SYSTEM: &str = "http://unitsofmeasure.org";

/// A value in canonical units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    /// The value as a plain decimal string without trailing zeros (`0.0015`).
    pub value: String,
    /// The canonical unit code (`g`, `g.m-3`, `K`, `1`).
    pub code: String,
}

/// `value` (decimal text) in the unit `code`, converted to canonical base units; `None` when the
/// code is not a UCUM expression this knows, or the value is not a decimal or too large.
pub fn canonicalize(value: &str, code: &str) -> Option<Canonical> {
    let unit = parser::parse(code)?;
    let value = parse_decimal(value)?;
    let converted = match unit.special {
        Some(Special::Celsius) => value.checked_add(Decimal::from_str("273.15").ok()?)?,
        Some(Special::Fahrenheit) => {
            // K = (°F + 459.67) × 5/9
            let shifted = value.checked_add(Decimal::from_str("459.67").ok()?)?;
            shifted
                .checked_mul(Decimal::from(5))?
                .checked_div(Decimal::from(9))?
        }
        None => value
            .checked_mul(unit.factor.numerator)?
            .checked_div(unit.factor.denominator)?,
    };
    Some(Canonical {
        value: converted.normalize().to_string(),
        code: unit.dimension.code(),
    })
}

/// A decimal in plain or scientific notation, `None` when out of `Decimal`'s range.
fn parse_decimal(text: &str) -> Option<Decimal> {
    if !crate::normalize::decimal::is_decimal(text) {
        return None;
    }
    if text.contains(['e', 'E']) {
        Decimal::from_scientific(text).ok()
    } else {
        Decimal::from_str(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(value: &str, code: &str) -> Option<(String, String)> {
        canonicalize(value, code).map(|c| (c.value, c.code))
    }

    fn some(value: &str, code: &str) -> Option<(String, String)> {
        Some((value.to_owned(), code.to_owned()))
    }

    #[test]
    fn converts_to_base_units_exactly() {
        let cases = [
            // mass
            ("1.5", "mg", some("0.0015", "g")),
            ("1.50", "mg", some("0.0015", "g")),
            ("70", "kg", some("70000", "g")),
            ("250", "ug", some("0.00025", "g")),
            ("3", "ng", some("0.000000003", "g")),
            ("2", "[lb_av]", some("907.18474", "g")),
            ("1", "[oz_av]", some("28.349523125", "g")),
            ("1", "g", some("1", "g")),
            // length
            ("180", "cm", some("1.8", "m")),
            ("2", "mm", some("0.002", "m")),
            ("1.2", "km", some("1200", "m")),
            ("10", "[in_i]", some("0.254", "m")),
            ("6", "[ft_i]", some("1.8288", "m")),
            // volume
            ("1", "L", some("0.001", "m3")),
            ("250", "mL", some("0.00025", "m3")),
            ("1", "dL", some("0.0001", "m3")),
            ("5", "uL", some("0.000000005", "m3")),
            ("1", "l", some("0.001", "m3")),
            // time
            ("90", "s", some("90", "s")),
            ("2", "min", some("120", "s")),
            ("1.5", "h", some("5400", "s")),
            ("1", "d", some("86400", "s")),
            ("2", "wk", some("1209600", "s")),
            ("1", "mo", some("2629800", "s")),
            ("1", "a", some("31557600", "s")),
            // temperature, affine
            ("37", "Cel", some("310.15", "K")),
            ("98.6", "[degF]", some("310.15", "K")),
            ("-40", "[degF]", some("233.15", "K")),
            ("300", "K", some("300", "K")),
            // pressure
            ("120", "mm[Hg]", some("15998640", "g.m-1.s-2")),
            ("1", "kPa", some("1000000", "g.m-1.s-2")),
            ("1000", "Pa", some("1000000", "g.m-1.s-2")),
            // amount and concentration
            ("5.5", "mmol/L", some("5.5", "m-3.mol")),
            ("1", "mol", some("1", "mol")),
            ("200", "umol", some("0.0002", "mol")),
            ("1", "mg/dL", some("10", "g.m-3")),
            ("10", "mg/L", some("10", "g.m-3")),
            ("1", "g/dL", some("10000", "g.m-3")),
            ("10", "g/L", some("10000", "g.m-3")),
            ("7.2", "10*3/uL", some("7200000000000", "m-3")),
            ("7.2", "10*9/L", some("7200000000000", "m-3")),
            ("4.5", "10*6/uL", some("4500000000000000", "m-3")),
            // dimensionless
            ("45", "%", some("0.45", "1")),
            ("7", "{score}", some("7", "1")),
            ("3", "1", some("3", "1")),
            // products and quotients
            ("24.5", "kg/m2", some("24500", "g.m-2")),
            ("72", "/min", some("1.2", "s-1")),
            ("72", "{beats}/min", some("1.2", "s-1")),
            ("90", "mL/min", some("0.0000015", "m3.s-1")),
            ("90", "mL/min/{1.73_m2}", some("0.0000015", "m3.s-1")),
            ("30", "U/L", some("0.0005", "m-3.mol.s-1")),
            ("2", "kg.m/s2", some("2000", "g.m.s-2")),
            ("2", "kg.m.s-2", some("2000", "g.m.s-2")),
            ("1", "m2", some("1", "m2")),
            ("1", "cm3", some("0.000001", "m3")),
            ("1", "(mg/dL)", some("10", "g.m-3")),
            ("1", "g/(dL)", some("10000", "g.m-3")),
            ("1", "mg/g", some("0.001", "1")),
            ("80", "fL", some("0.00000000000000008", "m3")),
            ("1", "10*-3", some("0.001", "1")),
            ("1", "10^3", some("1000", "1")),
            ("1", "10*", some("10", "1")),
            ("1", "10*3{cells}/uL", some("1000000000000", "m-3")),
            // scientific notation in the value
            ("1.5e3", "mg", some("1.5", "g")),
        ];
        for (value, code, expected) in cases {
            assert_eq!(canon(value, code), expected, "{value} {code}");
        }
    }

    #[test]
    fn equal_quantities_in_different_units_meet() {
        let pairs = [
            (("1", "mg/dL"), ("10", "mg/L")),
            (("1", "g/L"), ("100", "mg/dL")),
            (("37", "Cel"), ("98.6", "[degF]")),
            (("1", "kg"), ("1000", "g")),
            (("1000", "mL"), ("1", "L")),
            (("60", "/min"), ("1", "/s")),
            (("1", "h"), ("60", "min")),
            (("5", "10*9/L"), ("5", "10*3/uL")),
            (("1", "mmol/L"), ("1", "umol/mL")),
        ];
        for ((v1, u1), (v2, u2)) in pairs {
            let a = canon(v1, u1);
            assert!(a.is_some(), "{v1} {u1}");
            assert_eq!(a, canon(v2, u2), "{v1} {u1} = {v2} {u2}");
        }
        assert_ne!(canon("1", "mg/dL"), canon("1", "mg/L"));
    }

    #[test]
    fn repeating_decimals_round_once_at_the_end() {
        // 1/60 never terminates; dividing once keeps 28 significant digits.
        let (value, code) = canon("1", "/min").unwrap();
        assert_eq!(code, "s-1");
        assert!(value.starts_with("0.016666666666666666"), "{value}");
        let (value, _) = canon("100", "[degF]").unwrap();
        assert!(value.starts_with("310.927777777"), "{value}");
    }

    #[test]
    fn unknown_or_malformed_units_have_no_canonical_form() {
        for code in [
            "",
            "beats/min",
            "mg/",
            "/",
            "mg//dL",
            "(mg",
            "mg)",
            "{unclosed",
            "[iU]",
            "[IU]/L",
            "kmin",
            "k[lb_av]",
            "Cel/h",
            "mCel.s",
            "(score)",
            "pH",
            "mg dL",
            "m99999",
            "Ym10",
            "xyz",
            "µg",
        ] {
            assert_eq!(canon("1", code), None, "{code:?}");
        }
        assert_eq!(canon("abc", "mg"), None);
        assert_eq!(canon("1e400", "mg"), None);
        assert_eq!(canon(&"9".repeat(40), "kg"), None);
    }

    #[test]
    fn deep_or_long_expressions_are_refused_not_overflowed() {
        let deep = format!("{}g{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_eq!(canon("1", &deep), None);
        let long = "g.".repeat(10_000) + "g";
        assert_eq!(canon("1", &long), None);
    }
}
