//! Reading the few parts of FHIR R4 JSON the dashboard needs, straight from `serde_json::Value`.
//!
//! The app shows resources; it never writes them, so a typed model of every resource would be
//! dead weight in the wasm. These helpers answer the questions the views ask (whose is this, what
//! is it called, when was it, which version) and are forgiving: a missing element is `None`,
//! never an error, because one odd resource must not blank a ward.

use serde_json::Value;

/// The `Type/id` a resource is known by, for version bookkeeping and list keys.
pub fn key(resource: &Value) -> Option<String> {
    Some(format!("{}/{}", resource_type(resource)?, id(resource)?))
}

pub fn resource_type(resource: &Value) -> Option<&str> {
    resource["resourceType"].as_str()
}

pub fn id(resource: &Value) -> Option<&str> {
    resource["id"].as_str()
}

/// `meta.versionId` as a number (the server's versions are 1, 2, ...).
pub fn version(resource: &Value) -> Option<u64> {
    resource["meta"]["versionId"].as_str()?.parse().ok()
}

/// The id a Reference points to when it names a resource of `resource_type`: `Patient/123`,
/// `Patient/123/_history/2` and absolute URLs ending in `Patient/123` all give `123`.
pub fn reference_id<'a>(reference: &'a Value, resource_type: &str) -> Option<&'a str> {
    let text = reference["reference"].as_str()?;
    let text = match text.find("/_history/") {
        Some(at) => &text[..at],
        None => text,
    };
    let mut parts = text.rsplitn(3, '/');
    let id = parts.next()?;
    let named_type = parts.next()?;
    (named_type == resource_type && !id.is_empty()).then_some(id)
}

/// The resources of a search or transaction Bundle, in order.
pub fn bundle_resources(bundle: &Value) -> impl Iterator<Item = &Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| &entry["resource"])
        .filter(|resource| resource.is_object())
}

/// What a CodeableConcept says in words: its text, else the first coding's display, else its
/// code.
pub fn concept_text(concept: &Value) -> Option<&str> {
    if let Some(text) = concept["text"].as_str() {
        return Some(text);
    }
    let codings = concept["coding"].as_array()?;
    codings
        .iter()
        .find_map(|coding| coding["display"].as_str())
        .or_else(|| codings.iter().find_map(|coding| coding["code"].as_str()))
}

/// Whether a CodeableConcept carries `code` of `system`.
pub fn has_coding(concept: &Value, system: &str, code: &str) -> bool {
    concept["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|coding| coding["system"] == system && coding["code"] == code)
}

/// A person's name as a ward list shows it ("Ann Smith"): the `official` or `usual` name if
/// there is one, else the first; its `text` when it has no parts.
pub fn human_name(resource: &Value) -> Option<String> {
    let names = resource["name"].as_array()?;
    let name = names
        .iter()
        .find(|name| matches!(name["use"].as_str(), Some("official" | "usual")))
        .or_else(|| names.first())?;
    let mut parts: Vec<&str> = name["given"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    parts.extend(name["family"].as_str());
    if parts.is_empty() {
        name["text"].as_str().map(str::to_owned)
    } else {
        Some(parts.join(" "))
    }
}

/// A date, date-time or instant as seconds since 1970-01-01T00:00:00Z. Partial dates (`2026`,
/// `2026-03`, `2026-03-04`) and date-times without seconds count from the start of what they
/// name; a date-time without an offset is read as UTC.
pub fn parse_time(text: &str) -> Option<i64> {
    let (date, time) = match text.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = number(date_parts.next()?, 4)?;
    let month: i64 = date_parts.next().map_or(Some(1), |m| number(m, 2))?;
    let day: i64 = date_parts.next().map_or(Some(1), |d| number(d, 2))?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut seconds = days_from_civil(year, month, day) * 86_400;
    if let Some(time) = time {
        let (clock, offset) = split_offset(time)?;
        let mut clock_parts = clock.splitn(3, ':');
        let hours: i64 = number(clock_parts.next()?, 2)?;
        let minutes: i64 = number(clock_parts.next()?, 2)?;
        let whole_seconds = match clock_parts.next() {
            // Fractions of a second do not matter on a ward.
            Some(s) => number(s.split('.').next()?, 2)?,
            None => 0,
        };
        if hours > 23 || minutes > 59 || whole_seconds > 60 {
            return None;
        }
        seconds += hours * 3_600 + minutes * 60 + whole_seconds - offset;
    }
    Some(seconds)
}

/// Splits `10:00:00+02:00` into the clock and the offset in seconds east of UTC.
fn split_offset(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix('Z') {
        return Some((clock, 0));
    }
    match time.rfind(['+', '-']) {
        Some(at) => {
            let sign = if time[at..].starts_with('-') { -1 } else { 1 };
            let (hours, minutes) = time[at + 1..].split_once(':')?;
            let offset = number(hours, 2)? * 3_600 + number(minutes, 2)? * 60;
            Some((&time[..at], sign * offset))
        }
        None => Some((time, 0)),
    }
}

/// `digits` decimal digits exactly, as a number.
fn number(text: &str, digits: usize) -> Option<i64> {
    (text.len() == digits && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The calendar date of a day count since 1970-01-01: (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A moment as a ward clock shows it, in the viewer's time zone (`offset` seconds east of UTC):
/// `14:05` on the same day as `now`, `3 Mar 14:05` in the same year, `3 Mar 2024` before.
pub fn format_moment(at: i64, now: i64, offset: i64) -> String {
    let local = at + offset;
    let (day, second_of_day) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let today = (now + offset).div_euclid(86_400);
    let (hour, minute) = (second_of_day / 3_600, second_of_day % 3_600 / 60);
    let (year, month, day_of_month) = civil_from_days(day);
    let month = MONTHS[(month - 1) as usize];
    if day == today {
        format!("{hour:02}:{minute:02}")
    } else if year == civil_from_days(today).0 {
        format!("{day_of_month} {month} {hour:02}:{minute:02}")
    } else {
        format!("{day_of_month} {month} {year}")
    }
}

/// An instant in UTC as FHIR and the server's `_asof` bases write it: `2026-06-01T10:00:05Z`.
pub fn format_instant(at: i64) -> String {
    format!("{}Z", local_date_time(at, 0))
}

/// A moment as a date-time input (`<input type="datetime-local">`) holds it, in the viewer's
/// time zone (`offset` seconds east of UTC): `2026-06-01T12:00:05`.
pub fn local_date_time(at: i64, offset: i64) -> String {
    let local = at + offset;
    let (day, second_of_day) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (year, month, day_of_month) = civil_from_days(day);
    let (hour, minute, second) = (
        second_of_day / 3_600,
        second_of_day % 3_600 / 60,
        second_of_day % 60,
    );
    format!("{year:04}-{month:02}-{day_of_month:02}T{hour:02}:{minute:02}:{second:02}")
}

/// What a date-time input holds (`2026-06-01T12:00` or with seconds), read in the viewer's
/// time zone (`offset` seconds east of UTC): seconds since the Unix epoch.
pub fn parse_local_date_time(text: &str, offset: i64) -> Option<i64> {
    let text = text.trim();
    // An input gives neither a zone nor a date alone; refuse both rather than guess.
    if !text.contains('T') || text.ends_with('Z') || text[text.find('T')?..].contains(['+', '-']) {
        return None;
    }
    Some(parse_time(text)? - offset)
}

/// Whole years between a birth date (`1970-02-03`) and the moment `now`.
pub fn age_in_years(birth_date: &str, now: i64) -> Option<i64> {
    let mut parts = birth_date.splitn(3, '-');
    let year = number(parts.next()?, 4)?;
    let month = parts.next().map_or(Some(1), |m| number(m, 2))?;
    let day = parts.next().map_or(Some(1), |d| number(d, 2))?;
    let (this_year, this_month, this_day) = civil_from_days(now.div_euclid(86_400));
    let birthday_passed = (this_month, this_day) >= (month, day);
    let age = this_year - year - i64::from(!birthday_passed);
    (age >= 0).then_some(age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_name_their_id_only_for_the_asked_type() {
        let plain = json!({"reference": "Patient/123"});
        assert_eq!(reference_id(&plain, "Patient"), Some("123"));
        assert_eq!(reference_id(&plain, "Location"), None);
        let versioned = json!({"reference": "Patient/123/_history/4"});
        assert_eq!(reference_id(&versioned, "Patient"), Some("123"));
        let absolute = json!({"reference": "https://example.org/fhir/Patient/abc-1"});
        assert_eq!(reference_id(&absolute, "Patient"), Some("abc-1"));
        assert_eq!(
            reference_id(&json!({"reference": "urn:uuid:1"}), "Patient"),
            None
        );
        assert_eq!(reference_id(&json!({"display": "Ann"}), "Patient"), None);
    }

    #[test]
    fn names_prefer_the_official_one() {
        let patient = json!({"name": [
            {"use": "nickname", "given": ["Annie"]},
            {"use": "official", "family": "Smith", "given": ["Ann", "B."]},
        ]});
        assert_eq!(human_name(&patient).as_deref(), Some("Ann B. Smith"));
        let text_only = json!({"name": [{"text": "Baby Jones"}]});
        assert_eq!(human_name(&text_only).as_deref(), Some("Baby Jones"));
        assert_eq!(human_name(&json!({})), None);
    }

    #[test]
    fn concepts_read_text_then_display_then_code() {
        assert_eq!(
            concept_text(&json!({"text": "Sepsis", "coding": [{"display": "x"}]})),
            Some("Sepsis")
        );
        assert_eq!(
            concept_text(&json!({"coding": [{"code": "1"}, {"code": "2", "display": "Two"}]})),
            Some("Two")
        );
        assert_eq!(concept_text(&json!({"coding": [{"code": "1"}]})), Some("1"));
        assert_eq!(concept_text(&json!({})), None);
    }

    #[test]
    fn times_parse_to_utc_seconds() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("2026-06-01T12:00:00Z"), Some(1_780_315_200));
        assert_eq!(
            parse_time("2026-06-01T14:00:00+02:00"),
            parse_time("2026-06-01T12:00:00Z")
        );
        assert_eq!(
            parse_time("2026-06-01T07:30:00.123-04:30"),
            parse_time("2026-06-01T12:00:00Z")
        );
        assert_eq!(parse_time("2026-06-01"), Some(1_780_272_000));
        assert_eq!(parse_time("2026"), parse_time("2026-01-01T00:00:00Z"));
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(parse_time("2026-13-01"), None);
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("2026-06-01T25:00:00Z"), None);
    }

    #[test]
    fn calendar_conversion_round_trips() {
        for days in [-800_000, -1, 0, 59, 365, 11_016, 19_782, 20_605, 2_000_000] {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(
                days_from_civil(year, month, day),
                days,
                "{year}-{month}-{day}"
            );
        }
    }

    #[test]
    fn moments_show_the_clock_today_and_the_date_otherwise() {
        let now = parse_time("2026-06-01T16:00:00Z").unwrap();
        let at = parse_time("2026-06-01T12:05:00Z").unwrap();
        assert_eq!(format_moment(at, now, 0), "12:05");
        assert_eq!(format_moment(at, now, 3_600), "13:05");
        let earlier = parse_time("2026-05-30T23:30:00Z").unwrap();
        assert_eq!(format_moment(earlier, now, 0), "30 May 23:30");
        // An hour east of UTC, 23:30 UTC is already the next day.
        assert_eq!(format_moment(earlier, now, 3_600), "31 May 00:30");
        let last_year = parse_time("2025-12-31T23:30:00Z").unwrap();
        assert_eq!(format_moment(last_year, now, 0), "31 Dec 2025");
        assert_eq!(format_moment(last_year, now, 3_600), "1 Jan 00:30");
    }

    #[test]
    fn instants_and_date_time_inputs_round_trip() {
        let at = parse_time("2026-06-01T10:00:05Z").unwrap();
        assert_eq!(format_instant(at), "2026-06-01T10:00:05Z");
        assert_eq!(local_date_time(at, 7_200), "2026-06-01T12:00:05");
        assert_eq!(
            parse_local_date_time("2026-06-01T12:00:05", 7_200),
            Some(at)
        );
        assert_eq!(
            parse_local_date_time("2026-06-01T12:00", 7_200),
            Some(at - 5)
        );
        assert_eq!(format_instant(-1), "1969-12-31T23:59:59Z");
        for refused in [
            "",
            "2026-06-01",
            "2026-06-01T12:00Z",
            "2026-06-01T12:00+02:00",
            "x",
        ] {
            assert_eq!(parse_local_date_time(refused, 0), None, "{refused}");
        }
    }

    #[test]
    fn ages_count_whole_years() {
        let now = parse_time("2026-06-01T12:00:00Z").unwrap();
        assert_eq!(age_in_years("1970-06-01", now), Some(56));
        assert_eq!(age_in_years("1970-06-02", now), Some(55));
        assert_eq!(age_in_years("1970", now), Some(56));
        assert_eq!(age_in_years("2030-01-01", now), None);
        assert_eq!(age_in_years("unknown", now), None);
    }

    #[test]
    fn bundles_give_their_resources_and_versions() {
        let bundle = json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Patient", "id": "1", "meta": {"versionId": "3"}}},
            {"fullUrl": "no resource"},
        ]});
        let resources: Vec<&Value> = bundle_resources(&bundle).collect();
        assert_eq!(resources.len(), 1);
        assert_eq!(key(resources[0]).as_deref(), Some("Patient/1"));
        assert_eq!(version(resources[0]), Some(3));
    }
}
