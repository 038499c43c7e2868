//! Request parameters, from a query string or a form body, read the way RFC 6749 3.1 says: a
//! parameter sent without a value is as if it were not sent, and one sent twice is an error
//! (which of two `redirect_uri`s would be meant?).
//!
//! The endpoints read their bodies through this rather than axum's `Form`, whose rejections are
//! plain text: an OAuth client is owed an OAuth error whatever is wrong with its request.

use std::collections::HashMap;

use crate::error::Error;

/// Parameters by name, each at most once.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` text.
    pub fn parse(text: &[u8]) -> Result<Params, Error> {
        let mut params = HashMap::new();
        for (name, value) in form_urlencoded::parse(text) {
            if value.is_empty() {
                continue;
            }
            if params
                .insert(name.clone().into_owned(), value.into_owned())
                .is_some()
            {
                return Err(Error::InvalidRequest(format!(
                    "the parameter '{name}' is given more than once"
                )));
            }
        }
        Ok(Params(params))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The parameter, or `invalid_request` naming it.
    pub fn require(&self, name: &str) -> Result<&str, Error> {
        self.get(name)
            .ok_or_else(|| Error::InvalidRequest(format!("the parameter '{name}' is required")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn empty_values_are_absent_and_repeats_are_refused() {
        let params = Params::parse(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.get("b"), None);
        assert_eq!(params.get("c"), Some("x y"));
        assert!(params.require("b").is_err());
        assert!(Params::parse(b"a=1&a=2").is_err());
    }
}
