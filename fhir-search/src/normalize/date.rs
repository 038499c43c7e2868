//! FHIR date, dateTime and instant values as the span of instants they cover.
//!
//! Date search compares ranges (search.html, "date"): `2020` means all of 2020, so it is stored
//! as `[2020-01-01T00:00Z, 2021-01-01T00:00Z)`, and a search for `ge2020-06` compares against
//! that span. The precision written decides the span: year, month, day, second, or (with
//! fractional seconds) millisecond. Values with a time carry a zone (the FHIR rule); dates, and
//! times written without a zone, are taken as UTC, so every server computes the same rows.
//!
//! Only the FHIR lexical forms are accepted (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`,
//! `YYYY-MM-DDThh:mm:ss[.fff][Z|(+|-)hh:mm]`); anything else is an error the caller reports.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// The instants a value covers: `low` inclusive, `high` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateSpan {
    pub low: DateTime<Utc>,
    pub high: DateTime<Utc>,
}

/// Why a value is not a FHIR date, dateTime or instant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a FHIR date/dateTime/instant: {reason}")]
pub struct DateError {
    pub value: String,
    pub reason: &'static str,
}

/// Parses `value` into the span it covers at its precision.
pub fn parse_span(value: &str) -> Result<DateSpan, DateError> {
    parse_inner(value).map_err(|reason| DateError {
        value: shorten(value),
        reason,
    })
}

/// Values in error messages stay short whatever a client sent.
fn shorten(value: &str) -> String {
    match value.char_indices().nth(64) {
        Some((cut, _)) => format!("{}...", &value[..cut]),
        None => value.to_owned(),
    }
}

fn parse_inner(value: &str) -> Result<DateSpan, &'static str> {
    let bytes = value.as_bytes();
    let mut cursor = Cursor { bytes, at: 0 };

    let year = cursor.digits(4).ok_or("expected a four-digit year")?;
    if year == 0 {
        return Err("year 0000 does not exist");
    }
    if cursor.done() {
        let low = date(year, 1, 1)?;
        let high = date(year + 1, 1, 1)?;
        return Ok(span(low, high));
    }

    cursor.expect(b'-').ok_or("expected `-` after the year")?;
    let month = cursor.digits(2).ok_or("expected a two-digit month")?;
    if !(1..=12).contains(&month) {
        return Err("month out of range");
    }
    if cursor.done() {
        let low = date(year, month, 1)?;
        let high = if month == 12 {
            date(year + 1, 1, 1)?
        } else {
            date(year, month + 1, 1)?
        };
        return Ok(span(low, high));
    }

    cursor.expect(b'-').ok_or("expected `-` after the month")?;
    let day = cursor.digits(2).ok_or("expected a two-digit day")?;
    let day_date = NaiveDate::from_ymd_opt(to_i32(year), month, day).ok_or("no such day")?;
    if cursor.done() {
        let low = day_date.and_time(NaiveTime::MIN);
        let high = low + Duration::days(1);
        return Ok(span(low, high));
    }

    cursor.expect(b'T').ok_or("expected `T` before the time")?;
    let hour = cursor.digits(2).ok_or("expected a two-digit hour")?;
    cursor.expect(b':').ok_or("expected `:` after the hour")?;
    let minute = cursor.digits(2).ok_or("expected two-digit minutes")?;
    cursor
        .expect(b':')
        .ok_or("expected `:` and seconds after the minutes")?;
    let second = cursor.digits(2).ok_or("expected two-digit seconds")?;
    if hour > 23 || minute > 59 || second > 60 {
        return Err("time out of range");
    }
    // A leap second (`:60`) is stored as the last second of the minute.
    let second = second.min(59);

    let mut millis = None;
    if cursor.peek() == Some(b'.') {
        cursor.at += 1;
        let start = cursor.at;
        while matches!(cursor.peek(), Some(b'0'..=b'9')) {
            cursor.at += 1;
        }
        let fraction = &bytes[start..cursor.at];
        if fraction.is_empty() {
            return Err("expected digits after the decimal point");
        }
        let mut ms = 0u32;
        for position in 0..3 {
            ms = ms * 10 + fraction.get(position).map_or(0, |d| u32::from(d - b'0'));
        }
        millis = Some(ms);
    }

    let offset_seconds: i64 = match cursor.peek() {
        None => 0,
        Some(b'Z') => {
            cursor.at += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            cursor.at += 1;
            let zone_hour = cursor.digits(2).ok_or("expected a two-digit zone hour")?;
            cursor.expect(b':').ok_or("expected `:` in the zone")?;
            let zone_minute = cursor.digits(2).ok_or("expected two-digit zone minutes")?;
            if zone_hour > 14 || zone_minute > 59 || (zone_hour == 14 && zone_minute > 0) {
                return Err("zone offset out of range");
            }
            let magnitude = i64::from(zone_hour * 3600 + zone_minute * 60);
            if sign == b'-' { -magnitude } else { magnitude }
        }
        Some(_) => return Err("unexpected character after the time"),
    };
    if !cursor.done() {
        return Err("unexpected characters at the end");
    }

    let time = NaiveTime::from_hms_milli_opt(hour, minute, second, millis.unwrap_or(0))
        .ok_or("time out of range")?;
    let local = day_date.and_time(time);
    let low = local - Duration::seconds(offset_seconds);
    let high = match millis {
        Some(_) => low + Duration::milliseconds(1),
        None => low + Duration::seconds(1),
    };
    Ok(span(low, high))
}

fn span(low: NaiveDateTime, high: NaiveDateTime) -> DateSpan {
    DateSpan {
        low: Utc.from_utc_datetime(&low),
        high: Utc.from_utc_datetime(&high),
    }
}

fn date(year: u32, month: u32, day: u32) -> Result<NaiveDateTime, &'static str> {
    NaiveDate::from_ymd_opt(to_i32(year), month, day)
        .map(|d| d.and_time(NaiveTime::MIN))
        .ok_or("no such date")
}

/// Years have four digits, so this never saturates; it keeps the conversion explicit.
fn to_i32(year: u32) -> i32 {
    i32::try_from(year).unwrap_or(i32::MAX)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.at == self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| self.at += 1)
    }

    /// Exactly `count` ASCII digits, as a number.
    fn digits(&mut self, count: usize) -> Option<u32> {
        let slice = self.bytes.get(self.at..self.at + count)?;
        let mut number = 0u32;
        for byte in slice {
            if !byte.is_ascii_digit() {
                return None;
            }
            number = number * 10 + u32::from(byte - b'0');
        }
        self.at += count;
        Some(number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn spans_follow_the_precision_written() {
        let cases = [
            ("2020", "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"),
            ("2020-02", "2020-02-01T00:00:00Z", "2020-03-01T00:00:00Z"),
            ("2020-12", "2020-12-01T00:00:00Z", "2021-01-01T00:00:00Z"),
            ("2020-03-15", "2020-03-15T00:00:00Z", "2020-03-16T00:00:00Z"),
            ("2020-02-29", "2020-02-29T00:00:00Z", "2020-03-01T00:00:00Z"),
            (
                "2020-03-15T10:00:00+02:00",
                "2020-03-15T08:00:00Z",
                "2020-03-15T08:00:01Z",
            ),
            (
                "2020-03-15T10:00:00Z",
                "2020-03-15T10:00:00Z",
                "2020-03-15T10:00:01Z",
            ),
            (
                "2020-03-15T23:30:00-05:00",
                "2020-03-16T04:30:00Z",
                "2020-03-16T04:30:01Z",
            ),
            (
                "2020-01-01T00:30:00+14:00",
                "2019-12-31T10:30:00Z",
                "2019-12-31T10:30:01Z",
            ),
            // No zone: taken as UTC.
            (
                "2020-03-15T10:00:00",
                "2020-03-15T10:00:00Z",
                "2020-03-15T10:00:01Z",
            ),
            // Fractional seconds: to the millisecond, extra digits dropped.
            (
                "2020-03-15T10:00:00.5Z",
                "2020-03-15T10:00:00.500Z",
                "2020-03-15T10:00:00.501Z",
            ),
            (
                "2020-03-15T10:00:00.123456+01:00",
                "2020-03-15T09:00:00.123Z",
                "2020-03-15T09:00:00.124Z",
            ),
            (
                "2020-12-31T23:59:60Z",
                "2020-12-31T23:59:59Z",
                "2021-01-01T00:00:00Z",
            ),
            ("9999", "9999-01-01T00:00:00Z", "10000-01-01T00:00:00Z"),
        ];
        for (input, low, high) in cases {
            let span = parse_span(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            let expected_high = if high.starts_with("10000") {
                NaiveDate::from_ymd_opt(10000, 1, 1)
                    .unwrap()
                    .and_time(NaiveTime::MIN)
                    .and_utc()
            } else {
                utc(high)
            };
            assert_eq!((span.low, span.high), (utc(low), expected_high), "{input}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_fhir_date() {
        for input in [
            "",
            "20",
            "2020-1",
            "2020-13",
            "2020-00",
            "2020-02-30",
            "2019-02-29",
            "2020-03-15T",
            "2020-03-15T10",
            "2020-03-15T10:00",
            "2020-03-15T24:00:00Z",
            "2020-03-15T10:60:00Z",
            "2020-03-15T10:00:00.Z",
            "2020-03-15T10:00:00+2:00",
            "2020-03-15T10:00:00+15:00",
            "2020-03-15T10:00:00Zjunk",
            "2020-03-15 10:00:00Z",
            "0000",
            "yesterday",
            "２０２０",
            "2020-03-15T10:00:00+02:00:00",
        ] {
            assert!(parse_span(input).is_err(), "{input:?} should be rejected");
        }
    }

    #[test]
    fn errors_quote_the_value_briefly() {
        let long = "x".repeat(10_000);
        let error = parse_span(&long).unwrap_err();
        assert!(error.to_string().len() < 200);
    }
}
