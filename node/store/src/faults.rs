//! Store operations that exist only to inject faults (conformance testing, research).

use crate::db::Store;
use crate::error::StoreError;
use crate::sql::query;

impl Store {
    /// Makes a claimed KeyPackage claimable again (the `reuse_key_packages` fault of
    /// mimi-node: it breaks `STORE-kp-claim-once` on purpose).
    pub async fn unclaim_key_package(&self, kp_ref: &[u8]) -> Result<(), StoreError> {
        let mut turn = self.write_turn().await?;
        query("UPDATE key_packages SET claimed_ms = NULL WHERE kp_ref = $1")
            .bind(kp_ref)
            .execute(&mut turn)
            .await?;
        Ok(())
    }
}
