//! SMART App Launch v2 scopes.
//!
//! A resource scope is `<context>/<type>.<permissions>[?<param>=<value>&...]`: the context is
//! `patient` (the patient in the token's launch context), `user` (what the user may see) or
//! `system` (a backend service); the type is a FHIR resource type or `*`; the permissions are a
//! subset of `cruds` in that order. SMART v1's `.read`, `.write` and `.*` mean `rs`, `cud` and
//! `cruds`. Other scopes (`openid`, `fhirUser`, `launch/patient`, `offline_access`) are kept as
//! they are for the identity service to interpret.

use std::fmt;

use fhir_model::ResourceType;
use thiserror::Error;

/// Who a resource scope speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeContext {
    Patient,
    User,
    System,
}

impl ScopeContext {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeContext::Patient => "patient",
            ScopeContext::User => "user",
            ScopeContext::System => "system",
        }
    }
}

/// A subset of SMART v2's `cruds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions(u8);

impl Permissions {
    pub const CREATE: Permissions = Permissions(1);
    pub const READ: Permissions = Permissions(2);
    pub const UPDATE: Permissions = Permissions(4);
    pub const DELETE: Permissions = Permissions(8);
    pub const SEARCH: Permissions = Permissions(16);
    pub const ALL: Permissions = Permissions(31);
    const LETTERS: [(char, Permissions); 5] = [
        ('c', Permissions::CREATE),
        ('r', Permissions::READ),
        ('u', Permissions::UPDATE),
        ('d', Permissions::DELETE),
        ('s', Permissions::SEARCH),
    ];

    pub fn contains(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn union(self, other: Permissions) -> Permissions {
        Permissions(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `cruds` letters in SMART's order; v1 words map to their v2 letters.
    fn parse(text: &str) -> Option<Permissions> {
        match text {
            "read" => return Some(Permissions(Permissions::READ.0 | Permissions::SEARCH.0)),
            "write" => {
                return Some(Permissions(
                    Permissions::CREATE.0 | Permissions::UPDATE.0 | Permissions::DELETE.0,
                ));
            }
            "*" => return Some(Permissions::ALL),
            _ => {}
        }
        let mut permissions = Permissions::default();
        let mut letters = Permissions::LETTERS.iter();
        for ch in text.chars() {
            // Each letter at most once, in order: `rs` is valid, `sr` and `rr` are not.
            let (_, bit) = letters.by_ref().find(|(letter, _)| *letter == ch)?;
            permissions = permissions.union(*bit);
        }
        (!permissions.is_empty()).then_some(permissions)
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (letter, bit) in Permissions::LETTERS {
            if self.contains(bit) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// One resource scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub context: ScopeContext,
    /// `None` for `*`.
    pub resource_type: Option<ResourceType>,
    pub permissions: Permissions,
    /// `?param=value` restrictions, all of which a resource must match.
    pub restrictions: Vec<(String, String)>,
}

/// A scope string that looks like a resource scope but is not a valid one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("'{scope}' is not a valid SMART scope: {reason}")]
pub struct ScopeError {
    pub scope: String,
    pub reason: &'static str,
}

impl Scope {
    /// Parses a resource scope; `Ok(None)` when `text` is not a resource scope at all
    /// (`openid`, `launch/patient`).
    pub fn parse(text: &str) -> Result<Option<Scope>, ScopeError> {
        let error = |reason| ScopeError {
            scope: text.to_owned(),
            reason,
        };
        let Some((context, rest)) = text.split_once('/') else {
            return Ok(None);
        };
        let context = match context {
            "patient" => ScopeContext::Patient,
            "user" => ScopeContext::User,
            "system" => ScopeContext::System,
            _ => return Ok(None),
        };
        let (body, query) = match rest.split_once('?') {
            Some((body, query)) => (body, Some(query)),
            None => (rest, None),
        };
        let (type_name, permissions) = body
            .split_once('.')
            .ok_or_else(|| error("expected <type>.<permissions>"))?;
        let resource_type = match type_name {
            "*" => None,
            name => {
                Some(ResourceType::parse(name).map_err(|_| error("unknown FHIR resource type"))?)
            }
        };
        let permissions = Permissions::parse(permissions).ok_or_else(|| {
            error("permissions must be a subset of cruds in that order, read, write or *")
        })?;
        let mut restrictions = Vec::new();
        if let Some(query) = query {
            for pair in query.split('&') {
                let (name, value) = pair
                    .split_once('=')
                    .filter(|(name, value)| !name.is_empty() && !value.is_empty())
                    .ok_or_else(|| error("a restriction must be param=value"))?;
                restrictions.push((name.to_owned(), value.to_owned()));
            }
        }
        Ok(Some(Scope {
            context,
            resource_type,
            permissions,
            restrictions,
        }))
    }

    /// Whether this scope names `resource_type` (directly or as `*`).
    pub fn names(&self, resource_type: ResourceType) -> bool {
        self.resource_type.is_none_or(|own| own == resource_type)
    }

    /// Whether everything `other` allows, this scope allows too (used to refuse a refresh that
    /// asks for more than was granted).
    pub fn covers(&self, other: &Scope) -> bool {
        self.context == other.context
            && (self.resource_type.is_none() || self.resource_type == other.resource_type)
            && self.permissions.contains(other.permissions)
            && self
                .restrictions
                .iter()
                .all(|restriction| other.restrictions.contains(restriction))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let type_name = self.resource_type.map_or("*", |name| name.as_str());
        write!(
            f,
            "{}/{type_name}.{}",
            self.context.as_str(),
            self.permissions
        )?;
        for (index, (name, value)) in self.restrictions.iter().enumerate() {
            write!(f, "{}{name}={value}", if index == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

/// The scopes of a grant: resource scopes parsed, the others kept as they were written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet {
    pub resources: Vec<Scope>,
    pub others: Vec<String>,
}

impl ScopeSet {
    /// Parses a space-separated scope string (a token's `scope` claim or a request's `scope`).
    pub fn parse(text: &str) -> Result<ScopeSet, ScopeError> {
        let mut set = ScopeSet::default();
        for word in text.split_ascii_whitespace() {
            match Scope::parse(word)? {
                Some(scope) => {
                    if !set.resources.contains(&scope) {
                        set.resources.push(scope);
                    }
                }
                None => {
                    if !set.others.iter().any(|other| other == word) {
                        set.others.push(word.to_owned());
                    }
                }
            }
        }
        Ok(set)
    }

    /// Whether the non-resource scope `name` (`openid`, `launch/patient`) was granted.
    pub fn has(&self, name: &str) -> bool {
        self.others.iter().any(|other| other == name)
    }

    /// Whether every scope of `requested` is covered by one of these (a narrowing, never a
    /// widening).
    pub fn covers(&self, requested: &ScopeSet) -> bool {
        requested
            .resources
            .iter()
            .all(|wanted| self.resources.iter().any(|own| own.covers(wanted)))
            && requested.others.iter().all(|other| self.has(other))
    }

    /// The resource scopes that allow `permission` on `resource_type`.
    pub fn allowing(
        &self,
        resource_type: ResourceType,
        permission: Permissions,
    ) -> impl Iterator<Item = &Scope> {
        self.resources.iter().filter(move |scope| {
            scope.names(resource_type) && scope.permissions.contains(permission)
        })
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for word in self
            .resources
            .iter()
            .map(ToString::to_string)
            .chain(self.others.iter().cloned())
        {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(&word)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn scope(text: &str) -> Scope {
        Scope::parse(text).unwrap().unwrap()
    }

    #[test]
    fn v2_scopes_with_restrictions() {
        let parsed = scope("patient/Observation.rs?category=vital-signs");
        assert_eq!(parsed.context, ScopeContext::Patient);
        assert_eq!(parsed.resource_type.unwrap().as_str(), "Observation");
        assert!(parsed.permissions.contains(Permissions::READ));
        assert!(parsed.permissions.contains(Permissions::SEARCH));
        assert!(!parsed.permissions.contains(Permissions::CREATE));
        assert_eq!(
            parsed.restrictions,
            vec![("category".to_owned(), "vital-signs".to_owned())]
        );
        assert_eq!(
            parsed.to_string(),
            "patient/Observation.rs?category=vital-signs"
        );
    }

    #[test]
    fn v1_words_are_their_v2_letters() {
        assert_eq!(scope("user/Patient.read").to_string(), "user/Patient.rs");
        assert_eq!(scope("user/*.write").to_string(), "user/*.cud");
        assert_eq!(scope("system/*.*").to_string(), "system/*.cruds");
    }

    #[test]
    fn malformed_resource_scopes_are_errors() {
        for bad in [
            "patient/Observation.sr",
            "patient/Observation.rr",
            "patient/Observation.x",
            "patient/Observation",
            "patient/NotAType.rs",
            "user/Patient.rs?category",
            "user/Patient.rs?=x",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad} was accepted");
        }
        assert_eq!(Scope::parse("launch/patient").unwrap(), None);
        assert_eq!(Scope::parse("openid").unwrap(), None);
    }

    #[test]
    fn covering_never_widens() {
        let granted = ScopeSet::parse("user/Observation.rs patient/*.r openid").unwrap();
        assert!(granted.covers(&ScopeSet::parse("user/Observation.r openid").unwrap()));
        assert!(
            granted.covers(&ScopeSet::parse("user/Observation.rs?category=laboratory").unwrap())
        );
        assert!(granted.covers(&ScopeSet::parse("patient/Condition.r").unwrap()));
        assert!(!granted.covers(&ScopeSet::parse("user/Observation.cruds").unwrap()));
        assert!(!granted.covers(&ScopeSet::parse("user/Condition.r").unwrap()));
        assert!(!granted.covers(&ScopeSet::parse("offline_access").unwrap()));
        let restricted = ScopeSet::parse("user/Observation.rs?category=laboratory").unwrap();
        assert!(!restricted.covers(&ScopeSet::parse("user/Observation.rs").unwrap()));
    }
}
