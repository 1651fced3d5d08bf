//! The draft's endpoint paths (protocol-06 §5) under our versioned base, and the client API's.

use mimi_wire::directory::{Directory, Endpoint};
use mimi_wire::id::{path_decode, path_encode};

/// The versioned base of the provider endpoints.
pub const BASE: &str = "/v1";
/// The directory (protocol-06 §5.1).
pub const DIRECTORY_PATH: &str = "/.well-known/mimi-protocol-directory";
/// The provider-internal client API (DESIGN.md).
pub const CLIENT_API_PREFIX: &str = "/client/v1/";

/// `/v1/<endpoint>/<percent-encoded identifier>`.
pub fn path(e: Endpoint, id: &str) -> String {
    format!("{BASE}/{}/{}", e.name(), path_encode(id))
}

/// Which endpoint a path names, and its identifier (decoded).
pub fn route(path: &str) -> Option<(Endpoint, String)> {
    let path = path.split('?').next().unwrap_or_default();
    let rest = path.strip_prefix(BASE)?.strip_prefix('/')?;
    let (name, id) = rest.split_once('/')?;
    let e = Endpoint::ALL.into_iter().find(|e| e.name() == name)?;
    if id.is_empty() {
        return None;
    }
    Some((e, path_decode(id).ok()?))
}

/// The directory document of a provider served at `https://<domain>:<port>`.
pub fn directory(authority: &str) -> Directory {
    Directory::for_base(&format!("https://{authority}{BASE}"))
}
