//! Checks across interfaces and against the system: what OpenBSD would refuse, and what
//! Linux needs.
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::{CarpInterface, Problem};

/// Linux interface names: 1 to 15 bytes, no '/', ':' or white space.
fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// Whether `name` exists in this network namespace.
pub fn system_interface_exists(name: &str) -> bool {
    nix::net::if_::if_nametoindex(name).is_ok()
}

pub fn check(interfaces: &[CarpInterface], iface_exists: &dyn Fn(&str) -> bool) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    let mut vhids: BTreeMap<(&str, u8), &str> = BTreeMap::new();
    let mut addrs: BTreeMap<IpAddr, &str> = BTreeMap::new();
    for i in interfaces {
        let mut err = |message: String| {
            problems.push(Problem {
                location: format!("{} [interface {}]", i.source, i.name),
                message,
            })
        };
        if !valid_ifname(&i.name) {
            err(format!(
                "'{}' is not a valid interface name (1-15 bytes, no '/', ':' or spaces)",
                i.name
            ));
        }
        if !names.insert(i.name.as_str()) {
            err(format!("interface {} is defined twice", i.name));
        }
        if i.vhid == 0 {
            err("no vhid (vhid 1-255)".into());
        }
        if i.carpdev.is_empty() {
            err("no carpdev".into());
        } else if i.carpdev == i.name {
            err("carpdev is the carp interface itself".into());
        } else if !iface_exists(&i.carpdev) {
            err(format!("carpdev {}: no such interface", i.carpdev));
        }
        if i.ipv4.is_empty() && i.ipv6.is_empty() {
            err("no address: a carp interface needs at least one inet or inet6 address".into());
        }
        if i.vhid != 0 && !i.carpdev.is_empty() {
            if let Some(other) = vhids.insert((i.carpdev.as_str(), i.vhid), i.name.as_str()) {
                err(format!(
                    "vhid {} on {} is also used by {other}",
                    i.vhid, i.carpdev
                ));
            }
        }
        let all = i
            .ipv4
            .iter()
            .map(|a| IpAddr::V4(a.addr))
            .chain(i.ipv6.iter().map(|a| IpAddr::V6(a.addr)));
        for a in all {
            if let IpAddr::V6(v6) = a {
                if v6.is_unicast_link_local() {
                    err(format!(
                        "{a}: link-local addresses cannot be virtual addresses"
                    ));
                }
            }
            if let Some(other) = addrs.insert(a, i.name.as_str()) {
                if other != i.name {
                    err(format!("address {a} is also on {other}"));
                }
            }
        }
    }
    problems
}
