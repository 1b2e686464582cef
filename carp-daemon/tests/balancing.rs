//! OpenBSD's load balancing end to end (`carpnodes` + `balancing`), carpd from its binary on
//! a plain learning bridge: several hosts share 192.0.2.1 and each takes the packets of
//! the buckets whose node it masters. A client floods UDP from 256 source addresses (raw
//! frames to the carp MAC); every packet must be taken by exactly one host (the XDP
//! program's `lb_accepted` counters add up to what was sent), each host's share within 10
//! points of its expected share; SIGKILL, SIGTERM and demotion move nodes between hosts.
mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use carp_tests::{Signal, frames, wait_until};
use common::*;

/// advbase 1 with skews 0 and 100: a node's backup declares it down after
/// 3 × (1 + 100/256) s ≈ 4.2 s.
const ADVBASE: u8 = 1;
const PREFERRED: u8 = 0;
const OTHER: u8 = 100;

/// hostname.carp0 of host `index` of `hosts`: node vhids 1..=hosts, host i prefers node
/// i + 1.
fn balanced_carp0(host: &carp_tests::Host, index: usize, hosts: usize, mode: &str) -> String {
    let nodes: Vec<String> = (0..hosts)
        .map(|n| {
            let skew = if n == index { PREFERRED } else { OTHER };
            format!("{}:{skew}", n + 1)
        })
        .collect();
    format!(
        "inet {VIP4} 255.255.255.0 carpdev {} carpnodes {} balancing {mode} advbase {ADVBASE} pass {PASS}\n",
        host.ifname(),
        nodes.join(",")
    )
}

/// The state of every node of carp0 on a router, by vhid, from `carpctl --json carp0`.
fn node_states(r: &Router<'_>) -> Option<Vec<(u64, String)>> {
    let out = r.carpctl(&["--json", "carp0"]);
    if !out.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
    let iface = v.as_array().and_then(|a| a.first()).unwrap_or(&v);
    let nodes = iface["nodes"].as_array()?;
    Some(
        nodes
            .iter()
            .map(|n| {
                (
                    n["vhid"].as_u64().unwrap_or(0),
                    n["state"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect(),
    )
}

/// The vhids a router masters.
fn mastered(r: &Router<'_>) -> Vec<u64> {
    node_states(r)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, s)| s == "MASTER")
        .map(|(v, _)| v)
        .collect()
}

fn wait_mastered(r: &Router<'_>, want: &[u64], timeout: Duration) {
    if wait_until(timeout, || mastered(r) == want).is_err() {
        panic!(
            "{} masters {:?}, not {want:?}, after {timeout:?}; carpd log:\n{}",
            r.host.name(),
            node_states(r),
            r.log()
        );
    }
}

fn lb_counters(r: &Router<'_>) -> (u64, u64) {
    let out = r.carpctl(&["--json", "stats"]);
    assert!(out.success(), "carpctl stats: {}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("stats JSON");
    let get = |name: &str| v["dataplane"][name].as_u64().unwrap_or(0);
    (get("lb_accepted"), get("lb_dropped_other_bucket"))
}

/// 256 UDP datagrams to the virtual address, each from another source (198.51.100.0/24),
/// sent to `dst_mac`.
fn flood_frames(dst_mac: [u8; 6], client_mac: [u8; 6]) -> Vec<Vec<u8>> {
    (0..=255u8)
        .map(|last| {
            let src = Ipv4Addr::new(198, 51, 100, last);
            let udp = [0x30, 0x39, 0x00, 0x09, 0x00, 0x08, 0x00, 0x00];
            let ip = frames::ipv4(src, VIP4, 17, 64, &udp);
            frames::ethernet(dst_mac, client_mac, 0x0800, &ip)
        })
        .collect()
}

/// Sends the flood and returns how many packets each router took; asserts that each was
/// taken by exactly one of them (every router saw all and took or dropped each).
fn flood_shares(lab: &carp_tests::Lab, routers: &[&Router<'_>], dst_mac: [u8; 6]) -> Vec<u64> {
    shares_of(lab, routers, flood_frames(dst_mac, lab.client().mac()))
}

/// [`flood_shares`] for any flood of frames the routers must each decide on.
fn shares_of(lab: &carp_tests::Lab, routers: &[&Router<'_>], frames: Vec<Vec<u8>>) -> Vec<u64> {
    let before: Vec<(u64, u64)> = routers.iter().map(|r| lb_counters(r)).collect();
    let sent = frames.len() as u64;
    inject(lab, frames, 1);
    let delta = || -> Vec<(u64, u64)> {
        routers
            .iter()
            .zip(&before)
            .map(|(r, b)| {
                let (a, d) = lb_counters(r);
                (a - b.0, d - b.1)
            })
            .collect()
    };
    // Every router decides on every packet; wait until all have.
    let _ = wait_until(Duration::from_secs(5), || {
        delta().iter().all(|(a, d)| a + d == sent)
    });
    let d = delta();
    for (r, (a, dropped)) in routers.iter().zip(&d) {
        assert_eq!(
            a + dropped,
            sent,
            "{} decided on {} of {sent} packets",
            r.host.name(),
            a + dropped
        );
    }
    let taken: Vec<u64> = d.iter().map(|(a, _)| *a).collect();
    assert_eq!(
        taken.iter().sum::<u64>(),
        sent,
        "packets taken per router {taken:?}: each of {sent} must be taken exactly once"
    );
    taken
}

fn assert_shares(taken: &[u64], expected: &[f64]) {
    let total: u64 = taken.iter().sum();
    for (i, (t, e)) in taken.iter().zip(expected).enumerate() {
        let share = *t as f64 / total as f64;
        assert!(
            (share - e).abs() <= 0.10,
            "router {i} took {share:.2} of the packets, expected {e:.2} ± 0.10 ({taken:?})"
        );
    }
}

/// Starts carpd on `hosts` routers with balanced configurations and waits until router i
/// masters node i + 1 only.
fn balanced<'a>(lab: &'a carp_tests::Lab, hosts: usize, mode: &str) -> Vec<Router<'a>> {
    let routers: Vec<Router<'a>> = (0..hosts)
        .map(|i| {
            let host = lab.host(i);
            Router::start(lab, host, &balanced_carp0(host, i, hosts, mode), &[])
        })
        .collect();
    for (i, r) in routers.iter().enumerate() {
        wait_mastered(r, &[i as u64 + 1], Duration::from_secs(15));
    }
    routers
}

const MCAST_MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x01, 0x01];
const UCAST_MAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x01];

#[test]
fn two_hosts_share_the_address_and_sigkill_moves_a_bucket() {
    let Some(lab) = lab("e2e_lb_two", 2) else {
        return;
    };
    let routers = balanced(&lab, 2, "ip");
    let (a, b) = (&routers[0], &routers[1]);

    // The multicast carp MAC is in each carpdev's receive filter (a veth takes every
    // frame, so only the filter itself shows it).
    for r in [a, b] {
        let maddr = ok(r
            .host
            .run(["ip", "maddr", "show", "dev", r.host.ifname()])
            .unwrap());
        assert!(
            maddr.contains("01:00:5e:00:01:01"),
            "{}: carp MAC not in the receive filter:\n{maddr}",
            r.host.name()
        );
    }
    // carpctl shows the nodes as ifconfig does.
    let text = ok(a.carpctl(&["carp0"]));
    assert!(text.contains("\tlladdr 01:00:5e:00:01:01\n"), "{text}");
    assert!(
        text.contains(&format!(
            "carp: carpdev {} advbase 1 balancing ip\n",
            a.host.ifname()
        )),
        "{text}"
    );
    assert!(
        text.contains("\t\tstate MASTER vhid 1 advskew 0\n"),
        "{text}"
    );
    assert!(
        text.contains("\t\tstate BACKUP vhid 2 advskew 100\n"),
        "{text}"
    );

    // Per-node settings live in carpnodes: carpctl refuses them.
    let refused = a.carpctl(&["carp0", "advskew", "5"]);
    assert!(!refused.success(), "{}", refused.stdout);
    assert!(refused.stderr.contains("carpnodes"), "{}", refused.stderr);

    let taken = flood_shares(&lab, &[a, b], MCAST_MAC);
    assert_shares(&taken, &[0.5, 0.5]);

    // The client's own traffic (ARP answered by node 1's master with the multicast MAC,
    // echo answered by whoever holds the client's bucket) gets through.
    assert!(
        lab.client().ping(std::net::IpAddr::V4(VIP4)).unwrap(),
        "ping the shared address"
    );
    // No duplicate replies: one host only takes the bucket of the client's echoes.
    let vip = VIP4.to_string();
    let echo = lab
        .client()
        .run(["ping", "-n", "-c", "20", "-i", "0.01", "-W", "1", &vip])
        .unwrap();
    assert!(
        echo.success() && echo.stdout.contains(" 20 received") && !echo.stdout.contains("DUP!"),
        "{}{}",
        echo.stdout,
        echo.stderr
    );

    // The kernel resolving a neighbour from carp0 announces the multicast carp MAC (the
    // egress guard rewrites the ARP sender address, as OpenBSD's arprequest sends the carp
    // lladdr): the neighbour keeps the MAC the leader's master answers with, and its
    // answer, sent there, comes back to carp0. The router holding the client's bucket
    // pings it through carp0 (the reply is balanced as any packet).
    let client = lab.client().addr4();
    let owner = carp_common::lb::bucket(
        carp_common::lb::fold_v4(&client.octets(), &VIP4.octets()),
        2,
    ) as usize;
    let pinger = &routers[owner];
    let ping = pinger
        .host
        .run([
            "ping",
            "-c",
            "1",
            "-W",
            "3",
            "-I",
            "carp0",
            &client.to_string(),
        ])
        .unwrap();
    assert!(
        ping.success(),
        "{} pings the client through carp0: {}{}",
        pinger.host.name(),
        ping.stdout,
        ping.stderr
    );
    let client_mac = lab
        .client()
        .mac()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let resolved = ok(pinger
        .host
        .run(["ip", "neigh", "show", &client.to_string(), "dev", "carp0"])
        .unwrap());
    assert!(
        resolved.contains(&client_mac),
        "carp0 resolved the client: {resolved}"
    );
    let cached = ok(lab
        .client()
        .run(["ip", "neigh", "show", &VIP4.to_string()])
        .unwrap());
    assert!(
        cached.contains("01:00:5e:00:01:01"),
        "the client caches the carp MAC for the address: {cached}"
    );

    // SIGKILL of b: its bucket goes dark at the fail-silent deadline and a takes node 2
    // over after master-down; then a takes everything.
    b.signal(Signal::SIGKILL);
    wait_mastered(a, &[1, 2], Duration::from_secs(10));
    let (before, _) = lb_counters(a);
    inject(&lab, flood_frames(MCAST_MAC, lab.client().mac()), 1);
    let sent = 256;
    if wait_until(Duration::from_secs(5), || lb_counters(a).0 - before == sent).is_err() {
        panic!(
            "after the takeover a took {} of {sent}",
            lb_counters(a).0 - before
        );
    }
}

#[test]
fn sigterm_and_demotion_move_nodes() {
    let Some(lab) = lab("e2e_lb_handover", 2) else {
        return;
    };
    let routers = balanced(&lab, 2, "ip-stealth");
    let (a, b) = (&routers[0], &routers[1]);
    let taken = flood_shares(&lab, &[a, b], UCAST_MAC);
    assert_shares(&taken, &[0.5, 0.5]);

    // Demoting a's groups moves every node it masters to b at once (advertised demotion).
    ok(a.carpctl(&["-g", "carp", "carpdemote", "1"]));
    wait_mastered(b, &[1, 2], Duration::from_secs(3));
    wait_mastered(a, &[], Duration::from_secs(3));
    let taken = flood_shares(&lab, &[a, b], UCAST_MAC);
    assert_eq!(taken, [0, 256]);

    // Undemoted, a gets nothing back without preempt; SIGTERM of b then bows out of both
    // nodes and a takes them at once (long before master-down).
    ok(a.carpctl(&["-g", "carp", "-carpdemote", "1"]));
    b.signal(Signal::SIGTERM);
    wait_mastered(a, &[1, 2], Duration::from_secs(2));
    assert!(
        b.wait_exit(Duration::from_secs(10)),
        "carpd exits cleanly:\n{}",
        b.log()
    );

    // ip-stealth: nothing left a from the carp MAC, so the bridge never learnt it.
    assert!(
        lab.fdb_ports(&UCAST_MAC).unwrap().is_empty(),
        "the bridge learnt the carp MAC in ip-stealth mode"
    );
}

/// 300 UDP flows over IPv6 to the virtual IPv6 address, from 300 sources of
/// 2001:db8:ff::/48 that differ in several 32-bit words (the fold XORs all of them).
fn flood_frames6(dst_mac: [u8; 6], client_mac: [u8; 6]) -> Vec<Vec<u8>> {
    (0..300u16)
        .map(|i| {
            let src = Ipv6Addr::new(0x2001, 0xdb8, 0xff, i % 7, 0, i.wrapping_mul(0x9e37), 0, i);
            let udp = [0x30, 0x39, 0x00, 0x09, 0x00, 0x08, 0x00, 0x00];
            let ip = frames::ipv6(src, VIP6, 17, 64, &udp);
            frames::ethernet(dst_mac, client_mac, 0x86dd, &ip)
        })
        .collect()
}

#[test]
fn two_hosts_share_an_ipv6_address() {
    let Some(lab) = lab("e2e_lb_ipv6", 2) else {
        return;
    };
    // The interface holds an IPv6 address beside the IPv4 one; the flood is IPv6 only.
    let routers: Vec<Router<'_>> = (0..2)
        .map(|i| {
            let host = lab.host(i);
            let config = format!("{}inet6 {VIP6} 64\n", balanced_carp0(host, i, 2, "ip"));
            Router::start(&lab, host, &config, &[])
        })
        .collect();
    for (i, r) in routers.iter().enumerate() {
        wait_mastered(r, &[i as u64 + 1], Duration::from_secs(15));
    }
    let (a, b) = (&routers[0], &routers[1]);
    let frames = flood_frames6(MCAST_MAC, lab.client().mac());
    // What the buckets should be, by OpenBSD's fold: the expected share of each host.
    let bucket1 = frames
        .iter()
        .filter(|f| {
            let src: [u8; 16] = f[22..38].try_into().unwrap();
            carp_common::lb::bucket(carp_common::lb::fold_v6(&src, &VIP6.octets()), 2) == 1
        })
        .count() as f64
        / frames.len() as f64;
    let taken = shares_of(&lab, &[a, b], frames);
    assert_shares(&taken, &[1.0 - bucket1, bucket1]);
    assert_shares(&taken, &[0.5, 0.5]);
}

#[test]
fn three_hosts_take_a_third_each() {
    let Some(lab) = lab("e2e_lb_three", 3) else {
        return;
    };
    let routers = balanced(&lab, 3, "ip");
    let refs: Vec<&Router<'_>> = routers.iter().collect();
    let taken = flood_shares(&lab, &refs, MCAST_MAC);
    assert_shares(&taken, &[1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]);
}

#[test]
fn ip_unicast_on_ports_that_flood() {
    let Some(lab) = lab("e2e_lb_unicast", 2) else {
        return;
    };
    // ip-unicast leaves reaching every host to the network: here the hosts' switch ports do
    // not learn, so the bridge floods frames for the carp MAC to both.
    for i in 0..2 {
        let h = lab.host(i);
        let cmd = h.switch_netns().command([
            "bridge",
            "link",
            "set",
            "dev",
            h.switch_port(),
            "learning",
            "off",
        ]);
        carp_tests::process::run_ok(cmd, Duration::from_secs(5)).expect("bridge link set");
    }
    let routers = balanced(&lab, 2, "ip-unicast");
    let (a, b) = (&routers[0], &routers[1]);
    let taken = flood_shares(&lab, &[a, b], UCAST_MAC);
    assert_shares(&taken, &[0.5, 0.5]);
    assert!(
        lab.client().ping(std::net::IpAddr::V4(VIP4)).unwrap(),
        "ping the shared address"
    );
}

#[test]
fn a_new_passphrase_reaches_every_node_without_a_failover() {
    let Some(lab) = lab("e2e_lb_reload", 2) else {
        return;
    };
    let mut routers = balanced(&lab, 2, "ip");
    // Every node signs with the new passphrase after SIGHUP (applied in place, no failover).
    for (i, r) in routers.iter().enumerate() {
        let text = balanced_carp0(r.host, i, 2, "ip").replace(PASS, "n3w-secret");
        std::fs::write(&r.config, text).unwrap();
    }
    for r in &routers {
        r.signal(Signal::SIGHUP);
    }
    for r in &routers {
        let reloaded = wait_until(Duration::from_secs(5), || {
            r.log().contains("SIGHUP: configuration reloaded")
        });
        assert!(
            reloaded.is_ok(),
            "{} did not reload:
{}",
            r.host.name(),
            r.log()
        );
    }
    for (i, r) in routers.iter().enumerate() {
        assert_eq!(
            mastered(r),
            [i as u64 + 1],
            "{}:
{}",
            r.host.name(),
            r.log()
        );
    }
    // b dies; a takes node 2 over after master-down. b, started afresh with the new
    // passphrase, must accept a's adverts for both nodes and stay backup: a node of a's
    // still signing with the old key would look dead to b, which would take it.
    routers[1].signal(Signal::SIGKILL);
    wait_mastered(&routers[0], &[1, 2], Duration::from_secs(10));
    routers[1].restart(&[]);
    let b = &routers[1];
    let states = |r: &Router<'_>| node_states(r).unwrap_or_default();
    if wait_until(Duration::from_secs(10), || {
        states(b).iter().filter(|(_, s)| s == "BACKUP").count() == 2
    })
    .is_err()
    {
        panic!(
            "restarted b: {:?}
{}",
            states(b),
            b.log()
        );
    }
    // Longer than b's master-down interval (3 × (1 + 100/256) s): b took nothing over.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        mastered(&routers[1]),
        Vec::<u64>::new(),
        "{}",
        routers[1].log()
    );
    assert_eq!(mastered(&routers[0]), [1, 2]);
    let taken = flood_shares(&lab, &[&routers[0], &routers[1]], MCAST_MAC);
    assert_eq!(taken, [256, 0]);
}
