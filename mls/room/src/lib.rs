//! # mimi-room
//!
//! The room layer of MIMI, sans-IO: a room's participant list and policy live in the MLS
//! group's GroupContext (`app_data_dictionary`), so every member and the hub agree on them by
//! construction (protocol-06 §7, room-policy-03).
//!
//! - [`codepoints`]: component IDs (configurable) and role capabilities.
//! - [`roles`]: the roles list and base policy components; [`presets`]: a direct message, a
//!   private group and a public room.
//! - [`state`]: the room state and the one deterministic resolver of AppDataUpdates, run
//!   unchanged by the committer, every member and the hub.
//! - [`policy`]: the hub's authorization rules and the list/membership consistency checks,
//!   active-participant limits.
//! - [`preauth`]: the preauthorization list and its matching; [`room_policy`]: the
//!   room-policy-03 §6 components clients notice (status notifications, link previews, assets
//!   with `AssetPolicy::check`, logging, history, bots, message expiration) and the client
//!   rules they set; [`operational`]: what the hub and clients do with the MLS operational
//!   parameters.
//! - [`mls`]: the MLS settings of a room (cipher suite, capabilities) and the bridge between
//!   openmls' AppDataUpdate API and the resolver.
//! - [`client`]: a user's device over `MlsGroup`: [`client::Device`] (keys, KeyPackages,
//!   create/join) and [`client::Room`] (add users, remove, ban, roles, metadata, leave, send,
//!   process every fanout item, local view).
//! - [`franking`]: message franking (protocol-06 §5.4.1): the client's tag, the hub's frank,
//!   the receiver's checks and the hub's check of a reported message.
//! - [`hub`]: the hub over `PublicGroup`: [`hub::HubRoom`] (bootstrap, `handle_update` →
//!   [`hub::Accepted`] or an [`hub::UpdateRejection`] named after the draft's codes,
//!   `check_submit` → [`hub::SubmitRejection`], Welcome routing, GroupInfo for joiners, its own
//!   external Removes, snapshot/restore).
//!
//! Nothing here does I/O: functions take bytes (mimi-wire bodies) and return decisions and the
//! bytes to send. Requirement IDs (`ROOM-…`) are listed in `spec-notes/room.md`.

pub mod client;
pub mod codepoints;
pub mod franking;
pub mod hub;
pub mod join_links;
pub mod mls;
pub mod operational;
pub mod policy;
pub mod preauth;
pub mod presets;
pub mod requests;
pub mod roles;
pub mod room_policy;
pub mod roster;
pub mod state;
