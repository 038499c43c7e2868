//! Date parameters: date, dateTime and instant values, Periods and Timings, as ranges.
//!
//! A value covers the span of its precision ([`crate::normalize::date`]). A Period covers from
//! its start's low bound to its end's high bound (`end: 2020-03-15` runs to the end of that day);
//! a missing start or end is an open bound (`None`), and a Period with neither gives no row.
//! A Timing gives one row for its outer limits, as search.html says ("only the outer limits
//! matter"): the earliest and latest of its `event`s and of `repeat.boundsPeriod`; an open
//! bounds end leaves the row open. Values that are not dates are reported as problems; strings
//! where a date may also be a string (`CarePlan.activity.detail.scheduled[x]`) are skipped, as
//! HAPI does.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::Target;
use super::node::Node;
use crate::ResourceIndex;
use crate::index::DateRow;
use crate::normalize::date::{DateSpan, parse_span};

pub(super) fn extract(out: &mut ResourceIndex, target: &Target<'_>, node: Node<'_>) {
    match node.ty() {
        "date" | "dateTime" | "instant" => match node.as_str() {
            Some(text) => {
                if let Some(span) = span_or_problem(out, target, text) {
                    push(out, target, Some(span.low), Some(span.high));
                }
            }
            None => target.problem(out, format!("a {} that is not a string", node.ty())),
        },
        "Period" => {
            if let Some(period) = node.object() {
                period_row(out, target, period);
            }
        }
        "Timing" => {
            if let Some(timing) = node.object() {
                timing_row(out, target, timing);
            }
        }
        _ => {}
    }
}

fn span_or_problem(out: &mut ResourceIndex, target: &Target<'_>, text: &str) -> Option<DateSpan> {
    match parse_span(text) {
        Ok(span) => Some(span),
        Err(error) => {
            target.problem(out, error);
            None
        }
    }
}

/// A bound of a Period: absent, or parsed (`Err` once reported).
fn bound(
    out: &mut ResourceIndex,
    target: &Target<'_>,
    period: &Map<String, Value>,
    key: &str,
) -> Result<Option<DateSpan>, ()> {
    match period.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => span_or_problem(out, target, text).map(Some).ok_or(()),
        Some(_) => {
            target.problem(out, format!("Period.{key} is not a string"));
            Err(())
        }
    }
}

fn period_row(out: &mut ResourceIndex, target: &Target<'_>, period: &Map<String, Value>) {
    let (Ok(start), Ok(end)) = (
        bound(out, target, period, "start"),
        bound(out, target, period, "end"),
    ) else {
        return;
    };
    if start.is_none() && end.is_none() {
        return;
    }
    push(out, target, start.map(|s| s.low), end.map(|e| e.high));
}

fn timing_row(out: &mut ResourceIndex, target: &Target<'_>, timing: &Map<String, Value>) {
    let mut low: Option<DateTime<Utc>> = None;
    let mut high: Option<DateTime<Utc>> = None;
    let mut open_start = false;
    let mut open_end = false;
    let mut any = false;

    let mut widen = |span_low: Option<DateTime<Utc>>, span_high: Option<DateTime<Utc>>| {
        any = true;
        match span_low {
            Some(l) => low = Some(low.map_or(l, |current| current.min(l))),
            None => open_start = true,
        }
        match span_high {
            Some(h) => high = Some(high.map_or(h, |current| current.max(h))),
            None => open_end = true,
        }
    };

    for event in timing
        .get("event")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(text) = event.as_str() else {
            target.problem(out, "Timing.event is not a string");
            continue;
        };
        if let Some(span) = span_or_problem(out, target, text) {
            widen(Some(span.low), Some(span.high));
        }
    }
    if let Some(bounds) = timing
        .get("repeat")
        .and_then(|r| r.get("boundsPeriod"))
        .and_then(Value::as_object)
        && let (Ok(start), Ok(end)) = (
            bound(out, target, bounds, "start"),
            bound(out, target, bounds, "end"),
        )
        && (start.is_some() || end.is_some())
    {
        widen(start.map(|s| s.low), end.map(|e| e.high));
    }

    if any {
        push(
            out,
            target,
            low.filter(|_| !open_start),
            high.filter(|_| !open_end),
        );
    }
}

fn push(
    out: &mut ResourceIndex,
    target: &Target<'_>,
    low: Option<DateTime<Utc>>,
    high: Option<DateTime<Utc>>,
) {
    out.dates.push(DateRow {
        param: target.code.to_owned(),
        composite: target.composite,
        low,
        high,
    });
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde_json::json;

    use crate::extract::testing::{node, rows, untyped};

    fn at(text: &str) -> Option<DateTime<Utc>> {
        Some(
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc),
        )
    }

    type Span = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

    fn spans(index: &crate::ResourceIndex) -> Vec<Span> {
        index.dates.iter().map(|r| (r.low, r.high)).collect()
    }

    #[test]
    fn dates_cover_their_precision() {
        let root = json!({"resourceType": "Patient", "birthDate": "1970-02-03"});
        let index = rows(&root, "birthdate", &[node(&root["birthDate"], "date")]);
        assert_eq!(
            spans(&index),
            vec![(at("1970-02-03T00:00:00Z"), at("1970-02-04T00:00:00Z"))]
        );
        assert_eq!(index.dates[0].param, "birthdate");
    }

    #[test]
    fn periods_may_be_open_at_either_end() {
        let root = json!({"resourceType": "Encounter"});
        let open_end = json!({"start": "2020-03-15T10:00:00+02:00"});
        let open_start = json!({"end": "2020-03"});
        let closed = json!({"start": "2020", "end": "2020-06-30"});
        let empty = json!({});
        let index = rows(
            &root,
            "date",
            &[
                node(&open_end, "Period"),
                node(&open_start, "Period"),
                node(&closed, "Period"),
                node(&empty, "Period"),
            ],
        );
        let mut expected = vec![
            (at("2020-03-15T08:00:00Z"), None),
            (None, at("2020-04-01T00:00:00Z")),
            (at("2020-01-01T00:00:00Z"), at("2020-07-01T00:00:00Z")),
        ];
        expected.sort();
        assert_eq!(spans(&index), expected);
    }

    #[test]
    fn timings_give_their_outer_limits() {
        let root = json!({"resourceType": "MedicationRequest"});
        let events = json!({"event": ["2021-05-03", "2021-05-01T08:00:00Z", "2021-05-02"]});
        let bounded = json!({"repeat": {"boundsPeriod": {"start": "2021-01-01"}, "frequency": 2}});
        let both = json!({
            "event": ["2021-01-05"],
            "repeat": {"boundsPeriod": {"start": "2021-01-10", "end": "2021-01-20"}}
        });
        let index = rows(&root, "authoredon", &[node(&events, "Timing")]);
        // `authoredon` is a dateTime; use it to carry Timings for the test all the same.
        assert_eq!(
            spans(&index),
            vec![(at("2021-05-01T08:00:00Z"), at("2021-05-04T00:00:00Z"))]
        );
        let index = rows(
            &root,
            "authoredon",
            &[node(&bounded, "Timing"), node(&both, "Timing")],
        );
        let mut expected = vec![
            (at("2021-01-01T00:00:00Z"), None),
            (at("2021-01-05T00:00:00Z"), at("2021-01-21T00:00:00Z")),
        ];
        expected.sort();
        assert_eq!(spans(&index), expected);
    }

    #[test]
    fn unparsable_dates_are_problems_not_rows() {
        let root = json!({"resourceType": "Patient"});
        let bad = json!("1970-02-30");
        let not_string = json!(1970);
        let bad_period = json!({"start": "soon", "end": "2020"});
        let index = rows(
            &root,
            "birthdate",
            &[
                node(&bad, "date"),
                node(&not_string, "date"),
                node(&bad_period, "Period"),
            ],
        );
        assert!(index.dates.is_empty());
        assert_eq!(index.problems.len(), 3, "{:?}", index.problems);
        assert!(index.problems.iter().all(|p| p.starts_with("birthdate: ")));
    }

    #[test]
    fn untyped_strings_are_read_as_dates_and_typed_strings_skipped() {
        let root = json!({"resourceType": "Patient"});
        let value = json!("2001");
        let index = rows(
            &root,
            "birthdate",
            &[untyped(&value), node(&value, "string")],
        );
        assert_eq!(
            spans(&index),
            vec![(at("2001-01-01T00:00:00Z"), at("2002-01-01T00:00:00Z"))]
        );
    }
}
