//! The UCUM atoms and prefixes this crate knows, each defined by a factor over base units.
//!
//! A deliberately small table: the units clinical data uses (mass, length, volume, time,
//! temperature, pressure, amount, enzyme activity, the SI derived units, a few customary units),
//! from the UCUM specification's definitions. A symbol missing here makes its expression
//! non-convertible; it never guesses.

use rust_decimal::Decimal;

/// Base dimensions, in the order their symbols sort (ASCII), which is the order of the
/// canonical code.
pub const BASE_SYMBOLS: [&str; 8] = ["C", "K", "cd", "g", "m", "mol", "rad", "s"];

const C: usize = 0;
const K: usize = 1;
const CD: usize = 2;
const G: usize = 3;
const M: usize = 4;
const MOL: usize = 5;
const RAD: usize = 6;
const S: usize = 7;

/// Exponents of each base dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dimension(pub [i32; 8]);

impl Dimension {
    fn of(parts: &[(usize, i32)]) -> Self {
        let mut exponents = [0; 8];
        for &(base, exponent) in parts {
            exponents[base] += exponent;
        }
        Self(exponents)
    }

    /// `self × other^sign`.
    pub fn combine(self, other: Self, sign: i32) -> Option<Self> {
        let mut exponents = self.0;
        for (mine, theirs) in exponents.iter_mut().zip(other.0) {
            *mine = mine.checked_add(theirs.checked_mul(sign)?)?;
        }
        Some(Self(exponents))
    }

    /// `self^power`.
    pub fn pow(self, power: i32) -> Option<Self> {
        let mut exponents = self.0;
        for exponent in &mut exponents {
            *exponent = exponent.checked_mul(power)?;
        }
        Some(Self(exponents))
    }

    pub fn is_dimensionless(self) -> bool {
        self.0.iter().all(|&e| e == 0)
    }

    /// The canonical unit code: `g.m-3`, `s-1`, `1` when dimensionless.
    pub fn code(self) -> String {
        let parts: Vec<String> = BASE_SYMBOLS
            .iter()
            .zip(self.0)
            .filter(|&(_, exponent)| exponent != 0)
            .map(|(symbol, exponent)| {
                if exponent == 1 {
                    (*symbol).to_owned()
                } else {
                    format!("{symbol}{exponent}")
                }
            })
            .collect();
        if parts.is_empty() {
            "1".to_owned()
        } else {
            parts.join(".")
        }
    }
}

/// Units on a scale with an offset (UCUM "special" units): convertible only on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Celsius,
    Fahrenheit,
}

/// How an atom is defined: `factor` base units of `dimension` (numerator / denominator, both
/// exact decimals as text).
pub struct Atom {
    pub symbol: &'static str,
    pub numerator: &'static str,
    pub denominator: &'static str,
    pub dimension: &'static [(usize, i32)],
    /// Metric units take prefixes (`mg`, `kPa`); customary ones do not (`k[lb_av]` is invalid).
    pub metric: bool,
    pub special: Option<Special>,
}

impl Atom {
    pub fn dimension(&self) -> Dimension {
        Dimension::of(self.dimension)
    }

    pub fn numerator(&self) -> Option<Decimal> {
        self.numerator.parse().ok()
    }

    pub fn denominator(&self) -> Option<Decimal> {
        self.denominator.parse().ok()
    }
}

const fn atom(
    symbol: &'static str,
    numerator: &'static str,
    dimension: &'static [(usize, i32)],
    metric: bool,
) -> Atom {
    Atom {
        symbol,
        numerator,
        denominator: "1",
        dimension,
        metric,
        special: None,
    }
}

const fn ratio(
    symbol: &'static str,
    numerator: &'static str,
    denominator: &'static str,
    dimension: &'static [(usize, i32)],
    metric: bool,
) -> Atom {
    Atom {
        symbol,
        numerator,
        denominator,
        dimension,
        metric,
        special: None,
    }
}

const NONE: &[(usize, i32)] = &[];
const MASS: &[(usize, i32)] = &[(G, 1)];
const LENGTH: &[(usize, i32)] = &[(M, 1)];
const VOLUME: &[(usize, i32)] = &[(M, 3)];
const TIME: &[(usize, i32)] = &[(S, 1)];
const PRESSURE: &[(usize, i32)] = &[(G, 1), (M, -1), (S, -2)];
const ENERGY: &[(usize, i32)] = &[(G, 1), (M, 2), (S, -2)];
const AMOUNT: &[(usize, i32)] = &[(MOL, 1)];

/// Every atom known, by exact (case-sensitive) symbol.
pub const ATOMS: &[Atom] = &[
    // UCUM base units, and the mole (see the module documentation of `ucum`).
    atom("m", "1", LENGTH, true),
    atom("s", "1", TIME, true),
    atom("g", "1", MASS, true),
    atom("rad", "1", &[(RAD, 1)], true),
    atom("K", "1", &[(K, 1)], true),
    atom("C", "1", &[(C, 1)], true),
    atom("cd", "1", &[(CD, 1)], true),
    atom("mol", "1", AMOUNT, true),
    // Dimensionless numbers.
    atom("10*", "10", NONE, false),
    atom("10^", "10", NONE, false),
    ratio("%", "1", "100", NONE, false),
    ratio("[ppth]", "1", "1000", NONE, false),
    ratio("[ppm]", "1", "1000000", NONE, false),
    ratio("[ppb]", "1", "1000000000", NONE, false),
    atom("sr", "1", &[(RAD, 2)], true),
    // SI derived units.
    atom("Hz", "1", &[(S, -1)], true),
    atom("N", "1000", &[(G, 1), (M, 1), (S, -2)], true),
    atom("Pa", "1000", PRESSURE, true),
    atom("J", "1000", ENERGY, true),
    atom("W", "1000", &[(G, 1), (M, 2), (S, -3)], true),
    atom("A", "1", &[(C, 1), (S, -1)], true),
    atom("V", "1000", &[(G, 1), (M, 2), (S, -2), (C, -1)], true),
    atom("kat", "1", &[(MOL, 1), (S, -1)], true),
    // Volume and mass.
    ratio("L", "1", "1000", VOLUME, true),
    ratio("l", "1", "1000", VOLUME, true),
    atom("t", "1000000", MASS, true),
    atom("[lb_av]", "453.59237", MASS, false),
    atom("[oz_av]", "28.349523125", MASS, false),
    atom("[gr]", "0.06479891", MASS, false),
    atom("[gal_us]", "0.003785411784", VOLUME, false),
    atom("[foz_us]", "0.0000295735295625", VOLUME, false),
    atom("[pt_us]", "0.000473176473", VOLUME, false),
    atom("[tsp_us]", "0.00000492892159375", VOLUME, false),
    atom("[tbs_us]", "0.00001478676478125", VOLUME, false),
    atom("[cup_us]", "0.0002365882365", VOLUME, false),
    // Length.
    atom("[in_i]", "0.0254", LENGTH, false),
    atom("[ft_i]", "0.3048", LENGTH, false),
    atom("[yd_i]", "0.9144", LENGTH, false),
    atom("[mi_i]", "1609.344", LENGTH, false),
    atom("Ao", "0.0000000001", LENGTH, false),
    // Time: the Julian year and month, as UCUM defines `a` and `mo`.
    atom("min", "60", TIME, false),
    atom("h", "3600", TIME, false),
    atom("d", "86400", TIME, false),
    atom("wk", "604800", TIME, false),
    atom("mo", "2629800", TIME, false),
    atom("a", "31557600", TIME, false),
    atom("mo_j", "2629800", TIME, false),
    atom("a_j", "31557600", TIME, false),
    atom("mo_g", "2629746", TIME, false),
    atom("a_g", "31556952", TIME, false),
    // Pressure: a metre of mercury is 133.3220 kPa, of water 9.80665 kPa.
    atom("m[Hg]", "133322000", PRESSURE, true),
    atom("m[H2O]", "9806650", PRESSURE, true),
    atom("bar", "100000000", PRESSURE, true),
    atom("atm", "101325000", PRESSURE, false),
    // Amount: equivalents and osmoles count as moles; the enzyme unit is µmol/min.
    atom("eq", "1", AMOUNT, true),
    atom("osm", "1", AMOUNT, true),
    ratio("U", "0.000001", "60", &[(MOL, 1), (S, -1)], true),
    // Energy.
    atom("cal", "4184", ENERGY, true),
    atom("[Cal]", "4184000", ENERGY, false),
    // Temperature on offset scales.
    Atom {
        symbol: "Cel",
        numerator: "1",
        denominator: "1",
        dimension: &[(K, 1)],
        metric: true,
        special: Some(Special::Celsius),
    },
    Atom {
        symbol: "[degF]",
        numerator: "5",
        denominator: "9",
        dimension: &[(K, 1)],
        metric: false,
        special: Some(Special::Fahrenheit),
    },
];

/// UCUM prefixes (two-letter `da` first, so it wins over `d`).
pub const PREFIXES: &[(&str, &str)] = &[
    ("da", "10"),
    ("Y", "1000000000000000000000000"),
    ("Z", "1000000000000000000000"),
    ("E", "1000000000000000000"),
    ("P", "1000000000000000"),
    ("T", "1000000000000"),
    ("G", "1000000000"),
    ("M", "1000000"),
    ("k", "1000"),
    ("h", "100"),
    ("d", "0.1"),
    ("c", "0.01"),
    ("m", "0.001"),
    ("u", "0.000001"),
    ("n", "0.000000001"),
    ("p", "0.000000000001"),
    ("f", "0.000000000000001"),
    ("a", "0.000000000000000001"),
    ("z", "0.000000000000000000001"),
    ("y", "0.000000000000000000000001"),
];

/// The atom spelled exactly `symbol`.
pub fn find_atom(symbol: &str) -> Option<&'static Atom> {
    ATOMS.iter().find(|atom| atom.symbol == symbol)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_factor_is_a_valid_decimal() {
        for atom in ATOMS {
            assert!(atom.numerator().is_some(), "{}", atom.symbol);
            assert!(
                atom.denominator().is_some_and(|d| !d.is_zero()),
                "{}",
                atom.symbol
            );
        }
        for (prefix, factor) in PREFIXES {
            assert!(factor.parse::<Decimal>().is_ok(), "{prefix}");
        }
    }

    #[test]
    fn symbols_are_unique() {
        let mut symbols: Vec<_> = ATOMS.iter().map(|a| a.symbol).collect();
        symbols.sort_unstable();
        let before = symbols.len();
        symbols.dedup();
        assert_eq!(before, symbols.len());
    }

    #[test]
    fn codes_list_bases_in_symbol_order() {
        assert_eq!(Dimension::of(&[(M, -3), (G, 1)]).code(), "g.m-3");
        assert_eq!(
            Dimension::of(&[(S, -1), (MOL, 1), (M, -3)]).code(),
            "m-3.mol.s-1"
        );
        assert_eq!(Dimension::default().code(), "1");
        let mut sorted = BASE_SYMBOLS;
        sorted.sort_unstable();
        assert_eq!(sorted, BASE_SYMBOLS);
    }
}
