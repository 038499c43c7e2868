//! The service's signing keys: ES256 (P-256) key pairs kept as PKCS#8 PEM files in the data
//! directory, each identified by its `kid` (the RFC 7638 thumbprint of its public key).
//!
//! The newest key signs. Rotation makes a new key; an older key stays published in the JWKS,
//! and is accepted, until every token it signed has expired: that is, until its successor is
//! older than the longest-lived token the service signs. Then its file is removed. A key's
//! creation time is in its file name (`es256-<unix ms>.pem`), so the directory is the whole
//! state: no index to keep consistent with it.
//!
//! Only tokens are signed here (access and ID tokens); refresh tokens are opaque and live in
//! Redis, so they never depend on a key.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::elliptic_curve::Generate;
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

/// The only algorithm the service signs with.
pub const SIGNING_ALGORITHM: Algorithm = access_policy::verify::ACCESS_TOKEN_ALGORITHM;

/// What can go wrong with the keys.
#[derive(Debug, Error)]
pub enum KeyError {
    #[error("signing keys in {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("signing key {path} is not a P-256 PKCS#8 key: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("cannot make a signing key: {0}")]
    Generate(String),
    #[error("cannot sign a token: {0}")]
    Sign(jsonwebtoken::errors::Error),
}

/// Why a token the service is shown was not one it signed, or is no longer valid.
#[derive(Debug, Error)]
pub enum VerifyError {
    #[error("not a well-formed JWT")]
    Malformed,
    #[error("signed with a key this service does not publish")]
    UnknownKey,
    #[error("{0}")]
    Invalid(jsonwebtoken::errors::Error),
}

struct SigningKey {
    kid: String,
    created_ms: i64,
    path: PathBuf,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Jwk,
}

/// The signing keys, oldest first; the last one signs.
pub struct KeyRing {
    dir: PathBuf,
    /// The longest a token signed here lives: how long a retired key stays published.
    token_lifetime: Duration,
    keys: RwLock<Vec<SigningKey>>,
}

impl KeyRing {
    /// Loads the keys in `<data_dir>/signing-keys`, making the first one if there is none, and
    /// removes keys retired for longer than `token_lifetime`.
    pub fn open(data_dir: &Path, token_lifetime: Duration) -> Result<KeyRing, KeyError> {
        let dir = data_dir.join("signing-keys");
        create_private_dir(&dir)?;
        let ring = KeyRing {
            keys: RwLock::new(load(&dir)?),
            dir,
            token_lifetime,
        };
        if ring.read(|keys| keys.is_empty()) {
            ring.rotate()?;
        } else {
            ring.prune();
        }
        Ok(ring)
    }

    /// Makes a new signing key; the previous ones stay published until their tokens expire.
    /// Returns the new key's `kid`.
    pub fn rotate(&self) -> Result<String, KeyError> {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        let newest = keys.last().map_or(0, |key| key.created_ms);
        // Creation times order the keys, so a new key is always later than the last one.
        let created_ms = now_ms().max(newest + 1);
        let secret = p256::SecretKey::generate();
        let pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|error| KeyError::Generate(error.to_string()))?;
        let path = self.dir.join(format!("es256-{created_ms}.pem"));
        write_private_file(&path, pem.as_bytes())?;
        let key = signing_key(path, created_ms, pem.as_bytes())?;
        let kid = key.kid.clone();
        keys.push(key);
        drop(keys);
        tracing::info!(%kid, "new signing key");
        self.prune();
        Ok(kid)
    }

    /// Signs `claims` with the current key, its `kid` in the header.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        self.read(|keys| {
            let key = keys
                .last()
                .ok_or_else(|| KeyError::Generate("no signing key".to_owned()))?;
            let mut header = Header::new(SIGNING_ALGORITHM);
            header.kid = Some(key.kid.clone());
            jsonwebtoken::encode(&header, claims, &key.encoding).map_err(KeyError::Sign)
        })
    }

    /// The claims of a token this service signed with a key it still publishes, checked
    /// against `validation` (issuer, audience, expiry as the caller needs).
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<T, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if header.alg != SIGNING_ALGORITHM {
            return Err(VerifyError::UnknownKey);
        }
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        self.read(|keys| {
            let key = self
                .published(keys)
                .find(|key| key.kid == kid)
                .ok_or(VerifyError::UnknownKey)?;
            jsonwebtoken::decode::<T>(token, &key.decoding, validation)
                .map(|data| data.claims)
                .map_err(VerifyError::Invalid)
        })
    }

    /// The public keys clients and services check tokens with: the current one and those
    /// retired less than a token lifetime ago.
    pub fn jwks(&self) -> JwkSet {
        self.read(|keys| JwkSet {
            keys: self.published(keys).map(|key| key.jwk.clone()).collect(),
        })
    }

    /// The current signing key's `kid`.
    pub fn current_kid(&self) -> Option<String> {
        self.read(|keys| keys.last().map(|key| key.kid.clone()))
    }

    /// The keys still published: the newest, and those whose successor was made less than a
    /// token lifetime ago (a key is retired when its successor is made).
    fn published<'k>(&self, keys: &'k [SigningKey]) -> impl Iterator<Item = &'k SigningKey> {
        let lifetime = i64::try_from(self.token_lifetime.as_millis()).unwrap_or(i64::MAX);
        let now = now_ms();
        keys.iter().enumerate().filter_map(move |(index, key)| {
            keys.get(index + 1)
                .is_none_or(|successor| successor.created_ms.saturating_add(lifetime) > now)
                .then_some(key)
        })
    }

    /// Forgets, and deletes the files of, keys no token still valid can have been signed with.
    fn prune(&self) {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        let kept: Vec<String> = self.published(&keys).map(|key| key.kid.clone()).collect();
        keys.retain(|key| {
            let keep = kept.contains(&key.kid);
            if !keep {
                if let Err(error) = fs::remove_file(&key.path) {
                    tracing::warn!(%error, path = %key.path.display(), "cannot remove an expired signing key");
                }
                tracing::info!(kid = %key.kid, "expired signing key removed");
            }
            keep
        });
    }

    fn read<R>(&self, f: impl FnOnce(&[SigningKey]) -> R) -> R {
        f(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The keys in `dir`, oldest first.
fn load(dir: &Path) -> Result<Vec<SigningKey>, KeyError> {
    let io = |source| KeyError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut keys = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let Some(created_ms) = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_prefix("es256-"))
            .and_then(|name| name.strip_suffix(".pem"))
            .and_then(|stamp| stamp.parse::<i64>().ok())
        else {
            continue;
        };
        let pem = fs::read(&path).map_err(|source| KeyError::Io {
            path: path.clone(),
            source,
        })?;
        keys.push(signing_key(path, created_ms, &pem)?);
    }
    keys.sort_by_key(|key| key.created_ms);
    Ok(keys)
}

fn signing_key(path: PathBuf, created_ms: i64, pem: &[u8]) -> Result<SigningKey, KeyError> {
    let unreadable = |reason: String| KeyError::Unreadable {
        path: path.clone(),
        reason,
    };
    let encoding = EncodingKey::from_ec_pem(pem).map_err(|error| unreadable(error.to_string()))?;
    let mut jwk = Jwk::from_encoding_key(&encoding, SIGNING_ALGORITHM)
        .map_err(|error| unreadable(error.to_string()))?;
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|error| unreadable(error.to_string()))?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|error| unreadable(error.to_string()))?;
    Ok(SigningKey {
        kid,
        created_ms,
        path,
        encoding,
        decoding,
        jwk,
    })
}

/// Creates `dir` (and its parents) readable by the owner only.
pub fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: dir.to_owned(),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    Ok(())
}

/// Writes a private key: created with mode 0600, so it is never readable by others, not even
/// for a moment.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
    struct Claims {
        sub: String,
        exp: i64,
    }

    fn claims() -> Claims {
        Claims {
            sub: "nurse".to_owned(),
            exp: chrono::Utc::now().timestamp() + 60,
        }
    }

    fn validation() -> Validation {
        let mut validation = Validation::new(SIGNING_ALGORITHM);
        validation.required_spec_claims.clear();
        validation
    }

    #[test]
    fn keys_persist_and_rotation_keeps_the_old_key_published() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::open(dir.path(), Duration::from_secs(60)).unwrap();
        let first = ring.current_kid().unwrap();
        let token = ring.sign(&claims()).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(first.as_str()));

        let reopened = KeyRing::open(dir.path(), Duration::from_secs(60)).unwrap();
        assert_eq!(
            reopened.current_kid().unwrap(),
            first,
            "the key survives a restart"
        );
        assert_eq!(
            reopened.verify::<Claims>(&token, &validation()).unwrap(),
            claims()
        );

        let second = reopened.rotate().unwrap();
        assert_ne!(second, first);
        let kids: Vec<_> = reopened
            .jwks()
            .keys
            .iter()
            .map(|key| key.common.key_id.clone().unwrap())
            .collect();
        assert_eq!(kids, [first, second]);
        assert!(reopened.verify::<Claims>(&token, &validation()).is_ok());
    }

    #[test]
    fn a_key_retired_longer_than_a_token_lifetime_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::open(dir.path(), Duration::ZERO).unwrap();
        let token = ring.sign(&claims()).unwrap();
        ring.rotate().unwrap();
        assert_eq!(ring.jwks().keys.len(), 1);
        assert!(matches!(
            ring.verify::<Claims>(&token, &validation()),
            Err(VerifyError::UnknownKey)
        ));
        let files = fs::read_dir(dir.path().join("signing-keys"))
            .unwrap()
            .count();
        assert_eq!(files, 1, "the retired key's file is removed");
    }

    #[cfg(unix)]
    #[test]
    fn key_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        KeyRing::open(dir.path(), Duration::from_secs(60)).unwrap();
        for entry in fs::read_dir(dir.path().join("signing-keys")).unwrap() {
            let mode = entry.unwrap().metadata().unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
