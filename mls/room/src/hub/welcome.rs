//! Welcome routing (`ROOM-hub-welcome-routing`, protocol-06 §5.5): the hub sends a commit's
//! Welcome to the providers that own the KeyPackageRefs in `Welcome.secrets`. The hub learns
//! KeyPackageRef → provider when it proxies a keyMaterial claim; for a KeyPackage it did not
//! proxy (a hub-local claim) the provider of the added client's credential is used.

use super::{Accepted, HubError, HubRoom};
use mimi_wire::Mls;
use mimi_wire::id::ProviderId;
use mimi_wire::update::HandshakeBundle;
use std::collections::BTreeSet;

impl HubRoom {
    /// Attaches the Welcome of an accepted commit bundle to its fanout plan, routed by the
    /// providers of the added clients' credentials (see [`HubRoom::route_welcome`]).
    pub fn welcome_of(bundle: &HandshakeBundle, accepted: &mut Accepted) -> Result<(), HubError> {
        Self::route_welcome(bundle, accepted, |_| None)
    }

    /// Attaches the Welcome of an accepted commit bundle to its fanout plan. `claimed` maps a
    /// KeyPackageRef to the provider the hub proxied its claim from; refs it does not know
    /// fall back to the provider of the added client's credential. The commit was checked to
    /// carry one Welcome secret per added KeyPackage (`ROOM-hub-welcome-complete`).
    pub fn route_welcome(
        bundle: &HandshakeBundle,
        accepted: &mut Accepted,
        claimed: impl Fn(&[u8]) -> Option<ProviderId>,
    ) -> Result<(), HubError> {
        let HandshakeBundle::Commit {
            welcome: Some(w), ..
        } = bundle
        else {
            return Ok(());
        };
        let mut providers = BTreeSet::new();
        for secret in w.parse()?.secrets() {
            let r = secret.new_member();
            let r = r.as_slice();
            let p = match claimed(r) {
                Some(p) => p,
                None => accepted
                    .added_key_packages
                    .iter()
                    .find(|(k, _)| k.as_slice() == r)
                    .map(|(_, c)| c.provider())
                    .ok_or_else(|| {
                        HubError::Unusable(format!(
                            "the Welcome is for KeyPackage {} that the commit does not add",
                            hex_of(r)
                        ))
                    })?,
            };
            providers.insert(p);
        }
        // An MLSMessage is version (mls10 = 1) and wire format (welcome = 3) before the struct.
        let mut bytes = vec![0, 1, 0, 3];
        bytes.extend_from_slice(w.as_bytes());
        accepted.welcome = Some((Mls::from_bytes(bytes)?, providers));
        Ok(())
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
