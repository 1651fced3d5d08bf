//! mimi-store: placeholder until its issue lands.
