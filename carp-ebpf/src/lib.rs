//! Empty on the host: the XDP program is the `carp` binary built for bpfel-unknown-none.
//! carp-daemon build-depends on this library so that cargo rebuilds it when this crate changes.
#![no_std]
