//! The app's pages as URL fragments (`#/ward/ward-a`, `#/patients?name=smith`,
//! `#/patient/123`, `#/teaching`), so every page can be bookmarked, reloaded and opened by a
//! test directly, and the static files need no server-side routing.
//!
//! The ward and the patient page show the live record, the past (`?at=<instant>`:
//! `#/ward/ward-a?at=2026-06-01T10:00:05Z`) or a teaching sandbox
//! (`#/sandbox/<name>/ward/ward-a`, `#/sandbox/<name>/patient/123`); see [`View`].

use crate::fhir;
use crate::view::{View, is_sandbox_name};

/// The wards of the demo hospital, for the ward picker: (Location id, short name).
pub const WARDS: [(&str, &str); 3] = [
    ("ward-a", "Ward A"),
    ("ward-b", "Ward B"),
    ("ward-c", "Ward C"),
];

/// The ward shown when the fragment names no page.
pub const DEFAULT_WARD: &str = "ward-a";

/// One page of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A ward's dashboard, by the ward's Location id, in a view of the record.
    Ward { ward: String, view: View },
    /// The patient list, searched by name (empty: everyone, by family name).
    Patients { name: String },
    /// One patient's record, by Patient id, in a view of the record.
    Patient { id: String, view: View },
    /// Scenarios and sandboxes: managed by instructors, opened by their classes.
    Teaching,
    /// A fragment that names no page.
    NotFound,
}

impl Route {
    /// A live ward's dashboard.
    pub fn ward(ward: &str) -> Route {
        Route::Ward {
            ward: ward.to_owned(),
            view: View::Live,
        }
    }

    /// A patient's live record.
    pub fn patient(id: &str) -> Route {
        Route::Patient {
            id: id.to_owned(),
            view: View::Live,
        }
    }

    /// The page a location fragment (`#/ward/ward-a`, with or without its `#`) names.
    pub fn parse(fragment: &str) -> Route {
        let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
        let (path, query) = fragment.split_once('?').unwrap_or((fragment, ""));
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (view, page) = match segments.as_slice() {
            ["sandbox", name, page @ ..] if is_sandbox_name(name) => {
                (View::Sandbox((*name).to_owned()), page)
            }
            ["sandbox", ..] => return Route::NotFound,
            page => match query_value(query, "at") {
                Some(at) => match fhir::parse_time(&at) {
                    Some(at) => (View::Past(at), page),
                    None => return Route::NotFound,
                },
                None => (View::Live, page),
            },
        };
        // The list and the teaching page have no past and no sandbox of their own.
        let live = view == View::Live;
        match page {
            [] => Route::Ward {
                ward: DEFAULT_WARD.to_owned(),
                view,
            },
            ["ward", ward] if is_id(ward) => Route::Ward {
                ward: (*ward).to_owned(),
                view,
            },
            ["patient", id] if is_id(id) => Route::Patient {
                id: (*id).to_owned(),
                view,
            },
            ["patients"] if live => Route::Patients {
                name: query_value(query, "name").unwrap_or_default(),
            },
            ["teaching"] if live => Route::Teaching,
            _ => Route::NotFound,
        }
    }

    /// The fragment of this page, for links.
    pub fn href(&self) -> String {
        match self {
            Route::Ward { ward, view } => in_view(view, &format!("ward/{ward}")),
            Route::Patients { name } if name.is_empty() => "#/patients".to_owned(),
            Route::Patients { name } => format!("#/patients?name={}", encode(name)),
            Route::Patient { id, view } => in_view(view, &format!("patient/{id}")),
            Route::Teaching => "#/teaching".to_owned(),
            Route::NotFound => "#/".to_owned(),
        }
    }

    /// The view of the record the page shows, for the pages that have one.
    pub fn view(&self) -> Option<&View> {
        match self {
            Route::Ward { view, .. } | Route::Patient { view, .. } => Some(view),
            _ => None,
        }
    }

    /// The same page in another view of the record (pages without one stay as they are).
    pub fn in_view(&self, view: View) -> Route {
        match self {
            Route::Ward { ward, .. } => Route::Ward {
                ward: ward.clone(),
                view,
            },
            Route::Patient { id, .. } => Route::Patient {
                id: id.clone(),
                view,
            },
            other => other.clone(),
        }
    }
}

/// `#/<page>` in a view: under `#/sandbox/<name>/` for a sandbox, with `?at=` for the past.
fn in_view(view: &View, page: &str) -> String {
    match view {
        View::Live => format!("#/{page}"),
        // The instant is digits, `-`, `:`, `T` and `Z`: nothing to encode.
        View::Past(at) => format!("#/{page}?at={}", fhir::format_instant(*at)),
        View::Sandbox(name) => format!("#/sandbox/{name}/{page}"),
    }
}

/// Whether `text` is a FHIR id (`[A-Za-z0-9\-\.]{1,64}`), so a fragment can never put
/// anything else into an API path; `.` and `..` are refused too, as they would be read as
/// path steps.
pub fn is_id(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !text.bytes().all(|b| b == b'.')
}

/// Percent-encodes a query value: everything but RFC 3986's unreserved characters.
pub fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Reverses [`encode`] (and reads `+` as a space, as forms write it); malformed escapes are
/// kept as they are.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| text.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[index], escaped) {
            (_, Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (b'+', None) => {
                decoded.push(b' ');
                index += 1;
            }
            (byte, None) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// The decoded value of `wanted` in a query string (`a=1&b=2`, without its `?`).
pub fn query_value(query: &str, wanted: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| decode(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(name: &str) -> View {
        View::Sandbox(name.to_owned())
    }

    #[test]
    fn an_empty_fragment_is_the_default_ward() {
        for fragment in ["", "#", "#/"] {
            assert_eq!(Route::parse(fragment), Route::ward("ward-a"));
        }
    }

    #[test]
    fn pages_parse_from_their_fragments() {
        assert_eq!(Route::parse("#/ward/ward-c"), Route::ward("ward-c"));
        assert_eq!(Route::parse("#/patient/abc-1.2"), Route::patient("abc-1.2"));
        assert_eq!(
            Route::parse("#/patients"),
            Route::Patients { name: "".into() }
        );
        assert_eq!(
            Route::parse("#/patients?name=van%20der+Berg"),
            Route::Patients {
                name: "van der Berg".into()
            }
        );
        assert_eq!(Route::parse("#/teaching"), Route::Teaching);
    }

    #[test]
    fn the_past_and_sandboxes_are_views_of_the_same_pages() {
        let at = fhir::parse_time("2026-06-01T10:00:05Z").unwrap();
        assert_eq!(
            Route::parse("#/ward/ward-b?at=2026-06-01T10:00:05Z"),
            Route::ward("ward-b").in_view(View::Past(at))
        );
        assert_eq!(
            Route::parse("#/patient/p1?at=2026-06-01T12%3A00%3A05%2B02%3A00"),
            Route::patient("p1").in_view(View::Past(at))
        );
        assert_eq!(
            Route::parse("#/sandbox/night-7/ward/ward-a"),
            Route::ward("ward-a").in_view(sandbox("night-7"))
        );
        assert_eq!(
            Route::parse("#/sandbox/night-7"),
            Route::ward("ward-a").in_view(sandbox("night-7"))
        );
        assert_eq!(
            Route::parse("#/sandbox/night-7/patient/p1"),
            Route::patient("p1").in_view(sandbox("night-7"))
        );
    }

    #[test]
    fn fragments_that_are_no_page_or_no_id_are_not_found() {
        assert_eq!(Route::parse("#/elsewhere"), Route::NotFound);
        assert_eq!(Route::parse("#/patient/a%2Fb"), Route::NotFound);
        assert_eq!(Route::parse("#/patient/../metadata"), Route::NotFound);
        assert_eq!(Route::parse("#/ward/a/b"), Route::NotFound);
        assert_eq!(Route::parse("#/ward/ward-a?at=yesterday"), Route::NotFound);
        assert_eq!(Route::parse("#/sandbox/Night/ward/ward-a"), Route::NotFound);
        assert_eq!(Route::parse("#/sandbox/../ward/ward-a"), Route::NotFound);
        assert_eq!(Route::parse("#/sandbox/night/teaching"), Route::NotFound);
        assert_eq!(Route::parse("#/sandbox/night/patients"), Route::NotFound);
    }

    #[test]
    fn hrefs_parse_back_to_their_page() {
        for route in [
            Route::ward("ward-b"),
            Route::ward("ward-b").in_view(View::Past(1_780_000_000)),
            Route::ward("ward-b").in_view(sandbox("night")),
            Route::Patients { name: "".into() },
            Route::Patients {
                name: "Müller & Söhne".into(),
            },
            Route::patient("123"),
            Route::patient("123").in_view(View::Past(1_780_000_000)),
            Route::patient("123").in_view(sandbox("night")),
            Route::Teaching,
        ] {
            assert_eq!(Route::parse(&route.href()), route, "{}", route.href());
        }
        assert_eq!(
            Route::ward("ward-a").in_view(sandbox("night")).href(),
            "#/sandbox/night/ward/ward-a"
        );
    }

    #[test]
    fn encoding_keeps_only_unreserved_characters() {
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(decode("a%20b%26c%3Dd%2F%C3%A9"), "a b&c=d/é");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
    }

    #[test]
    fn ids_are_fhir_ids() {
        assert!(is_id("ward-a-bed-1"));
        assert!(is_id(&"a".repeat(64)));
        assert!(!is_id(&"a".repeat(65)));
        assert!(!is_id(""));
        assert!(!is_id("a/b"));
        assert!(!is_id("a?b"));
        assert!(!is_id(".."));
    }
}
