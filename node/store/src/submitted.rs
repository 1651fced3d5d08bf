//! Application messages the hub accepted, by hash (`STORE-submit-idempotent`): a resubmitted
//! message is answered with its first acceptance and not fanned out again.

use crate::db::{i, u};
use crate::error::StoreError;
use crate::rooms::RoomTx;
use crate::sql::query;

impl RoomTx {
    /// The hub timestamp of an earlier acceptance of the message with this hash, if any.
    pub async fn submitted(&mut self, msg_hash: &[u8]) -> Result<Option<u64>, StoreError> {
        let row = query("SELECT ts_ms FROM submitted WHERE room_uri = $1 AND msg_hash = $2")
            .bind(&self.row.room_uri)
            .bind(msg_hash)
            .fetch_optional(&mut self.tx)
            .await?;
        Ok(match row {
            Some(r) => Some(u(r.try_get(0)?)),
            None => None,
        })
    }

    /// Records the acceptance of a message (with the transaction).
    pub async fn record_submitted(
        &mut self,
        msg_hash: &[u8],
        ts_ms: u64,
    ) -> Result<(), StoreError> {
        query("INSERT INTO submitted (room_uri, msg_hash, ts_ms) VALUES ($1, $2, $3)")
            .bind(&self.row.room_uri)
            .bind(msg_hash)
            .bind(i(ts_ms))
            .execute(&mut self.tx)
            .await?;
        Ok(())
    }
}
