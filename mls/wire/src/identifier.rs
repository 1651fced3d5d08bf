//! identifierQuery (protocol-06 §5.8).

use crate::codec::{Body, Reader, WireError, WireErrorKind, Writer};
use crate::common::{AppDataDictionary, read_any_uri};
use crate::id::MimiUri;

/// `SearchIdentifierType`, open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SearchIdentifierType(pub u8);

impl SearchIdentifierType {
    /// `handle(1)`.
    pub const HANDLE: Self = Self(1);
    /// `nick(2)`.
    pub const NICK: Self = Self(2);
    /// `email(3)`.
    pub const EMAIL: Self = Self(3);
    /// `phone(4)`.
    pub const PHONE: Self = Self(4);
    /// `partialName(5)`.
    pub const PARTIAL_NAME: Self = Self(5);
    /// `wholeProfile(6)`.
    pub const WHOLE_PROFILE: Self = Self(6);
    /// `oidcStdClaim(7)`: a claim name follows.
    pub const OIDC_STD_CLAIM: Self = Self(7);
    /// `vcardField(8)`: a property name follows.
    pub const VCARD_FIELD: Self = Self(8);
}

/// `QueryElement`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryElement {
    /// `searchType`.
    pub search_type: SearchIdentifierType,
    /// `claimName` (oidcStdClaim) or `propertyName` (vcardField); empty otherwise.
    pub field_name: Vec<u8>,
    /// `searchValue` (UTF-8).
    pub search_value: String,
}

/// `IdentifierRequest`: all elements must match (AND).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentifierRequest {
    /// `query_elements<V>`.
    pub query_elements: Vec<QueryElement>,
    /// `id_request_extensions`.
    pub extensions: AppDataDictionary,
}

impl Body for IdentifierRequest {
    const NAME: &'static str = "IdentifierRequest";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let f = "IdentifierRequest.query_elements";
        let opaque = r.limits.max_opaque;
        let query_elements = r.vector(f, |r| {
            let search_type = SearchIdentifierType(r.u8("QueryElement.searchType")?);
            if search_type.0 == 0 {
                return Err(r.error(WireErrorKind::BadValue(0), "QueryElement.searchType"));
            }
            let field_name = match search_type {
                SearchIdentifierType::OIDC_STD_CLAIM | SearchIdentifierType::VCARD_FIELD => {
                    r.opaque(opaque, "QueryElement.claimName/propertyName")?
                }
                _ => Vec::new(),
            };
            Ok(QueryElement {
                search_type,
                field_name,
                search_value: r.text(opaque, "QueryElement.searchValue")?,
            })
        })?;
        Ok(Self {
            query_elements,
            extensions: AppDataDictionary::read(r, "IdentifierRequest.id_request_extensions")?,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.vector(&self.query_elements, |w, q| {
            w.u8(q.search_type.0);
            if matches!(
                q.search_type,
                SearchIdentifierType::OIDC_STD_CLAIM | SearchIdentifierType::VCARD_FIELD
            ) {
                w.opaque(&q.field_name);
            }
            w.opaque(q.search_value.as_bytes());
        });
        self.extensions.write(w);
    }
}

/// `IdentifierQueryCode`, open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IdentifierQueryCode(pub u8);

impl IdentifierQueryCode {
    /// `success(0)`.
    pub const SUCCESS: Self = Self(0);
    /// `notFound(1)`.
    pub const NOT_FOUND: Self = Self(1);
    /// `ambiguous(2)`.
    pub const AMBIGUOUS: Self = Self(2);
    /// `forbidden(3)`.
    pub const FORBIDDEN: Self = Self(3);
    /// `unsupportedField(4)`.
    pub const UNSUPPORTED_FIELD: Self = Self(4);
}

/// `ProfileField`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileField {
    /// `fieldSource` (7 oidcStdClaim, 8 vcardField).
    pub field_source: u8,
    /// `string fieldName`.
    pub field_name: String,
    /// `fieldValue`.
    pub field_value: Vec<u8>,
}

/// `UserProfile`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserProfile {
    /// `stableUri`.
    pub stable_uri: MimiUri,
    /// `fields<V>`.
    pub fields: Vec<ProfileField>,
}

/// `IdentifierResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentifierResponse {
    /// `responseCode`.
    pub response_code: IdentifierQueryCode,
    /// `IdentifierUri uri<V>`.
    pub uris: Vec<MimiUri>,
    /// `foundProfiles<V>`.
    pub found_profiles: Vec<UserProfile>,
    /// `id_response_extensions`.
    pub extensions: AppDataDictionary,
}

impl Body for IdentifierResponse {
    const NAME: &'static str = "IdentifierResponse";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let response_code = IdentifierQueryCode(r.u8("IdentifierResponse.responseCode")?);
        let f = "IdentifierResponse.uri";
        let uris = r.vector(f, |r| read_any_uri(r, f))?;
        let opaque = r.limits.max_opaque;
        let p = "IdentifierResponse.foundProfiles";
        let found_profiles = r.vector(p, |r| {
            let stable_uri = read_any_uri(r, "UserProfile.stableUri")?;
            let fields = r.vector("UserProfile.fields", |r| {
                let s = "ProfileField.fieldSource";
                let field_source = r.u8(s)?;
                if !matches!(field_source, 7 | 8) {
                    return Err(r.error(WireErrorKind::BadValue(u64::from(field_source)), s));
                }
                Ok(ProfileField {
                    field_source,
                    field_name: r.text(opaque, "ProfileField.fieldName")?,
                    field_value: r.opaque(opaque, "ProfileField.fieldValue")?,
                })
            })?;
            Ok(UserProfile { stable_uri, fields })
        })?;
        Ok(Self {
            response_code,
            uris,
            found_profiles,
            extensions: AppDataDictionary::read(r, "IdentifierResponse.id_response_extensions")?,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.u8(self.response_code.0);
        w.vector(&self.uris, |w, u| w.opaque(u.as_str().as_bytes()));
        w.vector(&self.found_profiles, |w, p| {
            w.opaque(p.stable_uri.as_str().as_bytes());
            w.vector(&p.fields, |w, f| {
                w.u8(f.field_source);
                w.opaque(f.field_name.as_bytes());
                w.opaque(&f.field_value);
            });
        });
        self.extensions.write(w);
    }
}
