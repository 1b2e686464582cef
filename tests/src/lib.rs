//! Lab harness for carp-linux's network tests, and frame builders they share.
//!
//! A [`Lab`] is a small LAN built from network namespaces: N router hosts and a client, each
//! with an `eth0` plugged into a bridge in a separate switch namespace (see [`lab`] for the
//! topology and the address plan). Tests run commands and long-lived processes (carpd,
//! tcpdump) inside the hosts, cut and restore links, capture packets, and rely on the lab to
//! clean everything up when it is dropped, also when the test panics; labs of test runs
//! that were killed outright are swept by the next run (see [`cleanup`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use carp_tests::{Lab, LabSpec, require_root, wait_until};
//!
//! if !require_root("example") {
//!     return;
//! }
//! let lab = Lab::new("example", LabSpec::default()).unwrap();
//! let (client, h1) = (lab.client(), lab.host(0));
//! assert!(client.ping(h1.addr4()).unwrap());
//! h1.cut_link().unwrap();
//! assert!(!client.ping(h1.addr4()).unwrap());
//! h1.restore_link().unwrap();
//! wait_until(Duration::from_secs(5), || client.ping(h1.addr4()).unwrap()).unwrap();
//! ```
//!
//! Everything needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN); guard tests with [`require_root`].
//! Traffic only ever flows between the lab's own namespaces, on documentation addresses.
pub mod advert;
pub mod capture;
pub mod carpd;
pub mod cleanup;
mod error;
pub mod frames;
pub mod lab;
pub mod netns;
pub mod pcap;
pub mod peers;
pub mod privilege;
pub mod process;
pub mod rawsock;
mod veth_napi_peer;
pub mod wait;

pub use advert::CapturedAdvert;
pub use capture::Capture;
pub use error::LabError;
pub use lab::{Host, Lab, LabSpec};
pub use netns::{Netns, NetnsCommand, OwnedNetns};
pub use privilege::{is_privileged, require_root};
pub use process::{CmdOutput, LabProcess, Signal};
pub use rawsock::RawSocket;
pub use wait::{wait_for, wait_until};
