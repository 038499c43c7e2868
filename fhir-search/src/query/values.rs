//! One search value, as a client writes it, turned into what the index tables compare.
//!
//! The rules are search.html's: `\` escapes `,` `$` `|` and itself; dates and numbers take a
//! two-letter prefix (`ge2020`, `lt5.4`); a number's precision gives it an implicit range
//! (`100` means [99.5, 100.5)); a quantity is `[prefix]number|system|code`; a token is `code`,
//! `system|code`, `|code` or `system|`; a reference is `id`, `Type/id` or an absolute URL.
//! Nothing here touches a database: the query service turns these into SQL and the notifier
//! can match them against a resource's index rows in memory.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::normalize::date::parse_span;
use crate::normalize::string::normalize;
use crate::ucum;

/// A comparison prefix of date, number and quantity values (search.html, "prefix").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

impl Prefix {
    const ALL: [(&'static str, Prefix); 9] = [
        ("eq", Prefix::Eq),
        ("ne", Prefix::Ne),
        ("gt", Prefix::Gt),
        ("lt", Prefix::Lt),
        ("ge", Prefix::Ge),
        ("le", Prefix::Le),
        ("sa", Prefix::Sa),
        ("eb", Prefix::Eb),
        ("ap", Prefix::Ap),
    ];

    /// Splits a leading prefix off `value` (`eq` when there is none).
    pub fn split(value: &str) -> (Prefix, &str) {
        for (text, prefix) in Self::ALL {
            if let Some(rest) = value.strip_prefix(text) {
                return (prefix, rest);
            }
        }
        (Prefix::Eq, value)
    }

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, prefix)| *prefix == self)
            .map_or("eq", |(text, _)| text)
    }
}

/// Why a value cannot be searched with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn error(message: impl Into<String>) -> ValueError {
    ValueError(message.into())
}

/// Splits `text` at unescaped `separator`s, keeping escapes in the parts (they are removed by
/// [`unescape`] once the part is split further, if at all).
pub fn split_unescaped(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == separator {
            parts.push(&text[start..at]);
            start = at + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Removes search escapes: `\,` `\$` `\|` `\\` become the character itself.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(next) => out.push(next),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// How a string value matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMatch {
    /// The default: the folded value starts with the folded search value.
    Prefix,
    /// `:exact`: the value as written equals the search value.
    Exact,
    /// `:contains`: the folded value contains the folded search value.
    Contains,
}

/// A string search value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringValue {
    pub mode: StringMatch,
    /// The value as written (for `:exact`).
    pub exact: String,
    /// Case- and accent-folded (for the default match and `:contains`).
    pub normalized: String,
}

impl StringValue {
    pub fn parse(raw: &str, mode: StringMatch) -> Result<Self, ValueError> {
        let exact = unescape(raw);
        if exact.is_empty() {
            return Err(error("a string search needs a value"));
        }
        Ok(Self {
            mode,
            normalized: normalize(&exact),
            exact,
        })
    }
}

/// A token search value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenValue {
    /// `code`: any system.
    Code(String),
    /// `system|code`; `|code` is a code with no system (`system` empty).
    SystemCode { system: String, code: String },
    /// `system|`: any code of the system.
    System(String),
    /// `:text`: the display text starts with this (folded).
    Text(String),
    /// `:of-type` on identifiers: `type-system|type-code|value`.
    OfType {
        type_system: String,
        type_code: String,
        value: String,
    },
}

impl TokenValue {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let parts = split_unescaped(raw, '|');
        match parts.as_slice() {
            [code] if !code.is_empty() => Ok(Self::Code(unescape(code))),
            [system, code] if !code.is_empty() => Ok(Self::SystemCode {
                system: unescape(system),
                code: unescape(code),
            }),
            [system, _] if !system.is_empty() => Ok(Self::System(unescape(system))),
            _ => Err(error(format!(
                "`{raw}` is not a token: expected `code`, `system|code`, `|code` or `system|`"
            ))),
        }
    }

    pub fn parse_text(raw: &str) -> Result<Self, ValueError> {
        let text = normalize(&unescape(raw));
        if text.is_empty() {
            return Err(error(":text needs a value"));
        }
        Ok(Self::Text(text))
    }

    pub fn parse_of_type(raw: &str) -> Result<Self, ValueError> {
        match split_unescaped(raw, '|').as_slice() {
            [type_system, type_code, value] if !type_code.is_empty() && !value.is_empty() => {
                Ok(Self::OfType {
                    type_system: unescape(type_system),
                    type_code: unescape(type_code),
                    value: unescape(value),
                })
            }
            _ => Err(error(format!(
                "`{raw}` is not an :of-type value: expected `type-system|type-code|value`"
            ))),
        }
    }
}

/// A reference search value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceValue {
    /// A resource on this server: `id` (type from the modifier or any target), `Type/id`, or
    /// an absolute URL on this server's base.
    Local {
        resource_type: Option<String>,
        id: String,
    },
    /// An absolute URL elsewhere, or a canonical (`url|version`).
    Url(String),
    /// `:identifier`: `system|value` or `value`.
    Identifier {
        system: Option<String>,
        value: String,
    },
}

impl ReferenceValue {
    /// Parses `raw`; `base_url` is this server's FHIR base, so that absolute URLs on it are
    /// local references.
    pub fn parse(raw: &str, base_url: &str) -> Result<Self, ValueError> {
        let value = unescape(raw);
        if value.is_empty() {
            return Err(error("a reference search needs a value"));
        }
        let base = base_url.trim_end_matches('/');
        let local = value
            .strip_prefix(base)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(&value);
        if local.contains("://") || local.starts_with("urn:") {
            return Ok(Self::Url(local.to_owned()));
        }
        let segments: Vec<&str> = local.split('/').collect();
        match segments.as_slice() {
            [id] => Ok(Self::Local {
                resource_type: None,
                id: (*id).to_owned(),
            }),
            // `Type/id` and `Type/id/_history/vid` (versions are not part of reference search).
            [resource_type, id] | [resource_type, id, "_history", _]
                if fhir_model::ResourceType::parse(resource_type).is_ok() && !id.is_empty() =>
            {
                Ok(Self::Local {
                    resource_type: Some((*resource_type).to_owned()),
                    id: (*id).to_owned(),
                })
            }
            _ => Err(error(format!(
                "`{value}` is not a reference: expected `id`, `Type/id` or an absolute URL"
            ))),
        }
    }

    pub fn parse_identifier(raw: &str) -> Result<Self, ValueError> {
        match split_unescaped(raw, '|').as_slice() {
            [value] if !value.is_empty() => Ok(Self::Identifier {
                system: None,
                value: unescape(value),
            }),
            [system, value] if !value.is_empty() => Ok(Self::Identifier {
                system: Some(unescape(system)).filter(|system| !system.is_empty()),
                value: unescape(value),
            }),
            _ => Err(error(format!(
                "`{raw}` is not an identifier: expected `system|value` or `value`"
            ))),
        }
    }
}

/// A date search value: the instants `[low, high)` it covers at its precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateValue {
    pub prefix: Prefix,
    pub low: DateTime<Utc>,
    pub high: DateTime<Utc>,
}

impl DateValue {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let (prefix, rest) = Prefix::split(raw);
        // A `+` in a zone offset arrives as a space when a client forgot to encode it.
        let text = unescape(rest).replace(' ', "+");
        let span = parse_span(&text).map_err(|e| error(e.to_string()))?;
        Ok(Self {
            prefix,
            low: span.low,
            high: span.high,
        })
    }
}

/// A number search value: the value and the ranges its precision and `ap` imply.
///
/// Every bound is computed here, with checked arithmetic, so that building SQL or matching
/// never does arithmetic on a client's number: a value whose bounds leave `Decimal`'s range
/// (28 decimal places, about 7.9e28) is refused when parsed, as a 400 naming the parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberValue {
    pub prefix: Prefix,
    pub value: Decimal,
    /// `value` minus half a unit of its last digit (`100` -> 99.5, `1.50` -> 1.495).
    pub low: Decimal,
    /// `value` plus half a unit of its last digit.
    pub high: Decimal,
    /// `ap`: `value` minus a tenth of its magnitude.
    pub approx_low: Decimal,
    /// `ap`: `value` plus a tenth of its magnitude.
    pub approx_high: Decimal,
}

/// The most decimal places a search value may have: its implicit range needs one more, and
/// `Decimal` holds 28.
const MAX_SCALE: u32 = 27;

impl NumberValue {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let (prefix, rest) = Prefix::split(raw);
        let text = unescape(rest);
        Self::from_text(prefix, &text)
    }

    fn from_text(prefix: Prefix, text: &str) -> Result<Self, ValueError> {
        let value = parse_decimal(text)?;
        if value.scale() > MAX_SCALE {
            return Err(error(format!(
                "`{text}` has more than {MAX_SCALE} decimal places"
            )));
        }
        let half = Decimal::new(5, value.scale() + 1);
        Self::with_range(
            prefix,
            value,
            value.checked_sub(half),
            value.checked_add(half),
        )
        .ok_or_else(|| error(format!("`{text}` is out of the range a search can compare")))
    }

    /// `value` with the range `[low, high)` (already computed; `None` when it overflowed).
    fn with_range(
        prefix: Prefix,
        value: Decimal,
        low: Option<Decimal>,
        high: Option<Decimal>,
    ) -> Option<Self> {
        let tenth = value.checked_div(Decimal::TEN)?.abs();
        Some(Self {
            prefix,
            value,
            low: low?,
            high: high?,
            approx_low: value.checked_sub(tenth)?,
            approx_high: value.checked_add(tenth)?,
        })
    }
}

fn parse_decimal(text: &str) -> Result<Decimal, ValueError> {
    let valid = crate::normalize::decimal::is_decimal(text);
    let parsed = if valid {
        Decimal::from_str(text).or_else(|_| Decimal::from_scientific(text))
    } else {
        Err(rust_decimal::Error::ErrorString(String::new()))
    };
    parsed.map_err(|_| error(format!("`{text}` is not a number")))
}

/// A quantity search value: `[prefix]number|system|code` (system and code optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityValue {
    pub number: NumberValue,
    pub system: Option<String>,
    /// The unit code (or, without a system, the code or the unit text).
    pub code: Option<String>,
    /// The number in canonical UCUM units, when the unit is UCUM and convertible: its range
    /// converted, its value the middle of that range, and the canonical code.
    pub canonical: Option<(NumberValue, String)>,
}

impl QuantityValue {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let parts = split_unescaped(raw, '|');
        let (number, system, code) = match parts.as_slice() {
            [number] => (*number, None, None),
            [number, system, code] => (*number, Some(unescape(system)), Some(unescape(code))),
            _ => {
                return Err(error(format!(
                    "`{raw}` is not a quantity: expected `[prefix]number|system|code`"
                )));
            }
        };
        let (prefix, number_text) = Prefix::split(number);
        let number = NumberValue::from_text(prefix, &unescape(number_text))?;
        let system = system.filter(|system| !system.is_empty());
        let code = code.filter(|code| !code.is_empty());
        let canonical = match (&system, &code) {
            (Some(system), Some(code)) if system == ucum::UCUM_SYSTEM => {
                canonical_range(&number, code)?
            }
            // Without a system the code may still be UCUM; HAPI converts when it parses.
            (None, Some(code)) => canonical_range(&number, code)?,
            _ => None,
        };
        Ok(Self {
            number,
            system,
            code,
            canonical,
        })
    }
}

/// `number`'s range in canonical units; `None` when `code` is no UCUM unit this server
/// converts, an error when it is one but the converted range leaves `Decimal`'s range.
fn canonical_range(
    number: &NumberValue,
    code: &str,
) -> Result<Option<(NumberValue, String)>, ValueError> {
    if ucum::parser::parse(code).is_none() {
        return Ok(None);
    }
    let convert = |bound: Decimal| {
        let canonical = ucum::canonicalize(&bound.to_string(), code)?;
        Decimal::from_str(&canonical.value)
            .ok()
            .map(|value| (value, canonical.code))
    };
    let converted = (|| {
        let (low, canonical_code) = convert(number.low)?;
        let (high, _) = convert(number.high)?;
        let middle = low.checked_add(high)?.checked_div(Decimal::TWO)?;
        let value = NumberValue::with_range(number.prefix, middle, Some(low), Some(high))?;
        Some((value, canonical_code))
    })();
    converted.map(Some).ok_or_else(|| {
        error(format!(
            "`{}` {code} is out of the range a search can compare once converted to base units",
            number.value
        ))
    })
}

/// How a uri value matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriMatch {
    Exact,
    /// `:below`: stored values that start with the search value.
    Below,
    /// `:above`: stored values that the search value starts with.
    Above,
}

/// A uri search value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriValue {
    pub mode: UriMatch,
    pub uri: String,
}

impl UriValue {
    pub fn parse(raw: &str, mode: UriMatch) -> Result<Self, ValueError> {
        let uri = unescape(raw);
        if uri.is_empty() {
            return Err(error("a uri search needs a value"));
        }
        Ok(Self { mode, uri })
    }

    /// For `:above`: the value and each of its ancestors at `/` boundaries
    /// (`http://a/b/c` gives `http://a/b/c`, `http://a/b`, `http://a`).
    pub fn ancestors(&self) -> Vec<String> {
        let mut out = vec![self.uri.clone()];
        let scheme_end = self.uri.find("://").map_or(0, |at| at + 3);
        let mut rest = self.uri.as_str();
        while let Some(cut) = rest.rfind('/') {
            if cut < scheme_end {
                break;
            }
            rest = &rest[..cut];
            out.push(rest.to_owned());
        }
        out
    }
}

/// `near` on Location: `latitude|longitude|distance|units` (distance defaults to 10 km).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NearValue {
    pub latitude: f64,
    pub longitude: f64,
    /// The radius in kilometres.
    pub kilometres: f64,
}

impl NearValue {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let parts = split_unescaped(raw, '|');
        let number = |text: &str, what: &str| {
            unescape(text)
                .parse::<f64>()
                .ok()
                .filter(|value| value.is_finite())
                .ok_or_else(|| error(format!("near: `{text}` is not a {what}")))
        };
        let (latitude, longitude) = match parts.as_slice() {
            [latitude, longitude, ..] => (
                number(latitude, "latitude")?,
                number(longitude, "longitude")?,
            ),
            _ => {
                return Err(error("near needs `latitude|longitude[|distance[|units]]`"));
            }
        };
        if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
            return Err(error("near: latitude or longitude out of range"));
        }
        let distance = match parts.get(2) {
            Some(text) if !text.is_empty() => number(text, "distance")?,
            _ => 10.0,
        };
        let factor = match parts.get(3).map(|units| unescape(units)).as_deref() {
            None | Some("" | "km") => 1.0,
            Some("m") => 0.001,
            Some("[mi_i]" | "mi") => 1.609_344,
            Some(other) => {
                return Err(error(format!(
                    "near: unit `{other}` is not supported (km, m, [mi_i])"
                )));
            }
        };
        Ok(Self {
            latitude,
            longitude,
            kilometres: distance * factor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_split_and_unescape() {
        assert_eq!(split_unescaped(r"a\,b,c", ','), vec![r"a\,b", "c"]);
        assert_eq!(unescape(r"a\,b\|c\\d\$"), r"a,b|c\d$");
        assert_eq!(split_unescaped("a|b|", '|'), vec!["a", "b", ""]);
    }

    #[test]
    fn prefixes() {
        assert_eq!(Prefix::split("ge2020"), (Prefix::Ge, "2020"));
        assert_eq!(Prefix::split("2020"), (Prefix::Eq, "2020"));
        assert_eq!(Prefix::split("ap5"), (Prefix::Ap, "5"));
    }

    #[test]
    fn tokens() {
        assert_eq!(
            TokenValue::parse("abc").unwrap(),
            TokenValue::Code("abc".into())
        );
        assert_eq!(
            TokenValue::parse("http://loinc.org|8867-4").unwrap(),
            TokenValue::SystemCode {
                system: "http://loinc.org".into(),
                code: "8867-4".into()
            }
        );
        assert_eq!(
            TokenValue::parse("|x").unwrap(),
            TokenValue::SystemCode {
                system: String::new(),
                code: "x".into()
            }
        );
        assert_eq!(
            TokenValue::parse("http://s|").unwrap(),
            TokenValue::System("http://s".into())
        );
        assert!(TokenValue::parse("|").is_err());
        assert!(TokenValue::parse("a|b|c").is_err());
        assert_eq!(
            TokenValue::parse(r"a\|b").unwrap(),
            TokenValue::Code("a|b".into())
        );
    }

    #[test]
    fn references() {
        let base = "http://localhost:8080/fhir";
        assert_eq!(
            ReferenceValue::parse("Patient/1", base).unwrap(),
            ReferenceValue::Local {
                resource_type: Some("Patient".into()),
                id: "1".into()
            }
        );
        assert_eq!(
            ReferenceValue::parse("http://localhost:8080/fhir/Patient/1", base).unwrap(),
            ReferenceValue::Local {
                resource_type: Some("Patient".into()),
                id: "1".into()
            }
        );
        assert_eq!(
            ReferenceValue::parse("http://elsewhere/fhir/Patient/1", base).unwrap(),
            ReferenceValue::Url("http://elsewhere/fhir/Patient/1".into())
        );
        assert_eq!(
            ReferenceValue::parse("1", base).unwrap(),
            ReferenceValue::Local {
                resource_type: None,
                id: "1".into()
            }
        );
        assert!(ReferenceValue::parse("Nonsense/1", base).is_err());
    }

    #[test]
    fn numbers_have_an_implicit_range() {
        let n = NumberValue::parse("100").unwrap();
        assert_eq!(
            (n.low.to_string(), n.high.to_string()),
            ("99.5".into(), "100.5".into())
        );
        let n = NumberValue::parse("gt1.50").unwrap();
        assert_eq!(n.prefix, Prefix::Gt);
        assert_eq!(
            (n.low.to_string(), n.high.to_string()),
            ("1.495".into(), "1.505".into())
        );
        assert!(NumberValue::parse("abc").is_err());
        assert!(NumberValue::parse("1e3").is_ok());
    }

    #[test]
    fn quantities_convert_ucum_units() {
        let q = QuantityValue::parse("5.4|http://unitsofmeasure.org|mg").unwrap();
        let (canonical, code) = q.canonical.unwrap();
        assert_eq!(code, "g");
        assert!(canonical.low < Decimal::from_str("0.0054").unwrap());
        assert!(canonical.high > Decimal::from_str("0.0054").unwrap());
        assert_eq!(canonical.value, Decimal::from_str("0.0054").unwrap());
        let q = QuantityValue::parse("lt5.4||mmol/L").unwrap();
        assert_eq!(q.number.prefix, Prefix::Lt);
        assert_eq!(q.system, None);
        assert!(q.canonical.is_some());
        let q = QuantityValue::parse("5.4").unwrap();
        assert!(q.canonical.is_none() && q.code.is_none());
        assert!(QuantityValue::parse("5|x").is_err());
    }

    #[test]
    fn numbers_out_of_decimal_range_are_refused_not_overflowed() {
        for raw in [
            "1e-28",
            "ge1e-28",
            "ap1e-28",
            "0.0000000000000000000000000001",
            "79228162514264337593543950335",
            "lt79228162514264337593543950335",
            "-79228162514264337593543950335",
            "ap79228162514264337593543950335",
            "7.9228162514264337593543950335e28",
        ] {
            assert!(NumberValue::parse(raw).is_err(), "{raw}");
            assert!(QuantityValue::parse(raw).is_err(), "{raw}");
            assert!(
                QuantityValue::parse(&format!("{raw}|http://unitsofmeasure.org|mg")).is_err(),
                "{raw} mg"
            );
        }
        // The extremes that still have a range are accepted, with every bound computed.
        let n = NumberValue::parse("ap1e-27").unwrap();
        assert!(n.low < n.value && n.value < n.high);
        assert!(n.approx_low < n.value && n.value < n.approx_high);
        assert!(NumberValue::parse("7922816251426433759354395033").is_ok());
    }

    #[test]
    fn quantities_whose_conversion_overflows_are_refused() {
        // Fine as written, beyond `Decimal` once in grams or cubic metres per second.
        for raw in [
            "70000000000000000000000000000|http://unitsofmeasure.org|kg",
            "ge70000000000000000000000000|http://unitsofmeasure.org|Tg",
            "70000000000000000000000000||kg",
            "1e27||10*6/uL",
        ] {
            let message = QuantityValue::parse(raw).unwrap_err().0;
            assert!(message.contains("base units"), "{raw}: {message}");
        }
        // A unit that is not UCUM is compared as written, whatever the number's size.
        assert!(QuantityValue::parse("70000000000000000000000000000||beats").is_ok());
        // Converting a tiny value rounds; it does not fail.
        assert!(QuantityValue::parse("1e-27|http://unitsofmeasure.org|ng").is_ok());
    }

    #[test]
    fn dates() {
        let d = DateValue::parse("ge2020-03").unwrap();
        assert_eq!(d.prefix, Prefix::Ge);
        assert_eq!(d.low.to_rfc3339(), "2020-03-01T00:00:00+00:00");
        assert_eq!(d.high.to_rfc3339(), "2020-04-01T00:00:00+00:00");
        // An unencoded `+` in a zone arrives as a space.
        assert!(DateValue::parse("2020-03-01T10:00:00 01:00").is_ok());
        assert!(DateValue::parse("yesterday").is_err());
    }

    #[test]
    fn uri_ancestors() {
        let uri = UriValue::parse("http://a.org/fhir/ValueSet/x", UriMatch::Above).unwrap();
        assert_eq!(
            uri.ancestors(),
            vec![
                "http://a.org/fhir/ValueSet/x",
                "http://a.org/fhir/ValueSet",
                "http://a.org/fhir",
                "http://a.org"
            ]
        );
    }

    #[test]
    fn near() {
        let near = NearValue::parse("42.25|-83.69|5|km").unwrap();
        assert!((near.kilometres - 5.0).abs() < 1e-9);
        assert!(NearValue::parse("100|0").is_err());
        assert!(NearValue::parse("1|2|3|furlong").is_err());
    }
}
