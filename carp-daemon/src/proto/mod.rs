//! The CARP protocol core. Pure Rust: no sockets, no clock.
