//! requestConsent / updateConsent (protocol-06 §5.7, §8).

use crate::codec::{Body, Mls, Reader, WireError, WireErrorKind, Writer};
use crate::common::{AppDataDictionary, read_room, read_user};
use crate::id::{RoomUri, UserUri};
use openmls::prelude::KeyPackageIn;

/// `ConsentOperation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConsentOperation {
    /// `cancel(0)`: withdraw an earlier request (requestConsent).
    Cancel,
    /// `request(1)` (requestConsent).
    Request,
    /// `grant(2)` (updateConsent), possibly with KeyPackages.
    Grant,
    /// `revoke(3)` (updateConsent).
    Revoke,
}

impl ConsentOperation {
    fn code(self) -> u8 {
        match self {
            Self::Cancel => 0,
            Self::Request => 1,
            Self::Grant => 2,
            Self::Revoke => 3,
        }
    }
}

/// `ConsentScope`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentScope {
    /// `requesterUri`.
    pub requester_uri: UserUri,
    /// `targetUri`.
    pub target_uri: UserUri,
    /// `optional<RoomId> roomId`: absent means any room.
    pub room_id: Option<RoomUri>,
}

impl ConsentScope {
    fn read_fields(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            requester_uri: read_user(r, "ConsentEntry.requesterUri")?,
            target_uri: read_user(r, "ConsentEntry.targetUri")?,
            room_id: r.optional("ConsentEntry.roomId", |r| {
                read_room(r, "ConsentEntry.roomId")
            })?,
        })
    }

    fn write_fields(&self, w: &mut Writer) {
        w.opaque(self.requester_uri.as_str().as_bytes());
        w.opaque(self.target_uri.as_str().as_bytes());
        w.optional(self.room_id.as_ref(), |w, r| {
            w.opaque(r.as_str().as_bytes())
        });
    }
}

impl Body for ConsentScope {
    const NAME: &'static str = "ConsentScope";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Self::read_fields(r)
    }
    fn write(&self, w: &mut Writer) {
        self.write_fields(w);
    }
}

/// `ConsentEntry`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentEntry {
    /// `consentOperation`.
    pub operation: ConsentOperation,
    /// Requester, target and room.
    pub scope: ConsentScope,
    /// `case grant: KeyPackage clientKeyPackages<V>` (empty for other operations).
    pub client_key_packages: Vec<Mls<KeyPackageIn>>,
    /// `AppDataDictionary consent_extensions`.
    pub consent_extensions: AppDataDictionary,
}

impl Body for ConsentEntry {
    const NAME: &'static str = "ConsentEntry";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let f = "ConsentEntry.consentOperation";
        let operation = match r.u8(f)? {
            0 => ConsentOperation::Cancel,
            1 => ConsentOperation::Request,
            2 => ConsentOperation::Grant,
            3 => ConsentOperation::Revoke,
            other => return Err(r.error(WireErrorKind::BadValue(u64::from(other)), f)),
        };
        let scope = ConsentScope::read_fields(r)?;
        let client_key_packages = if operation == ConsentOperation::Grant {
            let k = "ConsentEntry.clientKeyPackages";
            r.vector(k, |r| r.mls(k))?
        } else {
            Vec::new()
        };
        let consent_extensions = AppDataDictionary::read(r, "ConsentEntry.consent_extensions")?;
        Ok(Self {
            operation,
            scope,
            client_key_packages,
            consent_extensions,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.u8(self.operation.code());
        self.scope.write_fields(w);
        if self.operation == ConsentOperation::Grant {
            w.vector(&self.client_key_packages, |w, k| w.raw(k.as_bytes()));
        }
        self.consent_extensions.write(w);
    }
}
