//! The preauthorization list (room-policy-03 §4, component `preauth_list`) and its matching
//! (`ROOM-policy-preauth`).
//!
//! "A PreAuthRoleEntry matches for a requester when every Claim.claim_id has a corresponding
//! claim in the requester's MLS Credential which exactly matches the corresponding
//! claim_value"; the first matching entry wins. Our credentials are MLS *basic* credentials
//! whose identity is the client URI, so the claims we can evaluate are the ones a basic
//! credential implies, named here (the draft defines claim IDs only for X.509, JWT and CWT):
//!
//! | `credential_type` | `id` | `claim_value` compared (exactly) with |
//! |---|---|---|
//! | basic (1) | `user` | the user URI (`mimi://a.example/u/alice`) |
//! | basic (1) | `provider` | the provider's domain (`a.example`) |
//! | basic (1) | `domain` | the same domain (MIMI provider IDs are domain names) |
//!
//! Any other claim (X.509 OIDs, JWT claim names, CWT keys, other basic ids) is not present in a
//! basic credential, so an entry that needs one never matches. An entry with an empty claim
//! set matches everyone (every claim of the empty set is satisfied).

use crate::roles::Role;
use mimi_wire::codec::{Body, Reader, WireError, Writer};
use mimi_wire::id::UserUri;

/// MLS credential type `basic` (RFC 9420 §17.5).
pub const BASIC: u16 = 0x0001;

/// `ClaimId`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimId {
    /// `credential_type`.
    pub credential_type: u16,
    /// `opaque id<V>`.
    pub id: Vec<u8>,
}

/// `Claim`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// `claim_id`.
    pub claim_id: ClaimId,
    /// `opaque claim_value<V>`.
    pub claim_value: Vec<u8>,
}

impl Claim {
    /// A basic-credential claim (`user`, `provider` or `domain`, see the module docs).
    pub fn basic(id: &str, value: &str) -> Self {
        Self {
            claim_id: ClaimId {
                credential_type: BASIC,
                id: id.as_bytes().to_vec(),
            },
            claim_value: value.as_bytes().to_vec(),
        }
    }

    /// Whether a user with a basic credential holds this claim with exactly this value.
    pub fn matches(&self, user: &UserUri) -> bool {
        if self.claim_id.credential_type != BASIC {
            return false;
        }
        let have = match self.claim_id.id.as_slice() {
            b"user" => user.as_str().to_owned(),
            b"provider" | b"domain" => user.provider().to_string(),
            _ => return false,
        };
        have.as_bytes() == self.claim_value.as_slice()
    }
}

/// `PreAuthRoleEntry`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreAuthRoleEntry {
    /// `claimset<V>`: all must match.
    pub claimset: Vec<Claim>,
    /// `target_role` (a whole Role in the draft; its `role_index` names the room's role).
    pub target_role: Role,
}

impl PreAuthRoleEntry {
    /// Whether every claim holds for the user.
    pub fn matches(&self, user: &UserUri) -> bool {
        self.claimset.iter().all(|c| c.matches(user))
    }
}

/// `PreAuthData` (and `PreAuthUpdate`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreAuthData {
    /// `preauthorized_entries<V>`, consulted in order.
    pub preauthorized_entries: Vec<PreAuthRoleEntry>,
}

impl PreAuthData {
    /// The first entry that matches the user (`ROOM-policy-preauth`).
    pub fn first_match(&self, user: &UserUri) -> Option<&PreAuthRoleEntry> {
        self.preauthorized_entries.iter().find(|e| e.matches(user))
    }

    /// The role index of the first matching entry whose role is not 0 (canChangeOwnRole:
    /// "the first non-zero role it matches").
    pub fn first_nonzero_role(&self, user: &UserUri) -> Option<u32> {
        self.preauthorized_entries
            .iter()
            .filter(|e| e.target_role.index != crate::roles::NO_ROLE)
            .find(|e| e.matches(user))
            .map(|e| e.target_role.index)
    }
}

impl Body for PreAuthData {
    const NAME: &'static str = "PreAuthData";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let o = r.limits.max_opaque;
        let preauthorized_entries = r.vector("PreAuthData.preauthorized_entries", |r| {
            let claimset = r.vector("PreAuthRoleEntry.claimset", |r| {
                Ok(Claim {
                    claim_id: ClaimId {
                        credential_type: r.u16("ClaimId.credential_type")?,
                        id: r.opaque(o, "ClaimId.id")?,
                    },
                    claim_value: r.opaque(o, "Claim.claim_value")?,
                })
            })?;
            Ok(PreAuthRoleEntry {
                claimset,
                target_role: Role::read(r)?,
            })
        })?;
        Ok(Self {
            preauthorized_entries,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.vector(&self.preauthorized_entries, |w, e| {
            w.vector(&e.claimset, |w, c| {
                w.u16(c.claim_id.credential_type);
                w.opaque(&c.claim_id.id);
                w.opaque(&c.claim_value);
            });
            e.target_role.write(w);
        });
    }
}
