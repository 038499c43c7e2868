//! A parser for UCUM unit expressions (the case-sensitive syntax, `c/s`).
//!
//! Grammar, after the UCUM specification §2–§7:
//!
//! ```text
//! expression := '/' term | term
//! term       := component (('.' | '/') component)*      left to right: a/b/c = (a/b)/c
//! component  := '(' term ')' | annotation | unit annotation? | integer annotation?
//! unit       := [prefix] atom [exponent]                 exponent applies to prefix and atom
//! annotation := '{' anything but braces '}'               means 1
//! ```
//!
//! Each component becomes an exact fraction of base units, so the result of a whole expression
//! is one factor and one dimension ([`Unit`]). Input is bounded (length, nesting, exponents), so
//! odd codes cost little and never overflow the stack.

use rust_decimal::Decimal;

use crate::ucum::units::{self, Dimension, Special};

/// Longest unit expression considered.
const MAX_LEN: usize = 128;
/// Deepest parenthesis nesting considered.
const MAX_DEPTH: usize = 8;
/// Largest exponent magnitude considered (`m3`, `10*12`, not `10*99`).
const MAX_EXPONENT: i32 = 24;

/// An exact positive factor, kept as a fraction so that dividing by `min` (60 s) happens once,
/// at the end, instead of rounding at every step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Factor {
    pub numerator: Decimal,
    pub denominator: Decimal,
}

impl Factor {
    const ONE: Self = Self {
        numerator: Decimal::ONE,
        denominator: Decimal::ONE,
    };

    /// The product; `None` on overflow, or on underflow (a product of factors below 10^-28
    /// would round to zero).
    fn times(self, other: Self) -> Option<Self> {
        let numerator = self.numerator.checked_mul(other.numerator)?.normalize();
        let denominator = self.denominator.checked_mul(other.denominator)?.normalize();
        (!numerator.is_zero() && !denominator.is_zero()).then_some(Self {
            numerator,
            denominator,
        })
    }

    fn inverse(self) -> Self {
        Self {
            numerator: self.denominator,
            denominator: self.numerator,
        }
    }

    fn pow(self, exponent: i32) -> Option<Self> {
        let mut result = Self::ONE;
        for _ in 0..exponent.unsigned_abs() {
            result = result.times(self)?;
        }
        Some(if exponent < 0 {
            result.inverse()
        } else {
            result
        })
    }
}

/// A parsed unit expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    pub factor: Factor,
    pub dimension: Dimension,
    /// Set when the expression is exactly one offset-scale unit (`Cel`, `[degF]`).
    pub special: Option<Special>,
}

impl Unit {
    const ONE: Self = Self {
        factor: Factor::ONE,
        dimension: Dimension([0; 8]),
        special: None,
    };

    fn combine(self, other: Self, divide: bool) -> Option<Self> {
        if self.special.is_some() || other.special.is_some() {
            return None;
        }
        let factor = if divide {
            other.factor.inverse()
        } else {
            other.factor
        };
        Some(Self {
            factor: self.factor.times(factor)?,
            dimension: self
                .dimension
                .combine(other.dimension, if divide { -1 } else { 1 })?,
            special: None,
        })
    }
}

/// Parses `code`; `None` when it is not a UCUM expression made of known atoms.
pub fn parse(code: &str) -> Option<Unit> {
    if code.is_empty() || code.len() > MAX_LEN {
        return None;
    }
    let mut parser = Parser {
        text: code,
        at: 0,
        depth: 0,
    };
    let unit = if parser.eat('/') {
        Unit::ONE.combine(parser.term()?, true)?
    } else {
        parser.term()?
    };
    (parser.at == code.len()).then_some(unit)
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn eat(&mut self, ch: char) -> bool {
        if self.peek() == Some(ch) {
            self.at += ch.len_utf8();
            true
        } else {
            false
        }
    }

    fn term(&mut self) -> Option<Unit> {
        let mut unit = self.component()?;
        loop {
            if self.eat('.') {
                unit = unit.combine(self.component()?, false)?;
            } else if self.eat('/') {
                unit = unit.combine(self.component()?, true)?;
            } else {
                return Some(unit);
            }
        }
    }

    fn component(&mut self) -> Option<Unit> {
        if self.eat('(') {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return None;
            }
            let inner = self.term()?;
            if !self.eat(')') {
                return None;
            }
            self.depth -= 1;
            return Some(inner);
        }
        if self.peek() == Some('{') {
            self.annotation()?;
            return Some(Unit::ONE);
        }
        let symbol = self.simple_unit_text()?;
        let unit = resolve(symbol)?;
        if self.peek() == Some('{') {
            self.annotation()?;
        }
        Some(unit)
    }

    /// Skips `{...}`.
    fn annotation(&mut self) -> Option<()> {
        let rest = &self.text[self.at..];
        let close = rest.find('}')?;
        if rest[1..close].contains('{') {
            return None;
        }
        self.at += close + 1;
        Some(())
    }

    /// The text of one unit with its exponent: up to the next operator, parenthesis or brace;
    /// square brackets are taken whole (`[in_i]`, `m[Hg]`).
    fn simple_unit_text(&mut self) -> Option<&str> {
        let start = self.at;
        let bytes = self.text.as_bytes();
        while let Some(&byte) = bytes.get(self.at) {
            match byte {
                b'.' | b'/' | b'(' | b')' | b'{' | b'}' => break,
                b'[' => {
                    let close = self.text[self.at..].find(']')?;
                    self.at += close + 1;
                }
                b']' | b' ' => return None,
                _ => self.at += 1,
            }
        }
        (self.at > start).then(|| &self.text[start..self.at])
    }
}

/// A simple unit (`mg`, `m2`, `10*3`, `[in_i]`, `s-1`) or an integer factor (`100`).
fn resolve(text: &str) -> Option<Unit> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let value: Decimal = text.parse().ok()?;
        return Some(Unit {
            factor: Factor {
                numerator: value,
                denominator: Decimal::ONE,
            },
            ..Unit::ONE
        });
    }
    let (symbol, exponent) = split_exponent(text)?;
    let unit = prefixed_atom(symbol)?;
    if exponent == 1 {
        return Some(unit);
    }
    if unit.special.is_some() {
        return None;
    }
    Some(Unit {
        factor: unit.factor.pow(exponent)?,
        dimension: unit.dimension.pow(exponent)?,
        special: None,
    })
}

/// `m2` → (`m`, 2); `s-1` → (`s`, -1); `10*3` → (`10*`, 3); `mg` → (`mg`, 1).
fn split_exponent(text: &str) -> Option<(&str, i32)> {
    let digits_start = text
        .char_indices()
        .rev()
        .take_while(|(_, ch)| ch.is_ascii_digit())
        .last()
        .map_or(text.len(), |(at, _)| at);
    if digits_start == text.len() {
        return Some((text, 1));
    }
    let mut symbol_end = digits_start;
    let mut negative = false;
    if let Some(sign) = text[..digits_start].chars().last()
        && (sign == '+' || sign == '-')
    {
        negative = sign == '-';
        symbol_end -= 1;
    }
    if symbol_end == 0 {
        return None;
    }
    let magnitude: i32 = text[digits_start..].parse().ok()?;
    if magnitude > MAX_EXPONENT {
        return None;
    }
    Some((
        &text[..symbol_end],
        if negative { -magnitude } else { magnitude },
    ))
}

/// An atom, or a metric atom behind a prefix (`mg`, `kPa`, `mm[Hg]`, `dL`).
fn prefixed_atom(symbol: &str) -> Option<Unit> {
    if let Some(atom) = units::find_atom(symbol) {
        return atom_unit(atom, Factor::ONE);
    }
    for (prefix, value) in units::PREFIXES {
        if let Some(rest) = symbol.strip_prefix(prefix)
            && let Some(atom) = units::find_atom(rest)
            && atom.metric
            && atom.special.is_none()
        {
            let factor = Factor {
                numerator: value.parse().ok()?,
                denominator: Decimal::ONE,
            };
            return atom_unit(atom, factor);
        }
    }
    None
}

fn atom_unit(atom: &units::Atom, prefix: Factor) -> Option<Unit> {
    let own = Factor {
        numerator: atom.numerator()?,
        denominator: atom.denominator()?,
    };
    Some(Unit {
        factor: prefix.times(own)?,
        dimension: atom.dimension(),
        special: atom.special,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_exponents_from_symbols() {
        assert_eq!(split_exponent("m2"), Some(("m", 2)));
        assert_eq!(split_exponent("s-1"), Some(("s", -1)));
        assert_eq!(split_exponent("m+3"), Some(("m", 3)));
        assert_eq!(split_exponent("10*3"), Some(("10*", 3)));
        assert_eq!(split_exponent("10*-6"), Some(("10*", -6)));
        assert_eq!(split_exponent("mg"), Some(("mg", 1)));
        assert_eq!(split_exponent("[in_i]2"), Some(("[in_i]", 2)));
        assert_eq!(split_exponent("-2"), None);
        assert_eq!(split_exponent("m25"), None);
    }

    #[test]
    fn atoms_win_over_prefix_readings() {
        // `Pa` is the pascal, not peta-year; `cd` the candela, not centi-day; `h` the hour.
        let pascal = parse("Pa").unwrap();
        assert_eq!(pascal.dimension.code(), "g.m-1.s-2");
        assert_eq!(parse("cd").unwrap().dimension.code(), "cd");
        assert_eq!(parse("h").unwrap().dimension.code(), "s");
        assert_eq!(parse("dam").unwrap().factor.numerator, Decimal::from(10));
    }

    #[test]
    fn special_units_only_stand_alone() {
        assert_eq!(parse("Cel").unwrap().special, Some(Special::Celsius));
        assert_eq!(parse("[degF]").unwrap().special, Some(Special::Fahrenheit));
        assert!(parse("Cel2").is_none());
        assert!(parse("Cel/s").is_none());
        assert!(parse("mCel").is_none());
        assert!(parse("/Cel").is_none());
    }

    #[test]
    fn factors_too_small_or_too_large_are_refused() {
        assert!(parse("ym3").is_none());
        assert!(parse("Ym3").is_none());
        assert!(parse("ym").is_some());
    }
}
