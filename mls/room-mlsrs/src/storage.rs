//! The mls-rs device's state as one key-value map: its groups (mls-rs `GroupStateStorage`:
//! each group's snapshot and the records of its past epochs) and the private keys of its
//! KeyPackages (`KeyPackageStorage`). It lives in memory; a device that outlives its process
//! (the `mimi` CLI) writes [`Storage::entries`] to its state file after each operation and
//! starts from [`Storage::from_entries`], as it does with openmls' key-value storage.
//!
//! Keys: `g` + group ID (the snapshot), `e` + 4-octet group ID length + group ID + 8-octet
//! big-endian epoch (an epoch record; big-endian, so a group's records sort by epoch), `k` +
//! KeyPackageRef (the encoded `KeyPackageData`).

use mls_rs::mls_rs_codec::{MlsDecode as _, MlsEncode as _};
use mls_rs::storage_provider::KeyPackageData;
use mls_rs::{GroupStateStorage, KeyPackageStorage};
use mls_rs_core::group::{EpochRecord, GroupState};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use zeroize::Zeroizing;

/// How many past epochs' records a group keeps (as the openmls device's
/// `mimi_room::client::PAST_EPOCHS`, `ROOM-late-application`): mls-rs decrypts a late
/// application message of a past epoch from these (`prior_epoch` feature).
pub const PAST_EPOCHS: usize = mimi_room::client::PAST_EPOCHS;

/// The device's groups and KeyPackage keys. Clones share one map.
#[derive(Clone, Default, Debug)]
pub struct Storage {
    map: Arc<Mutex<BTreeMap<Vec<u8>, Vec<u8>>>>,
}

fn group_key(gid: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + gid.len());
    k.push(b'g');
    k.extend_from_slice(gid);
    k
}

fn epoch_prefix(gid: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(13 + gid.len());
    k.push(b'e');
    k.extend_from_slice(&u32::try_from(gid.len()).unwrap_or(u32::MAX).to_be_bytes());
    k.extend_from_slice(gid);
    k
}

fn epoch_key(gid: &[u8], epoch: u64) -> Vec<u8> {
    let mut k = epoch_prefix(gid);
    k.extend_from_slice(&epoch.to_be_bytes());
    k
}

fn key_package_key(id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(b'k');
    k.extend_from_slice(id);
    k
}

impl Storage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// A storage holding `entries` (what [`Storage::entries`] gave).
    pub fn from_entries(entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Self {
        Self {
            map: Arc::new(Mutex::new(entries.into_iter().collect())),
        }
    }

    /// Everything stored, to be written elsewhere.
    pub fn entries(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.lock().clone()
    }

    /// Forgets a group: its snapshot and every epoch record.
    pub fn delete_group(&self, gid: &[u8]) {
        let prefix = epoch_prefix(gid);
        let mut map = self.lock();
        map.remove(&group_key(gid));
        map.retain(|k, _| !k.starts_with(&prefix));
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn epoch_ids(map: &BTreeMap<Vec<u8>, Vec<u8>>, gid: &[u8]) -> Vec<u64> {
        let prefix = epoch_prefix(gid);
        map.range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| {
                let tail: [u8; 8] = k.get(prefix.len()..)?.try_into().ok()?;
                Some(u64::from_be_bytes(tail))
            })
            .collect()
    }
}

impl GroupStateStorage for Storage {
    type Error = std::convert::Infallible;

    fn state(&self, group_id: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, Self::Error> {
        Ok(self
            .lock()
            .get(&group_key(group_id))
            .map(|v| Zeroizing::new(v.clone())))
    }

    fn epoch(
        &self,
        group_id: &[u8],
        epoch_id: u64,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, Self::Error> {
        Ok(self
            .lock()
            .get(&epoch_key(group_id, epoch_id))
            .map(|v| Zeroizing::new(v.clone())))
    }

    fn write(
        &mut self,
        state: GroupState,
        epoch_inserts: Vec<EpochRecord>,
        epoch_updates: Vec<EpochRecord>,
    ) -> Result<(), Self::Error> {
        let mut map = self.lock();
        map.insert(group_key(&state.id), state.data.to_vec());
        for e in epoch_inserts {
            map.insert(epoch_key(&state.id, e.id), e.data.to_vec());
        }
        for e in epoch_updates {
            // (An update of a record already trimmed is dropped, as mls-rs' own storage does.)
            if let Some(v) = map.get_mut(&epoch_key(&state.id, e.id)) {
                *v = e.data.to_vec();
            }
        }
        let ids = Self::epoch_ids(&map, &state.id);
        for old in ids.iter().take(ids.len().saturating_sub(PAST_EPOCHS)) {
            map.remove(&epoch_key(&state.id, *old));
        }
        Ok(())
    }

    fn max_epoch_id(&self, group_id: &[u8]) -> Result<Option<u64>, Self::Error> {
        Ok(Self::epoch_ids(&self.lock(), group_id).last().copied())
    }
}

impl KeyPackageStorage for Storage {
    type Error = mls_rs::mls_rs_codec::Error;

    fn delete(&mut self, id: &[u8]) -> Result<(), Self::Error> {
        self.lock().remove(&key_package_key(id));
        Ok(())
    }

    fn insert(&mut self, id: Vec<u8>, pkg: KeyPackageData) -> Result<(), Self::Error> {
        let bytes = pkg.mls_encode_to_vec()?;
        self.lock().insert(key_package_key(&id), bytes);
        Ok(())
    }

    fn get(&self, id: &[u8]) -> Result<Option<KeyPackageData>, Self::Error> {
        self.lock()
            .get(&key_package_key(id))
            .map(|b| KeyPackageData::mls_decode(&mut b.as_slice()))
            .transpose()
    }
}
