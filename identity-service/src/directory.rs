//! Who exists: users and clients, as the admin API and the directory file describe them, and
//! the demo users and clients that development mode creates.
//!
//! Development mode, on start, creates what is missing (nothing is overwritten, so a changed
//! password stays changed):
//! - one user per role, named after it, with the password `<role>-wardline` and the FHIR
//!   identity `Practitioner/demo-<role>`; the student and the instructor are in the class
//!   [`DEMO_CLASS`] (and are put in it if they were created, in no class, before users had
//!   classes);
//! - `wardline-web`, the public client of the web app;
//! - `wardline-cli`, a backend client for local tools with `system/*.cruds`, whose ES384
//!   private key is written to `<data dir>/wardline-cli.key` (mode 0600).
//!
//! Production mode creates nothing: users and clients come from the directory file
//! (`--directory`, TOML, created or updated at each start) and the admin API. The file holds
//! password and secret hashes, never passwords:
//!
//! ```toml
//! [[users]]
//! username = "rsmith"
//! password_hash = "$argon2id$v=19$m=19456,t=2,p=1$..."
//! role = "nurse"
//! fhirUser = "Practitioner/rsmith"
//! name = "R. Smith"
//! classes = ["ward-7"]
//!
//! [[clients]]
//! client_id = "ward-app"
//! name = "Ward app"
//! kind = "public"
//! redirect_uris = ["https://ward.example.org/callback"]
//! allowed_scopes = "openid fhirUser launch/patient patient/*.rs"
//! ```

use std::path::Path;

use access_policy::{Role, ScopeSet};
use fhir_model::{ResourceId, ResourceType};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey};
use p384::elliptic_curve::Generate;
use p384::pkcs8::{EncodePrivateKey, LineEnding};
use serde::Deserialize;

use crate::AppState;
use crate::error::Error;
use crate::keys::write_private_file;
use crate::pages::DemoUser;
use crate::password::Passwords;
use crate::store::{Client, ClientKind, User};

/// The web app's client id.
pub const WEB_CLIENT: &str = "wardline-web";
/// The local tools' backend client id.
pub const CLI_CLIENT: &str = "wardline-cli";
/// Where development mode writes the tools' private key, under the data directory.
pub const CLI_KEY_FILE: &str = "wardline-cli.key";
const WEB_REDIRECT_URIS: [&str; 3] = [
    "https://localhost:8443/",
    "http://localhost:8080/",
    "http://127.0.0.1:8080/",
];
const WEB_SCOPES: &str = "openid fhirUser offline_access online_access launch launch/patient \
                          user/*.cruds patient/*.cruds";
const CLI_SCOPES: &str = "system/*.cruds";
/// The teaching class of the demo student and the demo instructor (their tokens carry
/// `classes: ["demo"]`).
pub const DEMO_CLASS: &str = "demo";

/// The classes of the demo user of `role`: [`DEMO_CLASS`] for the student and the instructor,
/// none for the others.
pub fn demo_classes(role: Role) -> Vec<String> {
    match role {
        Role::Student | Role::Instructor => vec![DEMO_CLASS.to_owned()],
        Role::Nurse | Role::Physician | Role::Pharmacist | Role::Admin => Vec::new(),
    }
}

/// The demo accounts: user name = role, password `<role>-wardline`.
pub fn demo_users() -> Vec<DemoUser> {
    Role::ALL
        .into_iter()
        .map(|role| DemoUser {
            username: role.as_str().to_owned(),
            password: demo_password(role),
            role: role.as_str().to_owned(),
        })
        .collect()
}

/// The documented password of a demo account.
pub fn demo_password(role: Role) -> String {
    format!("{role}-wardline")
}

/// Creates the demo users and clients that are missing.
pub async fn seed_development(state: &AppState) -> Result<(), Error> {
    for role in Role::ALL {
        if state.store.has_user(role.as_str()).await? {
            // A demo user created before users had classes joins the demo class; a user put in
            // other classes since keeps them.
            let classes = demo_classes(role);
            if !classes.is_empty()
                && state
                    .store
                    .set_classes_if_none(role.as_str(), &classes)
                    .await?
            {
                tracing::info!(user = %role, class = DEMO_CLASS, "demo user put in the demo class");
            }
            continue;
        }
        let title = match role {
            Role::Student => "Student",
            Role::Nurse => "Nurse",
            Role::Physician => "Physician",
            Role::Pharmacist => "Pharmacist",
            Role::Instructor => "Instructor",
            Role::Admin => "Administrator",
        };
        let user = User {
            username: role.as_str().to_owned(),
            password_hash: state.passwords.hash(&demo_password(role)).await?,
            role,
            fhir_user: Some(format!("Practitioner/demo-{role}")),
            display_name: Some(format!("Demo {title}")),
            classes: demo_classes(role),
        };
        // A concurrent start may have created it first; either copy will do.
        match state.store.insert_user(&user).await {
            Ok(()) | Err(crate::store::StoreError::Exists(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    if state.store.client(WEB_CLIENT).await?.is_none() {
        state
            .store
            .put_client(&Client {
                client_id: WEB_CLIENT.to_owned(),
                name: "Wardline".to_owned(),
                kind: ClientKind::Public,
                redirect_uris: WEB_REDIRECT_URIS.map(str::to_owned).to_vec(),
                allowed_scopes: WEB_SCOPES.to_owned(),
                jwks: None,
                jwks_uri: None,
                secret_hash: None,
            })
            .await?;
    }
    let key_path = state.settings.data_dir.join(CLI_KEY_FILE);
    if state.store.client(CLI_CLIENT).await?.is_none() || !key_path.exists() {
        let (pem, jwks) = backend_key_pair()?;
        if key_path.exists() {
            std::fs::remove_file(&key_path).map_err(|source| crate::keys::KeyError::Io {
                path: key_path.clone(),
                source,
            })?;
        }
        crate::keys::create_private_dir(&state.settings.data_dir)?;
        write_private_file(&key_path, pem.as_bytes())?;
        state
            .store
            .put_client(&Client {
                client_id: CLI_CLIENT.to_owned(),
                name: "Wardline command-line tools".to_owned(),
                kind: ClientKind::Confidential,
                redirect_uris: Vec::new(),
                allowed_scopes: CLI_SCOPES.to_owned(),
                jwks: Some(jwks),
                jwks_uri: None,
                secret_hash: None,
            })
            .await?;
        tracing::info!(key = %key_path.display(), "backend client {CLI_CLIENT} registered");
    }
    Ok(())
}

/// A fresh ES384 key pair for a backend client: the private key as PKCS#8 PEM, and the public
/// key as a JWK Set (its `kid` the RFC 7638 thumbprint).
pub fn backend_key_pair() -> Result<(String, serde_json::Value), Error> {
    let failed = |reason: String| crate::keys::KeyError::Generate(reason);
    let secret = p384::SecretKey::generate();
    let pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|error| failed(error.to_string()))?
        .to_string();
    let encoding =
        EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|error| failed(error.to_string()))?;
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES384)
        .map_err(|error| failed(error.to_string()))?;
    jwk.common.key_id = Some(
        jwk.thumbprint(ThumbprintHash::SHA256)
            .map_err(|error| failed(error.to_string()))?,
    );
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(KeyAlgorithm::ES384);
    let jwks = serde_json::to_value(JwkSet { keys: vec![jwk] })
        .map_err(|error| failed(error.to_string()))?;
    Ok((pem, jwks))
}

/// The directory file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryFile {
    #[serde(default)]
    users: Vec<UserEntry>,
    #[serde(default)]
    clients: Vec<ClientEntry>,
}

/// Creates or updates the users and clients of the directory file at `path`.
pub async fn load_file(state: &AppState, path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let file: DirectoryFile = toml::from_str(&text)?;
    for entry in file.users {
        if entry.password.is_some() {
            anyhow::bail!(
                "user '{}': the directory file holds password hashes (password_hash), not passwords",
                entry.username
            );
        }
        let user = entry.into_user(&state.passwords).await?;
        state.store.put_user(&user).await?;
    }
    for entry in file.clients {
        if entry.secret.is_some() {
            anyhow::bail!(
                "client '{}': the directory file holds secret hashes (secret_hash), not secrets",
                entry.client_id
            );
        }
        let client = entry.into_client(&state.passwords).await?;
        state.store.put_client(&client).await?;
    }
    Ok(())
}

/// A user as the admin API and the directory file describe one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub username: String,
    /// The password (admin API), hashed before it is stored.
    #[serde(default)]
    pub password: Option<String>,
    /// An Argon2 PHC string (directory file).
    #[serde(default)]
    pub password_hash: Option<String>,
    pub role: Role,
    #[serde(default, rename = "fhirUser", alias = "fhir_user")]
    pub fhir_user: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// The teaching classes the user belongs to (`["ward-7"]`); none if absent.
    #[serde(default)]
    pub classes: Vec<String>,
}

impl UserEntry {
    /// The user to store, once every field has been checked.
    pub async fn into_user(self, passwords: &Passwords) -> Result<User, Error> {
        check_name("username", &self.username, 64)?;
        if let Some(reference) = &self.fhir_user {
            check_reference(reference)?;
        }
        let mut classes: Vec<String> = Vec::with_capacity(self.classes.len());
        for class in self.classes {
            check_class(&class)?;
            if !classes.contains(&class) {
                classes.push(class);
            }
        }
        let password_hash = match (self.password, self.password_hash) {
            (Some(password), None) => {
                if password.chars().count() < 8 {
                    return Err(Error::InvalidRequest(
                        "a password must have at least 8 characters".to_owned(),
                    ));
                }
                passwords.hash(&password).await?
            }
            (None, Some(hash)) => check_hash("password_hash", hash)?,
            _ => {
                return Err(Error::InvalidRequest(
                    "give either password or password_hash".to_owned(),
                ));
            }
        };
        Ok(User {
            username: self.username,
            password_hash,
            role: self.role,
            fhir_user: self.fhir_user,
            display_name: self.name,
            classes,
        })
    }
}

/// A client as the admin API and the directory file describe one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    pub client_id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub kind: ClientKind,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub allowed_scopes: String,
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// The secret (admin API), hashed before it is stored.
    #[serde(default)]
    pub secret: Option<String>,
    /// An Argon2 PHC string (directory file).
    #[serde(default)]
    pub secret_hash: Option<String>,
}

impl ClientEntry {
    /// The client to store, once every field has been checked.
    pub async fn into_client(self, passwords: &Passwords) -> Result<Client, Error> {
        check_name("client_id", &self.client_id, 128)?;
        ScopeSet::parse(&self.allowed_scopes)
            .map_err(|error| Error::InvalidRequest(format!("allowed_scopes: {error}")))?;
        for uri in &self.redirect_uris {
            let absolute = uri.starts_with("https://") || uri.starts_with("http://");
            if !absolute || uri.contains('#') {
                return Err(Error::InvalidRequest(format!(
                    "redirect URI '{uri}' must be an absolute http(s) URL without a fragment"
                )));
            }
        }
        if let Some(jwks) = &self.jwks {
            serde_json::from_value::<JwkSet>(jwks.clone()).map_err(|error| {
                Error::InvalidRequest(format!("jwks is not a JWK Set: {error}"))
            })?;
        }
        if let Some(uri) = &self.jwks_uri
            && !(uri.starts_with("https://") || uri.starts_with("http://"))
        {
            return Err(Error::InvalidRequest(format!(
                "jwks_uri '{uri}' must be an absolute http(s) URL"
            )));
        }
        let secret_hash = match (self.secret, self.secret_hash) {
            (Some(secret), None) => {
                if secret.len() < 16 {
                    return Err(Error::InvalidRequest(
                        "a client secret must have at least 16 characters".to_owned(),
                    ));
                }
                Some(passwords.hash(&secret).await?)
            }
            (None, Some(hash)) => Some(check_hash("secret_hash", hash)?),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(Error::InvalidRequest(
                    "give either secret or secret_hash".to_owned(),
                ));
            }
        };
        let has_keys = self.jwks.is_some() || self.jwks_uri.is_some();
        match self.kind {
            ClientKind::Public if has_keys || secret_hash.is_some() => {
                return Err(Error::InvalidRequest(
                    "a public client has no keys and no secret".to_owned(),
                ));
            }
            ClientKind::Confidential if !has_keys && secret_hash.is_none() => {
                return Err(Error::InvalidRequest(
                    "a confidential client needs jwks, jwks_uri or a secret".to_owned(),
                ));
            }
            _ => {}
        }
        if self.jwks.is_some() && self.jwks_uri.is_some() {
            return Err(Error::InvalidRequest(
                "give either jwks or jwks_uri".to_owned(),
            ));
        }
        Ok(Client {
            name: self.name.unwrap_or_else(|| self.client_id.clone()),
            client_id: self.client_id,
            kind: self.kind,
            redirect_uris: self.redirect_uris,
            allowed_scopes: self.allowed_scopes,
            jwks: self.jwks,
            jwks_uri: self.jwks_uri,
            secret_hash,
        })
    }
}

/// A user name or client id: 1 to `max` characters, letters, digits and `._-@:`.
fn check_name(what: &str, name: &str, max: usize) -> Result<(), Error> {
    let fine = !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-' | '@' | ':'));
    if fine {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "{what} must be 1 to {max} letters, digits or . _ - @ :"
        )))
    }
}

/// A class name: 1 to 64 characters, letters, digits, `-` and `_`.
fn check_class(class: &str) -> Result<(), Error> {
    let fine = !class.is_empty()
        && class.len() <= 64
        && class
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_'));
    if fine {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "class '{class}' must be 1 to 64 letters, digits, - or _"
        )))
    }
}

/// `fhirUser`: a relative reference, `<Type>/<id>`.
fn check_reference(reference: &str) -> Result<(), Error> {
    let valid = reference.split_once('/').is_some_and(|(kind, id)| {
        ResourceType::parse(kind).is_ok() && ResourceId::parse(id).is_ok()
    });
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "fhirUser '{reference}' must be a reference like Practitioner/123"
        )))
    }
}

fn check_hash(what: &str, hash: String) -> Result<String, Error> {
    if hash.starts_with("$argon2") {
        Ok(hash)
    } else {
        Err(Error::InvalidRequest(format!(
            "{what} must be an Argon2 PHC string ($argon2id$...)"
        )))
    }
}
