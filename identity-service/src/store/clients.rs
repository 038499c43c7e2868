//! OAuth clients: who may ask for tokens, where codes may be sent, what they may be granted,
//! and how a confidential client proves who it is (a key set for `private_key_jwt`, or a
//! secret's hash for `client_secret_basic`).

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;

use super::{Store, StoreError, unique};

/// Whether a client can keep a secret (RFC 6749 2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    /// A browser or native app: identified by its id, proves nothing (PKCE protects its codes).
    Public,
    /// A server: authenticates with a signed assertion or a secret.
    Confidential,
}

/// A registered client.
#[derive(Debug, Clone, Serialize)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    pub kind: ClientKind,
    /// Where authorization responses may go: exactly these, compared as strings.
    pub redirect_uris: Vec<String>,
    /// Space-separated: the most this client may be granted.
    pub allowed_scopes: String,
    /// The client's public keys (a JWK Set), for `private_key_jwt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// Where the client publishes its JWK Set, when not inline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Argon2id of the client secret; never leaves the service.
    #[serde(skip)]
    pub secret_hash: Option<String>,
}

const COLUMNS: &str =
    "client_id, name, confidential, redirect_uris, allowed_scopes, jwks, jwks_uri, secret_hash";

impl Store {
    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM identity_client WHERE client_id = $1"
        ))
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?
        .map(|row| client(&row))
        .transpose()
    }

    pub async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM identity_client ORDER BY client_id"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(client)
        .collect()
    }

    /// Registers a client; `Exists` if the id is taken.
    pub async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        self.write_client(client, "")
            .await
            .map_err(|error| unique(error, || format!("client '{}'", client.client_id)))
    }

    /// Registers a client, or replaces the one of that id (seeding, the directory file).
    pub async fn put_client(&self, client: &Client) -> Result<(), StoreError> {
        self.write_client(
            client,
            "ON CONFLICT (client_id) DO UPDATE SET name = EXCLUDED.name,
                 confidential = EXCLUDED.confidential, redirect_uris = EXCLUDED.redirect_uris,
                 allowed_scopes = EXCLUDED.allowed_scopes, jwks = EXCLUDED.jwks,
                 jwks_uri = EXCLUDED.jwks_uri, secret_hash = EXCLUDED.secret_hash",
        )
        .await
        .map_err(StoreError::Database)
    }

    async fn write_client(&self, client: &Client, on_conflict: &str) -> Result<(), sqlx::Error> {
        sqlx::query(&format!(
            "INSERT INTO identity_client ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             {on_conflict}"
        ))
        .bind(&client.client_id)
        .bind(&client.name)
        .bind(client.kind == ClientKind::Confidential)
        .bind(&client.redirect_uris)
        .bind(&client.allowed_scopes)
        .bind(client.jwks.as_ref().map(Json))
        .bind(&client.jwks_uri)
        .bind(&client.secret_hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes a client; whether there was one.
    pub async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("DELETE FROM identity_client WHERE client_id = $1")
                .bind(client_id)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }
}

fn client(row: &PgRow) -> Result<Client, StoreError> {
    let confidential: bool = row.try_get("confidential")?;
    let jwks: Option<Json<serde_json::Value>> = row.try_get("jwks")?;
    Ok(Client {
        client_id: row.try_get("client_id")?,
        name: row.try_get("name")?,
        kind: if confidential {
            ClientKind::Confidential
        } else {
            ClientKind::Public
        },
        redirect_uris: row.try_get("redirect_uris")?,
        allowed_scopes: row.try_get("allowed_scopes")?,
        jwks: jwks.map(|Json(value)| value),
        jwks_uri: row.try_get("jwks_uri")?,
        secret_hash: row.try_get("secret_hash")?,
    })
}
