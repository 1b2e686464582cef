//! Fuzzes the VRRP words of both configuration formats through `config::check_sources`
//! (parse and validate, as `carpd --check` does): hostname.carpN's FreeBSD words
//! (`carpver 3 vrrpprio P vrrpinterval CS`) and the TOML keys (`protocol = "vrrp3"`,
//! `vrid`, `priority`, `advert_interval`, `preempt`, `accept_mode`, `vrrp_checksum`).
//!
//! Input layout: byte 0 bit 0 selects the format; the rest is text appended to a VRRP
//! interface that is valid as it stands, so most inputs reach the VRRP words and their
//! validation. Whatever validates must make a virtual router the election accepts.
#![no_main]

use std::path::PathBuf;

use carp_daemon::config::{Source, check_sources};
use carp_daemon::proto::fsm::Family;
use carp_daemon::proto::vrrp::{VirtualRouter, VrrpParams};
use libfuzzer_sys::fuzz_target;

const HOSTNAME_PROLOGUE: &str = "inet 192.0.2.1/24 vhid 5 carpdev eth0 carpver 3 ";
const TOML_PROLOGUE: &str = "[[interface]]\nname = \"carp0\"\ncarpdev = \"eth0\"\n\
                             protocol = \"vrrp3\"\nvrid = 5\naddresses = [\"192.0.2.1/24\"]\n";

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    let Ok(words) = std::str::from_utf8(rest) else {
        return;
    };
    let (path, text) = if mode & 1 == 0 {
        ("hostname.carp0", format!("{HOSTNAME_PROLOGUE}{words}\n"))
    } else {
        ("carpd.toml", format!("{TOML_PROLOGUE}{words}\n"))
    };
    let source = Source {
        path: PathBuf::from(path),
        text,
    };
    let checked = check_sources(&[source], &|_| true);
    let Ok(config) = checked.result else {
        return;
    };
    for cif in &config.interfaces {
        let Some(vrrp) = cif.vrrp else {
            continue;
        };
        // One family per VRRP interface, and the settings the election takes.
        assert!(cif.ipv4.is_empty() || cif.ipv6.is_empty(), "{cif:?}");
        assert_eq!(vrrp.v6, !cif.ipv6.is_empty(), "{cif:?}");
        let params = VrrpParams {
            vrid: cif.vhid,
            priority: vrrp.priority,
            advert_interval: vrrp.advert_interval,
            preempt: vrrp.preempt,
            accept_mode: vrrp.accept_mode,
        };
        let family = if vrrp.v6 { Family::V6 } else { Family::V4 };
        if let Err(err) = VirtualRouter::new(params, family) {
            panic!("validated settings refused by the election: {err}: {cif:?}");
        }
    }
});
