//! Password and client-secret hashes: Argon2id, stored as PHC strings (`$argon2id$v=19$...`),
//! so that each hash carries its own parameters and a change of cost applies to new hashes
//! without breaking old ones.
//!
//! Hashing costs tens of milliseconds of CPU by design, so it runs on the blocking pool, never
//! on the threads that serve requests. A sign-in for an unknown user still hashes (against a
//! hash made at start-up), so the answer's timing does not tell which user names exist.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use thiserror::Error;

use crate::settings::PasswordSettings;

/// Why a hash could not be made.
#[derive(Debug, Error)]
pub enum PasswordError {
    #[error("invalid Argon2 parameters: {0}")]
    Parameters(String),
    #[error("cannot hash: {0}")]
    Hash(String),
}

/// Hashes and checks passwords; cheap to clone.
#[derive(Clone)]
pub struct Passwords(Arc<Inner>);

struct Inner {
    argon2: Argon2<'static>,
    /// A hash of nothing anyone knows, checked when the user does not exist.
    decoy: String,
}

impl Passwords {
    pub fn new(settings: &PasswordSettings) -> Result<Passwords, PasswordError> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_lanes,
            None,
        )
        .map_err(|error| PasswordError::Parameters(error.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let decoy = hash_with(&argon2, &crate::ids::random_token())?;
        Ok(Passwords(Arc::new(Inner { argon2, decoy })))
    }

    /// The PHC string of `password`, with a fresh salt.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let inner = self.0.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_with(&inner.argon2, &password))
            .await
            .map_err(|error| PasswordError::Hash(error.to_string()))?
    }

    /// Whether `password` matches `hash`; `None` (no such user) checks against a decoy so that
    /// the time taken is the same, and is never a match.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let inner = self.0.clone();
        let password = password.to_owned();
        let (hash, real) = match hash {
            Some(hash) => (hash.to_owned(), true),
            None => (inner.decoy.clone(), false),
        };
        tokio::task::spawn_blocking(move || {
            inner
                .argon2
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok()
                && real
        })
        .await
        .unwrap_or(false)
    }
}

fn hash_with(argon2: &Argon2<'static>, password: &str) -> Result<String, PasswordError> {
    argon2
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordError::Hash(error.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cheap() -> Passwords {
        Passwords::new(&PasswordSettings {
            argon2_memory_kib: 8,
            argon2_iterations: 1,
            argon2_lanes: 1,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_hash_checks_its_password_only() {
        let passwords = cheap();
        let hash = passwords.hash("nurse-wardline").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{hash}");
        assert!(passwords.verify("nurse-wardline", Some(&hash)).await);
        assert!(!passwords.verify("nurse-wardlinE", Some(&hash)).await);
        assert!(!passwords.verify("anything", None).await);
        assert!(!passwords.verify("x", Some("not a hash")).await);
    }
}
