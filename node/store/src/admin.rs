//! Read-only figures for the admin listener's JSON views (`/status`, `/rooms`): portable SQL,
//! the same on SQLite and PostgreSQL, none of it inside a room transaction.

use crate::db::{Store, i, u};
use crate::error::StoreError;
use crate::rooms::{ROOM_COLS, RoomRow, room_row};
use crate::sql::{AssertSqlSafe, query};

impl Store {
    /// The rooms `hub` hosts, by room URI, at most `limit` of them after `after` (a room URI;
    /// `None`: from the first).
    pub async fn hosted_rooms(
        &self,
        hub: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<RoomRow>, StoreError> {
        let sql = AssertSqlSafe(format!(
            "SELECT {ROOM_COLS} FROM rooms WHERE hub = $1 AND room_uri > $2 ORDER BY room_uri LIMIT CAST($3 AS BIGINT)"
        ));
        let rows = query(sql)
            .bind(hub)
            .bind(after.unwrap_or(""))
            .bind(i(limit))
            .fetch_all(self)
            .await?;
        rows.iter().map(room_row).collect()
    }

    /// How many rooms `hub` hosts.
    pub async fn hosted_room_count(&self, hub: &str) -> Result<u64, StoreError> {
        let row = query("SELECT COUNT(*) FROM rooms WHERE hub = $1")
            .bind(hub)
            .fetch_one(self)
            .await?;
        Ok(u(row.try_get(0)?))
    }

    /// How many devices are registered with this provider.
    pub async fn device_count(&self) -> Result<u64, StoreError> {
        let row = query("SELECT COUNT(*) FROM devices")
            .fetch_one(self)
            .await?;
        Ok(u(row.try_get(0)?))
    }

    /// FanoutMessages waiting per (room, follower), by room then follower.
    pub async fn outbox_depth_by_room(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let rows = query(
            "SELECT room_uri, follower, COUNT(*) FROM outbox GROUP BY room_uri, follower
             ORDER BY room_uri, follower",
        )
        .fetch_all(self)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, u(r.try_get(2)?))))
            .collect()
    }
}
