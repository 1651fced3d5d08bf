//! KeyPackages of local clients, claimed at most once, and KeyPackageRef routing.

use crate::db::{Backend, Store, i, u};
use crate::error::StoreError;
use crate::sql::query;

/// A KeyPackage uploaded by a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewKeyPackage {
    /// Its KeyPackageRef (RFC 9420 §5.2), the key under which Welcomes are routed.
    pub kp_ref: Vec<u8>,
    /// The serialized KeyPackage (MLSMessage or bare KeyPackage, as the client sent it).
    pub key_package: Vec<u8>,
    /// The end of its lifetime (`not_after`, Unix seconds); it is never handed out after.
    pub not_after_s: u64,
    /// A last-resort KeyPackage: handed out only when no other is left, and then again.
    pub last_resort: bool,
    /// Its MLS cipher suite (the node reads it from the KeyPackage; `STORE-kp-suite`).
    pub cipher_suite: u16,
}

/// A claimed KeyPackage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedKeyPackage {
    /// Its KeyPackageRef.
    pub kp_ref: Vec<u8>,
    /// The KeyPackage bytes.
    pub key_package: Vec<u8>,
    /// It was a last-resort KeyPackage (handed out again, not consumed).
    pub last_resort: bool,
}

impl Store {
    /// Stores KeyPackages of a client, all or none; a reference already stored is a conflict.
    pub async fn add_key_packages(
        &self,
        client: &str,
        kps: &[NewKeyPackage],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for kp in kps {
            query("INSERT INTO key_packages (kp_ref, client_uri, key_package, not_after_s, last_resort, claimed_ms, cipher_suite) VALUES ($1, $2, $3, $4, $5, NULL, $6)")
                .bind(kp.kp_ref.as_slice())
                .bind(client)
                .bind(kp.key_package.as_slice())
                .bind(i(kp.not_after_s))
                .bind(i64::from(kp.last_resort))
                .bind(i64::from(kp.cipher_suite))
                .execute(&mut tx)
                .await
                .map_err(|e| StoreError::from_insert(e, || "a KeyPackage with this reference".into()))?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Claims one KeyPackage of a client (`STORE-kp-claim-once`): never one claimed before
    /// (also not under concurrency: PostgreSQL locks the chosen row with `FOR UPDATE SKIP
    /// LOCKED`, SQLite runs the single statement under its write lock), never an expired one
    /// (`STORE-kp-not-expired`), a last-resort one only when nothing else is left, and that
    /// one again and again (`STORE-kp-last-resort`). `None`: the client has none left.
    pub async fn claim_key_package(
        &self,
        client: &str,
        now_ms: u64,
    ) -> Result<Option<ClaimedKeyPackage>, StoreError> {
        self.claim_key_package_in(client, now_ms, &[]).await
    }

    /// [`Store::claim_key_package`] of one of `suites`, tried in order (the requester's
    /// preference, protocol-06 §5.2 acceptableCiphersuites); any suite when empty
    /// (`STORE-kp-suite`).
    pub async fn claim_key_package_in(
        &self,
        client: &str,
        now_ms: u64,
        suites: &[u16],
    ) -> Result<Option<ClaimedKeyPackage>, StoreError> {
        if suites.is_empty() {
            return self.claim_key_package_of(client, now_ms, None).await;
        }
        for s in suites {
            if let Some(k) = self.claim_key_package_of(client, now_ms, Some(*s)).await? {
                return Ok(Some(k));
            }
        }
        Ok(None)
    }

    async fn claim_key_package_of(
        &self,
        client: &str,
        now_ms: u64,
        suite: Option<u16>,
    ) -> Result<Option<ClaimedKeyPackage>, StoreError> {
        let now_s = i(now_ms / 1000);
        // -1: any suite.
        let suite = suite.map_or(-1, i64::from);
        let sql = match self.backend {
            Backend::Postgres => {
                "UPDATE key_packages SET claimed_ms = $1 WHERE claimed_ms IS NULL AND kp_ref = (
                    SELECT kp_ref FROM key_packages
                    WHERE client_uri = $2 AND claimed_ms IS NULL AND last_resort = 0 AND not_after_s > $3
                      AND ($4 < 0 OR cipher_suite = $4)
                    ORDER BY kp_ref LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING kp_ref, key_package"
            }
            Backend::Sqlite => {
                "UPDATE key_packages SET claimed_ms = $1 WHERE claimed_ms IS NULL AND kp_ref = (
                    SELECT kp_ref FROM key_packages
                    WHERE client_uri = $2 AND claimed_ms IS NULL AND last_resort = 0 AND not_after_s > $3
                      AND ($4 < 0 OR cipher_suite = $4)
                    ORDER BY kp_ref LIMIT 1)
                 RETURNING kp_ref, key_package"
            }
        };
        let mut turn = self.write_turn().await?;
        let row = query(sql)
            .bind(i(now_ms))
            .bind(client)
            .bind(now_s)
            .bind(suite)
            .fetch_optional(&mut turn)
            .await?;
        if let Some(r) = row {
            return Ok(Some(ClaimedKeyPackage {
                kp_ref: r.try_get(0)?,
                key_package: r.try_get(1)?,
                last_resort: false,
            }));
        }
        let row = query(
            "SELECT kp_ref, key_package FROM key_packages
             WHERE client_uri = $1 AND last_resort = 1 AND not_after_s > $2
               AND ($3 < 0 OR cipher_suite = $3)
             ORDER BY not_after_s DESC, kp_ref LIMIT 1",
        )
        .bind(client)
        .bind(now_s)
        .bind(suite)
        .fetch_optional(self)
        .await?;
        Ok(match row {
            Some(r) => Some(ClaimedKeyPackage {
                kp_ref: r.try_get(0)?,
                key_package: r.try_get(1)?,
                last_resort: true,
            }),
            None => None,
        })
    }

    /// Claims one KeyPackage for every client of a user (keyMaterial for a user): the clients
    /// in URI order, each with its KeyPackage or `None` if it has none left.
    pub async fn claim_key_packages_of_user(
        &self,
        user: &str,
        now_ms: u64,
    ) -> Result<Vec<(String, Option<ClaimedKeyPackage>)>, StoreError> {
        self.claim_key_packages_of_user_in(user, now_ms, &[]).await
    }

    /// [`Store::claim_key_packages_of_user`] of one of `suites` (in order; any when empty).
    pub async fn claim_key_packages_of_user_in(
        &self,
        user: &str,
        now_ms: u64,
        suites: &[u16],
    ) -> Result<Vec<(String, Option<ClaimedKeyPackage>)>, StoreError> {
        let mut out = Vec::new();
        for client in self.clients_of(user).await? {
            let kp = self.claim_key_package_in(&client, now_ms, suites).await?;
            out.push((client, kp));
        }
        Ok(out)
    }

    /// How many KeyPackages a client still has to give out (unclaimed, unexpired, not
    /// last-resort), so that it knows when to upload more.
    pub async fn key_packages_left(&self, client: &str, now_ms: u64) -> Result<u64, StoreError> {
        let row = query(
            "SELECT COUNT(*) FROM key_packages
             WHERE client_uri = $1 AND claimed_ms IS NULL AND last_resort = 0 AND not_after_s > $2",
        )
        .bind(client)
        .bind(i(now_ms / 1000))
        .fetch_one(self)
        .await?;
        Ok(u(row.try_get(0)?))
    }

    /// Deletes KeyPackages whose lifetime ended before `now_ms` less `grace_ms` (claimed ones
    /// too: a Welcome naming them is that old). Returns how many.
    pub async fn purge_expired_key_packages(
        &self,
        now_ms: u64,
        grace_ms: u64,
    ) -> Result<u64, StoreError> {
        let mut turn = self.write_turn().await?;
        let done = query("DELETE FROM key_packages WHERE not_after_s < $1")
            .bind(i(now_ms.saturating_sub(grace_ms) / 1000))
            .execute(&mut turn)
            .await?;
        Ok(done.rows_affected())
    }

    /// The local client a KeyPackageRef belongs to (target side routing of Welcomes,
    /// `STORE-kp-route-target`).
    pub async fn client_of_key_package(&self, kp_ref: &[u8]) -> Result<Option<String>, StoreError> {
        let row = query("SELECT client_uri FROM key_packages WHERE kp_ref = $1")
            .bind(kp_ref)
            .fetch_optional(self)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// Remembers which provider a KeyPackageRef the hub proxied belongs to, and for which
    /// room (hub side, `STORE-kp-route-hub`). Recording it again overwrites.
    pub async fn record_route(
        &self,
        kp_ref: &[u8],
        provider: &str,
        room: &str,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut turn = self.write_turn().await?;
        query(
            "INSERT INTO kp_routes (kp_ref, provider, room_uri, created_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (kp_ref) DO UPDATE SET provider = excluded.provider, room_uri = excluded.room_uri, created_ms = excluded.created_ms",
        )
        .bind(kp_ref)
        .bind(provider)
        .bind(room)
        .bind(i(now_ms))
        .execute(&mut turn)
        .await?;
        Ok(())
    }

    /// The provider of a KeyPackageRef the hub proxied (hub side).
    pub async fn route(&self, kp_ref: &[u8]) -> Result<Option<String>, StoreError> {
        let row = query("SELECT provider FROM kp_routes WHERE kp_ref = $1")
            .bind(kp_ref)
            .fetch_optional(self)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }
}
