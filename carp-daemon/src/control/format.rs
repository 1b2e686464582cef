//! Text for carpctl's answers, in the shapes OpenBSD users already read and parse.
//!
//! - An interface prints as OpenBSD's ifconfig prints a carp interface (sbin/ifconfig/
//!   ifconfig.c 1.476: `status()`, `carp_status()`, `getifgroups()`, `in_status()`,
//!   `in6_alias()`): the flags line, `lladdr`, `index N priority P llprio L`, the `carp:`
//!   line, `groups:`, `status:` (the carp link state: master, backup, or invalid in INIT),
//!   then the addresses, IPv4 first. Lines are indented with a tab, as ifconfig does.
//! - A group prints as `ifconfig -g GROUP`: `carp: carp demote count 0`.
//! - Counters print as `netstat -s -p carp` (usr.bin/netstat/inet.c `carp_stats()`), every
//!   line even when zero (netstat -s), then carpd's additions.
//!
//! ifconfig shows no demote value and no history for an interface; carpctl adds those only
//! with `-v`, so the default output stays byte-for-byte what scripts written against OpenBSD
//! expect.
use std::fmt::Write as _;
use std::net::IpAddr;

use super::protocol::{
    CarpState, CarpStats, DataplaneStats, InterfaceAddress, InterfaceStatus, StatsReport, ipv4_mask,
};

/// Interface flag bits as OpenBSD numbers them (sys/net/if.h); the `flags=` value is
/// computed from them, so it changes with UP and RUNNING exactly as ifconfig's does.
const IFF_UP: u32 = 0x1;
const IFF_BROADCAST: u32 = 0x2;
const IFF_RUNNING: u32 = 0x40;
const IFF_SIMPLEX: u32 = 0x800;
const IFF_MULTICAST: u32 = 0x8000;

/// Flag names in bit order, as ifconfig's printb() walks them.
const FLAG_NAMES: &[(u32, &str)] = &[
    (IFF_UP, "UP"),
    (IFF_BROADCAST, "BROADCAST"),
    (IFF_RUNNING, "RUNNING"),
    (IFF_SIMPLEX, "SIMPLEX"),
    (IFF_MULTICAST, "MULTICAST"),
];

/// A carp interface's route priority and link-layer priority on OpenBSD
/// (IF_CARP_DEFAULT_PRIORITY, IFQ_DEFPRIO). Linux has neither per interface; carpctl prints
/// OpenBSD's defaults so the `index` line keeps its shape for readers and scripts.
const CARP_PRIORITY: u32 = 15;
const CARP_LLPRIO: u32 = 3;

/// The `flags=` value of a carp interface: always BROADCAST, SIMPLEX and MULTICAST (carp's
/// clone sets them), plus UP and RUNNING as they are.
pub fn flags(up: bool, running: bool) -> u32 {
    let mut f = IFF_BROADCAST | IFF_SIMPLEX | IFF_MULTICAST;
    if up {
        f |= IFF_UP;
    }
    if running {
        f |= IFF_RUNNING;
    }
    f
}

/// `flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST>` (printb: hex value, names in order).
fn flags_field(value: u32) -> String {
    let names: Vec<&str> = FLAG_NAMES
        .iter()
        .filter(|(bit, _)| value & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    format!("flags={value:x}<{}>", names.join(","))
}

/// The `status:` word ifconfig prints for a carp interface's link state.
fn link_status(state: CarpState) -> &'static str {
    match state {
        CarpState::Master => "master",
        CarpState::Backup => "backup",
        // carp sets LINK_STATE_INVALID outside MASTER/BACKUP; ifconfig prints it so.
        CarpState::Init => "invalid",
    }
}

/// One interface, ifconfig-style. `verbose` adds carpd's `demote:` and `last transition:`
/// lines after `status:`.
pub fn interface(s: &InterfaceStatus, verbose: bool) -> String {
    let mut out = String::new();
    let _ = write!(out, "{}: {}", s.name, flags_field(flags(s.up, s.running)));
    if s.mtu != 0 {
        let _ = write!(out, " mtu {}", s.mtu);
    }
    out.push('\n');
    if !s.lladdr.is_empty() {
        let _ = writeln!(out, "\tlladdr {}", s.lladdr);
    }
    let _ = writeln!(
        out,
        "\tindex {} priority {CARP_PRIORITY} llprio {CARP_LLPRIO}",
        s.ifindex
    );
    // FreeBSD's carp_status() for carpver 3: "vrrp: STATE vrid N prio P interval CS".
    // carp_status() prints nothing while no vhid is set; with several nodes, one line for
    // the interface and one per node.
    if let Some(v) = &s.vrrp {
        let _ = writeln!(
            out,
            "\tvrrp: {} vrid {} prio {} interval {}",
            s.state.as_str(),
            s.vhid,
            v.priority,
            v.advert_interval
        );
    } else if !s.nodes.is_empty() {
        let _ = writeln!(
            out,
            "\tcarp: carpdev {} advbase {} balancing {}",
            s.carpdev.as_deref().unwrap_or("none"),
            s.advbase,
            s.balancing.as_deref().unwrap_or("none"),
        );
        for n in &s.nodes {
            let _ = writeln!(
                out,
                "\t\tstate {} vhid {} advskew {}",
                n.state.as_str(),
                n.vhid,
                n.advskew
            );
        }
        for peer in &s.peers {
            let _ = writeln!(out, "\tcarppeer {peer}");
        }
    } else if s.vhid != 0 {
        let _ = writeln!(
            out,
            "\tcarp: {} carpdev {} vhid {} advbase {} advskew {}",
            s.state.as_str(),
            s.carpdev.as_deref().unwrap_or("none"),
            s.vhid,
            s.advbase,
            s.advskew
        );
        // carp_status(): "\n\tcarppeer %s" when the peer is not the group; one per peer.
        for peer in &s.peers {
            let _ = writeln!(out, "\tcarppeer {peer}");
        }
    }
    if !s.groups.is_empty() {
        let _ = writeln!(out, "\tgroups: {}", s.groups.join(" "));
    }
    let _ = writeln!(out, "\tstatus: {}", link_status(s.state));
    if verbose {
        let _ = writeln!(out, "\tdemote: {}", s.demote);
        if let Some(t) = &s.last_transition {
            let _ = writeln!(
                out,
                "\tlast transition: {} ago ({})",
                duration(t.seconds_ago),
                t.reason
            );
        }
    }
    let v4 = s.addresses.iter().filter(|a| a.addr.is_ipv4());
    let v6 = s.addresses.iter().filter(|a| a.addr.is_ipv6());
    for a in v4.chain(v6) {
        out.push_str(&address(a, s));
    }
    out
}

/// Interfaces one after another, as `ifconfig` without arguments lists them.
pub fn interfaces(list: &[InterfaceStatus], verbose: bool) -> String {
    list.iter().map(|s| interface(s, verbose)).collect()
}

/// `inet A netmask 0xM broadcast B` or `inet6 A prefixlen P [scopeid 0xI]`.
fn address(a: &InterfaceAddress, s: &InterfaceStatus) -> String {
    match a.addr {
        IpAddr::V4(v4) => {
            // in_status(): netmask in hex with "%x" (no padding), broadcast when set.
            let mut line = format!("\tinet {v4} netmask 0x{:x}", ipv4_mask(a.prefix_len));
            if let Some(b) = a.broadcast.filter(|b| !b.is_unspecified()) {
                let _ = write!(line, " broadcast {b}");
            }
            line.push('\n');
            line
        }
        IpAddr::V6(v6) => {
            // in6_alias(): a link-local address is printed with its zone and scope id.
            if v6.segments()[0] & 0xffc0 == 0xfe80 {
                format!(
                    "\tinet6 {v6}%{} prefixlen {} scopeid 0x{:x}\n",
                    s.name, a.prefix_len, s.ifindex
                )
            } else {
                format!("\tinet6 {v6} prefixlen {}\n", a.prefix_len)
            }
        }
    }
}

/// `42s`, `3m12s`, `2h05m`, `3d04h`: short and exact enough for "when did it flip".
fn duration(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// `ifconfig -g GROUP`: `carp: carp demote count 0`; a second line with the persisted
/// (maintenance) part when there is one, so that the first stays ifconfig's.
pub fn group(name: &str, demote: u8, persisted: u8) -> String {
    let mut out = format!("{name}: carp demote count {demote}\n");
    if persisted > 0 {
        let _ = writeln!(out, "{name}: persisted demote {persisted}");
    }
    out
}

/// `--json` for `-g GROUP`: the same facts, name first.
pub fn group_json(name: &str, demote: u8, persisted: u8) -> String {
    #[derive(serde::Serialize)]
    struct Group<'a> {
        name: &'a str,
        demote: u8,
        persisted: u8,
    }
    json(&Group {
        name,
        demote,
        persisted,
    })
}

/// netstat's plural(): "s" unless exactly one.
fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `carpctl checks`: one line per check, then its last reason indented under it.
///
/// ```text
/// web      http      group carp  down  failures 3/3  successes 0/2  holds demote 50
///     HTTP 503
/// ```
pub fn checks(list: &[super::protocol::CheckStatus]) -> String {
    let mut out = String::new();
    if list.is_empty() {
        out.push_str("no health checks configured\n");
        return out;
    }
    let width = list.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in list {
        let _ = writeln!(
            out,
            "{:width$}  {:9} group {}  {:7}  failures {}/{}  successes {}/{}  holds demote {}",
            c.name, c.kind, c.group, c.state, c.failures, c.fall, c.successes, c.rise, c.held
        );
        if let (Some(result), Some(reason)) = (&c.last_result, &c.reason) {
            let _ = writeln!(out, "    last {result}: {reason}");
        }
    }
    out
}

/// `carpctl stats`: `netstat -s -p carp`'s lines, then carpd's loop counter and the XDP
/// dataplane's counters in the same style.
pub fn stats(r: &StatsReport) -> String {
    let mut out = String::from("carp:\n");
    carp_lines(&mut out, &r.carp, r.loops_detected);
    if let Some(v) = &r.vrrp {
        out.push_str("vrrp:\n");
        vrrp_lines(&mut out, v);
    }
    out.push_str("hooks:\n");
    netstat_lines(
        &mut out,
        &[(
            r.hooks_skipped,
            "\t{n} state change{s} skipped (replaced while the hook ran)",
        )],
    );
    match &r.dataplane {
        Some(d) => {
            out.push_str("xdp:\n");
            dataplane_lines(&mut out, d);
        }
        None => out.push_str("xdp: not attached\n"),
    }
    out
}

/// OpenBSD inet.c carp_stats(), line for line (its `p()` lines take a plural, `p2()` lines
/// don't; "bad checksum%s" really does put the plural on "checksum"). The loop line is carpd's:
/// OpenBSD logs "replay or network loop detected" but counts it nowhere.
#[rustfmt::skip] // a table: one line per counter reads better than rustfmt's three
fn carp_lines(out: &mut String, c: &CarpStats, loops: u64) {
    netstat_lines(out, &[
        (c.carps_ipackets,  "\t{n} packet{s} received (IPv4)"),
        (c.carps_ipackets6, "\t{n} packet{s} received (IPv6)"),
        (c.carps_badif,     "\t\t{n} packet{s} discarded for bad interface"),
        (c.carps_badttl,    "\t\t{n} packet{s} discarded for wrong TTL"),
        (c.carps_hdrops,    "\t\t{n} packet{s} shorter than header"),
        (c.carps_badsum,    "\t\t{n} discarded for bad checksum{s}"),
        (c.carps_badver,    "\t\t{n} discarded packet{s} with a bad version"),
        (c.carps_badlen,    "\t\t{n} discarded because packet too short"),
        (c.carps_badauth,   "\t\t{n} discarded for bad authentication"),
        (c.carps_badvhid,   "\t\t{n} discarded for unknown vhid"),
        (c.carps_badaddrs,  "\t\t{n} discarded because of a bad address list"),
        (loops,             "\t\t{n} discarded as replay or network loop"),
        (c.carps_opackets,  "\t{n} packet{s} sent (IPv4)"),
        (c.carps_opackets6, "\t{n} packet{s} sent (IPv6)"),
        (c.carps_onomem,    "\t\t{n} send failed due to mbuf memory error"),
        (c.carps_preempt,   "\t{n} transition{s} to master"),
    ]);
}

/// The wording of every dataplane counter (carp_common::maps::DataplaneCounters: the XDP
/// program's, then the egress guard's), netstat-style, keyed by field name in the order
/// `carpctl stats` prints them. Sized by the counter count, so a new counter does not compile
/// without its line.
#[rustfmt::skip] // a table, as above
const DATAPLANE_LINES: [(&str, &str); DataplaneStats::COUNT] = [
    ("arp_replied",                "\t{n} ARP request{s} for a VIP answered as master"),
    ("arp_dropped_not_master",     "\t{n} ARP request{s} for a VIP dropped (not master)"),
    ("arp_gratuitous_dropped",     "\t{n} gratuitous ARP packet{s} for a VIP dropped"),
    ("ns_replied",                 "\t{n} neighbor solicitation{s} for a VIP answered"),
    ("ns_dropped_not_master",      "\t{n} neighbor solicitation{s} for a VIP dropped"),
    ("vmac_accepted",              "\t{n} frame{s} to a virtual MAC accepted as master"),
    ("vmac_dropped_not_master",    "\t{n} frame{s} to a virtual MAC dropped (not master)"),
    ("advert_delivered",           "\t{n} advertisement{s} handed to carpd"),
    ("advert_master_fastpath",     "\t{n} repeat{s} of the master's advertisement consumed in XDP"),
    ("advert_passed_unknown_vhid", "\t{n} advertisement{s} for an unknown vhid passed on"),
    ("advert_bad_length",          "\t\t{n} discarded because packet too short"),
    ("advert_bad_version",         "\t\t{n} discarded packet{s} with a bad version"),
    ("advert_bad_ttl",             "\t\t{n} packet{s} discarded for wrong TTL"),
    ("advert_bad_checksum",        "\t\t{n} discarded for bad checksum{s}"),
    ("advert_own_source",          "\t\t{n} discarded as sent by this host"),
    ("advert_ring_full",           "\t\t{n} dropped because carpd was not keeping up"),
    ("vlan_passed",                "\t{n} VLAN-tagged frame{s} passed to the stack"),
    ("egress_dropped_not_master",  "\t{n} frame{s} leaving a carp interface dropped (not master)"),
    ("arp_dropped_bad_source",     "\t{n} ARP request{s} for a VIP from a group address dropped"),
    ("ns_dropped_invalid",         "\t{n} invalid neighbor solicitation{s} for a VIP dropped"),
    ("lb_accepted",                "\t{n} balanced packet{s} accepted (own bucket)"),
    ("lb_dropped_other_bucket",    "\t{n} balanced packet{s} dropped (another node's bucket)"),
];

/// The dataplane's counters, worded by [`DATAPLANE_LINES`].
fn dataplane_lines(out: &mut String, d: &DataplaneStats) {
    let values = d.values();
    let lines: Vec<(u64, &str)> = DATAPLANE_LINES
        .iter()
        .filter_map(|&(name, text)| {
            let &(_, n) = values.iter().find(|&&(field, _)| field == name)?;
            Some((n, text))
        })
        .collect();
    netstat_lines(out, &lines);
}

/// The VRRPv3 counters, in the order of a packet's way: in, dropped by the dataplane, out.
#[rustfmt::skip] // a table, as carp_lines
fn vrrp_lines(out: &mut String, v: &crate::control::protocol::VrrpStats) {
    let d = v.dataplane.unwrap_or_default();
    netstat_lines(out, &[
        (v.received,                    "\t{n} advertisement{s} received"),
        (v.resignations_received,       "\t\t{n} with priority 0 (master resigning)"),
        (d.vrrp_checksum_message_only,  "\t\t{n} with the RFC 9568 IPv4 checksum"),
        (d.vrrp_bad_ttl,                "\t\t{n} discarded for wrong TTL"),
        (d.vrrp_bad_length,             "\t\t{n} discarded because packet too short"),
        (d.vrrp_bad_checksum,           "\t\t{n} discarded for bad checksum{s}"),
        (d.vrrp_own_source,             "\t\t{n} discarded as sent by this host"),
        (d.vrrp_ring_full,              "\t\t{n} dropped because carpd was not keeping up"),
        (d.vrrp_passed_unicast,         "\t\t{n} unicast advertisement{s} passed to the stack"),
        (v.sent,                        "\t{n} advertisement{s} sent"),
        (v.send_errors,                 "\t\t{n} send failure{s}"),
        (v.became_master,               "\t{n} transition{s} to master"),
        (d.vrrp_dropped_accept_mode,    "\t{n} packet{s} to a virtual address dropped (accept_mode off)"),
    ]);
}

/// Appends netstat-style lines: `{n}` is the count, `{s}` its plural.
fn netstat_lines(out: &mut String, lines: &[(u64, &str)]) {
    for &(n, text) in lines {
        out.push_str(
            &text
                .replace("{n}", &n.to_string())
                .replace("{s}", plural(n)),
        );
        out.push('\n');
    }
}

/// `--json`: the protocol's own data, pretty-printed, one value per command.
pub fn json<T: serde::Serialize>(value: &T) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("protocol types always serialize");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::protocol::{NodeStatus, Transition, format_mac};
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: [u8; 4], p: u8) -> InterfaceAddress {
        InterfaceAddress::new(IpAddr::V4(Ipv4Addr::from(a)), p)
    }

    fn v6(a: &str, p: u8) -> InterfaceAddress {
        InterfaceAddress::new(IpAddr::V6(a.parse::<Ipv6Addr>().unwrap()), p)
    }

    fn master() -> InterfaceStatus {
        InterfaceStatus {
            name: "carp0".into(),
            state: CarpState::Master,
            carpdev: Some("eth0".into()),
            vhid: 1,
            advbase: 1,
            advskew: 0,
            peers: vec![],
            demote: 0,
            groups: vec!["carp".into()],
            lladdr: format_mac(&[0x00, 0x00, 0x5e, 0x00, 0x01, 0x01]),
            addresses: vec![v6("2001:db8::10", 64), v4([192, 0, 2, 10], 24)],
            up: true,
            running: true,
            mtu: 1500,
            ifindex: 5,
            last_transition: Some(Transition {
                reason: "BACKUP -> MASTER: master down timer expired".into(),
                seconds_ago: 192,
            }),
            vrrp: None,
            balancing: None,
            nodes: vec![],
        }
    }

    #[test]
    fn vrrp_prints_freebsds_line_and_json() {
        let s = InterfaceStatus {
            vrrp: Some(crate::control::protocol::VrrpStatus {
                priority: 100,
                advert_interval: 100,
                master_adver_interval: 50,
                preempt: true,
                accept_mode: false,
                checksum: "pseudo-header".into(),
                adverts_received: 3,
                adverts_sent: 4,
                send_errors: 0,
                became_master: 1,
                resignations_received: 0,
            }),
            lladdr: format_mac(&[0x00, 0x00, 0x5e, 0x00, 0x02, 0x01]),
            ..master()
        };
        let text = interface(&s, false);
        assert!(
            text.contains("\tindex 5 priority 15 llprio 3\n\tvrrp: MASTER vrid 1 prio 100 interval 100\n\tgroups: carp\n"),
            "{text}"
        );
        assert!(!text.contains("carp: "), "{text}");
        let v: serde_json::Value = serde_json::from_str(&json(&vec![s])).unwrap();
        assert_eq!(v[0]["vrrp"]["priority"], 100);
        assert_eq!(v[0]["vrrp"]["master_adver_interval"], 50);
        assert_eq!(v[0]["vrrp"]["adverts_sent"], 4);
        let carp: serde_json::Value = serde_json::from_str(&json(&vec![master()])).unwrap();
        assert!(carp[0].get("vrrp").is_none());
    }

    #[test]
    fn master_prints_as_openbsd_ifconfig() {
        assert_eq!(
            interface(&master(), false),
            "carp0: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> mtu 1500\n\
             \tlladdr 00:00:5e:00:01:01\n\
             \tindex 5 priority 15 llprio 3\n\
             \tcarp: MASTER carpdev eth0 vhid 1 advbase 1 advskew 0\n\
             \tgroups: carp\n\
             \tstatus: master\n\
             \tinet 192.0.2.10 netmask 0xffffff00 broadcast 192.0.2.255\n\
             \tinet6 2001:db8::10 prefixlen 64\n"
        );
    }

    #[test]
    fn backup_with_groups_demote_and_link_local() {
        let s = InterfaceStatus {
            name: "carp1".into(),
            state: CarpState::Backup,
            carpdev: Some("eth1".into()),
            vhid: 2,
            advbase: 1,
            advskew: 100,
            peers: vec![],
            demote: 128,
            groups: vec!["carp".into(), "web".into(), "db".into()],
            lladdr: format_mac(&[0x00, 0x00, 0x5e, 0x00, 0x01, 0x02]),
            addresses: vec![
                v4([198, 51, 100, 1], 25),
                v4([198, 51, 100, 200], 25),
                v6("fe80::200:5eff:fe00:102", 64),
                v6("2001:db8:1::1", 48),
            ],
            up: true,
            running: true,
            mtu: 1500,
            ifindex: 12,
            last_transition: None,
            vrrp: None,
            balancing: None,
            nodes: vec![],
        };
        assert_eq!(
            interface(&s, false),
            "carp1: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> mtu 1500\n\
             \tlladdr 00:00:5e:00:01:02\n\
             \tindex 12 priority 15 llprio 3\n\
             \tcarp: BACKUP carpdev eth1 vhid 2 advbase 1 advskew 100\n\
             \tgroups: carp web db\n\
             \tstatus: backup\n\
             \tinet 198.51.100.1 netmask 0xffffff80 broadcast 198.51.100.127\n\
             \tinet 198.51.100.200 netmask 0xffffff80 broadcast 198.51.100.255\n\
             \tinet6 fe80::200:5eff:fe00:102%carp1 prefixlen 64 scopeid 0xc\n\
             \tinet6 2001:db8:1::1 prefixlen 48\n"
        );
        // -v adds carpd's lines after status:, and nothing else changes.
        let verbose = interface(&s, true);
        assert!(verbose.contains("\tstatus: backup\n\tdemote: 128\n\tinet 198.51.100.1"));
    }

    #[test]
    fn down_and_init_look_like_an_unconfigured_openbsd_carp() {
        let s = InterfaceStatus {
            state: CarpState::Init,
            up: false,
            running: false,
            carpdev: None,
            addresses: vec![],
            last_transition: None,
            ..master()
        };
        assert_eq!(
            interface(&s, false),
            "carp0: flags=8802<BROADCAST,SIMPLEX,MULTICAST> mtu 1500\n\
             \tlladdr 00:00:5e:00:01:01\n\
             \tindex 5 priority 15 llprio 3\n\
             \tcarp: INIT carpdev none vhid 1 advbase 1 advskew 0\n\
             \tgroups: carp\n\
             \tstatus: invalid\n"
        );
        // Up but not running (no link or no address yet): 8803, as in OpenBSD's own output.
        assert!(
            interface(
                &InterfaceStatus {
                    up: true,
                    ..s.clone()
                },
                false
            )
            .starts_with("carp0: flags=8803<UP,BROADCAST,SIMPLEX,MULTICAST> mtu 1500\n")
        );
        // No vhid: no carp: line at all.
        assert!(!interface(&InterfaceStatus { vhid: 0, ..s }, false).contains("carp:"));
    }

    #[test]
    fn verbose_transition_line() {
        let out = interface(&master(), true);
        assert!(out.contains(
            "\tdemote: 0\n\tlast transition: 3m12s ago (BACKUP -> MASTER: master down timer expired)\n"
        ));
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(3600 + 5 * 60 + 9), "1h05m");
        assert_eq!(duration(3 * 86_400 + 4 * 3600), "3d04h");
    }

    #[test]
    fn group_line() {
        assert_eq!(group("carp", 0, 0), "carp: carp demote count 0\n");
        assert_eq!(group("web", 128, 0), "web: carp demote count 128\n");
        assert_eq!(
            group("carp", 200, 128),
            "carp: carp demote count 200\ncarp: persisted demote 128\n"
        );
        assert_eq!(
            group_json("web", 128, 0),
            "{\n  \"name\": \"web\",\n  \"demote\": 128,\n  \"persisted\": 0\n}\n"
        );
    }

    #[test]
    fn checks_print_one_line_each_with_the_reason_under_it() {
        let c = crate::checks::CheckStatus {
            name: "web".into(),
            kind: "http".into(),
            group: "carp".into(),
            state: "down".into(),
            last_result: Some("failure".into()),
            reason: Some("HTTP 503".into()),
            successes: 0,
            failures: 3,
            rise: 2,
            fall: 3,
            weight: 50,
            held: 50,
            runs: 7,
            transitions: 1,
        };
        assert_eq!(
            checks(&[c]),
            "web  http      group carp  down     failures 3/3  successes 0/2  holds demote 50\n    last failure: HTTP 503\n"
        );
        assert_eq!(checks(&[]), "no health checks configured\n");
    }

    #[test]
    fn stats_print_as_netstat() {
        let r = StatsReport {
            carp: CarpStats {
                carps_ipackets: 1,
                carps_ipackets6: 2,
                carps_badsum: 1,
                carps_badauth: 3,
                carps_opackets: 1200,
                carps_preempt: 1,
                ..CarpStats::default()
            },
            loops_detected: 0,
            dataplane: None,
            hooks_skipped: 2,
            vrrp: None,
        };
        assert_eq!(
            stats(&r),
            "carp:\n\
             \t1 packet received (IPv4)\n\
             \t2 packets received (IPv6)\n\
             \t\t0 packets discarded for bad interface\n\
             \t\t0 packets discarded for wrong TTL\n\
             \t\t0 packets shorter than header\n\
             \t\t1 discarded for bad checksum\n\
             \t\t0 discarded packets with a bad version\n\
             \t\t0 discarded because packet too short\n\
             \t\t3 discarded for bad authentication\n\
             \t\t0 discarded for unknown vhid\n\
             \t\t0 discarded because of a bad address list\n\
             \t\t0 discarded as replay or network loop\n\
             \t1200 packets sent (IPv4)\n\
             \t0 packets sent (IPv6)\n\
             \t\t0 send failed due to mbuf memory error\n\
             \t1 transition to master\n\
             hooks:\n\
             \t2 state changes skipped (replaced while the hook ran)\n\
             xdp: not attached\n"
        );
    }

    #[test]
    fn every_dataplane_counter_has_one_line() {
        let mut worded: Vec<&str> = DATAPLANE_LINES.iter().map(|&(name, _)| name).collect();
        let mut fields = DataplaneStats::NAMES.to_vec();
        worded.sort_unstable();
        fields.sort_unstable();
        assert_eq!(worded, fields);
    }

    #[test]
    fn vrrp_stats_are_their_own_section() {
        let r = StatsReport {
            vrrp: Some(crate::control::protocol::VrrpStats {
                received: 12,
                resignations_received: 1,
                sent: 3,
                became_master: 1,
                dataplane: Some(carp_common::maps::VrrpCounters {
                    vrrp_bad_checksum: 2,
                    vrrp_checksum_message_only: 4,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..StatsReport::default()
        };
        let out = stats(&r);
        let vrrp = &out[out.find("vrrp:\n").unwrap()..out.find("hooks:\n").unwrap()];
        assert_eq!(
            vrrp,
            "vrrp:\n\
             \t12 advertisements received\n\
             \t\t1 with priority 0 (master resigning)\n\
             \t\t4 with the RFC 9568 IPv4 checksum\n\
             \t\t0 discarded for wrong TTL\n\
             \t\t0 discarded because packet too short\n\
             \t\t2 discarded for bad checksums\n\
             \t\t0 discarded as sent by this host\n\
             \t\t0 dropped because carpd was not keeping up\n\
             \t\t0 unicast advertisements passed to the stack\n\
             \t3 advertisements sent\n\
             \t\t0 send failures\n\
             \t1 transition to master\n\
             \t0 packets to a virtual address dropped (accept_mode off)\n"
        );
        assert!(!stats(&StatsReport::default()).contains("vrrp:"));
    }

    #[test]
    fn stats_with_dataplane() {
        let r = StatsReport {
            dataplane: Some(DataplaneStats {
                arp_replied: 1,
                advert_delivered: 10,
                advert_bad_checksum: 2,
                ..DataplaneStats::default()
            }),
            ..StatsReport::default()
        };
        let out = stats(&r);
        let xdp = &out[out.find("xdp:\n").unwrap()..];
        assert_eq!(
            xdp,
            "xdp:\n\
             \t1 ARP request for a VIP answered as master\n\
             \t0 ARP requests for a VIP dropped (not master)\n\
             \t0 gratuitous ARP packets for a VIP dropped\n\
             \t0 neighbor solicitations for a VIP answered\n\
             \t0 neighbor solicitations for a VIP dropped\n\
             \t0 frames to a virtual MAC accepted as master\n\
             \t0 frames to a virtual MAC dropped (not master)\n\
             \t10 advertisements handed to carpd\n\
             \t0 repeats of the master's advertisement consumed in XDP\n\
             \t0 advertisements for an unknown vhid passed on\n\
             \t\t0 discarded because packet too short\n\
             \t\t0 discarded packets with a bad version\n\
             \t\t0 packets discarded for wrong TTL\n\
             \t\t2 discarded for bad checksums\n\
             \t\t0 discarded as sent by this host\n\
             \t\t0 dropped because carpd was not keeping up\n\
             \t0 VLAN-tagged frames passed to the stack\n\
             \t0 frames leaving a carp interface dropped (not master)\n\
             \t0 ARP requests for a VIP from a group address dropped\n\
             \t0 invalid neighbor solicitations for a VIP dropped\n\
             \t0 balanced packets accepted (own bucket)\n\
             \t0 balanced packets dropped (another node's bucket)\n"
        );
    }

    #[test]
    fn balanced_interface_prints_its_nodes_as_openbsd_ifconfig() {
        let s = InterfaceStatus {
            vhid: 3,
            lladdr: format_mac(&[0x01, 0x00, 0x5e, 0x00, 0x01, 0x03]),
            balancing: Some("ip".into()),
            nodes: vec![
                NodeStatus {
                    vhid: 3,
                    advskew: 0,
                    state: CarpState::Master,
                },
                NodeStatus {
                    vhid: 4,
                    advskew: 100,
                    state: CarpState::Backup,
                },
            ],
            ..master()
        };
        let text = interface(&s, false);
        assert!(
            text.contains(
                "\tlladdr 01:00:5e:00:01:03\n\
                 \tindex 5 priority 15 llprio 3\n\
                 \tcarp: carpdev eth0 advbase 1 balancing ip\n\
                 \t\tstate MASTER vhid 3 advskew 0\n\
                 \t\tstate BACKUP vhid 4 advskew 100\n\
                 \tgroups: carp\n"
            ),
            "{text}"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["balancing"], "ip");
        assert_eq!(json["nodes"][1]["vhid"], 4);
        assert_eq!(json["nodes"][1]["state"], "BACKUP");
        // A plain interface's JSON has neither.
        let plain = serde_json::to_value(master()).unwrap();
        assert!(plain.get("balancing").is_none() && plain.get("nodes").is_none());
    }

    #[test]
    fn unicast_peers_print_as_carppeer_lines_and_json() {
        let peers: Vec<IpAddr> = vec![
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11)),
            IpAddr::V6("2001:db8::11".parse().unwrap()),
        ];
        let s = InterfaceStatus {
            peers: peers.clone(),
            ..master()
        };
        let text = interface(&s, false);
        assert!(
            text.contains(
                "\tcarp: MASTER carpdev eth0 vhid 1 advbase 1 advskew 0\n\
                 \tcarppeer 192.0.2.11\n\
                 \tcarppeer 2001:db8::11\n\
                 \tgroups: carp\n"
            ),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(&json(&vec![s])).unwrap();
        assert_eq!(
            v[0]["peers"],
            serde_json::json!(["192.0.2.11", "2001:db8::11"])
        );
        let multicast = interface(&master(), false);
        assert!(!multicast.contains("carppeer"), "{multicast}");
    }

    #[test]
    fn json_has_the_same_facts() {
        let v: serde_json::Value = serde_json::from_str(&json(&vec![master()])).unwrap();
        let s = &v[0];
        assert_eq!(s["name"], "carp0");
        assert_eq!(s["state"], "MASTER");
        assert_eq!(s["carpdev"], "eth0");
        assert_eq!(s["vhid"], 1);
        assert_eq!(s["advbase"], 1);
        assert_eq!(s["advskew"], 0);
        assert_eq!(s["demote"], 0);
        assert_eq!(s["groups"][0], "carp");
        assert_eq!(s["lladdr"], "00:00:5e:00:01:01");
        assert_eq!(s["addresses"][1]["addr"], "192.0.2.10");
        assert_eq!(s["addresses"][1]["prefix_len"], 24);
        assert_eq!(s["last_transition"]["seconds_ago"], 192);
    }
}
