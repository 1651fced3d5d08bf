//! The node's own long-lived secrets (`STORE-secrets`): created by the first process that
//! needs one, then shared by every process of the provider through the database.

use crate::db::{Store, i};
use crate::error::StoreError;
use crate::sql::query;

impl Store {
    /// The secret `name`: the stored one if there is one, else `fresh` is stored and returned.
    /// Two processes racing both get the value that won (`ON CONFLICT DO NOTHING`, then read).
    pub async fn secret_or_insert(
        &self,
        name: &str,
        fresh: &[u8],
        now_ms: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let mut turn = self.write_turn().await?;
        query(
            "INSERT INTO node_secrets (name, value, created_ms) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh)
        .bind(i(now_ms))
        .execute(&mut turn)
        .await?;
        let row = query("SELECT value FROM node_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(self)
            .await?;
        Ok(row.try_get(0)?)
    }
}
