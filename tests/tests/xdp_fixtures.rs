//! Table-driven tests of the XDP program through BPF_PROG_TEST_RUN, in the style of katran's
//! fixtures: for each input frame and dataplane state, the expected verdict, the exact output
//! bytes for XDP_TX, and which counters move.
//!
//! BPF_PROG_TEST_RUN runs the program with the loopback device as ingress interface, so the
//! fixtures configure ifindex 1 as the carpdev. The egress guard of the carp interfaces runs
//! the same way (its skb's device is the loopback too), so ifindex 1 is also the carp
//! interface it guards.
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use aya::programs::{TestRun, TestRunOptions};
use carp_common::maps::{DataplaneCounters, VipEntry};
use carp_daemon::dataplane::{Dataplane, VhidDataplaneState, decode_event, monotonic_now};
use carp_tests::frames::*;

const IFINDEX: u32 = 1;
const VHID: u8 = 1;
const DEV_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x99];
const VMAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, VHID];
const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const OTHER4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);
const CLIENT4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const PEER4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const OTHER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x50);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const PEER6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
/// The carp interface's link-local address for VHID (the EUI-64 of VMAC).
const LINK_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x0200, 0x5eff, 0xfe00, 0x0101);
const CLIENT_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x99);
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

/// Loading BPF needs root (CAP_BPF, CAP_NET_ADMIN): skip with a clear message otherwise.
fn require_root(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipping {test}: needs root (CAP_BPF) to load the XDP program");
    }
    root
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    Master,
    Backup,
    ExpiredMaster,
    Init,
}

#[derive(Debug)]
enum Expect {
    /// XDP_PASS with the frame unchanged.
    Pass,
    Drop,
    /// XDP_TX with exactly these bytes.
    Tx(Vec<u8>),
    /// The kernel refuses to run the program on the frame at all (shorter than Ethernet).
    Refused,
}

type Field = fn(&DataplaneCounters) -> u64;

struct Fixture {
    name: String,
    state: State,
    frame: Vec<u8>,
    expect: Expect,
    /// Counters that must go up by exactly one; every other counter must stay.
    counters: Vec<(&'static str, Field)>,
}

fn fixture(
    name: impl Into<String>,
    state: State,
    frame: Vec<u8>,
    expect: Expect,
    counters: &[(&'static str, Field)],
) -> Fixture {
    Fixture {
        name: name.into(),
        state,
        frame,
        expect,
        counters: counters.to_vec(),
    }
}

macro_rules! c {
    ($field:ident) => {
        (
            stringify!($field),
            (|c: &DataplaneCounters| c.$field) as Field,
        )
    };
}

fn all_counters() -> Vec<(&'static str, Field)> {
    DataplaneCounters::FIELDS.to_vec()
}

fn carp(f: CarpFields) -> Vec<u8> {
    f.encode().to_vec()
}

fn valid_advert_v4() -> Vec<u8> {
    advert_v4(PEER_MAC, PEER4, 255, &carp(CarpFields::advert(VHID)))
}

fn fixtures() -> Vec<Fixture> {
    use State::*;
    let mut v = Vec::new();
    let arp_req = arp_request(CLIENT_MAC, CLIENT4, VIP4);
    let arp_rep = arp_reply(VMAC, VIP4, CLIENT_MAC, CLIENT4);

    // ARP
    v.push(fixture(
        "arp request for VIP as master",
        Master,
        arp_req.clone(),
        Expect::Tx(arp_rep.clone()),
        &[c!(arp_replied)],
    ));
    v.push(fixture(
        "arp request for VIP as backup",
        Backup,
        arp_req.clone(),
        Expect::Drop,
        &[c!(arp_dropped_not_master)],
    ));
    v.push(fixture(
        "arp request for VIP as expired master",
        ExpiredMaster,
        arp_req.clone(),
        Expect::Drop,
        &[c!(arp_dropped_not_master)],
    ));
    v.push(fixture(
        "arp request for VIP in init",
        Init,
        arp_req.clone(),
        Expect::Drop,
        &[c!(arp_dropped_not_master)],
    ));
    v.push(fixture(
        "arp request for another address",
        Master,
        arp_request(CLIENT_MAC, CLIENT4, OTHER4),
        Expect::Pass,
        &[],
    ));
    v.push(fixture(
        "gratuitous arp for VIP",
        Master,
        arp_request(PEER_MAC, VIP4, VIP4),
        Expect::Drop,
        &[c!(arp_gratuitous_dropped)],
    ));
    v.push(fixture(
        "arp reply about VIP",
        Backup,
        arp_reply(PEER_MAC, VIP4, DEV_MAC, PEER4),
        Expect::Pass,
        &[],
    ));
    let mut unicast_req = arp_req.clone();
    unicast_req[..6].copy_from_slice(&VMAC);
    v.push(fixture(
        "unicast arp to virtual MAC as master",
        Master,
        unicast_req.clone(),
        Expect::Tx(arp_rep.clone()),
        &[c!(vmac_accepted), c!(arp_replied)],
    ));
    v.push(fixture(
        "unicast arp to virtual MAC as backup",
        Backup,
        unicast_req,
        Expect::Drop,
        &[c!(vmac_dropped_not_master)],
    ));
    let mut padded = arp_req.clone();
    padded.resize(60, 0); // minimum Ethernet frame, as a NIC delivers it
    // The reply is the ARP frame alone (the NIC pads it again on the way out).
    v.push(fixture(
        "padded arp request as master",
        Master,
        padded,
        Expect::Tx(arp_rep.clone()),
        &[c!(arp_replied)],
    ));

    // Neighbour discovery
    let ns = neighbor_solicitation(CLIENT_MAC, CLIENT6, VIP6);
    let na = neighbor_advertisement(VMAC, VIP6, CLIENT_MAC, CLIENT6, 0x40 | 0x20);
    v.push(fixture(
        "ns for VIP6 as master",
        Master,
        ns.clone(),
        Expect::Tx(na),
        &[c!(ns_replied)],
    ));
    v.push(fixture(
        "ns for VIP6 as backup",
        Backup,
        ns.clone(),
        Expect::Drop,
        &[c!(ns_dropped_not_master)],
    ));
    v.push(fixture(
        "ns for VIP6 as expired master",
        ExpiredMaster,
        ns.clone(),
        Expect::Drop,
        &[c!(ns_dropped_not_master)],
    ));
    let ll_ns = neighbor_solicitation(CLIENT_MAC, CLIENT_LL, LINK_LOCAL);
    v.push(fixture(
        "ns for the carp link-local as master",
        Master,
        ll_ns.clone(),
        Expect::Tx(neighbor_advertisement(
            VMAC,
            LINK_LOCAL,
            CLIENT_MAC,
            CLIENT_LL,
            0x40 | 0x20,
        )),
        &[c!(ns_replied)],
    ));
    v.push(fixture(
        "ns for the carp link-local as backup",
        Backup,
        ll_ns,
        Expect::Drop,
        &[c!(ns_dropped_not_master)],
    ));
    let dad = neighbor_solicitation(CLIENT_MAC, Ipv6Addr::UNSPECIFIED, VIP6);
    let dad_na = neighbor_advertisement(VMAC, VIP6, ALL_NODES_MAC, ALL_NODES, 0x20);
    v.push(fixture(
        "dad ns for VIP6 as master (frame grows)",
        Master,
        dad,
        Expect::Tx(dad_na),
        &[c!(ns_replied)],
    ));
    v.push(fixture(
        "ns for another address",
        Master,
        neighbor_solicitation(CLIENT_MAC, CLIENT6, OTHER6),
        Expect::Pass,
        &[],
    ));
    let mut ns_hop64 = ns.clone();
    ns_hop64[14 + 7] = 64;
    v.push(fixture(
        "ns with hop limit 64",
        Master,
        ns_hop64,
        Expect::Drop,
        &[c!(ns_dropped_invalid)],
    ));

    // Frames to the virtual MAC
    let to_vmac = ethernet(
        VMAC,
        CLIENT_MAC,
        ETH_P_IP,
        &ipv4(CLIENT4, VIP4, 6, 64, &[0u8; 20]),
    );
    v.push(fixture(
        "tcp to virtual MAC as master",
        Master,
        to_vmac.clone(),
        Expect::Pass,
        &[c!(vmac_accepted)],
    ));
    v.push(fixture(
        "tcp to virtual MAC as backup",
        Backup,
        to_vmac.clone(),
        Expect::Drop,
        &[c!(vmac_dropped_not_master)],
    ));
    v.push(fixture(
        "tcp to virtual MAC as expired master",
        ExpiredMaster,
        to_vmac,
        Expect::Drop,
        &[c!(vmac_dropped_not_master)],
    ));
    let other_vmac = ethernet(
        [0, 0, 0x5e, 0, 1, 42],
        CLIENT_MAC,
        ETH_P_IP,
        &ipv4(CLIENT4, OTHER4, 6, 64, &[0u8; 20]),
    );
    v.push(fixture(
        "frame to another vhid's MAC",
        Backup,
        other_vmac,
        Expect::Pass,
        &[],
    ));

    // Advertisements
    v.push(fixture(
        "valid advert v4",
        Backup,
        valid_advert_v4(),
        Expect::Drop,
        &[c!(advert_delivered)],
    ));
    v.push(fixture(
        "valid advert v6",
        Backup,
        advert_v6(PEER_MAC, PEER6, 255, &carp(CarpFields::advert(VHID))),
        Expect::Drop,
        &[c!(advert_delivered)],
    ));
    let mut trailing = carp(CarpFields::advert(VHID));
    // OpenBSD checksums the 36 header bytes only: trailing bytes are ignored.
    trailing.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    v.push(fixture(
        "advert with trailing bytes",
        Backup,
        advert_v4(PEER_MAC, PEER4, 255, &trailing),
        Expect::Drop,
        &[c!(advert_delivered)],
    ));
    v.push(fixture(
        "advert for unserved vhid",
        Backup,
        advert_v4(PEER_MAC, PEER4, 255, &carp(CarpFields::advert(9))),
        Expect::Pass,
        &[c!(advert_passed_unknown_vhid)],
    ));
    // VRRPv3 (keepalived) for another VRID: 12 bytes, must reach the stack.
    let vrrp = [0x31, 9, 100, 1, 0, 100, 0, 0, 192, 0, 2, 1];
    v.push(fixture(
        "short vrrp for unserved vrid",
        Backup,
        advert_v4(PEER_MAC, PEER4, 255, &vrrp),
        Expect::Pass,
        &[c!(advert_passed_unknown_vhid)],
    ));
    v.push(fixture(
        "advert ttl 64",
        Backup,
        advert_v4(PEER_MAC, PEER4, 64, &carp(CarpFields::advert(VHID))),
        Expect::Drop,
        &[c!(advert_bad_ttl)],
    ));
    v.push(fixture(
        "advert v6 hop limit 1",
        Backup,
        advert_v6(PEER_MAC, PEER6, 1, &carp(CarpFields::advert(VHID))),
        Expect::Drop,
        &[c!(advert_bad_ttl)],
    ));
    v.push(fixture(
        "advert version 3",
        Backup,
        advert_v4(
            PEER_MAC,
            PEER4,
            255,
            &carp(CarpFields {
                version: 3,
                ..CarpFields::advert(VHID)
            }),
        ),
        Expect::Drop,
        &[c!(advert_bad_version)],
    ));
    // OpenBSD never checks the type nibble: neither does the dataplane.
    v.push(fixture(
        "advert type 2 (unchecked, as in OpenBSD)",
        Backup,
        advert_v4(
            PEER_MAC,
            PEER4,
            255,
            &carp(CarpFields {
                kind: 2,
                ..CarpFields::advert(VHID)
            }),
        ),
        Expect::Drop,
        &[c!(advert_delivered)],
    ));
    let mut bad_sum = carp(CarpFields::advert(VHID));
    bad_sum[6] ^= 0xff;
    v.push(fixture(
        "advert bad checksum",
        Backup,
        advert_v4(PEER_MAC, PEER4, 255, &bad_sum),
        Expect::Drop,
        &[c!(advert_bad_checksum)],
    ));
    v.push(fixture(
        "advert 20-byte payload",
        Backup,
        advert_v4(PEER_MAC, PEER4, 255, &carp(CarpFields::advert(VHID))[..20]),
        Expect::Drop,
        &[c!(advert_bad_length)],
    ));
    v.push(fixture(
        "advert 1-byte payload",
        Backup,
        advert_v4(PEER_MAC, PEER4, 255, &[0x21]),
        Expect::Drop,
        &[c!(advert_bad_length)],
    ));
    let mut long = carp(CarpFields::advert(VHID));
    long.extend_from_slice(&[0x55; 64]);
    v.push(fixture(
        "advert 100-byte payload",
        Backup,
        advert_v4(PEER_MAC, PEER4, 255, &long),
        Expect::Drop,
        &[c!(advert_delivered)],
    ));
    v.push(fixture(
        "advert from own MAC",
        Master,
        advert_v4(DEV_MAC, PEER4, 255, &carp(CarpFields::advert(VHID))),
        Expect::Drop,
        &[c!(advert_own_source)],
    ));
    // Peers send their adverts from the virtual MAC, the same as this host's (spec
    // "Packet"): no MAC rule may take them for our own.
    v.push(fixture(
        "advert from the virtual MAC as master",
        Master,
        advert_v4(VMAC, PEER4, 255, &carp(CarpFields::advert(VHID))),
        Expect::Drop,
        &[c!(advert_delivered)],
    ));
    v.push(fixture(
        "ipv6 advert from the virtual MAC as backup",
        Backup,
        advert_v6(VMAC, PEER6, 255, &carp(CarpFields::advert(VHID))),
        Expect::Drop,
        &[c!(advert_delivered)],
    ));

    // VLAN: never parsed as untagged
    v.push(fixture(
        "tagged arp for VIP",
        Master,
        vlan_tagged(&arp_req, 100),
        Expect::Pass,
        &[c!(vlan_passed)],
    ));
    v.push(fixture(
        "tagged advert",
        Backup,
        vlan_tagged(&valid_advert_v4(), 100),
        Expect::Pass,
        &[c!(vlan_passed)],
    ));
    let mut tagged_vmac = vlan_tagged(&arp_req, 100);
    tagged_vmac[..6].copy_from_slice(&VMAC);
    v.push(fixture(
        "tagged frame to virtual MAC as backup",
        Backup,
        tagged_vmac,
        Expect::Pass,
        &[c!(vlan_passed)],
    ));

    // Truncated frames, every length from 0 to the full frame.
    let full = valid_advert_v4();
    for len in 0..full.len() {
        let (expect, counters): (Expect, Vec<_>) = match len {
            0..14 => (Expect::Refused, vec![]),
            14..34 => (Expect::Pass, vec![]), // IPv4 header incomplete: the stack drops it
            _ => (Expect::Drop, vec![c!(advert_bad_length)]),
        };
        v.push(Fixture {
            name: format!("advert truncated to {len}"),
            state: Backup,
            frame: full[..len].to_vec(),
            expect,
            counters,
        });
    }
    for len in 14..arp_req.len() {
        v.push(fixture(
            format!("arp truncated to {len}"),
            Master,
            arp_req[..len].to_vec(),
            Expect::Pass,
            &[],
        ));
    }
    for len in 14..ns.len() {
        v.push(fixture(
            format!("ns truncated to {len}"),
            Master,
            ns[..len].to_vec(),
            Expect::Pass,
            &[],
        ));
    }
    v
}

/// A neighbour solicitation for VIP6 with every field chosen: `options` follow the
/// message (the ICMPv6 checksum is right, so only the field under test is wrong).
fn ns_for_vip(
    src_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    code: u8,
    options: &[u8],
) -> Vec<u8> {
    let mut icmp = vec![135, code, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&VIP6.octets());
    icmp.extend_from_slice(options);
    let csum = icmpv6_checksum(src, dst, &icmp);
    icmp[2..4].copy_from_slice(&csum.to_be_bytes());
    let dst_mac = if dst.is_multicast() {
        let o = dst.octets();
        [0x33, 0x33, o[12], o[13], o[14], o[15]]
    } else {
        VMAC
    };
    ethernet(
        dst_mac,
        src_mac,
        ETH_P_IPV6,
        &ipv6(src, dst, 58, hop_limit, &icmp),
    )
}

/// The responder's input checks: requests from group addresses and invalid solicitations
/// get no reply, and replies are exactly as long as themselves.
fn responder_fixtures() -> Vec<Fixture> {
    use State::*;
    let mut v = Vec::new();
    let arp_req = arp_request(CLIENT_MAC, CLIENT4, VIP4);
    let arp_rep = arp_reply(VMAC, VIP4, CLIENT_MAC, CLIENT4);
    const MCAST_MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];

    // ARP from a broadcast or multicast sender.
    for (what, mac) in [("broadcast", BROADCAST), ("multicast", MCAST_MAC)] {
        let mut req = arp_req.clone();
        req[6..12].copy_from_slice(&mac);
        v.push(fixture(
            format!("arp request from {what} ethernet source as master"),
            Master,
            req.clone(),
            Expect::Drop,
            &[c!(arp_dropped_bad_source)],
        ));
        v.push(fixture(
            format!("arp request from {what} ethernet source as backup"),
            Backup,
            req,
            Expect::Drop,
            &[c!(arp_dropped_bad_source)],
        ));
        let req = arp_request(mac, CLIENT4, VIP4); // sender hardware address too
        let mut only_sha = req.clone();
        only_sha[6..12].copy_from_slice(&CLIENT_MAC);
        v.push(fixture(
            format!("arp request with {what} sender hardware address"),
            Master,
            only_sha,
            Expect::Drop,
            &[c!(arp_dropped_bad_source)],
        ));
        v.push(fixture(
            format!("arp request from {what} source for another address"),
            Master,
            arp_request(mac, CLIENT4, OTHER4),
            Expect::Pass,
            &[],
        ));
    }
    // Replies are exactly an ARP frame, whatever trailed the request.
    let mut trailing = arp_req.clone();
    trailing.extend_from_slice(&[0xa5; 100]);
    v.push(fixture(
        "arp request with 100 trailing bytes as master",
        Master,
        trailing,
        Expect::Tx(arp_rep.clone()),
        &[c!(arp_replied)],
    ));
    let mut trailing = arp_req.clone();
    trailing.push(0xa5);
    v.push(fixture(
        "arp request with 1 trailing byte as master",
        Master,
        trailing,
        Expect::Tx(arp_rep),
        &[c!(arp_replied)],
    ));

    // Neighbour solicitations (RFC 4861 7.1.1).
    let snm = solicited_node(VIP6);
    let sllao: Vec<u8> = [1, 1].iter().chain(&CLIENT_MAC).copied().collect();
    let nonce = [14, 1, 1, 2, 3, 4, 5, 6];
    let na = neighbor_advertisement(VMAC, VIP6, CLIENT_MAC, CLIENT6, 0x40 | 0x20);
    let dad_na = neighbor_advertisement(VMAC, VIP6, ALL_NODES_MAC, ALL_NODES, 0x20);
    let ns =
        |src_mac, src, dst, hop, code, opts: &[u8]| ns_for_vip(src_mac, src, dst, hop, code, opts);
    // Controls: the helper's frames are answered.
    v.push(fixture(
        "ns (fixture helper) as master",
        Master,
        ns(CLIENT_MAC, CLIENT6, snm, 255, 0, &sllao),
        Expect::Tx(na.clone()),
        &[c!(ns_replied)],
    ));
    v.push(fixture(
        "ns to the VIP itself (unicast, NUD) as master",
        Master,
        ns(CLIENT_MAC, CLIENT6, VIP6, 255, 0, &sllao),
        Expect::Tx(na.clone()),
        &[c!(vmac_accepted), c!(ns_replied)],
    ));
    v.push(fixture(
        "dad ns with a nonce option as master",
        Master,
        ns(CLIENT_MAC, Ipv6Addr::UNSPECIFIED, snm, 255, 0, &nonce),
        Expect::Tx(dad_na),
        &[c!(ns_replied)],
    ));
    let mut long_ns = ns(CLIENT_MAC, CLIENT6, snm, 255, 0, &sllao);
    long_ns.extend_from_slice(&[0xa5; 100]); // beyond the IPv6 payload
    v.push(fixture(
        "ns with 100 trailing bytes as master",
        Master,
        long_ns,
        Expect::Tx(na),
        &[c!(ns_replied)],
    ));
    let mut nine = Vec::new();
    for _ in 0..9 {
        nine.extend_from_slice(&nonce);
    }
    let zero_len = [14, 0, 0, 0, 0, 0, 0, 0];
    let invalid: Vec<(&str, Vec<u8>)> = vec![
        (
            "hop limit 254",
            ns(CLIENT_MAC, CLIENT6, snm, 254, 0, &sllao),
        ),
        ("code 1", ns(CLIENT_MAC, CLIENT6, snm, 255, 1, &sllao)),
        (
            "broadcast ethernet source",
            ns(BROADCAST, CLIENT6, snm, 255, 0, &sllao),
        ),
        (
            "multicast ethernet source",
            ns(MCAST_MAC, CLIENT6, snm, 255, 0, &sllao),
        ),
        (
            "multicast ip source",
            ns(CLIENT_MAC, ALL_NODES, snm, 255, 0, &[]),
        ),
        (
            "dad to all nodes",
            ns(CLIENT_MAC, Ipv6Addr::UNSPECIFIED, ALL_NODES, 255, 0, &[]),
        ),
        (
            "dad with a source link-layer option",
            ns(CLIENT_MAC, Ipv6Addr::UNSPECIFIED, snm, 255, 0, &sllao),
        ),
        (
            "dad with sllao after a nonce",
            ns(
                CLIENT_MAC,
                Ipv6Addr::UNSPECIFIED,
                snm,
                255,
                0,
                &[&nonce[..], &sllao].concat(),
            ),
        ),
        (
            "an option of length zero",
            ns(CLIENT_MAC, CLIENT6, snm, 255, 0, &zero_len),
        ),
        (
            "an option longer than the payload",
            ns(CLIENT_MAC, CLIENT6, snm, 255, 0, &[1, 2, 0, 0, 0, 0, 0, 0]),
        ),
        (
            "a stray byte after the options",
            ns(
                CLIENT_MAC,
                CLIENT6,
                snm,
                255,
                0,
                &[&sllao[..], &[0]].concat(),
            ),
        ),
        ("nine options", ns(CLIENT_MAC, CLIENT6, snm, 255, 0, &nine)),
    ];
    for (what, frame) in invalid {
        v.push(fixture(
            format!("ns with {what} as master"),
            Master,
            frame.clone(),
            Expect::Drop,
            &[c!(ns_dropped_invalid)],
        ));
        v.push(fixture(
            format!("ns with {what} as backup"),
            Backup,
            frame,
            Expect::Drop,
            &[c!(ns_dropped_invalid)],
        ));
    }
    // To the virtual MAC (a unicast destination): the MAC rule runs first.
    let dad_to_vip = ns(CLIENT_MAC, Ipv6Addr::UNSPECIFIED, VIP6, 255, 0, &[]);
    v.push(fixture(
        "dad ns to the VIP (not solicited-node) as master",
        Master,
        dad_to_vip.clone(),
        Expect::Drop,
        &[c!(vmac_accepted), c!(ns_dropped_invalid)],
    ));
    v.push(fixture(
        "dad ns to the VIP (not solicited-node) as backup",
        Backup,
        dad_to_vip,
        Expect::Drop,
        &[c!(vmac_dropped_not_master)],
    ));
    // Not for a virtual address: the kernel's business, however odd.
    let mut other = neighbor_solicitation(BROADCAST, CLIENT6, OTHER6);
    other[14 + 7] = 64;
    v.push(fixture(
        "invalid ns for another address",
        Master,
        other,
        Expect::Pass,
        &[],
    ));
    v
}

fn set_state(dp: &mut Dataplane, state: State) {
    let now = monotonic_now().unwrap();
    let s = match state {
        State::Master => VhidDataplaneState::Master {
            until: now + Duration::from_secs(60),
        },
        State::ExpiredMaster => VhidDataplaneState::Master {
            until: now - Duration::from_nanos(1),
        },
        State::Backup => VhidDataplaneState::Backup,
        State::Init => VhidDataplaneState::Init,
    };
    dp.set_vhid(IFINDEX, VHID, Duration::from_secs(1), s)
        .unwrap();
}

fn configured_dataplane() -> Dataplane {
    let mut dp = Dataplane::load_unpinned().expect("load the XDP program");
    dp.set_carpdev(IFINDEX, DEV_MAC).unwrap();
    dp.add_vip4(
        IFINDEX,
        VIP4,
        VipEntry {
            vhid: VHID as u32,
            flags: 0,
        },
    )
    .unwrap();
    for addr in [VIP6, LINK_LOCAL] {
        dp.add_vip6(
            IFINDEX,
            addr,
            VipEntry {
                vhid: VHID as u32,
                flags: 0,
            },
        )
        .unwrap();
    }
    dp
}

fn run(dp: &Dataplane, frame: &[u8]) -> Result<(u32, Vec<u8>), aya::programs::ProgramError> {
    let mut out = vec![0u8; 512];
    let result = dp.program().test_run(TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ..Default::default()
    })?;
    out.truncate(result.data_size_out as usize);
    Ok((result.return_value, out))
}

#[test]
fn xdp_fixtures() {
    if !require_root("xdp_fixtures") {
        return;
    }
    let mut dp = configured_dataplane();
    let mut failures = Vec::new();
    let mut fixtures = fixtures();
    fixtures.extend(responder_fixtures());
    for f in &fixtures {
        set_state(&mut dp, f.state);
        let before = dp.counters().unwrap();
        let outcome = run(&dp, &f.frame);
        let after = dp.counters().unwrap();
        let verdict_ok = match (&f.expect, &outcome) {
            (Expect::Refused, Err(_)) => true,
            (Expect::Pass, Ok((XDP_PASS, out))) => out == &f.frame,
            (Expect::Drop, Ok((XDP_DROP, _))) => true,
            (Expect::Tx(want), Ok((XDP_TX, out))) => out == want,
            _ => false,
        };
        if !verdict_ok {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                f.name,
                f.expect,
                outcome.as_ref().map(|(v, out)| (v, hex::encode(out)))
            ));
        }
        for (name, field) in all_counters() {
            let want = u64::from(f.counters.iter().any(|(n, _)| *n == name));
            let got = field(&after) - field(&before);
            if got != want {
                failures.push(format!(
                    "{}: counter {name} moved by {got}, expected {want}",
                    f.name
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n")
    );
}

#[test]
fn valid_adverts_reach_the_ring_buffer_intact() {
    if !require_root("valid_adverts_reach_the_ring_buffer_intact") {
        return;
    }
    let mut dp = configured_dataplane();
    set_state(&mut dp, State::Backup);
    let mut ring = dp.take_advert_ring().expect("ring buffer");
    let header = CarpFields {
        advskew: 100,
        demote: 3,
        ..CarpFields::advert(VHID)
    }
    .encode();
    let (verdict, _) = run(&dp, &advert_v4(PEER_MAC, PEER4, 255, &header)).unwrap();
    assert_eq!(verdict, XDP_DROP);
    let (verdict, _) = run(&dp, &advert_v6(PEER_MAC, PEER6, 255, &header)).unwrap();
    assert_eq!(verdict, XDP_DROP);

    let mut events = Vec::new();
    while let Some(item) = ring.next() {
        // carpd's own decoder: what it reads is what the program wrote.
        let event = decode_event(&item);
        assert!(event.is_some(), "a ring record of {} bytes", item.len());
        events.extend(event);
    }
    assert_eq!(events.len(), 2);
    let v4 = &events[0];
    assert_eq!((v4.ifindex, v4.family, v4.ttl), (IFINDEX, 4, 255));
    assert_eq!(&v4.src[..4], &PEER4.octets());
    assert_eq!(v4.src_mac, PEER_MAC);
    assert_eq!(v4.carp, header);
    let v6 = &events[1];
    assert_eq!((v6.family, v6.ttl), (6, 255));
    assert_eq!(v6.src, PEER6.octets());
    assert_eq!(v6.carp, header);
}

#[test]
fn unconfigured_carpdev_passes_everything() {
    if !require_root("unconfigured_carpdev_passes_everything") {
        return;
    }
    let dp = Dataplane::load_unpinned().unwrap();
    for frame in [arp_request(CLIENT_MAC, CLIENT4, VIP4), valid_advert_v4()] {
        let (verdict, out) = run(&dp, &frame).unwrap();
        assert_eq!((verdict, out), (XDP_PASS, frame));
    }
}

/// A master's refresh is a store into the mapped deadline array: the program sees the new
/// deadline at once, and the `carp_vhids` entry is not rewritten.
#[test]
fn a_refresh_moves_the_deadline_without_writing_the_entry() {
    if !require_root("a_refresh_moves_the_deadline_without_writing_the_entry") {
        return;
    }
    let mut dp = configured_dataplane();
    let request = arp_request(CLIENT_MAC, CLIENT4, VIP4);
    set_state(&mut dp, State::Master);
    let entry = dp.vhid(IFINDEX, VHID).unwrap();
    assert_eq!(run(&dp, &request).unwrap().0, XDP_TX);
    let slot = entry.deadline_slot;
    assert_ne!(slot, carp_common::maps::NO_DEADLINE_SLOT);

    // Past, then live again: the answer follows, the entry stays as written.
    set_state(&mut dp, State::ExpiredMaster);
    assert_eq!(run(&dp, &request).unwrap().0, XDP_DROP);
    set_state(&mut dp, State::Master);
    assert_eq!(run(&dp, &request).unwrap().0, XDP_TX);
    assert_eq!(dp.vhid(IFINDEX, VHID).unwrap(), entry);
    let deadline = dp.deadline(slot).unwrap();
    assert!(deadline > monotonic_now().unwrap() + Duration::from_secs(50));

    // Leaving master zeroes the slot; a removed vhid gives its slot to the next one.
    set_state(&mut dp, State::Backup);
    assert_eq!(dp.deadline(slot), Some(Duration::ZERO));
    assert_eq!(run(&dp, &request).unwrap().0, XDP_DROP);
    dp.remove_vhid(IFINDEX, VHID).unwrap();
    set_state(&mut dp, State::Master);
    assert_eq!(dp.vhid(IFINDEX, VHID).unwrap().deadline_slot, slot);
    assert_eq!(run(&dp, &request).unwrap().0, XDP_TX);

    // A silenced dataplane (a start after a crash) leaves no live deadline behind.
    dp.silence_all().unwrap();
    assert_eq!(dp.deadline(slot), Some(Duration::ZERO));
    assert_eq!(
        dp.vhid(IFINDEX, VHID).unwrap().deadline_slot,
        carp_common::maps::NO_DEADLINE_SLOT
    );
    assert_eq!(run(&dp, &request).unwrap().0, XDP_DROP);
}

const TC_ACT_OK: u32 = 0;
const TC_ACT_SHOT: u32 = 2;

/// Runs the egress guard on `frame` leaving the carp interface (ifindex 1, see the top).
fn run_guard(dp: &Dataplane, frame: &[u8]) -> u32 {
    let mut out = vec![0u8; 512];
    let result = dp
        .guard_program()
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..Default::default()
        })
        .expect("run the egress guard");
    out.truncate(result.data_size_out as usize);
    assert_eq!(out, frame, "the guard never changes a frame");
    result.return_value
}

/// What a carp interface's kernel sends from the virtual MAC: an ARP request, a neighbour
/// solicitation and an MLDv2 report for the link-local's solicited-node group.
fn frames_from_the_virtual_mac() -> Vec<(&'static str, Vec<u8>)> {
    let mld_report = {
        // MLDv2 report (type 143), one record: CHANGE_TO_EXCLUDE for ff02::1:ff00:101.
        let group = solicited_node(LINK_LOCAL).octets();
        let mut icmp = vec![143, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0];
        icmp.extend_from_slice(&group);
        let mld_routers = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);
        let sum = icmpv6_checksum(LINK_LOCAL, mld_routers, &icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let ip = ipv6(LINK_LOCAL, mld_routers, 58, 1, &icmp);
        ethernet([0x33, 0x33, 0, 0, 0, 0x16], VMAC, 0x86dd, &ip)
    };
    vec![
        ("arp request", arp_request(VMAC, VIP4, CLIENT4)),
        (
            "neighbour solicitation",
            neighbor_solicitation(VMAC, LINK_LOCAL, CLIENT_LL),
        ),
        ("mld report", mld_report),
    ]
}

#[test]
fn egress_guard_passes_only_the_live_master() {
    if !require_root("egress_guard_passes_only_the_live_master") {
        return;
    }
    let mut dp = configured_dataplane();
    dp.set_guard(IFINDEX, IFINDEX, VHID).unwrap();
    let cases = [
        (State::Master, TC_ACT_OK),
        (State::Backup, TC_ACT_SHOT),
        (State::Init, TC_ACT_SHOT),
        (State::ExpiredMaster, TC_ACT_SHOT),
    ];
    let mut failures = Vec::new();
    for (state, want) in cases {
        set_state(&mut dp, state);
        for (name, frame) in frames_from_the_virtual_mac() {
            let before = dp.counters().unwrap();
            let verdict = run_guard(&dp, &frame);
            let after = dp.counters().unwrap();
            if verdict != want {
                failures.push(format!(
                    "{name} as {state:?}: verdict {verdict}, want {want}"
                ));
            }
            let dropped = u64::from(want == TC_ACT_SHOT);
            for (counter, field) in all_counters() {
                let expected = if counter == "egress_dropped_not_master" {
                    dropped
                } else {
                    0
                };
                let got = field(&after) - field(&before);
                if got != expected {
                    failures.push(format!(
                        "{name} as {state:?}: counter {counter} moved by {got}, expected {expected}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn egress_guard_fails_closed_for_unknown_interfaces_and_vhids() {
    if !require_root("egress_guard_fails_closed_for_unknown_interfaces_and_vhids") {
        return;
    }
    let mut dp = configured_dataplane();
    set_state(&mut dp, State::Master);
    let frame = arp_request(VMAC, VIP4, CLIENT4);
    let dropped = |dp: &Dataplane| dp.counters().unwrap().egress_dropped_not_master;

    // No guard entry for the interface (not registered yet, or already forgotten).
    let before = dropped(&dp);
    assert_eq!(run_guard(&dp, &frame), TC_ACT_SHOT);
    assert_eq!(dropped(&dp), before + 1);

    // Registered: passes while master.
    dp.set_guard(IFINDEX, IFINDEX, VHID).unwrap();
    assert_eq!(run_guard(&dp, &frame), TC_ACT_OK);

    // Its vhid is another one, of which this host is not master.
    dp.set_guard(IFINDEX, IFINDEX, VHID + 1).unwrap();
    let before = dropped(&dp);
    assert_eq!(run_guard(&dp, &frame), TC_ACT_SHOT);
    assert_eq!(dropped(&dp), before + 1);

    // Forgotten again.
    dp.set_guard(IFINDEX, IFINDEX, VHID).unwrap();
    dp.remove_guard(IFINDEX).unwrap();
    assert_eq!(run_guard(&dp, &frame), TC_ACT_SHOT);
}

/// The IP source as [`carp_common::maps::AdvertEvent::src`] holds it.
fn src4(addr: Ipv4Addr) -> [u8; 16] {
    let mut src = [0u8; 16];
    src[..4].copy_from_slice(&addr.octets());
    src
}

/// Drains the ring; how many adverts it held.
fn ring_len(ring: &mut aya::maps::RingBuf<aya::maps::MapData>) -> usize {
    let mut n = 0;
    while ring.next().is_some() {
        n += 1;
    }
    n
}

#[test]
fn repeats_of_the_published_master_advert_take_the_fast_path() {
    if !require_root("repeats_of_the_published_master_advert_take_the_fast_path") {
        return;
    }
    let mut dp = configured_dataplane();
    set_state(&mut dp, State::Backup);
    let mut ring = dp.take_advert_ring().expect("ring buffer");
    let master = CarpFields {
        counter: 0x1122_3344_5566_7788,
        hmac: [0x5a; 20],
        ..CarpFields::advert(VHID)
    };
    let header = master.encode();
    let repeat4 = advert_v4(PEER_MAC, PEER4, 255, &header);
    let repeat6 = advert_v6(PEER_MAC, PEER6, 255, &header);

    // Nothing published yet: the master's advert goes to carpd.
    let (verdict, _) = run(&dp, &repeat4).unwrap();
    assert_eq!(verdict, XDP_DROP);
    assert_eq!(ring_len(&mut ring), 1);
    assert_eq!(dp.master_advert_seen(IFINDEX, VHID, 4), None);

    dp.publish_master_advert(IFINDEX, VHID, 4, src4(PEER4), header)
        .unwrap();
    dp.publish_master_advert(IFINDEX, VHID, 6, PEER6.octets(), header)
        .unwrap();
    assert_eq!(
        dp.master_advert(IFINDEX, VHID, 4).map(|m| (m.src, m.carp)),
        Some((src4(PEER4), header))
    );

    // An identical advert: consumed, counted, its arrival recorded, the ring untouched.
    for (family, frame) in [(4u8, &repeat4), (6u8, &repeat6)] {
        let before = dp.counters().unwrap();
        let t0 = monotonic_now().unwrap();
        let (verdict, _) = run(&dp, frame).unwrap();
        let t1 = monotonic_now().unwrap();
        let after = dp.counters().unwrap();
        assert_eq!(verdict, XDP_DROP, "IPv{family}");
        assert_eq!(ring_len(&mut ring), 0, "IPv{family}: nothing reaches carpd");
        assert_eq!(
            after.advert_master_fastpath - before.advert_master_fastpath,
            1
        );
        assert_eq!(after.advert_delivered, before.advert_delivered);
        let seen = dp
            .master_advert_seen(IFINDEX, VHID, family)
            .expect("arrival recorded");
        assert!(
            t0 <= seen && seen <= t1,
            "IPv{family}: {seen:?} not in [{t0:?}, {t1:?}]"
        );
        // The next repeat updates the recorded arrival in place.
        let t2 = monotonic_now().unwrap();
        assert_eq!(run(&dp, frame).unwrap().0, XDP_DROP);
        let again = dp.master_advert_seen(IFINDEX, VHID, family).unwrap();
        assert!(
            t2 <= again && again <= monotonic_now().unwrap(),
            "IPv{family}: second arrival {again:?} not after {t2:?}"
        );
    }

    // Anything else still reaches carpd: one header byte different (a new counter, another
    // HMAC, other timers: each with a valid checksum), another source, the other family's
    // source, another vhid's pattern.
    let mut one_byte = master;
    one_byte.hmac[19] ^= 1;
    let different = [
        (
            "another hmac",
            advert_v4(PEER_MAC, PEER4, 255, &one_byte.encode()),
        ),
        (
            "another counter",
            advert_v4(
                PEER_MAC,
                PEER4,
                255,
                &CarpFields {
                    counter: master.counter + 1,
                    ..master
                }
                .encode(),
            ),
        ),
        (
            "another advskew",
            advert_v4(
                PEER_MAC,
                PEER4,
                255,
                &CarpFields {
                    advskew: 1,
                    ..master
                }
                .encode(),
            ),
        ),
        ("another source", advert_v4(PEER_MAC, OTHER4, 255, &header)),
        (
            "another IPv6 source",
            advert_v6(PEER_MAC, CLIENT_LL, 255, &header),
        ),
    ];
    for (what, frame) in &different {
        let before = dp.counters().unwrap();
        let (verdict, _) = run(&dp, frame).unwrap();
        let after = dp.counters().unwrap();
        assert_eq!(verdict, XDP_DROP, "{what}");
        assert_eq!(ring_len(&mut ring), 1, "{what}: handed to carpd");
        assert_eq!(
            after.advert_delivered - before.advert_delivered,
            1,
            "{what}"
        );
        assert_eq!(
            after.advert_master_fastpath, before.advert_master_fastpath,
            "{what}"
        );
    }
    // The checks before it still apply: a wrong TTL is dropped as such, not consumed.
    let before = dp.counters().unwrap();
    run(&dp, &advert_v4(PEER_MAC, PEER4, 64, &header)).unwrap();
    let after = dp.counters().unwrap();
    assert_eq!(after.advert_bad_ttl - before.advert_bad_ttl, 1);
    assert_eq!(after.advert_master_fastpath, before.advert_master_fastpath);

    // Only a BACKUP takes the fast path: a MASTER or INIT vhid sees the advert even while a
    // pattern is (wrongly) left published.
    for state in [State::Master, State::Init] {
        set_state(&mut dp, state);
        let before = dp.counters().unwrap();
        run(&dp, &repeat4).unwrap();
        let after = dp.counters().unwrap();
        assert_eq!(ring_len(&mut ring), 1, "{state:?}: handed to carpd");
        assert_eq!(
            after.advert_master_fastpath, before.advert_master_fastpath,
            "{state:?}"
        );
    }
    set_state(&mut dp, State::Backup);

    // Cleared (the vhid left BACKUP): the master's advert goes to carpd again, and no
    // arrival time is left to postpone a timer.
    dp.clear_master_advert(IFINDEX, VHID).unwrap();
    assert_eq!(dp.master_advert_seen(IFINDEX, VHID, 4), None);
    assert_eq!(dp.master_advert_seen(IFINDEX, VHID, 6), None);
    let (verdict, _) = run(&dp, &repeat4).unwrap();
    assert_eq!(verdict, XDP_DROP);
    assert_eq!(ring_len(&mut ring), 1);
    assert_eq!(dp.master_advert_seen(IFINDEX, VHID, 4), None);

    // Removing the vhid forgets its pattern too.
    dp.publish_master_advert(IFINDEX, VHID, 4, src4(PEER4), header)
        .unwrap();
    dp.remove_vhid(IFINDEX, VHID).unwrap();
    assert_eq!(dp.master_advert(IFINDEX, VHID, 4), None);
}

/// Unicast adverts (OpenBSD `carppeer`): one sent to the carpdev's MAC reaches carpd marked
/// unicast, with the same checks as a multicast one; one a switch flooded towards another
/// host's MAC passes to the stack untouched; multicast ones are marked as such.
#[test]
fn unicast_adverts_to_this_host_reach_the_ring_marked_unicast() {
    if !require_root("unicast_adverts_to_this_host_reach_the_ring_marked_unicast") {
        return;
    }
    let mut dp = configured_dataplane();
    set_state(&mut dp, State::Backup);
    let mut ring = dp.take_advert_ring().expect("ring buffer");
    let header = CarpFields::advert(VHID).encode();
    let me4 = Ipv4Addr::new(192, 0, 2, 12);
    let me6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x12);
    let unicast_v4 = |dst_mac, ttl| {
        ethernet(
            dst_mac,
            PEER_MAC,
            0x0800,
            &ipv4(PEER4, me4, 112, ttl, &header),
        )
    };
    let unicast_v6 = ethernet(
        DEV_MAC,
        PEER_MAC,
        0x86dd,
        &ipv6(PEER6, me6, 112, 255, &header),
    );

    let (verdict, _) = run(&dp, &unicast_v4(DEV_MAC, 255)).unwrap();
    assert_eq!(verdict, XDP_DROP, "delivered to carpd");
    let (verdict, _) = run(&dp, &unicast_v6).unwrap();
    assert_eq!(verdict, XDP_DROP, "delivered to carpd");
    let (verdict, _) = run(&dp, &advert_v4(PEER_MAC, PEER4, 255, &header)).unwrap();
    assert_eq!(verdict, XDP_DROP, "delivered to carpd");
    // Flooded towards another host: not ours.
    let other_host = unicast_v4(CLIENT_MAC, 255);
    let before = dp.counters().unwrap();
    let (verdict, out) = run(&dp, &other_host).unwrap();
    assert_eq!((verdict, out), (XDP_PASS, other_host));
    assert_eq!(
        dp.counters().unwrap().advert_delivered,
        before.advert_delivered
    );
    // The same checks as multicast: TTL 254 is dropped and counted.
    let (verdict, _) = run(&dp, &unicast_v4(DEV_MAC, 254)).unwrap();
    assert_eq!(verdict, XDP_DROP);
    assert_eq!(
        dp.counters().unwrap().advert_bad_ttl,
        before.advert_bad_ttl + 1
    );

    let mut events = Vec::new();
    while let Some(item) = ring.next() {
        events.extend(decode_event(&item));
    }
    let marks: Vec<(u8, u8)> = events.iter().map(|e| (e.family, e.unicast)).collect();
    assert_eq!(marks, [(4, 1), (6, 1), (4, 0)]);
}
