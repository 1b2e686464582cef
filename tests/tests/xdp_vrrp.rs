//! The XDP program's VRRPv3 side through BPF_PROG_TEST_RUN (see xdp_fixtures.rs for the
//! method): adverts of a served virtual router reach the ring with their 8-byte header, in
//! both IPv4 checksum forms; malformed ones are dropped and counted apart from CARP; an
//! IPv6 router answers neighbour solicitations with its own virtual MAC
//! (00:00:5e:00:02:<vrid>) as live master only; a master that is neither the address owner
//! nor in accept mode drops packets to its addresses (RFC 5798 6.4.3) but still answers
//! ARP and neighbour solicitations for them. The adverts are keepalived 2.2.7's own,
//! captured in the lab (as in carp-daemon's proto::vrrp::packet tests).
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use aya::programs::{TestRun, TestRunOptions};
use carp_common::maps::{DataplaneCounters, VipEntry, VrrpCounters};
use carp_common::vrrp::{vrrp_slot, vrrp_virtual_mac};
use carp_daemon::config::VrrpSettings;
use carp_daemon::dataplane::{Dataplane, VhidDataplaneState, decode_event, monotonic_now};
use carp_daemon::proto::vrrp::ChecksumForm;
use carp_tests::frames::*;

const IFINDEX: u32 = 1;
const DEV_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x99];
const CLIENT_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x99);

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

/// keepalived 2.2.7, `virtual_router_id 7`, `priority 150`, `advert_int 1`, VIPs 192.0.2.1
/// and 192.0.2.2, from 192.0.2.11: the IP payload.
const KA_V4: [u8; 16] = [
    0x31, 0x07, 0x96, 0x02, 0x00, 0x64, 0x11, 0xef, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
];
const KA_V4_SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
/// The same with the RFC 9568 checksum (no pseudo-header).
const KA_V4_MESSAGE_ONLY: [u8; 16] = [
    0x31, 0x07, 0x96, 0x02, 0x00, 0x64, 0xb4, 0x8d, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02,
];
/// keepalived, `virtual_router_id 8`, `priority 120`, `advert_int 0.5`, VIPs fe80::1 and
/// 2001:db8::1, from fe80::883f:e3ff:fea6:3729.
const KA_V6: [u8; 40] = [
    0x31, 0x08, 0x78, 0x02, 0x00, 0x32, 0x8a, 0x49, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
];
const KA_V6_SRC: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x883f, 0xe3ff, 0xfea6, 0x3729);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

fn require_root(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipping {test}: needs root (CAP_BPF) to load the XDP program");
    }
    root
}

/// Carpdev 1 serving the IPv4 router VRID 7 and the IPv6 router VRID 8, both BACKUP.
fn dataplane() -> Dataplane {
    let mut dp = Dataplane::load_unpinned().expect("load the XDP program");
    dp.set_carpdev(IFINDEX, DEV_MAC).unwrap();
    for (vrid, v6) in [(7, false), (8, true)] {
        let slot = vrrp_slot(vrid, v6);
        dp.set_slot(
            IFINDEX,
            slot,
            vrrp_virtual_mac(vrid, v6),
            Duration::from_secs(1),
            VhidDataplaneState::Backup,
        )
        .unwrap();
        dp.set_vrrp_router(IFINDEX, slot, true).unwrap();
    }
    let vip = VipEntry {
        vhid: vrrp_slot(8, true),
        flags: 0,
    };
    dp.add_vip6(IFINDEX, VIP6, vip).unwrap();
    dp
}

fn run(dp: &Dataplane, frame: &[u8]) -> (u32, Vec<u8>) {
    let mut out = vec![0u8; 512];
    let result = dp
        .program()
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..Default::default()
        })
        .expect("test run");
    out.truncate(result.data_size_out as usize);
    (result.return_value, out)
}

/// Which VRRP and CARP counters a frame moved.
fn moved(dp: &Dataplane, frame: &[u8]) -> (u32, Vec<u8>, Vec<&'static str>) {
    let (v0, c0) = (dp.vrrp_counters().unwrap(), dp.counters().unwrap());
    let (verdict, out) = run(dp, frame);
    let (v1, c1) = (dp.vrrp_counters().unwrap(), dp.counters().unwrap());
    let mut names = Vec::new();
    for ((name, get), _) in VrrpCounters::FIELDS.iter().zip(0..) {
        for _ in 0..(get(&v1) - get(&v0)) {
            names.push(*name);
        }
    }
    for (name, get) in DataplaneCounters::FIELDS.iter() {
        for _ in 0..(get(&c1) - get(&c0)) {
            names.push(*name);
        }
    }
    (verdict, out, names)
}

fn v4(ttl: u8, payload: &[u8]) -> Vec<u8> {
    advert_v4(PEER_MAC, KA_V4_SRC, ttl, payload)
}

#[test]
fn vrrp_adverts_are_checked_and_handed_over() {
    if !require_root("vrrp_adverts_are_checked_and_handed_over") {
        return;
    }
    let mut dp = dataplane();
    let mut ring = dp.take_advert_ring().expect("ring buffer");
    let mut bad_sum = KA_V4;
    bad_sum[2] ^= 1;
    let mut short = KA_V4;
    short[3] = 3; // three addresses announced, two present
    let mut none = KA_V4;
    none[3] = 0;
    let mut other_vrid = KA_V4_MESSAGE_ONLY;
    other_vrid[1] = 9;
    let cases: Vec<(&str, Vec<u8>, u32, &[&str])> = vec![
        (
            "keepalived IPv4",
            v4(255, &KA_V4),
            XDP_DROP,
            &["vrrp_delivered"],
        ),
        (
            "RFC 9568 checksum",
            v4(255, &KA_V4_MESSAGE_ONLY),
            XDP_DROP,
            &["vrrp_delivered", "vrrp_checksum_message_only"],
        ),
        (
            "keepalived IPv6",
            advert_v6(PEER_MAC, KA_V6_SRC, 255, &KA_V6),
            XDP_DROP,
            &["vrrp_delivered"],
        ),
        (
            "bad checksum",
            v4(255, &bad_sum),
            XDP_DROP,
            &["vrrp_bad_checksum"],
        ),
        ("ttl 64", v4(64, &KA_V4), XDP_DROP, &["vrrp_bad_ttl"]),
        (
            "addresses missing",
            v4(255, &short),
            XDP_DROP,
            &["vrrp_bad_length"],
        ),
        ("no address", v4(255, &none), XDP_DROP, &["vrrp_bad_length"]),
        (
            "own source",
            advert_v4(DEV_MAC, KA_V4_SRC, 255, &KA_V4),
            XDP_DROP,
            &["vrrp_own_source"],
        ),
        // Another router's VRID: untouched, for whoever serves it.
        (
            "unserved vrid",
            v4(255, &other_vrid),
            XDP_PASS,
            &["advert_passed_unknown_vhid"],
        ),
        // VRID 8 is served for IPv6 only, VRID 7 for IPv4 only.
        (
            "IPv4 advert of the IPv6 router's vrid",
            v4(255, &{
                let mut b = KA_V4_MESSAGE_ONLY;
                b[1] = 8;
                // Keep the message-only checksum valid for the new VRID.
                b[6..8].copy_from_slice(&[0, 0]);
                let sum = inet_checksum(0, &b);
                b[6..8].copy_from_slice(&sum.to_be_bytes());
                b
            }),
            XDP_PASS,
            &["advert_passed_unknown_vhid"],
        ),
        (
            "IPv6 advert of the IPv4 router's vrid",
            advert_v6(PEER_MAC, KA_V6_SRC, 255, &{
                let mut b = KA_V6;
                b[1] = 7;
                b
            }),
            XDP_PASS,
            &["advert_passed_unknown_vhid"],
        ),
    ];
    let mut failures = Vec::new();
    for (name, frame, verdict, counters) in &cases {
        let (got, out, names) = moved(&dp, frame);
        if got != *verdict || names != *counters {
            failures.push(format!(
                "{name}: verdict {got} counters {names:?}, expected {verdict} {counters:?}"
            ));
        }
        if got == XDP_PASS && out != *frame {
            failures.push(format!("{name}: passed frame changed"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let mut events = Vec::new();
    while let Some(item) = ring.next() {
        events.extend(decode_event(&item));
    }
    assert_eq!(events.len(), 3, "the three valid adverts");
    let mut want_v4 = [0u8; 36];
    want_v4[..8].copy_from_slice(&KA_V4[..8]);
    assert_eq!((events[0].family, events[0].ttl), (4, 255));
    assert_eq!(&events[0].src[..4], &KA_V4_SRC.octets());
    assert_eq!(events[0].carp, want_v4);
    assert_eq!(&events[1].carp[..8], &KA_V4_MESSAGE_ONLY[..8]);
    let mut want_v6 = [0u8; 36];
    want_v6[..8].copy_from_slice(&KA_V6[..8]);
    assert_eq!(events[2].family, 6);
    assert_eq!(events[2].src, KA_V6_SRC.octets());
    assert_eq!(events[2].carp, want_v6);
}

#[test]
fn ipv6_router_answers_with_its_own_virtual_mac_as_live_master_only() {
    if !require_root("ipv6_router_answers_with_its_own_virtual_mac_as_live_master_only") {
        return;
    }
    let mut dp = dataplane();
    let slot = vrrp_slot(8, true);
    let vmac6 = vrrp_virtual_mac(8, true);
    let ns = neighbor_solicitation(CLIENT_MAC, CLIENT_LL, VIP6);
    let (verdict, _, names) = moved(&dp, &ns);
    assert_eq!((verdict, names), (XDP_DROP, vec!["ns_dropped_not_master"]));
    // Frames to the IPv6 virtual MAC are dropped too while backup.
    let to_vmac = ethernet(vmac6, CLIENT_MAC, 0x0800, &[0u8; 46]);
    let (verdict, _, names) = moved(&dp, &to_vmac);
    assert_eq!(
        (verdict, names),
        (XDP_DROP, vec!["vmac_dropped_not_master"])
    );

    let until = monotonic_now().unwrap() + Duration::from_secs(60);
    dp.set_slot(
        IFINDEX,
        slot,
        vmac6,
        Duration::from_secs(1),
        VhidDataplaneState::Master { until },
    )
    .unwrap();
    let (verdict, out, names) = moved(&dp, &ns);
    assert_eq!((verdict, names), (XDP_TX, vec!["ns_replied"]));
    assert_eq!(&out[6..12], &vmac6, "Ethernet source is 00:00:5e:00:02:08");
    assert!(
        out.windows(8).any(|w| w == [2, 1, 0, 0, 0x5e, 0, 2, 8]),
        "target link-layer option with the IPv6 virtual MAC: {out:02x?}"
    );
    // The fail-silent deadline holds for VRRP as for CARP.
    dp.set_slot(
        IFINDEX,
        slot,
        vmac6,
        Duration::from_secs(1),
        VhidDataplaneState::Master {
            until: monotonic_now().unwrap() - Duration::from_millis(1),
        },
    )
    .unwrap();
    let (verdict, _, names) = moved(&dp, &ns);
    assert_eq!((verdict, names), (XDP_DROP, vec!["ns_dropped_not_master"]));
}

const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const CLIENT4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 99);

/// An ICMP(v6) echo request from the client to `dst` through the virtual MAC `vmac`.
fn echo_v4(vmac: [u8; 6], dst: Ipv4Addr) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
    let sum = inet_checksum(0, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    ethernet(vmac, CLIENT_MAC, 0x0800, &ipv4(CLIENT4, dst, 1, 64, &icmp))
}

fn echo_v6(vmac: [u8; 6], dst: Ipv6Addr) -> Vec<u8> {
    let mut icmp = vec![128, 0, 0, 0, 0x12, 0x34, 0, 1];
    let sum = icmpv6_checksum(CLIENT_LL, dst, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    ethernet(
        vmac,
        CLIENT_MAC,
        0x86dd,
        &ipv6(CLIENT_LL, dst, 58, 64, &icmp),
    )
}

/// A neighbour solicitation sent straight to the virtual address and MAC (RFC 4861
/// neighbour unreachability detection), as a client checks a cached entry.
fn unicast_solicitation(vmac: [u8; 6], target: Ipv6Addr) -> Vec<u8> {
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[1, 1]);
    icmp.extend_from_slice(&CLIENT_MAC);
    let sum = icmpv6_checksum(CLIENT_LL, target, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    ethernet(
        vmac,
        CLIENT_MAC,
        0x86dd,
        &ipv6(CLIENT_LL, target, 58, 255, &icmp),
    )
}

fn settings(priority: u8, accept_mode: bool, v6: bool) -> VrrpSettings {
    VrrpSettings {
        priority,
        advert_interval: 100,
        preempt: true,
        accept_mode,
        checksum: ChecksumForm::PseudoHeader,
        v6,
    }
}

/// RFC 5798 6.4.3: as master, a router that is not the address owner (priority 255) and not
/// in accept mode drops packets to its virtual addresses (counted apart, as VRRP's), and
/// still answers ARP and neighbour solicitations for them and passes what it forwards; the
/// owner and a router in accept mode take them.
#[test]
fn accept_mode_decides_what_a_master_takes_for_its_addresses() {
    if !require_root("accept_mode_decides_what_a_master_takes_for_its_addresses") {
        return;
    }
    let vmac4 = vrrp_virtual_mac(7, false);
    let vmac6 = vrrp_virtual_mac(8, true);
    for (what, priority, accept_mode, accepts) in [
        ("priority 100, accept_mode false", 100, false, false),
        ("priority 100, accept_mode true", 100, true, true),
        ("owner (priority 255), accept_mode false", 255, false, true),
    ] {
        let mut dp = dataplane();
        dp.add_vip4(
            IFINDEX,
            VIP4,
            VipEntry {
                vhid: vrrp_slot(7, false),
                flags: 0,
            },
        )
        .unwrap();
        // An address of another vhid on the same carpdev, sent to this router's MAC.
        let other = Ipv4Addr::new(192, 0, 2, 9);
        dp.add_vip4(IFINDEX, other, VipEntry { vhid: 9, flags: 0 })
            .unwrap();
        let master = |dp: &mut Dataplane| {
            let until = monotonic_now().unwrap() + Duration::from_secs(60);
            for (vrid, v6) in [(7, false), (8, true)] {
                dp.set_slot(
                    IFINDEX,
                    vrrp_slot(vrid, v6),
                    vrrp_virtual_mac(vrid, v6),
                    Duration::from_secs(1),
                    VhidDataplaneState::Master { until },
                )
                .unwrap();
            }
        };
        master(&mut dp);
        // Declared after the state entries exist: set_vrrp_router marks them itself.
        for (vrid, v6) in [(7, false), (8, true)] {
            let s = settings(priority, accept_mode, v6);
            assert_eq!(s.accepts_own_addresses(), accepts, "{what}");
            dp.set_vrrp_router(IFINDEX, vrrp_slot(vrid, v6), s.accepts_own_addresses())
                .unwrap();
        }
        let to_vip: &[&str] = if accepts {
            &["vmac_accepted"]
        } else {
            &["vrrp_dropped_accept_mode"]
        };
        let verdict_vip = if accepts { XDP_PASS } else { XDP_DROP };
        let cases: Vec<(&str, Vec<u8>, u32, &[&str])> = vec![
            (
                "ping to the IPv4 VIP",
                echo_v4(vmac4, VIP4),
                verdict_vip,
                to_vip,
            ),
            (
                "ping to the IPv6 VIP",
                echo_v6(vmac6, VIP6),
                verdict_vip,
                to_vip,
            ),
            (
                "ping through the router (forwarded)",
                echo_v4(vmac4, Ipv4Addr::new(198, 51, 100, 1)),
                XDP_PASS,
                &["vmac_accepted"],
            ),
            (
                "ping to another vhid's address",
                echo_v4(vmac4, other),
                XDP_PASS,
                &["vmac_accepted"],
            ),
            (
                "ARP for the VIP",
                arp_request(CLIENT_MAC, CLIENT4, VIP4),
                XDP_TX,
                &["arp_replied"],
            ),
            (
                "unicast NS for the VIP",
                unicast_solicitation(vmac6, VIP6),
                XDP_TX,
                &["ns_replied", "vmac_accepted"],
            ),
        ];
        let mut failures = Vec::new();
        for round in ["declared", "after a refresh"] {
            if round == "after a refresh" {
                // Every advert a master sends rewrites its entry: the flag stays.
                master(&mut dp);
            }
            for (name, frame, verdict, counters) in &cases {
                let (got, _, names) = moved(&dp, frame);
                if got != *verdict || names != *counters {
                    failures.push(format!(
                        "{what}, {round}: {name}: verdict {got} counters {names:?}, \
                         expected {verdict} {counters:?}"
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
