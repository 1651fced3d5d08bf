//! Consent entries and abuse reports.

use crate::db::{Store, i, u};
use crate::error::StoreError;
use crate::sql::query;
use sha2::{Digest, Sha256};

/// One consent entry: what `target` said about `requester` (for one room, or any room).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentEntry {
    /// Who asked (a user URI).
    pub requester: String,
    /// Who was asked (a user URI).
    pub target: String,
    /// The room, or `""` for any room.
    pub room_uri: String,
    /// The state as the caller names it (`request`, `grant`, `revoke`, `cancel`, …).
    pub state: String,
    /// When it was last set.
    pub updated_ms: u64,
}

/// An abuse report kept for the hub operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbuseReport {
    /// SHA-256 of the body (a repeat is kept once).
    pub report_hash: Vec<u8>,
    /// The room it is about.
    pub room_uri: String,
    /// The provider (or user) that sent it.
    pub reporter: String,
    /// The report as received.
    pub body: Vec<u8>,
    /// When it arrived.
    pub received_ms: u64,
}

impl Store {
    /// Keeps the KeyPackages a consent grant of `target` carried for `requester`
    /// (`STORE-consent-key-packages`), replacing any kept before.
    pub async fn put_granted_key_packages(
        &self,
        requester: &str,
        target: &str,
        kps: &[Vec<u8>],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        query("DELETE FROM granted_key_packages WHERE requester = $1 AND target = $2")
            .bind(requester)
            .bind(target)
            .execute(&mut tx)
            .await?;
        for (n, kp) in kps.iter().enumerate() {
            query(
                "INSERT INTO granted_key_packages (requester, target, n, key_package, received_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(requester)
            .bind(target)
            .bind(i64::try_from(n).unwrap_or(i64::MAX))
            .bind(kp.as_slice())
            .bind(crate::db::i(now_ms))
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Takes (hands out and forgets) the KeyPackages kept for `requester` from `target`'s
    /// grant for which `take` says yes; `drop` names those to forget without handing them out
    /// (expired ones); the rest stay kept (`STORE-consent-key-packages`: a grant carries one
    /// KeyPackage per client and suite, a room uses those of its suite). Empty when there are
    /// none (or they were taken or revoked).
    pub async fn take_granted_key_packages(
        &self,
        requester: &str,
        target: &str,
        take: impl Fn(&[u8]) -> bool,
        drop: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut tx = self.begin_write().await?;
        let rows = query(
            "SELECT n, key_package FROM granted_key_packages WHERE requester = $1 AND target = $2 ORDER BY n",
        )
        .bind(requester)
        .bind(target)
        .fetch_all(&mut tx)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let n: i64 = r.try_get(0)?;
            let kp: Vec<u8> = r.try_get(1)?;
            let dropped = drop(&kp);
            let taken = !dropped && take(&kp);
            if dropped || taken {
                query(
                    "DELETE FROM granted_key_packages WHERE requester = $1 AND target = $2 AND n = $3",
                )
                .bind(requester)
                .bind(target)
                .bind(n)
                .execute(&mut tx)
                .await?;
            }
            if taken {
                out.push(kp);
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Sets a consent entry; room `""` means any room. Setting it again overwrites.
    pub async fn set_consent(
        &self,
        requester: &str,
        target: &str,
        room: &str,
        state: &str,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut turn = self.write_turn().await?;
        query(
            "INSERT INTO consent (requester, target, room_uri, state, updated_ms) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (requester, target, room_uri) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms",
        )
        .bind(requester)
        .bind(target)
        .bind(room)
        .bind(state)
        .bind(i(now_ms))
        .execute(&mut turn)
        .await?;
        Ok(())
    }

    /// The consent state of `target` towards `requester` for `room`: the room's own entry if
    /// there is one, else the any-room entry (`STORE-consent-scope`).
    pub async fn consent(
        &self,
        requester: &str,
        target: &str,
        room: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = query(
            "SELECT state FROM consent WHERE requester = $1 AND target = $2 AND (room_uri = $3 OR room_uri = '')
             ORDER BY room_uri DESC LIMIT 1",
        )
        .bind(requester)
        .bind(target)
        .bind(room)
        .fetch_optional(self)
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// Every consent entry about `target` (requests to show it, grants it gave), oldest first.
    pub async fn consent_entries(&self, target: &str) -> Result<Vec<ConsentEntry>, StoreError> {
        let rows = query(
            "SELECT requester, target, room_uri, state, updated_ms FROM consent WHERE target = $1
             ORDER BY updated_ms, requester, room_uri",
        )
        .bind(target)
        .fetch_all(self)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConsentEntry {
                    requester: r.try_get(0)?,
                    target: r.try_get(1)?,
                    room_uri: r.try_get(2)?,
                    state: r.try_get(3)?,
                    updated_ms: u(r.try_get(4)?),
                })
            })
            .collect()
    }

    /// Stores an abuse report for the hub operator; `false` if the same body was stored
    /// before (it is kept once).
    pub async fn add_abuse_report(
        &self,
        room: &str,
        reporter: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let hash = Sha256::digest(body).to_vec();
        let mut turn = self.write_turn().await?;
        let done = query(
            "INSERT INTO abuse_reports (report_hash, room_uri, reporter, body, received_ms) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (report_hash) DO NOTHING",
        )
        .bind(hash)
        .bind(room)
        .bind(reporter)
        .bind(body)
        .bind(i(now_ms))
        .execute(&mut turn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Abuse reports received at or after `since_ms`, oldest first, at most `limit`.
    pub async fn abuse_reports(
        &self,
        since_ms: u64,
        limit: u32,
    ) -> Result<Vec<AbuseReport>, StoreError> {
        let rows = query(
            "SELECT report_hash, room_uri, reporter, body, received_ms FROM abuse_reports
             WHERE received_ms >= $1 ORDER BY received_ms, report_hash LIMIT CAST($2 AS BIGINT)",
        )
        .bind(i(since_ms))
        .bind(i64::from(limit))
        .fetch_all(self)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AbuseReport {
                    report_hash: r.try_get(0)?,
                    room_uri: r.try_get(1)?,
                    reporter: r.try_get(2)?,
                    body: r.try_get(3)?,
                    received_ms: u(r.try_get(4)?),
                })
            })
            .collect()
    }
}
