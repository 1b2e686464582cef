//! Layer 2 as OpenBSD does it (spec "Packet"): adverts leave from the virtual MAC, so a
//! learning switch keeps the virtual MAC on the master's port without any client traffic,
//! and after a partition that made both routers master, the one that stays master pulls the
//! switch back to its port. A plain bridge with veth pairs and a short MAC ageing time.
mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use carp_tests::frames::inet_checksum;
use carp_tests::lab::parse_mac;
use carp_tests::pcap::Packet;
use carp_tests::{Capture, CapturedAdvert, wait_until};
use common::*;

/// advbase 1 as carp_1.sh uses; the backup's skew keeps the roles apart.
const T1: Timers = Timers {
    advbase: 1,
    advskew: 0,
};
const T2: Timers = Timers {
    advbase: 1,
    advskew: 100,
};
/// The bridge forgets a MAC this long after the last frame from it.
const AGEING: Duration = Duration::from_secs(3);

fn vmac() -> [u8; 6] {
    parse_mac(VMAC).expect("VMAC constant")
}

fn adverts(packets: &[Packet]) -> Vec<CapturedAdvert> {
    packets
        .iter()
        .filter_map(|p| CapturedAdvert::parse(&p.data))
        .collect()
}

/// The adverts captured so far (the file is written packet by packet); none while the file
/// is still incomplete.
fn captured(capture: &Capture) -> Vec<CapturedAdvert> {
    carp_tests::pcap::read(capture.path())
        .map(|pcap| adverts(&pcap.packets))
        .unwrap_or_default()
}

fn count(adverts: &[CapturedAdvert], ethertype: u16) -> usize {
    adverts.iter().filter(|a| a.ethertype == ethertype).count()
}

#[test]
fn adverts_leave_from_the_virtual_mac_with_openbsds_headers() {
    let Some(lab) = lab("adverts_leave_from_the_virtual_mac", 2) else {
        return;
    };
    let (r1, _r2) = master_and_backup(&lab, T1, T2, &[]);
    let h1 = lab.host(0);
    let capture = h1
        .capture_sent("ip proto 112 or ip6 proto 112", 0)
        .expect("capture at h1's switch port");
    // Three IPv4 adverts: enough to see the IP id change (two random ids collide with
    // probability 2^-16, three with 2^-32).
    let enough = wait_until(Duration::from_secs(10), || {
        let a = captured(&capture);
        count(&a, 0x0800) >= 3 && count(&a, 0x86dd) >= 1
    });
    let pcap = capture.stop_and_read().expect("read capture");
    let adverts = adverts(&pcap.packets);
    assert!(
        enough.is_ok(),
        "expected 3 IPv4 and 1 IPv6 adverts from the master, captured {adverts:?}; carpd log:\n{}",
        r1.log()
    );

    let h1_link_local = link_local(h1);
    let mut ids = Vec::new();
    for a in &adverts {
        assert_eq!(
            a.eth_src,
            vmac(),
            "Ethernet source is the virtual MAC: {a:?}"
        );
        match a.ethertype {
            0x0800 => {
                let ip = &a.ip;
                assert_eq!(a.eth_dst, [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);
                assert_eq!(ip[0], 0x45, "version 4, no options");
                assert_eq!(ip[1], 0x10, "TOS IPTOS_LOWDELAY");
                assert_eq!(u16::from_be_bytes([ip[2], ip[3]]), 20 + 36, "total length");
                assert_eq!(u16::from_be_bytes([ip[6], ip[7]]), 0x4000, "DF, offset 0");
                assert_eq!(ip[8], 255, "TTL");
                assert_eq!(ip[9], 112, "protocol CARP");
                assert_eq!(inet_checksum(0, &ip[..20]), 0, "header checksum");
                assert_eq!(
                    Ipv4Addr::from(<[u8; 4]>::try_from(&ip[12..16]).unwrap()),
                    h1.addr4()
                );
                assert_eq!(&ip[16..20], &[224, 0, 0, 18]);
                ids.push(u16::from_be_bytes([ip[4], ip[5]]));
            }
            0x86dd => {
                let ip = &a.ip;
                assert_eq!(a.eth_dst, [0x33, 0x33, 0x00, 0x00, 0x00, 0x12]);
                assert_eq!(&ip[..4], &[0x60, 0, 0, 0], "traffic class and flow label 0");
                assert_eq!(u16::from_be_bytes([ip[4], ip[5]]), 36, "payload length");
                assert_eq!(ip[6], 112, "next header CARP");
                assert_eq!(ip[7], 255, "hop limit");
                let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap());
                assert_eq!(src, h1_link_local, "source is the carpdev's link-local");
                assert_eq!(
                    &ip[24..40],
                    &Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12).octets()
                );
            }
            other => panic!("unexpected ethertype {other:#06x} in {a:?}"),
        }
    }
    assert!(
        ids.windows(2).any(|w| w[0] != w[1]),
        "a random IP id per advert, got {ids:?}"
    );
}

#[test]
fn bridge_keeps_the_virtual_mac_on_the_masters_port_without_client_traffic() {
    let Some(lab) = lab("vmac_stays_on_master_port", 2) else {
        return;
    };
    lab.set_bridge_ageing(AGEING).expect("bridge ageing_time");
    let (r1, _r2) = master_and_backup(&lab, T1, T2, &[]);
    // The property itself: no client frame for over three ageing times, so only what the
    // routers send can keep the virtual MAC in the table.
    std::thread::sleep(Duration::from_secs(10));
    let ports = lab.fdb_ports(&vmac()).expect("bridge fdb");
    assert_eq!(
        ports,
        vec![lab.host(0).switch_port().to_owned()],
        "the virtual MAC is learnt on the master's port only; carpd log:\n{}",
        r1.log()
    );
}

#[test]
fn a_healed_partition_leaves_one_master_and_the_switch_on_its_port() {
    let Some(lab) = lab("partition_heals_one_master", 2) else {
        return;
    };
    lab.set_bridge_ageing(AGEING).expect("bridge ageing_time");
    let (r1, r2) = master_and_backup(&lab, T1, T2, &[]);
    let (h1, h2) = (lab.host(0), lab.host(1));

    // Partition: the routers lose each other, both keep the client.
    h1.set_port_isolated(true).expect("isolate h1");
    h2.set_port_isolated(true).expect("isolate h2");
    r2.wait_state("MASTER", T2.master_down() + Duration::from_secs(5));
    assert_eq!(r1.state().as_deref(), Some("MASTER"), "h1 stays master");

    // Heal.
    h1.set_port_isolated(false).expect("heal h1");
    h2.set_port_isolated(false).expect("heal h2");
    let healed = Instant::now();

    // OpenBSD's rule alone settles it: the worse master steps back on the better one's next
    // advert, at most one interval of the better master after the heal. The bound is two
    // intervals; the slack covers carpctl's polling on a loaded machine (a spawn per query).
    let bound = T1.interval() * 2;
    let slack = Duration::from_millis(1500);
    let one_master = wait_until(bound + slack, || r2.state().as_deref() == Some("BACKUP"));
    let took = healed.elapsed();
    assert!(
        one_master.is_ok(),
        "h2 still {:?} {took:?} after the heal (bound {bound:?} + {slack:?} slack); h2 log:\n{}",
        r2.state(),
        r2.log()
    );
    eprintln!("one master again {took:?} after the heal");
    assert_eq!(
        r1.state().as_deref(),
        Some("MASTER"),
        "the better master stays"
    );

    // The switch follows the advert of the master that stayed.
    let port = h1.switch_port().to_owned();
    let on_master_port = || lab.fdb_ports(&vmac()).is_ok_and(|p| p == [port.clone()]);
    assert!(
        wait_until(T1.interval() + slack, on_master_port).is_ok(),
        "the bridge has the virtual MAC on {:?}, not on {port}",
        lab.fdb_ports(&vmac())
    );
    // And it stays there: the backup sends nothing from the virtual MAC.
    let watch_until = Instant::now() + T1.interval() * 2;
    while Instant::now() < watch_until {
        assert!(
            on_master_port(),
            "the virtual MAC moved to {:?}",
            lab.fdb_ports(&vmac())
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let client = lab.client();
    for vip in [IpAddr::V4(VIP4), IpAddr::V6(VIP6)] {
        assert!(
            time_to_reach(client, vip, Duration::from_secs(5)).is_some(),
            "the client does not reach {vip}; h1 log:\n{}",
            r1.log()
        );
    }
    assert_eq!(
        neighbour_mac(client, IpAddr::V4(VIP4)).as_deref(),
        Some(VMAC),
        "the client reaches the VIP at the virtual MAC"
    );
}

/// The link-local address of a host's LAN port.
fn link_local(host: &carp_tests::Host) -> Ipv6Addr {
    let out = host
        .run_ok([
            "ip",
            "-6",
            "-o",
            "addr",
            "show",
            "dev",
            host.ifname(),
            "scope",
            "link",
        ])
        .expect("ip addr");
    out.stdout
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no link-local on {}: {}", host.name(), out.stdout))
}

/// The IPv4 source of the last IPv4 advert captured so far.
fn last_v4_source(capture: &Capture) -> Option<Ipv4Addr> {
    captured(capture).iter().rev().find_map(|a| match a.src {
        IpAddr::V4(src) => Some(src),
        IpAddr::V6(_) => None,
    })
}

#[test]
fn advert_sources_follow_the_carpdevs_addresses() {
    let Some(lab) = lab("advert_sources_follow", 1) else {
        return;
    };
    let h1 = lab.host(0);
    let r1 = Router::start(&lab, h1, &hostname_carp0(h1, T1), &[]);
    r1.wait_state("MASTER", Duration::from_secs(10));
    let capture = h1.capture_sent("ip proto 112", 0).expect("capture");
    let from = |addr: Ipv4Addr, within: Duration| {
        let seen = wait_until(within, || last_v4_source(&capture) == Some(addr));
        assert!(
            seen.is_ok(),
            "adverts not from {addr} within {within:?} (last from {:?}); carpd log:\n{}",
            last_v4_source(&capture),
            r1.log()
        );
    };
    from(h1.addr4(), T1.interval() * 2);

    // The carpdev loses its only IPv4 address: the carp interface's own is the source (spec
    // "Packet"), once the cache has been read again (after the link monitor's address event).
    let own = format!("{}/24", h1.addr4());
    h1.run_ok(["ip", "addr", "del", &own, "dev", h1.ifname()])
        .expect("remove the carpdev's address");
    from(VIP4, Duration::from_secs(5) + T1.interval() * 2);

    // A new carpdev address is picked up quickly: the address event, and a missing one is
    // looked for every second.
    let new = Ipv4Addr::new(192, 0, 2, 31);
    h1.run_ok([
        "ip",
        "addr",
        "add",
        &format!("{new}/24"),
        "dev",
        h1.ifname(),
    ])
    .expect("add a carpdev address");
    from(new, Duration::from_secs(1) + T1.interval() * 2);
    assert_eq!(r1.state().as_deref(), Some("MASTER"));
}
