//! Types shared by the XDP program (`carp-ebpf`) and the daemon (`carp-daemon`).
//!
//! `wire` holds the protocol constants of CARP itself, `vrrp` those of VRRPv3; `frame` the frames around it (the
//! Internet checksum, Ethernet, IPv4, IPv6, ARP, neighbour discovery); `lb` the per-packet decision of
//! load balancing; `maps` holds every
//! `#[repr(C)]` key and value that crosses the kernel/user boundary through a BPF map. Both
//! sides compile this crate, so a layout change can never reach only one of them.
#![no_std]

pub mod frame;
pub mod lb;
pub mod maps;
pub mod vrrp;
pub mod wire;
