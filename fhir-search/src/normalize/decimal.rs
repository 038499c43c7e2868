//! FHIR decimals as text: number and quantity rows keep the value as written, because its
//! precision is part of its meaning (`1.50` matches `eq1.5` only within ±0.005, search.html
//! "number"). This module only recognises a decimal and reads one from JSON.

use std::borrow::Cow;

use serde_json::Value;

/// Longest decimal text accepted (a FHIR decimal has at most 18 significant digits in practice;
/// this bound only keeps absurd input out of the index).
const MAX_DECIMAL_LEN: usize = 64;

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
    fn keeps_the_precision_written() {
        let value: Value =
            serde_json::from_str(r#"{"a": 1.50, "b": 7, "c": "2.0", "d": true}"#).unwrap();
        assert_eq!(decimal_text(&value["a"]).as_deref(), Some("1.50"));
        assert_eq!(decimal_text(&value["b"]).as_deref(), Some("7"));
        assert_eq!(decimal_text(&value["c"]).as_deref(), Some("2.0"));
        assert_eq!(decimal_text(&value["d"]), None);
    }
}
