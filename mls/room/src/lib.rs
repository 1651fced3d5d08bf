//! # mimi-room
//!
//! The room layer of MIMI, sans-IO: a room's participant list and policy live in the MLS
//! group's GroupContext (`app_data_dictionary`), so every member and the hub agree on them by
//! construction (protocol-06 §7, room-policy-03).
//!
//! - [`codepoints`]: component IDs (configurable) and role capabilities.
//! - [`roles`]: the roles list and base policy components; [`presets`]: a direct message, a
//!   private group and a public room.
//! - [`state`]: the room state and the one deterministic resolver of AppDataUpdates.
//! - [`policy`]: the hub's authorization rules and the list/membership consistency checks.
//!
//! Requirement IDs (`ROOM-…`) are listed in `spec-notes/room.md`.

pub mod client;
pub mod codepoints;
pub mod hub;
pub mod mls;
pub mod policy;
pub mod presets;
pub mod roles;
pub mod state;
