//! Users, their devices (clients) and the devices' bearer tokens.

use crate::db::{Store, i, u};
use crate::error::StoreError;
use crate::sql::{AssertSqlSafe, Row, query};
use sha2::{Digest, Sha256};

/// Who may invite a user into a room without asking first (consent, basic).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConsentPolicy {
    /// Anyone.
    #[default]
    Open,
    /// Only requesters the user has granted consent to.
    ContactsOnly,
}

impl ConsentPolicy {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::ContactsOnly => "contacts-only",
        }
    }

    /// From its stored name; anything unknown reads as the stricter `contacts-only`.
    pub fn parse(s: &str) -> Self {
        match s {
            "open" => Self::Open,
            _ => Self::ContactsOnly,
        }
    }
}

/// A user of this provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    /// The user's URI (`mimi://a.example/u/alice`).
    pub user_uri: String,
    /// Its handle, unique on this provider (identifier query by exact handle).
    pub handle: Option<String>,
    /// Its display nick (identifier query by exact nick; not unique).
    pub nick: Option<String>,
    /// Its consent policy.
    pub consent_policy: ConsentPolicy,
    /// When it was created.
    pub created_ms: u64,
}

/// The hash under which a bearer token is stored (SHA-256; `STORE-token-hash`). Tokens are
/// random and long, so an unsalted hash is enough to make a database leak useless to an
/// attacker without leaking the tokens themselves.
pub fn token_hash(token: &[u8]) -> Vec<u8> {
    Sha256::digest(token).to_vec()
}

const USER_COLS: &str = "user_uri, handle, nick, consent_policy, created_ms";

fn user_row(r: &Row) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        user_uri: r.try_get(0)?,
        handle: r.try_get(1)?,
        nick: r.try_get(2)?,
        consent_policy: ConsentPolicy::parse(&r.try_get::<String, _>(3)?),
        created_ms: u(r.try_get(4)?),
    })
}

impl Store {
    /// Creates a user; a second user with the same URI or handle is a conflict.
    pub async fn create_user(
        &self,
        user: &str,
        handle: Option<&str>,
        nick: Option<&str>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut turn = self.write_turn().await?;
        query(
            "INSERT INTO users (user_uri, handle, nick, consent_policy, created_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user)
        .bind(handle)
        .bind(nick)
        .bind(ConsentPolicy::default().as_str())
        .bind(i(now_ms))
        .execute(&mut turn)
        .await
        .map_err(|e| StoreError::from_insert(e, || format!("user {user} or its handle")))?;
        Ok(())
    }

    /// A user.
    pub async fn user(&self, user: &str) -> Result<Option<UserRow>, StoreError> {
        let sql = AssertSqlSafe(format!("SELECT {USER_COLS} FROM users WHERE user_uri = $1"));
        let row = query(sql).bind(user).fetch_optional(self).await?;
        row.as_ref().map(user_row).transpose()
    }

    /// The user with exactly this handle (identifier query).
    pub async fn user_by_handle(&self, handle: &str) -> Result<Option<UserRow>, StoreError> {
        let sql = AssertSqlSafe(format!("SELECT {USER_COLS} FROM users WHERE handle = $1"));
        let row = query(sql).bind(handle).fetch_optional(self).await?;
        row.as_ref().map(user_row).transpose()
    }

    /// The users with exactly this nick (identifier query), by URI.
    pub async fn users_by_nick(&self, nick: &str) -> Result<Vec<UserRow>, StoreError> {
        let sql = AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM users WHERE nick = $1 ORDER BY user_uri"
        ));
        let rows = query(sql).bind(nick).fetch_all(self).await?;
        rows.iter().map(user_row).collect()
    }

    /// Sets a user's consent policy.
    pub async fn set_consent_policy(
        &self,
        user: &str,
        policy: ConsentPolicy,
    ) -> Result<(), StoreError> {
        let mut turn = self.write_turn().await?;
        let done = query("UPDATE users SET consent_policy = $1 WHERE user_uri = $2")
            .bind(policy.as_str())
            .bind(user)
            .execute(&mut turn)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        Ok(())
    }

    /// Registers a device (client) of a user with its bearer token, of which only the hash is
    /// stored (`STORE-token-hash`). Creates the user (open policy, no handle) if it is new. A
    /// client registered twice, or a token already in use, is a conflict.
    pub async fn register_device(
        &self,
        user: &str,
        client: &str,
        token: &[u8],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        query(
            "INSERT INTO users (user_uri, handle, nick, consent_policy, created_ms) VALUES ($1, NULL, NULL, $2, $3)
             ON CONFLICT (user_uri) DO NOTHING",
        )
        .bind(user)
        .bind(ConsentPolicy::default().as_str())
        .bind(i(now_ms))
        .execute(&mut tx)
        .await?;
        query("INSERT INTO devices (client_uri, user_uri, token_hash, created_ms) VALUES ($1, $2, $3, $4)")
            .bind(client)
            .bind(user)
            .bind(token_hash(token))
            .bind(i(now_ms))
            .execute(&mut tx)
            .await
            .map_err(|e| StoreError::from_insert(e, || format!("device {client} or its token")))?;
        tx.commit().await?;
        Ok(())
    }

    /// The `(user, client)` a bearer token belongs to.
    pub async fn device_by_token(
        &self,
        token: &[u8],
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = query("SELECT user_uri, client_uri FROM devices WHERE token_hash = $1")
            .bind(token_hash(token))
            .fetch_optional(self)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        })
    }

    /// Replaces a device's bearer token (the old one stops working at once).
    pub async fn rotate_token(&self, client: &str, new_token: &[u8]) -> Result<(), StoreError> {
        let mut turn = self.write_turn().await?;
        let done = query("UPDATE devices SET token_hash = $1 WHERE client_uri = $2")
            .bind(token_hash(new_token))
            .bind(client)
            .execute(&mut turn)
            .await
            .map_err(|e| StoreError::from_insert(e, || "this token".into()))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("device {client}")));
        }
        Ok(())
    }

    /// The user a client belongs to.
    pub async fn user_of_client(&self, client: &str) -> Result<Option<String>, StoreError> {
        let row = query("SELECT user_uri FROM devices WHERE client_uri = $1")
            .bind(client)
            .fetch_optional(self)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// The clients of a user, by URI.
    pub async fn clients_of(&self, user: &str) -> Result<Vec<String>, StoreError> {
        let rows = query("SELECT client_uri FROM devices WHERE user_uri = $1 ORDER BY client_uri")
            .bind(user)
            .fetch_all(self)
            .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(StoreError::from))
            .collect()
    }

    /// Removes a device with its unclaimed KeyPackages, its queue and its room memberships.
    /// Claimed KeyPackages stay, so Welcomes naming them still route (and are dropped later).
    pub async fn remove_device(&self, client: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let done = query("DELETE FROM devices WHERE client_uri = $1")
            .bind(client)
            .execute(&mut tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("device {client}")));
        }
        for sql in [
            "DELETE FROM key_packages WHERE client_uri = $1 AND claimed_ms IS NULL",
            "DELETE FROM client_queue WHERE client_uri = $1",
            "DELETE FROM client_cursors WHERE client_uri = $1",
            "DELETE FROM room_members WHERE client_uri = $1",
        ] {
            query(sql).bind(client).execute(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
