//! Load balancing in the XDP program through BPF_PROG_TEST_RUN (see `xdp_fixtures.rs` for
//! the method): one fixture per verdict of OpenBSD's `carp_lsdrop` as the program makes it,
//! and of ARP on a balanced interface.
//!
//! The interface is `carpnodes 3:…,4:…`: bucket 0 belongs to vhid 3 (the leader), bucket 1
//! to vhid 4. The nodes' states are in the group's `lb_groups` entry, as carpd writes them
//! (`Dataplane::set_lb_node`); their `carp_vhids` entries are never consulted. With the virtual address 192.0.2.30, a client at .100 folds to
//! 0x1e ^ 0x64 = 122 (bucket 0) and one at .101 to 123 (bucket 1).
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use aya::programs::{TestRun, TestRunOptions};
use carp_common::lb::{LB_MODE_IP, LB_MODE_IP_STEALTH, LB_MODE_IP_UNICAST, bucket, fold_v4};
use carp_common::maps::{DataplaneCounters, VipEntry};
use carp_daemon::dataplane::{Dataplane, VhidDataplaneState, monotonic_now};
use carp_tests::frames::*;

const IFINDEX: u32 = 1;
const LEADER: u8 = 3;
const OTHER: u8 = 4;
const DEV_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x99];
/// The carp MAC in `ip` mode, and the unicast MAC it stands for.
const MCAST_MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x01, LEADER];
const UCAST_MAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, LEADER];
const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 30);
const CLIENT_B0: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const CLIENT_B1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 101);
const ROUTER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x30);
const CLIENT6_B1: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x101);

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

fn require_root(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipping {test}: needs root (CAP_BPF) to load the XDP program");
    }
    root
}

/// Which nodes this host is the live master of.
#[derive(Clone, Copy, Debug)]
enum Masters {
    Leader,
    Other,
    Both,
    /// Master of the other node, but its carpd stopped refreshing the deadline.
    OtherExpired,
}

fn balanced_dataplane(mode: u32) -> Dataplane {
    let mut dp = Dataplane::load_unpinned().expect("load the XDP program");
    dp.set_carpdev(IFINDEX, DEV_MAC).unwrap();
    let vip = VipEntry {
        vhid: u32::from(LEADER),
        flags: 0,
    };
    dp.add_vip4(IFINDEX, VIP4, vip).unwrap();
    dp.add_vip6(IFINDEX, VIP6, vip).unwrap();
    dp.set_lb_group(IFINDEX, &[LEADER, OTHER], mode, DEV_MAC)
        .unwrap();
    dp
}

fn set_masters(dp: &mut Dataplane, masters: Masters) {
    let now = monotonic_now().unwrap();
    let live = VhidDataplaneState::Master {
        until: now + Duration::from_secs(60),
    };
    let expired = VhidDataplaneState::Master {
        until: now - Duration::from_nanos(1),
    };
    let (leader, other) = match masters {
        Masters::Leader => (live, VhidDataplaneState::Backup),
        Masters::Other => (VhidDataplaneState::Backup, live),
        Masters::Both => (live, live),
        Masters::OtherExpired => (VhidDataplaneState::Backup, expired),
    };
    let second = Duration::from_secs(1);
    assert!(
        dp.set_lb_node(IFINDEX, LEADER, LEADER, second, leader)
            .unwrap()
    );
    assert!(
        dp.set_lb_node(IFINDEX, LEADER, OTHER, second, other)
            .unwrap()
    );
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

fn udp4(dst_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let udp = [0x30, 0x39, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00];
    ethernet(dst_mac, CLIENT_MAC, 0x0800, &ipv4(src, dst, 17, 64, &udp))
}

/// The frame as the program hands it on after accepting it in `ip` mode: to the unicast MAC.
fn unicast_again(frame: &[u8]) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[0] &= !0x01;
    f
}

/// An ICMP destination unreachable from `ROUTER` to the virtual address about a datagram
/// the virtual address sent to `client`.
fn icmp_unreachable(client: Ipv4Addr) -> Vec<u8> {
    let inner = ipv4(VIP4, client, 17, 64, &[0x00, 0x35, 0x30, 0x39, 0, 8, 0, 0]);
    let mut icmp = vec![3, 1, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&inner);
    let csum = inet_checksum(0, &icmp);
    icmp[2..4].copy_from_slice(&csum.to_be_bytes());
    ethernet(
        MCAST_MAC,
        CLIENT_MAC,
        0x0800,
        &ipv4(ROUTER, VIP4, 1, 64, &icmp),
    )
}

struct Case {
    name: &'static str,
    masters: Masters,
    frame: Vec<u8>,
    /// Verdict and, for PASS and TX, the frame that must come out.
    want: (u32, Option<Vec<u8>>),
    /// The one counter that must go up by one (`None`: none moves).
    counter: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    let b0 = udp4(MCAST_MAC, CLIENT_B0, VIP4);
    let b1 = udp4(MCAST_MAC, CLIENT_B1, VIP4);
    let v6_b1 = ethernet(
        MCAST_MAC,
        CLIENT_MAC,
        0x86dd,
        &ipv6(CLIENT6_B1, VIP6, 17, 64, &[0x30, 0x39, 0, 0x35, 0, 8, 0, 0]),
    );
    let to_broadcast = udp4(MCAST_MAC, CLIENT_B1, Ipv4Addr::BROADCAST);
    let l2_broadcast = udp4([0xff; 6], CLIENT_B1, Ipv4Addr::new(192, 0, 2, 255));
    let group = Ipv4Addr::new(224, 0, 0, 251);
    let l2_multicast = udp4([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb], CLIENT_B1, group);
    let to_multicast = udp4(MCAST_MAC, CLIENT_B1, group);
    let unreachable = icmp_unreachable(CLIENT_B0);
    let icmp6_unreachable = {
        let router6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        let client6_b0 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
        let inner = ipv6(VIP6, client6_b0, 17, 64, &[0, 0x35, 0x30, 0x39, 0, 8, 0, 0]);
        let mut icmp = vec![1, 4, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&inner);
        let csum = icmpv6_checksum(router6, VIP6, &icmp);
        icmp[2..4].copy_from_slice(&csum.to_be_bytes());
        ethernet(
            MCAST_MAC,
            CLIENT_MAC,
            0x86dd,
            &ipv6(router6, VIP6, 58, 64, &icmp),
        )
    };
    vec![
        Case {
            name: "own bucket (bucket 1, master of its node): passed, to the unicast MAC",
            masters: Masters::Other,
            frame: b1.clone(),
            want: (XDP_PASS, Some(unicast_again(&b1))),
            counter: Some("lb_accepted"),
        },
        Case {
            name: "other bucket (bucket 0, master of the other node only): dropped",
            masters: Masters::Other,
            frame: b0.clone(),
            want: (XDP_DROP, None),
            counter: Some("lb_dropped_other_bucket"),
        },
        Case {
            name: "own bucket as leader",
            masters: Masters::Leader,
            frame: b0.clone(),
            want: (XDP_PASS, Some(unicast_again(&b0))),
            counter: Some("lb_accepted"),
        },
        Case {
            name: "bucket whose master here is past its fail-silent deadline: dropped",
            masters: Masters::OtherExpired,
            frame: b1.clone(),
            want: (XDP_DROP, None),
            counter: Some("lb_dropped_other_bucket"),
        },
        Case {
            name: "IPv6: the four words of both addresses folded (bucket 1)",
            masters: Masters::Other,
            frame: v6_b1.clone(),
            want: (XDP_PASS, Some(unicast_again(&v6_b1))),
            counter: Some("lb_accepted"),
        },
        Case {
            name: "IPv6 of another bucket: dropped",
            masters: Masters::Leader,
            frame: v6_b1,
            want: (XDP_DROP, None),
            counter: Some("lb_dropped_other_bucket"),
        },
        Case {
            name: "limited broadcast to the carp MAC: never dropped",
            masters: Masters::Leader,
            frame: to_broadcast.clone(),
            want: (XDP_PASS, Some(to_broadcast)),
            counter: None,
        },
        Case {
            name: "layer-2 broadcast: never dropped",
            masters: Masters::Leader,
            frame: l2_broadcast.clone(),
            want: (XDP_PASS, Some(l2_broadcast)),
            counter: None,
        },
        Case {
            name: "multicast group: never dropped",
            masters: Masters::Leader,
            frame: l2_multicast.clone(),
            want: (XDP_PASS, Some(l2_multicast)),
            counter: None,
        },
        Case {
            name: "multicast group to the carp MAC: never dropped",
            masters: Masters::Leader,
            frame: to_multicast.clone(),
            want: (XDP_PASS, Some(to_multicast)),
            counter: None,
        },
        Case {
            // Outer ROUTER ^ VIP folds to bucket 1, the carried VIP -> client to bucket 0.
            name: "ICMP error hashed on the packet it carries (bucket 0): passed by its master",
            masters: Masters::Leader,
            frame: unreachable.clone(),
            want: (XDP_PASS, Some(unicast_again(&unreachable))),
            counter: Some("lb_accepted"),
        },
        Case {
            name: "ICMP error of another host's flow: dropped though its outer bucket is ours",
            masters: Masters::Other,
            frame: unreachable,
            want: (XDP_DROP, None),
            counter: Some("lb_dropped_other_bucket"),
        },
        Case {
            // Outer ::1 ^ ::30 folds to bucket 1, the carried ::30 -> ::100 to bucket 0.
            name: "ICMPv6 error hashed on the packet it carries (bucket 0): passed by its master",
            masters: Masters::Leader,
            frame: icmp6_unreachable.clone(),
            want: (XDP_PASS, Some(unicast_again(&icmp6_unreachable))),
            counter: Some("lb_accepted"),
        },
        Case {
            name: "ICMPv6 error of another host's flow: dropped",
            masters: Masters::Other,
            frame: icmp6_unreachable,
            want: (XDP_DROP, None),
            counter: Some("lb_dropped_other_bucket"),
        },
        Case {
            name: "ARP as master of the leader: answered with the multicast carp MAC, from the carpdev's MAC",
            masters: Masters::Leader,
            frame: arp_request(CLIENT_MAC, CLIENT_B1, VIP4),
            want: (XDP_TX, Some(arp_reply_from(DEV_MAC, MCAST_MAC))),
            counter: Some("arp_replied"),
        },
        Case {
            name: "NS as master of the leader: the multicast carp MAC announced, from the carpdev's MAC",
            masters: Masters::Leader,
            frame: neighbor_solicitation(CLIENT_MAC, CLIENT6_B1, VIP6),
            want: (XDP_TX, Some(na_from(DEV_MAC, MCAST_MAC))),
            counter: Some("ns_replied"),
        },
        Case {
            name: "NS as master of another node only: not answered",
            masters: Masters::Other,
            frame: neighbor_solicitation(CLIENT_MAC, CLIENT6_B1, VIP6),
            want: (XDP_DROP, None),
            counter: Some("ns_dropped_not_master"),
        },
        Case {
            name: "ARP as master of another node only: not answered",
            masters: Masters::Other,
            frame: arp_request(CLIENT_MAC, CLIENT_B1, VIP4),
            want: (XDP_DROP, None),
            counter: Some("arp_dropped_not_master"),
        },
    ]
}

/// The ARP reply for VIP4 to CLIENT_B1 with Ethernet source `src` and sender MAC `sha`.
fn arp_reply_from(src: [u8; 6], sha: [u8; 6]) -> Vec<u8> {
    let mut frame = arp_reply(sha, VIP4, CLIENT_MAC, CLIENT_B1);
    frame[6..12].copy_from_slice(&src);
    frame
}

/// The solicited NA for VIP6 to CLIENT6_B1 with Ethernet source `src` and target
/// link-layer address `lladdr` (solicited and override flags).
fn na_from(src: [u8; 6], lladdr: [u8; 6]) -> Vec<u8> {
    let mut frame = neighbor_advertisement(lladdr, VIP6, CLIENT_MAC, CLIENT6_B1, 0x60);
    frame[6..12].copy_from_slice(&src);
    frame
}

fn counter_deltas(
    before: &DataplaneCounters,
    after: &DataplaneCounters,
) -> Vec<(&'static str, u64)> {
    DataplaneCounters::FIELDS
        .iter()
        .map(|(name, get)| (*name, get(after) - get(before)))
        .filter(|(_, d)| *d != 0)
        .collect()
}

#[test]
fn the_buckets_of_the_fixtures_are_what_the_names_say() {
    let fold = |a: Ipv4Addr| fold_v4(&a.octets(), &VIP4.octets());
    assert_eq!((fold(CLIENT_B0), fold(CLIENT_B1)), (122, 123));
    assert_eq!(bucket(fold(CLIENT_B0), 2), 0);
    assert_eq!(bucket(fold(CLIENT_B1), 2), 1);
    assert_eq!(bucket(fold(ROUTER), 2), 1);
}

#[test]
fn lb_fixtures() {
    if !require_root("lb_fixtures") {
        return;
    }
    let mut dp = balanced_dataplane(LB_MODE_IP);
    let mut failures = Vec::new();
    let cases = cases();
    for c in &cases {
        set_masters(&mut dp, c.masters);
        let before = dp.counters().unwrap();
        let (verdict, out) = run(&dp, &c.frame);
        let after = dp.counters().unwrap();
        let (want_verdict, want_out) = &c.want;
        if verdict != *want_verdict || want_out.as_ref().is_some_and(|w| *w != out) {
            failures.push(format!(
                "{}: expected {want_verdict} {:?}, got {verdict} {}",
                c.name,
                want_out.as_ref().map(hex::encode),
                hex::encode(&out)
            ));
        }
        let want_counters: Vec<(&str, u64)> = c.counter.iter().map(|n| (*n, 1)).collect();
        let got = counter_deltas(&before, &after);
        if got != want_counters {
            failures.push(format!(
                "{}: counters {got:?}, expected {want_counters:?}",
                c.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_bucket_is_taken_by_exactly_one_of_two_hosts() {
    if !require_root("every_bucket_is_taken_by_exactly_one_of_two_hosts") {
        return;
    }
    // Host A masters the leader, host B the other node: each of 256 clients' packets is
    // passed by exactly one of them.
    let mut a = balanced_dataplane(LB_MODE_IP);
    let mut b = balanced_dataplane(LB_MODE_IP);
    set_masters(&mut a, Masters::Leader);
    set_masters(&mut b, Masters::Other);
    let mut taken = [0usize; 2];
    for last in 0..=255u8 {
        let client = Ipv4Addr::new(198, 51, 100, last);
        let frame = udp4(MCAST_MAC, client, VIP4);
        let by_a = run(&a, &frame).0 == XDP_PASS;
        let by_b = run(&b, &frame).0 == XDP_PASS;
        assert!(by_a != by_b, "{client}: taken by a: {by_a}, by b: {by_b}");
        taken[usize::from(by_b)] += 1;
    }
    assert_eq!(taken, [128, 128]);
}

#[test]
fn stealth_and_unicast_modes_answer_arp_with_the_unicast_mac() {
    if !require_root("stealth_and_unicast_modes_answer_arp_with_the_unicast_mac") {
        return;
    }
    let request = arp_request(CLIENT_MAC, CLIENT_B1, VIP4);
    // ip-stealth never sends from the carp MAC; ip-unicast does.
    for (mode, src) in [
        (LB_MODE_IP_STEALTH, DEV_MAC),
        (LB_MODE_IP_UNICAST, UCAST_MAC),
    ] {
        let mut dp = balanced_dataplane(mode);
        set_masters(&mut dp, Masters::Leader);
        assert_eq!(
            run(&dp, &request),
            (XDP_TX, arp_reply_from(src, UCAST_MAC)),
            "mode {mode}"
        );
        // Frames come to the unicast MAC and pass unchanged.
        let b0 = udp4(UCAST_MAC, CLIENT_B0, VIP4);
        assert_eq!(run(&dp, &b0), (XDP_PASS, b0.clone()), "mode {mode}");
        let b1 = udp4(UCAST_MAC, CLIENT_B1, VIP4);
        assert_eq!(run(&dp, &b1).0, XDP_DROP, "mode {mode}");
    }
}

#[test]
fn both_nodes_here_take_every_bucket() {
    if !require_root("both_nodes_here_take_every_bucket") {
        return;
    }
    let mut dp = balanced_dataplane(LB_MODE_IP);
    set_masters(&mut dp, Masters::Both);
    for client in [CLIENT_B0, CLIENT_B1] {
        assert_eq!(run(&dp, &udp4(MCAST_MAC, client, VIP4)).0, XDP_PASS);
    }
    // Forgetting the group: the multicast carp MAC is nobody's, the frame passes untouched.
    dp.remove_lb_group(IFINDEX, LEADER).unwrap();
    let b1 = udp4(MCAST_MAC, CLIENT_B1, VIP4);
    assert_eq!(run(&dp, &b1), (XDP_PASS, b1.clone()));
}

const TC_ACT_OK: u32 = 0;
const TC_ACT_SHOT: u32 = 2;

/// Runs the egress guard on `frame` leaving the carp interface (ifindex 1, as the program
/// sees it under BPF_PROG_TEST_RUN); the verdict and the frame as it leaves.
fn run_guard(dp: &Dataplane, frame: &[u8]) -> (u32, Vec<u8>) {
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
    (result.return_value, out)
}

#[test]
fn the_guard_lets_any_node_master_send_and_hides_the_carp_mac() {
    if !require_root("the_guard_lets_any_node_master_send_and_hides_the_carp_mac") {
        return;
    }
    // A reply from the carp interface, as its kernel sends it: from the unicast carp MAC.
    let reply = {
        let udp = [0x00, 0x35, 0x30, 0x39, 0x00, 0x08, 0x00, 0x00];
        ethernet(
            CLIENT_MAC,
            UCAST_MAC,
            0x0800,
            &ipv4(VIP4, CLIENT_B1, 17, 64, &udp),
        )
    };
    let mut from_dev = reply.clone();
    from_dev[6..12].copy_from_slice(&DEV_MAC);
    for (mode, leaves_as) in [
        (LB_MODE_IP, &from_dev),
        (LB_MODE_IP_STEALTH, &from_dev),
        (LB_MODE_IP_UNICAST, &reply),
    ] {
        let mut dp = balanced_dataplane(mode);
        dp.set_guard(IFINDEX, IFINDEX, LEADER).unwrap();
        // Master of the other node only: it serves buckets, so it may answer.
        set_masters(&mut dp, Masters::Other);
        assert_eq!(
            run_guard(&dp, &reply),
            (TC_ACT_OK, leaves_as.clone()),
            "mode {mode}"
        );
        // Master of nothing live: silent, counted.
        set_masters(&mut dp, Masters::OtherExpired);
        let before = dp.counters().unwrap().egress_dropped_not_master;
        assert_eq!(run_guard(&dp, &reply).0, TC_ACT_SHOT, "mode {mode}");
        assert_eq!(dp.counters().unwrap().egress_dropped_not_master, before + 1);
    }
}

#[test]
fn the_decision_reads_the_group_entry_only() {
    if !require_root("the_decision_reads_the_group_entry_only") {
        return;
    }
    let mut dp = balanced_dataplane(LB_MODE_IP);
    set_masters(&mut dp, Masters::Leader);
    // carp_vhids says this host is the live master of the other node (and not of the
    // leader): ignored, the group entry decides buckets, ARP and the guard.
    let now = monotonic_now().unwrap();
    let live = VhidDataplaneState::Master {
        until: now + Duration::from_secs(60),
    };
    let second = Duration::from_secs(1);
    dp.set_vhid(IFINDEX, OTHER, second, live).unwrap();
    dp.set_vhid(IFINDEX, LEADER, second, VhidDataplaneState::Backup)
        .unwrap();
    let b0 = udp4(MCAST_MAC, CLIENT_B0, VIP4);
    let b1 = udp4(MCAST_MAC, CLIENT_B1, VIP4);
    assert_eq!(run(&dp, &b0).0, XDP_PASS);
    assert_eq!(run(&dp, &b1).0, XDP_DROP);
    let request = arp_request(CLIENT_MAC, CLIENT_B1, VIP4);
    assert_eq!(run(&dp, &request).0, XDP_TX);

    // An owner change is one write of the group entry: the bucket moves at once.
    assert!(
        dp.set_lb_node(IFINDEX, LEADER, OTHER, second, live)
            .unwrap()
    );
    assert_eq!(run(&dp, &b1).0, XDP_PASS);
    let group = dp.lb_group(IFINDEX, LEADER).unwrap();
    assert_eq!(group.nodes[1].state, carp_common::maps::VHID_STATE_MASTER);
    assert_eq!(group.nodes[1].vmac, [0, 0, 0x5e, 0, 1, OTHER]);

    // A master's refresh (same state, a later deadline) is a store into the node's
    // deadline slot: neither the group entry nor the node's carp_vhids entry changes.
    let before = dp.lb_group(IFINDEX, LEADER).unwrap();
    let record_before = dp.vhid(IFINDEX, OTHER).unwrap();
    let later = VhidDataplaneState::Master {
        until: now + Duration::from_secs(120),
    };
    assert!(
        dp.set_lb_node(IFINDEX, LEADER, OTHER, second, later)
            .unwrap()
    );
    let group = dp.lb_group(IFINDEX, LEADER).unwrap();
    assert_eq!(group, before);
    assert_eq!(dp.vhid(IFINDEX, OTHER).unwrap(), record_before);
    assert_eq!(
        dp.deadline(group.nodes[1].deadline_slot),
        Some(now + Duration::from_secs(120))
    );
    // The node's carp_vhids entry has no deadline slot: a live master only in the group.
    assert_eq!(
        record_before.deadline_slot,
        carp_common::maps::NO_DEADLINE_SLOT
    );
    // A deadline that passed silences the node's bucket without any write of the entry.
    let passed = VhidDataplaneState::Master {
        until: Duration::from_nanos(12345),
    };
    dp.set_lb_node(IFINDEX, LEADER, OTHER, second, passed)
        .unwrap();
    assert_eq!(dp.lb_group(IFINDEX, LEADER).unwrap(), before);
    assert_eq!(run(&dp, &b1).0, XDP_DROP);
    dp.set_lb_node(IFINDEX, LEADER, OTHER, second, later)
        .unwrap();
    assert_eq!(run(&dp, &b1).0, XDP_PASS);
    // A change of state also records the state (without a deadline) in carp_vhids, for
    // the advert filter.
    assert!(
        dp.set_lb_node(IFINDEX, LEADER, OTHER, second, VhidDataplaneState::Backup)
            .unwrap()
    );
    let record = dp.vhid(IFINDEX, OTHER).unwrap();
    assert_eq!(
        (record.state, record.deadline_slot),
        (
            carp_common::maps::VHID_STATE_BACKUP,
            carp_common::maps::NO_DEADLINE_SLOT
        )
    );
    assert_eq!(
        dp.deadline(group.nodes[1].deadline_slot),
        Some(Duration::ZERO)
    );
    assert_eq!(run(&dp, &b1).0, XDP_DROP);

    // A node of no known group is not stored there.
    assert!(!dp.set_lb_node(IFINDEX, LEADER, 9, second, live).unwrap());
    dp.remove_lb_group(IFINDEX, LEADER).unwrap();
    assert!(
        !dp.set_lb_node(IFINDEX, LEADER, OTHER, second, live)
            .unwrap()
    );
}

#[test]
fn the_fail_silent_deadline_in_the_group_entry() {
    if !require_root("the_fail_silent_deadline_in_the_group_entry") {
        return;
    }
    // Master of both nodes; the other node's deadline passes (its carpd stopped
    // refreshing): its bucket, and only it, stops being accepted, and ARP (the leader's)
    // is still answered.
    let mut dp = balanced_dataplane(LB_MODE_IP);
    set_masters(&mut dp, Masters::Both);
    let b0 = udp4(MCAST_MAC, CLIENT_B0, VIP4);
    let b1 = udp4(MCAST_MAC, CLIENT_B1, VIP4);
    assert_eq!(run(&dp, &b1).0, XDP_PASS);
    let now = monotonic_now().unwrap();
    let expired = VhidDataplaneState::Master {
        until: now - Duration::from_nanos(1),
    };
    let second = Duration::from_secs(1);
    dp.set_lb_node(IFINDEX, LEADER, OTHER, second, expired)
        .unwrap();
    assert_eq!(run(&dp, &b0).0, XDP_PASS);
    assert_eq!(run(&dp, &b1).0, XDP_DROP);
    assert_eq!(
        run(&dp, &arp_request(CLIENT_MAC, CLIENT_B1, VIP4)).0,
        XDP_TX
    );
    // The leader's deadline passes too: nothing is accepted, ARP is not answered.
    dp.set_lb_node(IFINDEX, LEADER, LEADER, second, expired)
        .unwrap();
    assert_eq!(run(&dp, &b0).0, XDP_DROP);
    assert_eq!(
        run(&dp, &arp_request(CLIENT_MAC, CLIENT_B1, VIP4)).0,
        XDP_DROP
    );
    // A crashed run's groups are silenced with everything else.
    set_masters(&mut dp, Masters::Both);
    dp.silence_all().unwrap();
    assert_eq!(run(&dp, &b0).0, XDP_DROP);
    assert_eq!(run(&dp, &b1).0, XDP_DROP);
}

#[test]
fn the_guard_announces_the_carp_mac_in_the_kernels_arp() {
    if !require_root("the_guard_announces_the_carp_mac_in_the_kernels_arp") {
        return;
    }
    // The kernel of carp0 resolving a neighbour: from and announcing its own (unicast) MAC.
    let request = arp_request(UCAST_MAC, VIP4, ROUTER);
    // In `ip` mode it leaves from the carpdev's MAC and announces the multicast carp MAC
    // (what ARP answers announce); in `ip-stealth` the unicast MAC is the carp MAC; in
    // `ip-unicast` the frame leaves as it is.
    let with = |src: [u8; 6], sha: [u8; 6]| {
        let mut f = arp_request(sha, VIP4, ROUTER);
        f[6..12].copy_from_slice(&src);
        f
    };
    for (mode, leaves_as) in [
        (LB_MODE_IP, with(DEV_MAC, MCAST_MAC)),
        (LB_MODE_IP_STEALTH, with(DEV_MAC, UCAST_MAC)),
        (LB_MODE_IP_UNICAST, request.clone()),
    ] {
        let mut dp = balanced_dataplane(mode);
        dp.set_guard(IFINDEX, IFINDEX, LEADER).unwrap();
        set_masters(&mut dp, Masters::Other);
        assert_eq!(
            run_guard(&dp, &request),
            (TC_ACT_OK, leaves_as),
            "mode {mode}"
        );
    }
    // Only the carp interface's own MAC is replaced: another sender address (a tool
    // writing its own ARP) and what is not Ethernet/IPv4 ARP leave untouched but for
    // the Ethernet source.
    let mut dp = balanced_dataplane(LB_MODE_IP);
    dp.set_guard(IFINDEX, IFINDEX, LEADER).unwrap();
    set_masters(&mut dp, Masters::Leader);
    let other_sha = arp_request(CLIENT_MAC, VIP4, ROUTER);
    let mut want = other_sha.clone();
    want[6..12].copy_from_slice(&DEV_MAC);
    assert_eq!(run_guard(&dp, &other_sha), (TC_ACT_OK, want));
    // The neighbour's answer goes to the announced MAC; XDP hands it to the carp
    // interface under its own (unicast) MAC on every host, as any frame to the carp MAC.
    let answer = arp_reply(CLIENT_MAC, ROUTER, MCAST_MAC, VIP4);
    let before = dp.counters().unwrap();
    assert_eq!(run(&dp, &answer), (XDP_PASS, unicast_again(&answer)));
    assert!(counter_deltas(&before, &dp.counters().unwrap()).is_empty());
    let mut not_ipv4 = request.clone();
    not_ipv4[16..18].copy_from_slice(&0x86ddu16.to_be_bytes());
    let mut want = not_ipv4.clone();
    want[6..12].copy_from_slice(&DEV_MAC);
    assert_eq!(run_guard(&dp, &not_ipv4), (TC_ACT_OK, want));
}
