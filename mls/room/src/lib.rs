//! mimi-room: placeholder until its issue lands.
