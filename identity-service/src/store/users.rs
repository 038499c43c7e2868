//! Users: a name, a password hash, a role, who they are in FHIR (`fhirUser`), and the
//! teaching classes they belong to.

use access_policy::Role;
use serde::Serialize;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::{Store, StoreError, unique};

/// A person who signs in.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub username: String,
    /// Argon2id PHC string; never leaves the service.
    #[serde(skip)]
    pub password_hash: String,
    pub role: Role,
    /// `Practitioner/<id>`: SMART's `fhirUser`.
    #[serde(rename = "fhirUser", skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    #[serde(rename = "name", skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The teaching classes the user belongs to (`demo`), which their tokens carry
    /// (`classes`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
}

const COLUMNS: &str = "username, password_hash, role, fhir_user, display_name, classes";

impl Store {
    pub async fn user(&self, username: &str) -> Result<Option<User>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM identity_user WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?
        .map(|row| user(&row))
        .transpose()
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM identity_user ORDER BY username"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(user)
        .collect()
    }

    /// Adds a user; `Exists` if the name is taken.
    pub async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        bind(
            sqlx::query(&format!(
                "INSERT INTO identity_user ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
            )),
            user,
        )
        .execute(&self.pool)
        .await
        .map_err(|error| unique(error, || format!("user '{}'", user.username)))?;
        Ok(())
    }

    /// Adds a user, or replaces the one of that name (the directory file's users).
    pub async fn put_user(&self, user: &User) -> Result<(), StoreError> {
        bind(
            sqlx::query(&format!(
                "INSERT INTO identity_user ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash,
                     role = EXCLUDED.role, fhir_user = EXCLUDED.fhir_user,
                     display_name = EXCLUDED.display_name, classes = EXCLUDED.classes"
            )),
            user,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Puts the user in `classes` if they are in no class yet (a demo user stored before users
    /// had classes); whether they were.
    pub async fn set_classes_if_none(
        &self,
        username: &str,
        classes: &[String],
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE identity_user SET classes = $2 WHERE username = $1 AND classes = '{}'",
        )
        .bind(username)
        .bind(classes)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0)
    }

    /// Whether a user of that name exists.
    pub async fn has_user(&self, username: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("SELECT 1 FROM identity_user WHERE username = $1")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// Removes a user; whether there was one.
    pub async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query("DELETE FROM identity_user WHERE username = $1")
            .bind(username)
            .execute(&self.pool)
            .await?
            .rows_affected()
            > 0)
    }
}

fn bind<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    user: &'q User,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(&user.fhir_user)
        .bind(&user.display_name)
        .bind(&user.classes)
}

fn user(row: &PgRow) -> Result<User, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(User {
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        role: role
            .parse()
            .map_err(|error: access_policy::role::UnknownRole| {
                StoreError::Corrupt(error.to_string())
            })?,
        fhir_user: row.try_get("fhir_user")?,
        display_name: row.try_get("display_name")?,
        classes: row.try_get("classes")?,
    })
}
