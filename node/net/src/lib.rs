//! mimi-net: placeholder until its issue lands.
