//! Integration tests of mimi-content (one test binary: see DESIGN.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod builders;
mod json;
mod props;
mod strict;
mod vectors;
mod view;
