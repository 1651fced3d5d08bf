//! keyMaterial (protocol-06 §5.2): claim one KeyPackage for each client of a user.

use crate::codec::{Body, Mls, Reader, WireError, WireErrorKind, Writer};
use crate::common::{CipherSuite, Protocol, read_room, read_uri, read_user};
use crate::id::{ClientUri, RoomUri, UserUri};
use openmls::prelude::{Capabilities, Credential, KeyPackageIn, RequiredCapabilitiesExtension};

/// The signed part of a [`KeyMaterialRequest`]: every field but the signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMaterialRequestTbs {
    /// `requestingUser`.
    pub requesting_user: UserUri,
    /// `targetUser`.
    pub target_user: UserUri,
    /// `roomId`: the room the KeyPackages will be used in.
    pub room_id: RoomUri,
    /// `acceptableCiphersuites<V>` (non-empty).
    pub acceptable_ciphersuites: Vec<CipherSuite>,
    /// `requiredCapabilities` (its lists may be empty).
    pub required_capabilities: Mls<RequiredCapabilitiesExtension>,
    /// `requesterSignatureKey`.
    pub requester_signature_key: Vec<u8>,
    /// `requesterCredential`.
    pub requester_credential: Mls<Credential>,
}

/// `KeyMaterialRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMaterialRequest {
    /// The signed fields.
    pub tbs: KeyMaterialRequestTbs,
    /// `SignWithLabel(requesterSignatureKey, "KeyMaterialRequestTBS", tbs)`.
    pub signature: Vec<u8>,
}

/// The label of the request's signature.
pub const KEY_MATERIAL_REQUEST_LABEL: &str = "KeyMaterialRequestTBS";

impl KeyMaterialRequestTbs {
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Protocol::read_mls10(r, "KeyMaterialRequest.protocol")?;
        let requesting_user = read_user(r, "KeyMaterialRequest.requestingUser")?;
        let target_user = read_user(r, "KeyMaterialRequest.targetUser")?;
        let room_id = read_room(r, "KeyMaterialRequest.roomId")?;
        let f = "KeyMaterialRequest.acceptableCiphersuites";
        let acceptable_ciphersuites = r.vector(f, |r| Ok(CipherSuite(r.u16(f)?)))?;
        if acceptable_ciphersuites.is_empty() {
            // WIRE-5.2-suites-nonempty
            return Err(r.error(WireErrorKind::BadValue(0), f));
        }
        let opaque = r.limits.max_opaque;
        Ok(Self {
            requesting_user,
            target_user,
            room_id,
            acceptable_ciphersuites,
            required_capabilities: r.mls("KeyMaterialRequest.requiredCapabilities")?,
            requester_signature_key: r
                .opaque(opaque, "KeyMaterialRequest.requesterSignatureKey")?,
            requester_credential: r.mls("KeyMaterialRequest.requesterCredential")?,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.u8(Protocol::MLS10.0);
        w.opaque(self.requesting_user.as_str().as_bytes());
        w.opaque(self.target_user.as_str().as_bytes());
        w.opaque(self.room_id.as_str().as_bytes());
        w.vector(&self.acceptable_ciphersuites, |w, c| w.u16(c.0));
        w.raw(self.required_capabilities.as_bytes());
        w.opaque(&self.requester_signature_key);
        w.raw(self.requester_credential.as_bytes());
    }

    /// The bytes that are signed.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.finish()
    }
}

impl Body for KeyMaterialRequest {
    const NAME: &'static str = "KeyMaterialRequest";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let tbs = KeyMaterialRequestTbs::read(r)?;
        let opaque = r.limits.max_opaque;
        Ok(Self {
            tbs,
            signature: r.opaque(opaque, "KeyMaterialRequest.key_material_request_signature")?,
        })
    }
    fn write(&self, w: &mut Writer) {
        self.tbs.write(w);
        w.opaque(&self.signature);
    }
}

/// `KeyMaterialUserCode`, open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyMaterialUserCode(pub u8);

impl KeyMaterialUserCode {
    /// Material for every client.
    pub const SUCCESS: Self = Self(0);
    /// Material for some clients.
    pub const PARTIAL_SUCCESS: Self = Self(1);
    /// The provider or every client lacks the protocol.
    pub const INCOMPATIBLE_PROTOCOL: Self = Self(2);
    /// Nothing matches the required capabilities.
    pub const NO_COMPATIBLE_MATERIAL: Self = Self(3);
    /// No such user.
    pub const USER_UNKNOWN: Self = Self(4);
    /// The user has not consented.
    pub const NO_CONSENT: Self = Self(5);
    /// Not for this room.
    pub const NO_CONSENT_FOR_THIS_ROOM: Self = Self(6);
    /// The user was deleted.
    pub const USER_DELETED: Self = Self(7);

    /// The draft's name.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "success",
            1 => "partialSuccess",
            2 => "incompatibleProtocol",
            3 => "noCompatibleMaterial",
            4 => "userUnknown",
            5 => "noConsent",
            6 => "noConsentForThisRoom",
            7 => "userDeleted",
            _ => return None,
        })
    }
}

/// `KeyMaterialClientCode`, open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyMaterialClientCode(pub u8);

impl KeyMaterialClientCode {
    /// A KeyPackage follows.
    pub const SUCCESS: Self = Self(0);
    /// The client has no KeyPackage left.
    pub const KEY_MATERIAL_EXHAUSTED: Self = Self(1);
    /// None of its KeyPackages fits; its capabilities may follow.
    pub const NOTHING_COMPATIBLE: Self = Self(2);

    /// The draft's name.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "success",
            1 => "keyMaterialExhausted",
            2 => "nothingCompatible",
            _ => return None,
        })
    }
}

/// What one client gets (`ClientKeyMaterial`'s select).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMaterial {
    /// `success`: a KeyPackage.
    KeyPackage(Mls<KeyPackageIn>),
    /// `keyMaterialExhausted`.
    Exhausted,
    /// `nothingCompatible`, with the client's capabilities unless withheld.
    NothingCompatible(Option<Mls<Capabilities>>),
    /// A client code this draft does not define (> 2); nothing follows it. Only the decoder
    /// makes this; it must not hold a defined code.
    Other(KeyMaterialClientCode),
}

/// `ClientKeyMaterial`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientKeyMaterial {
    /// `clientUri`.
    pub client_uri: ClientUri,
    /// `clientStatus` and what follows it.
    pub material: ClientMaterial,
}

impl ClientKeyMaterial {
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let f = "ClientKeyMaterial.clientStatus";
        let code = KeyMaterialClientCode(r.u8(f)?);
        let client_uri = read_uri(r, "ClientKeyMaterial.clientUri", ClientUri::parse)?;
        let material = match code {
            KeyMaterialClientCode::SUCCESS => {
                ClientMaterial::KeyPackage(r.mls("ClientKeyMaterial.keyPackage")?)
            }
            KeyMaterialClientCode::KEY_MATERIAL_EXHAUSTED => ClientMaterial::Exhausted,
            KeyMaterialClientCode::NOTHING_COMPATIBLE => ClientMaterial::NothingCompatible(
                r.optional("ClientKeyMaterial.clientCapabilities", |r| {
                    r.mls("ClientKeyMaterial.clientCapabilities")
                })?,
            ),
            // WIRE-5.2-unknown-client-code: nothing follows a code the draft does not define.
            other => ClientMaterial::Other(other),
        };
        Ok(Self {
            client_uri,
            material,
        })
    }

    fn write(&self, w: &mut Writer) {
        let code = match &self.material {
            ClientMaterial::KeyPackage(_) => KeyMaterialClientCode::SUCCESS,
            ClientMaterial::Exhausted => KeyMaterialClientCode::KEY_MATERIAL_EXHAUSTED,
            ClientMaterial::NothingCompatible(_) => KeyMaterialClientCode::NOTHING_COMPATIBLE,
            ClientMaterial::Other(c) => *c,
        };
        w.u8(code.0);
        w.opaque(self.client_uri.as_str().as_bytes());
        match &self.material {
            ClientMaterial::KeyPackage(kp) => w.raw(kp.as_bytes()),
            ClientMaterial::Exhausted | ClientMaterial::Other(_) => {}
            ClientMaterial::NothingCompatible(c) => {
                w.optional(c.as_ref(), |w, c| w.raw(c.as_bytes()));
            }
        }
    }
}

/// `KeyMaterialResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMaterialResponse {
    /// `userStatus`.
    pub user_status: KeyMaterialUserCode,
    /// `userUri`.
    pub user_uri: UserUri,
    /// `clients<V>`: populated for success and partialSuccess, optional for
    /// noCompatibleMaterial, empty otherwise (`WIRE-5.2-clients-empty`).
    pub clients: Vec<ClientKeyMaterial>,
}

impl Body for KeyMaterialResponse {
    const NAME: &'static str = "KeyMaterialResponse";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Protocol::read_mls10(r, "KeyMaterialResponse.protocol")?;
        let user_status = KeyMaterialUserCode(r.u8("KeyMaterialResponse.userStatus")?);
        let user_uri = read_user(r, "KeyMaterialResponse.userUri")?;
        let f = "KeyMaterialResponse.clients";
        let clients = r.vector(f, ClientKeyMaterial::read)?;
        let may_have_clients = matches!(
            user_status,
            KeyMaterialUserCode::SUCCESS
                | KeyMaterialUserCode::PARTIAL_SUCCESS
                | KeyMaterialUserCode::NO_COMPATIBLE_MATERIAL
        );
        if !may_have_clients && !clients.is_empty() {
            // WIRE-5.2-clients-empty: "MUST be empty otherwise".
            return Err(r.error(WireErrorKind::BadValue(u64::from(user_status.0)), f));
        }
        Ok(Self {
            user_status,
            user_uri,
            clients,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.u8(Protocol::MLS10.0);
        w.u8(self.user_status.0);
        w.opaque(self.user_uri.as_str().as_bytes());
        w.vector(&self.clients, |w, c| c.write(w));
    }
}

/// The cipher suite of a serialized KeyPackage (RFC 9420 §10: the `u16` after its version),
/// bare or in an MLSMessage; `None` for bytes too short to say.
pub fn key_package_suite(kp: &[u8]) -> Option<u16> {
    let at = |o: usize| kp.get(o..o + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    match at(2)? {
        // MLSMessage: version, wire_format mls_key_package (5), then the KeyPackage.
        5 => at(6),
        s => Some(s),
    }
}
