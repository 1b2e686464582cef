//! VRRPv3 interfaces: TOML `protocol = "vrrp3"` with `vrid`, `priority`, `advert_interval`,
//! `preempt`, `accept_mode`, `vrrp_checksum`; hostname.carpN FreeBSD's `carpver 3 vrrpprio P
//! vrrpinterval CS`.
//!
//! # One family per interface
//! RFC 5798 runs an IPv4 and an IPv6 virtual router separately even with the same VRID, and
//! they have different virtual MACs (`00:00:5e:00:01:<vrid>`, `00:00:5e:00:02:<vrid>`), while
//! a carp interface has one MAC. So a VRRP interface has addresses of one family; a VRID with
//! both families is two interfaces with the same `vrid` on the same carpdev (keepalived, too,
//! configures them as two instances). The IPv6 list starts with the link-local virtual
//! address (RFC 5798 5.2.9), which the adverts carry first.
//!
//! # What does not apply
//! VRRPv3 has no authentication, no advbase/advskew (priority and the interval in
//! centiseconds instead), no demotion, and carpd speaks it to the multicast group only: `pass`,
//! `pass_file`, `advbase`, `advskew`, `peers` and `state` are refused on such an interface.
//! The daemon-wide `preempt` is CARP's; a VRRP interface has its own (RFC default on).
use std::net::Ipv6Addr;

use super::error::{Location, Problem};
use super::validate::{Draft, Located, Num};
use super::{Addr4, Addr6};
use crate::proto::vrrp::ChecksumForm;
use carp_common::vrrp::{
    VRRP_ADVERT_INTERVAL_DEFAULT, VRRP_MAX_ADVERT_INTERVAL, VRRP_PRIORITY_DEFAULT,
    VRRP_PRIORITY_OWNER,
};

/// The settings of a VRRPv3 interface; its `vhid` is the VRID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VrrpSettings {
    /// 1..=255 (255: the address owner); default 100.
    pub priority: u8,
    /// Advertisement_Interval in centiseconds, 1..=4095; default 100.
    pub advert_interval: u16,
    /// Preempt_Mode; default true (RFC 5798 6.1).
    pub preempt: bool,
    /// Accept_Mode; default false: as master, a router that is not the owner drops packets
    /// to its addresses ([`VrrpSettings::accepts_own_addresses`]).
    pub accept_mode: bool,
    /// The IPv4 checksum sent (both are accepted).
    pub checksum: ChecksumForm,
    /// Whether the interface's addresses are IPv6 (its virtual MAC is then
    /// `00:00:5e:00:02:<vrid>`).
    pub v6: bool,
}

impl VrrpSettings {
    /// Whether the router, as master, accepts packets addressed to its virtual addresses:
    /// the address owner always does, another only in accept mode (RFC 5798 6.4.3; ARP and
    /// neighbour discovery for them are answered either way).
    pub fn accepts_own_addresses(&self) -> bool {
        self.accept_mode || self.priority == VRRP_PRIORITY_OWNER
    }
}

/// What a file says about VRRP for one interface.
#[derive(Debug, Clone, Default)]
pub(super) struct DraftVrrp {
    /// TOML `protocol`, or `carpver N` written as "carp" (2) / "vrrp3" (3).
    pub protocol: Option<Located<String>>,
    pub priority: Option<Located<Num>>,
    pub advert_interval: Option<Located<Num>>,
    pub preempt: Option<Located<bool>>,
    pub accept_mode: Option<Located<bool>>,
    pub checksum: Option<Located<String>>,
}

impl DraftVrrp {
    /// Whether the interface says `protocol = "vrrp3"` (`carpver 3`).
    pub fn is_vrrp(&self) -> bool {
        self.protocol.as_ref().is_some_and(|p| p.value == "vrrp3")
    }

    /// The keys set that only VRRP interfaces take, with where.
    fn vrrp_keys(&self) -> Vec<(&'static str, &Location)> {
        let mut keys = Vec::new();
        if let Some(v) = &self.priority {
            keys.push(("priority", &v.at));
        }
        if let Some(v) = &self.advert_interval {
            keys.push(("advert_interval", &v.at));
        }
        if let Some(v) = &self.preempt {
            keys.push(("preempt", &v.at));
        }
        if let Some(v) = &self.accept_mode {
            keys.push(("accept_mode", &v.at));
        }
        if let Some(v) = &self.checksum {
            keys.push(("vrrp_checksum", &v.at));
        }
        keys
    }
}

/// `carpver N` of hostname.carpN as the protocol word.
pub(super) fn protocol_of_carpver(version: &str) -> String {
    match version {
        "2" => "carp".to_owned(),
        "3" => "vrrp3".to_owned(),
        other => format!("carpver {other}"),
    }
}

/// A number in `min..=max`, or the problem.
fn number(key: &'static str, v: &Located<Num>, min: u16, max: u16) -> Result<u16, Problem> {
    let n = match &v.value {
        Num::Int(n) => Some(*n),
        Num::Text(t) => t.parse::<i128>().ok(),
    };
    let text = match &v.value {
        Num::Int(n) => n.to_string(),
        Num::Text(t) => t.clone(),
    };
    match n {
        None => Err(Problem::NotANumber { key, value: text }),
        Some(n) if n < i128::from(min) || n > i128::from(max) => Err(Problem::VrrpOutOfRange {
            key,
            value: text,
            min,
            max,
        }),
        Some(n) => Ok(n as u16),
    }
}

/// Checks the VRRP side of an interface. `Ok(None)`: a CARP interface; `Ok(Some)`: a valid
/// VRRP one; every problem goes to `push`. `ipv4`/`ipv6` are its checked addresses, in
/// order.
pub(super) fn check(
    d: &Draft,
    ipv4: &[(Addr4, Location)],
    ipv6: &[(Addr6, Location)],
    push: &mut dyn FnMut(&Location, Problem),
) -> Option<VrrpSettings> {
    let v = &d.vrrp;
    let vrrp = match &v.protocol {
        None => false,
        Some(p) if p.value == "carp" => false,
        Some(p) if p.value == "vrrp3" => true,
        Some(p) => {
            push(&p.at, Problem::BadProtocol(p.value.clone()));
            return None;
        }
    };
    if !vrrp {
        for (key, at) in v.vrrp_keys() {
            push(at, Problem::VrrpOnlyKey(key));
        }
        return None;
    }
    let carp_only: [(&'static str, Option<&Location>, &'static str); 7] = [
        (
            "advbase",
            d.advbase.as_ref().map(|x| &x.at),
            "VRRP times with advert_interval (centiseconds)",
        ),
        (
            "advskew",
            d.advskew.as_ref().map(|x| &x.at),
            "VRRP elects by priority",
        ),
        (
            "pass",
            d.pass.as_ref().map(|x| &x.at),
            "VRRPv3 has no authentication",
        ),
        (
            "peers",
            d.peers.first().map(|x| &x.at),
            "carpd speaks VRRP to the multicast group only",
        ),
        (
            "state",
            d.state.as_ref().map(|x| &x.at),
            "a VRRP router starts as backup, or master if it owns the addresses (priority 255)",
        ),
        (
            "carpnodes",
            d.carpnodes.as_ref().map(|x| &x.at),
            "load balancing is CARP's (OpenBSD carpnodes); a VRRP router is one election with one master",
        ),
        (
            "balancing",
            d.balancing.as_ref().map(|x| &x.at),
            "load balancing is CARP's (OpenBSD balancing); a VRRP router is one election with one master",
        ),
    ];
    let mut ok = true;
    for (key, at, why) in carp_only {
        if let Some(at) = at {
            push(at, Problem::CarpOnlyKey { key, why });
            ok = false;
        }
    }
    let priority = match &v.priority {
        None => Some(VRRP_PRIORITY_DEFAULT),
        Some(p) => number("priority", p, 1, 255)
            .map_err(|e| push(&p.at, e))
            .ok()
            .map(|n| n as u8),
    };
    let advert_interval = match &v.advert_interval {
        None => Some(VRRP_ADVERT_INTERVAL_DEFAULT),
        Some(i) => number("advert_interval", i, 1, VRRP_MAX_ADVERT_INTERVAL)
            .map_err(|e| push(&i.at, e))
            .ok(),
    };
    let checksum = match &v.checksum {
        None => Some(ChecksumForm::PseudoHeader),
        Some(c) => match c.value.as_str() {
            "pseudo-header" => Some(ChecksumForm::PseudoHeader),
            "message-only" => Some(ChecksumForm::MessageOnly),
            other => {
                push(&c.at, Problem::BadVrrpChecksum(other.to_owned()));
                None
            }
        },
    };
    let v6 = !ipv6.is_empty();
    if !ipv4.is_empty() && v6 {
        push(&ipv6[0].1, Problem::VrrpBothFamilies);
        ok = false;
    }
    if let Some((first, at)) = ipv6.first()
        && !is_link_local(&first.addr)
    {
        push(at, Problem::VrrpFirstNotLinkLocal(first.addr));
        ok = false;
    }
    let (Some(priority), Some(advert_interval), Some(checksum), true) =
        (priority, advert_interval, checksum, ok)
    else {
        return None;
    };
    Some(VrrpSettings {
        priority,
        advert_interval,
        preempt: v.preempt.as_ref().is_none_or(|p| p.value),
        accept_mode: v.accept_mode.as_ref().is_some_and(|a| a.value),
        checksum,
        v6,
    })
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::{CarpInterface, Checked, Source, check_sources};

    fn check(files: &[(&str, &str)]) -> Checked {
        let sources: Vec<Source> = files
            .iter()
            .map(|(path, text)| Source {
                path: PathBuf::from(path),
                text: (*text).to_owned(),
            })
            .collect();
        check_sources(&sources, &|_| true)
    }

    fn one(files: &[(&str, &str)]) -> CarpInterface {
        let c = check(files);
        let config = c.result.unwrap_or_else(|e| panic!("{e}"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        config.interfaces.into_iter().next().unwrap()
    }

    fn errors(files: &[(&str, &str)]) -> Vec<String> {
        match check(files).result {
            Ok(_) => Vec::new(),
            Err(e) => e.errors.iter().map(ToString::to_string).collect(),
        }
    }

    const V4: &str = "[[interface]]\nname = \"vrrp1\"\ncarpdev = \"eth0\"\nprotocol = \"vrrp3\"\n\
                      vrid = 1\naddresses = [\"192.0.2.1/24\"]\n";

    #[test]
    fn toml_defaults_follow_the_rfc() {
        let i = one(&[("c.toml", V4)]);
        assert_eq!(i.vhid, 1);
        assert_eq!(i.passphrase, None);
        assert_eq!(
            i.vrrp,
            Some(VrrpSettings {
                priority: 100,
                advert_interval: 100,
                preempt: true,
                accept_mode: false,
                checksum: ChecksumForm::PseudoHeader,
                v6: false,
            })
        );
    }

    #[test]
    fn toml_keys_are_read() {
        let text = "[[interface]]\nname = \"vrrp1\"\ncarpdev = \"eth0\"\nprotocol = \"vrrp3\"\n\
                    vhid = 9\npriority = 255\nadvert_interval = 4095\npreempt = false\n\
                    accept_mode = true\nvrrp_checksum = \"message-only\"\n\
                    addresses = [\"fe80::9/64\", \"2001:db8::9/64\"]\n";
        let i = one(&[("c.toml", text)]);
        assert_eq!(i.vhid, 9);
        assert_eq!(
            i.vrrp,
            Some(VrrpSettings {
                priority: 255,
                advert_interval: 4095,
                preempt: false,
                accept_mode: true,
                checksum: ChecksumForm::MessageOnly,
                v6: true,
            })
        );
    }

    #[test]
    fn freebsd_hostname_words() {
        let i = one(&[(
            "/etc/hostname.vrrp0",
            "inet 192.0.2.1/24 vhid 7 carpdev eth0 carpver 3 vrrpprio 150 vrrpinterval 50\n",
        )]);
        let v = i.vrrp.unwrap();
        assert_eq!((i.vhid, v.priority, v.advert_interval), (7, 150, 50));
        // carpver 2 is CARP, and CARP keeps its words.
        let carp = one(&[(
            "/etc/hostname.carp0",
            "inet 192.0.2.1/24 vhid 7 carpdev eth0 carpver 2 pass x\n",
        )]);
        assert_eq!(carp.vrrp, None);
    }

    #[test]
    fn bad_values_are_refused_on_their_line() {
        let cases: [(&str, &str); 6] = [
            (
                "priority = 0",
                "priority 0 is out of range: must be 1 to 255",
            ),
            (
                "priority = 256",
                "priority 256 is out of range: must be 1 to 255",
            ),
            (
                "advert_interval = 4096",
                "advert_interval 4096 is out of range: must be 1 to 4095",
            ),
            (
                "vrrp_checksum = \"rfc\"",
                "vrrp_checksum 'rfc' is not known",
            ),
            (
                "advskew = 10",
                "'advskew' does not apply to a VRRP interface",
            ),
            ("pass = \"x\"", "'pass' does not apply to a VRRP interface"),
        ];
        for (line, want) in cases {
            let text = format!("{V4}{line}\n");
            let got = errors(&[("c.toml", &text)]);
            assert_eq!(got.len(), 1, "{line}: {got:?}");
            assert!(got[0].starts_with("c.toml:7:"), "{line}: {got:?}");
            assert!(got[0].contains(want), "{line}: {got:?}");
        }
        let got = errors(&[(
            "/etc/hostname.v",
            "inet 192.0.2.1/24 vhid 1 carpdev eth0 carpver 4\n",
        )]);
        assert!(
            got[0].contains("protocol 'carpver 4' is not known"),
            "{got:?}"
        );
    }

    #[test]
    fn vrrp_keys_on_a_carp_interface_are_refused() {
        let text = "[[interface]]\nname = \"carp0\"\ncarpdev = \"eth0\"\nvhid = 1\npass = \"x\"\n\
                    addresses = [\"192.0.2.1/24\"]\npriority = 10\n";
        let got = errors(&[("c.toml", text)]);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].contains("'priority' applies to VRRP interfaces only"),
            "{got:?}"
        );
        let both = format!("{V4}vhid = 1\n");
        let got = errors(&[("c.toml", &both)]);
        assert!(got[0].contains("'vhid' or 'vrid'"), "{got:?}");
    }

    #[test]
    fn one_family_and_the_link_local_first() {
        let both = V4.replace("\"192.0.2.1/24\"", "\"192.0.2.1/24\", \"fe80::1/64\"");
        let got = errors(&[("c.toml", &both)]);
        assert!(got[0].contains("addresses of one family"), "{got:?}");
        let global_first = V4.replace("\"192.0.2.1/24\"", "\"2001:db8::1/64\", \"fe80::1/64\"");
        let got = errors(&[("c.toml", &global_first)]);
        assert!(
            got[0].contains("must be its link-local virtual address")
                && got[0].contains("2001:db8::1"),
            "{got:?}"
        );
    }

    #[test]
    fn both_families_of_a_vrid_share_no_mac_but_a_vhid_does() {
        let v6 = "[[interface]]\nname = \"vrrp1v6\"\ncarpdev = \"eth0\"\nprotocol = \"vrrp3\"\n\
                  vrid = 1\naddresses = [\"fe80::1/64\", \"2001:db8::1/64\"]\n";
        let c = check(&[("a.toml", V4), ("b.toml", v6)]);
        let config = c.result.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.interfaces.len(), 2);
        // A CARP vhid 1 on the same carpdev has the IPv4 VRID's MAC.
        let carp = "inet 192.0.2.9/24 vhid 1 carpdev eth0 pass x\n";
        let got = errors(&[("a.toml", V4), ("/etc/hostname.carp0", carp)]);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].contains("would share the virtual MAC 00:00:5e:00:01:01 with"),
            "{got:?}"
        );
        // ... but not the IPv6 one's, nor on another carpdev.
        assert!(errors(&[("b.toml", v6), ("/etc/hostname.carp0", carp)]).is_empty());
        let other_dev = carp.replace("eth0", "eth1");
        assert!(errors(&[("a.toml", V4), ("/etc/hostname.carp0", &other_dev)]).is_empty());
    }

    #[test]
    fn a_vrrp_interface_is_not_balanced() {
        for (line, key) in [
            ("carpnodes = \"1:0,2:100\"", "carpnodes"),
            ("balancing = \"ip\"", "balancing"),
        ] {
            let text = format!("{V4}{line}\n");
            let got = errors(&[("c.toml", &text)]);
            assert_eq!(got.len(), 1, "{line}: {got:?}");
            assert!(got[0].starts_with("c.toml:7:"), "{line}: {got:?}");
            assert!(
                got[0].contains(&format!("'{key}' does not apply to a VRRP interface"))
                    && got[0].contains("load balancing is CARP's"),
                "{line}: {got:?}"
            );
        }
        let got = errors(&[(
            "/etc/hostname.vrrp0",
            "inet 192.0.2.1/24 vhid 7 carpdev eth0 carpver 3 carpnodes 7:0,8:100\n",
        )]);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains("'carpnodes' does not apply"), "{got:?}");
    }

    #[test]
    fn a_balanced_node_shares_the_mac_of_an_ipv4_vrid() {
        // vrid 1's IPv4 MAC is 00:00:5e:00:01:01, that of node vhid 1 of carp2.
        let balanced = "inet 192.0.2.30/24 carpdev eth0 carpnodes 2:0,1:100 pass x\n";
        let got = errors(&[("a.toml", V4), ("/etc/hostname.carp2", balanced)]);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].contains("vhid 1 on eth0 would share the virtual MAC 00:00:5e:00:01:01 with"),
            "{got:?}"
        );
        let apart = balanced.replace("2:0,1:100", "2:0,3:100");
        assert!(errors(&[("a.toml", V4), ("/etc/hostname.carp2", &apart)]).is_empty());
    }
}
