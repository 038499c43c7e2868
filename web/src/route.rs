//! The app's pages as URL fragments (`#/ward/ward-a`, `#/patients?name=smith`,
//! `#/patient/123`), so every page can be bookmarked, reloaded and opened by a test directly,
//! and the static files need no server-side routing.

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
    /// A ward's dashboard, by the ward's Location id.
    Ward(String),
    /// The patient list, searched by name (empty: everyone, by family name).
    Patients { name: String },
    /// One patient's record, by Patient id.
    Patient(String),
    /// A fragment that names no page.
    NotFound,
}

impl Route {
    /// The page a location fragment (`#/ward/ward-a`, with or without its `#`) names.
    pub fn parse(fragment: &str) -> Route {
        let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
        let (path, query) = fragment.split_once('?').unwrap_or((fragment, ""));
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            [] => Route::Ward(DEFAULT_WARD.to_owned()),
            ["ward", ward] if is_id(ward) => Route::Ward((*ward).to_owned()),
            ["patients"] => Route::Patients {
                name: query_value(query, "name").unwrap_or_default(),
            },
            ["patient", id] if is_id(id) => Route::Patient((*id).to_owned()),
            _ => Route::NotFound,
        }
    }

    /// The fragment of this page, for links.
    pub fn href(&self) -> String {
        match self {
            Route::Ward(ward) => format!("#/ward/{ward}"),
            Route::Patients { name } if name.is_empty() => "#/patients".to_owned(),
            Route::Patients { name } => format!("#/patients?name={}", encode(name)),
            Route::Patient(id) => format!("#/patient/{id}"),
            Route::NotFound => "#/".to_owned(),
        }
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

    #[test]
    fn an_empty_fragment_is_the_default_ward() {
        for fragment in ["", "#", "#/"] {
            assert_eq!(Route::parse(fragment), Route::Ward("ward-a".into()));
        }
    }

    #[test]
    fn pages_parse_from_their_fragments() {
        assert_eq!(Route::parse("#/ward/ward-c"), Route::Ward("ward-c".into()));
        assert_eq!(
            Route::parse("#/patient/abc-1.2"),
            Route::Patient("abc-1.2".into())
        );
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
    }

    #[test]
    fn fragments_that_are_no_page_or_no_id_are_not_found() {
        assert_eq!(Route::parse("#/elsewhere"), Route::NotFound);
        assert_eq!(Route::parse("#/patient/a%2Fb"), Route::NotFound);
        assert_eq!(Route::parse("#/patient/../metadata"), Route::NotFound);
        assert_eq!(Route::parse("#/ward/a/b"), Route::NotFound);
    }

    #[test]
    fn hrefs_parse_back_to_their_page() {
        for route in [
            Route::Ward("ward-b".into()),
            Route::Patients { name: "".into() },
            Route::Patients {
                name: "Müller & Söhne".into(),
            },
            Route::Patient("123".into()),
        ] {
            assert_eq!(Route::parse(&route.href()), route, "{}", route.href());
        }
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
