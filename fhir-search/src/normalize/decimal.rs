//! FHIR decimals as text: number and quantity rows keep the value as written, because its
//! precision is part of its meaning (`1.50` matches `eq1.5` only within ±0.005, search.html
//! "number"). This module recognises a decimal, reads one from JSON, and clamps one whose
//! magnitude Postgres' `numeric` cannot hold ([`clamped`]).

use std::borrow::Cow;

use serde_json::Value;

/// Longest decimal text accepted (a FHIR decimal has at most 18 significant digits in practice;
/// this bound only keeps absurd input out of the index).
const MAX_DECIMAL_LEN: usize = 64;

/// Largest decimal exponent (of the first significant digit) an indexed value keeps; the
/// validator refuses larger ones in new resources, and every search value is far inside it.
pub const MAX_EXPONENT: i64 = 1000;

/// The value to index for the decimal `text` (as [`is_decimal`] accepts): itself, unless its
/// magnitude is beyond 10^±[`MAX_EXPONENT`], where it is clamped to `±1e1001` or `±1e-1001`.
/// `1e999999999` overflows `numeric`, and a row Postgres refuses must not stop the projection;
/// clamped, it still compares correctly with every value a search can name (`gt100` finds it).
pub fn clamped(text: &str) -> Cow<'_, str> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, parse_exponent(exponent)),
        None => (unsigned, 0),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // The power of ten of the first significant digit, before the exponent.
    let leading = match integer.bytes().position(|b| b != b'0') {
        Some(at) => (integer.len() - 1 - at) as i64,
        None => match fraction.bytes().position(|b| b != b'0') {
            Some(at) => -(at as i64) - 1,
            None if exponent.abs() > MAX_EXPONENT => return Cow::Borrowed("0"),
            None => return Cow::Borrowed(text),
        },
    };
    let magnitude = exponent.saturating_add(leading);
    let sign = if negative { "-" } else { "" };
    if magnitude > MAX_EXPONENT {
        Cow::Owned(format!("{sign}1e{}", MAX_EXPONENT + 1))
    } else if magnitude < -MAX_EXPONENT {
        Cow::Owned(format!("{sign}1e-{}", MAX_EXPONENT + 1))
    } else {
        Cow::Borrowed(text)
    }
}

/// An exponent's digits (with an optional sign), saturating far beyond any bound used here.
fn parse_exponent(text: &str) -> i64 {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let value = digits.bytes().fold(0i64, |value, digit| {
        value
            .saturating_mul(10)
            .saturating_add(i64::from(digit.wrapping_sub(b'0')))
            .min(i64::MAX / 4)
    });
    if negative { -value } else { value }
}

/// True when `text` is a decimal in JSON/FHIR syntax: `-?digits[.digits][e[+-]digits]`.
pub fn is_decimal(text: &str) -> bool {
    if text.is_empty() || text.len() > MAX_DECIMAL_LEN {
        return false;
    }
    let bytes = text.as_bytes();
    let mut at = usize::from(bytes[0] == b'-');
    let digits = |at: &mut usize| {
        let start = *at;
        while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
            *at += 1;
        }
        *at > start
    };
    if !digits(&mut at) {
        return false;
    }
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        if !digits(&mut at) {
            return false;
        }
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        if !digits(&mut at) {
            return false;
        }
    }
    at == bytes.len()
}

/// The text of a JSON number as the client wrote it (the workspace's `serde_json` keeps it), or
/// of a JSON string holding a decimal; `None` for anything else.
pub fn decimal_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::Number(number) => {
            let text = number.to_string();
            is_decimal(&text).then_some(Cow::Owned(text))
        }
        Value::String(text) => is_decimal(text).then_some(Cow::Borrowed(text.as_str())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_decimals() {
        for good in ["0", "-1", "1.50", "123.456", "1e3", "1.5E-7", "-0.0"] {
            assert!(is_decimal(good), "{good}");
        }
        for bad in [
            "", "-", ".5", "5.", "1.2.3", "1e", "0x10", "NaN", "inf", " 1", "1 ", "+1", "1,5",
        ] {
            assert!(!is_decimal(bad), "{bad}");
        }
        assert!(!is_decimal(&"9".repeat(100)));
    }

    #[test]
    fn clamps_what_numeric_cannot_hold() {
        let cases = [
            ("1.50", "1.50"),
            ("-7", "-7"),
            ("1e1000", "1e1000"),
            ("0.01e1002", "0.01e1002"),
            ("1e-1000", "1e-1000"),
            ("1e999999999", "1e1001"),
            ("-2.5E+999999999", "-1e1001"),
            ("10e1000", "1e1001"),
            ("1e-999999999", "1e-1001"),
            ("-0.001e-998", "-1e-1001"),
            ("0e999999999", "0"),
            ("0.000e5", "0.000e5"),
            ("1e99999999999999999999999999999999999999", "1e1001"),
        ];
        for (input, expected) in cases {
            assert!(is_decimal(input), "{input}");
            assert_eq!(clamped(input), expected, "clamped({input})");
        }
    }

    #[test]
    fn keeps_the_precision_written() {
        let value: Value =
            serde_json::from_str(r#"{"a": 1.50, "b": 7, "c": "2.0", "d": true}"#).unwrap();
        assert_eq!(decimal_text(&value["a"]).as_deref(), Some("1.50"));
        assert_eq!(decimal_text(&value["b"]).as_deref(), Some("7"));
        assert_eq!(decimal_text(&value["c"]).as_deref(), Some("2.0"));
        assert_eq!(decimal_text(&value["d"]), None);
    }
}
