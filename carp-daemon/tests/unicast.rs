//! Unicast peers (OpenBSD's `carppeer`, TOML `peers`) on a switch that carries no CARP
//! multicast, as in clouds and on virtual switches without multicast.
//!
//! The lab's switch is made to drop multicast adverts between the routers: for IPv4 the
//! router ports get `mcast_flood off` (which blocks all multicast, so IPv4 only: neighbour
//! solicitations would go too); for IPv6 an nftables bridge-family rule drops only IP
//! protocol 112 to ff02::12. Each test first shows that this switch breaks multicast CARP
//! (both routers end up master), then that peers elect one master and fail over.
mod common;

use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use carp_tests::{Lab, Signal, wait_until};
use common::*;

const T1: Timers = Timers {
    advbase: 0,
    advskew: 60,
};
const T2: Timers = Timers {
    advbase: 0,
    advskew: 120,
};
const T3: Timers = Timers {
    advbase: 0,
    advskew: 180,
};

/// How long two routers that cannot hear each other take to both be master: the slower
/// one's first master-down timer, with room for a loaded machine.
const SETTLE: Duration = Duration::from_secs(10);

fn in_switch(lab: &Lab, args: &[&str]) {
    let out = Command::new("ip")
        .args(["netns", "exec", lab.switch_netns()])
        .args(args)
        .output()
        .expect("run a command in the switch namespace");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The switch floods no multicast to the routers' ports (IPv4 adverts included).
fn no_multicast_v4(lab: &Lab) {
    for h in lab.hosts() {
        in_switch(
            lab,
            &[
                "bridge",
                "link",
                "set",
                "dev",
                h.switch_port(),
                "mcast_flood",
                "off",
            ],
        );
    }
}

/// The switch drops IPv6 CARP multicast (and only that: neighbour discovery still works).
fn no_multicast_adverts_v6(lab: &Lab) {
    in_switch(lab, &["nft", "add", "table", "bridge", "carp_lab"]);
    in_switch(
        lab,
        &[
            "nft",
            "add chain bridge carp_lab adverts { type filter hook forward priority 0; }",
        ],
    );
    in_switch(
        lab,
        &[
            "nft",
            "add rule bridge carp_lab adverts ip6 daddr ff02::12 ip6 nexthdr 112 counter drop",
        ],
    );
}

/// IPv4 only: vhid 1 with VIP4 on host `i`, with `peers` (none: multicast).
fn config_v4(lab: &Lab, i: usize, t: Timers, peers: &[usize]) -> String {
    let mut c = format!(
        "inet {VIP4} 255.255.255.0 vhid 1 pass {PASS} carpdev {} advbase {} advskew {}\n",
        lab.host(i).ifname(),
        t.advbase,
        t.advskew
    );
    for p in peers {
        c += &format!("carppeer {}\n", lab.host(*p).addr4());
    }
    c
}

/// IPv6 only: vhid 1 with VIP6 on host `i`, with IPv6 `peers`.
fn config_v6(lab: &Lab, i: usize, t: Timers, peers: &[usize]) -> String {
    let mut c = format!(
        "inet6 {VIP6} 64 vhid 1 pass {PASS} carpdev {} advbase {} advskew {}\n",
        lab.host(i).ifname(),
        t.advbase,
        t.advskew
    );
    for p in peers {
        c += &format!("carppeer {}\n", lab.host(*p).addr6().expect("lab has IPv6"));
    }
    c
}

/// Both routers stay as they are for a few master-down intervals of the slower one.
fn stays(r: &Router<'_>, want: &str, t: Timers) {
    let until = Instant::now() + t.master_down() * 3;
    while Instant::now() < until {
        assert_eq!(
            r.state().as_deref(),
            Some(want),
            "{} left {want}; log:\n{}",
            r.host.name(),
            r.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// On this switch multicast CARP ends with two masters: the test's premise.
fn multicast_gives_two_masters(lab: &Lab, config: fn(&Lab, usize, Timers, &[usize]) -> String) {
    let r1 = Router::start(lab, lab.host(0), &config(lab, 0, T1, &[]), &[]);
    let r2 = Router::start(lab, lab.host(1), &config(lab, 1, T2, &[]), &[]);
    r1.wait_state("MASTER", SETTLE);
    r2.wait_state("MASTER", SETTLE);
    r1.signal(Signal::SIGKILL);
    r2.signal(Signal::SIGKILL);
    r1.wait_exit(Duration::from_secs(5));
    r2.wait_exit(Duration::from_secs(5));
}

#[test]
fn ipv4_peers_elect_one_master_where_multicast_gives_two() {
    let Some(lab) = lab("e2e_unicast_v4", 2) else {
        return;
    };
    no_multicast_v4(&lab);
    multicast_gives_two_masters(&lab, config_v4);

    let r1 = Router::start(&lab, lab.host(0), &config_v4(&lab, 0, T1, &[1]), &[]);
    let r2 = Router::start(&lab, lab.host(1), &config_v4(&lab, 1, T2, &[0]), &[]);
    r1.wait_state("MASTER", SETTLE);
    r2.wait_state("BACKUP", SETTLE);
    stays(&r2, "BACKUP", T2);
    assert!(lab.client().ping(IpAddr::V4(VIP4)).unwrap());

    // carpctl shows the peer as OpenBSD's ifconfig does, and in JSON.
    let text = ok(r1.carpctl(&["carp0"]));
    let peer = lab.host(1).addr4().to_string();
    assert!(text.contains(&format!("\tcarppeer {peer}\n")), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(r1.carpctl(&["--json", "carp0"]))).expect("carpctl --json");
    let json = json.as_array().map_or(&json, |a| &a[0]);
    assert_eq!(json["peers"], serde_json::json!([peer]));

    // The adverts on the wire: to the peer's address and MAC, from the virtual MAC, TTL 255.
    let capture = lab
        .host(0)
        .capture_sent("ip proto 112", 0)
        .expect("capture");
    std::thread::sleep(T1.interval() * 4);
    let pcap = capture.stop_and_read().expect("read capture");
    let advert = pcap.packets.first().expect("r1 sent no advert");
    let f = &advert.data;
    assert_eq!(
        &f[..6],
        &lab.host(1).mac(),
        "Ethernet destination: the peer's MAC"
    );
    assert_eq!(
        carp_tests::lab::format_mac(f[6..12].try_into().unwrap()),
        VMAC,
        "Ethernet source: the virtual MAC"
    );
    assert_eq!(f[14 + 8], 255, "TTL");
    assert_eq!(&f[30..34], &lab.host(1).addr4().octets(), "IP destination");
}

#[test]
fn ipv6_peers_elect_one_master_where_multicast_gives_two() {
    let Some(lab) = lab("e2e_unicast_v6", 2) else {
        return;
    };
    no_multicast_adverts_v6(&lab);
    multicast_gives_two_masters(&lab, config_v6);

    let r1 = Router::start(&lab, lab.host(0), &config_v6(&lab, 0, T1, &[1]), &[]);
    let r2 = Router::start(&lab, lab.host(1), &config_v6(&lab, 1, T2, &[0]), &[]);
    r1.wait_state("MASTER", SETTLE);
    r2.wait_state("BACKUP", SETTLE);
    stays(&r2, "BACKUP", T2);

    // Failover over IPv6 alone.
    r1.signal(Signal::SIGKILL);
    r2.wait_state("MASTER", Duration::from_secs(5));
    assert!(lab.client().ping(IpAddr::V6(VIP6)).unwrap());
}

#[test]
fn unicast_failover_on_sigkill_and_link_cut() {
    let Some(lab) = lab("e2e_unicast_failover", 2) else {
        return;
    };
    no_multicast_v4(&lab);
    let bound = T2.master_down() + T2.interval() + Duration::from_millis(600);
    let r1 = Router::start(&lab, lab.host(0), &config_v4(&lab, 0, T1, &[1]), &[]);
    let mut r2 = Router::start(&lab, lab.host(1), &config_v4(&lab, 1, T2, &[0]), &[]);
    r1.wait_state("MASTER", SETTLE);
    r2.wait_state("BACKUP", SETTLE);

    // Link cut of the master: the backup takes over; with link back the old master hears
    // the new one (its peer entry is resolved again) and stays backup (no preempt).
    let cut = Instant::now();
    lab.host(0).cut_link().unwrap();
    let took = time_to_reach(lab.client(), IpAddr::V4(VIP4), Duration::from_secs(10))
        .map(|_| cut.elapsed())
        .expect("the client never reached the VIP again");
    assert!(took <= bound, "failover took {took:?}, bound {bound:?}");
    r2.wait_state("MASTER", Duration::from_secs(5));
    r1.wait_state("INIT", Duration::from_secs(5));
    lab.host(0).restore_link().unwrap();
    r1.wait_state("BACKUP", SETTLE);
    stays(&r1, "BACKUP", T1);

    // SIGKILL of the master's carpd (now r2): r1 takes over.
    let kill = Instant::now();
    r2.signal(Signal::SIGKILL);
    let took = time_to_reach(lab.client(), IpAddr::V4(VIP4), Duration::from_secs(10))
        .map(|_| kill.elapsed())
        .expect("the client never reached the VIP again");
    r1.wait_state("MASTER", Duration::from_secs(5));
    assert!(took <= bound + T1.master_down(), "failover took {took:?}");
    // r2 comes back as backup to r1's unicast adverts.
    r2.restart(&[]);
    r2.wait_state("BACKUP", SETTLE);
    stays(&r2, "BACKUP", T2);
}

#[test]
fn three_routers_with_peer_lists() {
    let Some(lab) = lab("e2e_unicast_three", 3) else {
        return;
    };
    no_multicast_v4(&lab);
    // TOML peer lists: each router lists the other two.
    let toml = |i: usize, t: Timers| {
        let peers: Vec<String> = (0..3)
            .filter(|p| *p != i)
            .map(|p| format!("\"{}\"", lab.host(p).addr4()))
            .collect();
        format!(
            "[[interface]]\nname = \"carp0\"\ncarpdev = \"{}\"\nvhid = 1\npass = \"{PASS}\"\n\
             advbase = {}\nadvskew = {}\naddresses = [\"{VIP4}/24\"]\npeers = [{}]\n",
            lab.host(i).ifname(),
            t.advbase,
            t.advskew,
            peers.join(", ")
        )
    };
    let start = |i: usize, t: Timers| {
        Router::start_files(&lab, lab.host(i), &[("carpd.toml", &toml(i, t))], &[])
    };
    let r1 = start(0, T1);
    let r2 = start(1, T2);
    let r3 = start(2, T3);
    r1.wait_state("MASTER", SETTLE);
    r2.wait_state("BACKUP", SETTLE);
    r3.wait_state("BACKUP", SETTLE);
    stays(&r3, "BACKUP", T3);

    // The master goes: the next best takes over, the third follows it.
    r1.signal(Signal::SIGKILL);
    r2.wait_state("MASTER", Duration::from_secs(5));
    stays(&r3, "BACKUP", T3);
    assert_eq!(r2.state().as_deref(), Some("MASTER"));
    assert!(lab.client().ping(IpAddr::V4(VIP4)).unwrap());
}

#[test]
fn a_peer_configured_only_on_one_side_is_named_in_a_warning() {
    let Some(lab) = lab("e2e_unicast_mixed", 2) else {
        return;
    };
    // A switch that passes multicast: r2 advertises there, r1 only to r2's address.
    let r1 = Router::start(&lab, lab.host(0), &config_v4(&lab, 0, T1, &[1]), &[]);
    let r2 = Router::start(&lab, lab.host(1), &config_v4(&lab, 1, T2, &[]), &[]);
    // Each ignores the other's adverts (OpenBSD does): both become master.
    r1.wait_state("MASTER", SETTLE);
    r2.wait_state("MASTER", SETTLE);
    let r2_addr = lab.host(1).addr4().to_string();
    let r1_addr = lab.host(0).addr4().to_string();
    let warned = |r: &Router<'_>, words: &str, peer: &str| {
        wait_until(SETTLE, || {
            let log = r.log();
            log.contains(words) && log.contains(&format!("peer={peer}"))
        })
        .is_ok()
    };
    assert!(
        warned(&r1, "ignoring multicast adverts", &r2_addr),
        "r1 log:\n{}",
        r1.log()
    );
    assert!(
        warned(&r2, "ignoring unicast adverts", &r1_addr),
        "r2 log:\n{}",
        r2.log()
    );
    // Counted as OpenBSD counts adverts for the wrong interface.
    let stats = ok(r1.carpctl(&["stats"]));
    let line = stats
        .lines()
        .find(|l| l.contains("discarded for bad interface"))
        .unwrap_or_else(|| panic!("{stats}"));
    let n: u64 = line.split_whitespace().next().unwrap().parse().unwrap();
    assert!(n > 0, "{stats}");
    // Rate-limited: one warning, however many adverts came.
    let count = r1.log().matches("ignoring multicast adverts").count();
    assert_eq!(count, 1, "r1 log:\n{}", r1.log());
}

#[test]
fn check_refuses_a_peer_that_is_this_hosts_own_address() {
    let Some(lab) = lab("e2e_unicast_check", 1) else {
        return;
    };
    let host = lab.host(0);
    let dir = lab.workdir().join("check");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hostname.carp0");
    let own = host.addr4();
    std::fs::write(
        &file,
        format!(
            "inet {VIP4} 255.255.255.0 vhid 1 pass {PASS} carpdev {}\ncarppeer {own}\n",
            host.ifname()
        ),
    )
    .unwrap();
    let check = host
        .run([carpd_bin(), "--check", "--config", file.to_str().unwrap()])
        .unwrap();
    assert!(!check.success(), "{}", check.stdout);
    let want = format!(
        "peer {own} is an address of this host (on {})",
        host.ifname()
    );
    assert!(check.stderr.contains(&want), "{}", check.stderr);
}
