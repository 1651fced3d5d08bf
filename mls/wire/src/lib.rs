//! mimi-wire: placeholder until its issue lands.
