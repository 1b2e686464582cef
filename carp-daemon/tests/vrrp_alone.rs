//! carpd's VRRPv3 routers without a peer: a carp interface turned into a VRRPv3 router and
//! back by SIGHUP, written in FreeBSD's hostname.carpN words (`carpver 3 vrrpprio P
//! vrrpinterval CS`), the fail-silent dataplane of a VRRP master whose carpd is killed, a
//! router's XDP decision records and monitor events, and accept mode.
mod common;

use std::time::{Duration, Instant};

use carp_tests::{Signal, wait_until};
use common::*;

fn wait_status(r: &Router<'_>, line: &str) {
    let shows = || {
        let out = r.carpctl(&["carp0"]);
        out.success() && out.stdout.contains(line)
    };
    if wait_until(Duration::from_secs(15), shows).is_err() {
        panic!(
            "carpctl never showed {line:?}: {}\nlog:\n{}",
            r.carpctl(&["carp0"]).stdout,
            r.log()
        );
    }
}

#[test]
fn sighup_switches_between_carp_and_vrrp() {
    let Some(lab) = lab("e2e_vrrp_reload", 1) else {
        return;
    };
    let h1 = lab.host(0);
    let carp = format!(
        "inet {VIP4}/24 vhid 5 pass {PASS} carpdev {}\n",
        h1.ifname()
    );
    let r1 = Router::start(&lab, h1, &carp, &[]);
    wait_status(
        &r1,
        "\tcarp: MASTER carpdev eth0 vhid 5 advbase 1 advskew 0\n",
    );

    // The address owner (priority 255): it accepts packets to its addresses without
    // accept mode (RFC 5798 6.4.3), so the client's ping gets an answer.
    let vrrp = format!(
        "inet {VIP4}/24 vhid 5 carpdev {} carpver 3 vrrpprio 255 vrrpinterval 50\n",
        h1.ifname()
    );
    std::fs::write(&r1.config, vrrp).unwrap();
    r1.signal(Signal::SIGHUP);
    wait_status(&r1, "\tvrrp: MASTER vrid 5 prio 255 interval 50\n");
    let status = ok(r1.carpctl(&["carp0"]));
    assert!(status.contains("\tlladdr 00:00:5e:00:01:05\n"), "{status}");
    assert!(lab.client().ping(std::net::IpAddr::V4(VIP4)).unwrap());

    std::fs::write(&r1.config, carp).unwrap();
    r1.signal(Signal::SIGHUP);
    wait_status(
        &r1,
        "\tcarp: MASTER carpdev eth0 vhid 5 advbase 1 advskew 0\n",
    );
    r1.signal(Signal::SIGTERM);
    assert!(
        r1.wait_exit(Duration::from_secs(10)),
        "carpd did not exit cleanly"
    );
}

/// Whether one ARP request from the client for the VIP gets an answer within `wait`.
fn arp_answered(lab: &carp_tests::Lab) -> bool {
    let client = lab.client();
    client
        .run([
            "arping",
            "-q",
            "-i",
            client.ifname(),
            "-c",
            "1",
            "-w",
            "0.3",
            &VIP4.to_string(),
        ])
        .is_ok_and(|o| o.success())
}

#[test]
fn a_killed_vrrp_master_falls_silent_on_its_own() {
    let Some(lab) = lab("e2e_vrrp_silent", 1) else {
        return;
    };
    let h1 = lab.host(0);
    let vrrp = format!(
        "[[interface]]\nname = \"carp0\"\ncarpdev = \"{}\"\nprotocol = \"vrrp3\"\nvrid = 1\n\
         advert_interval = 50\naddresses = [\"{VIP4}/24\"]\n",
        h1.ifname()
    );
    let r1 = Router::start_files(&lab, h1, &[("carpd.toml", &vrrp)], &[]);
    r1.wait_state("MASTER", Duration::from_secs(10));
    assert!(arp_answered(&lab), "the live master does not answer ARP");
    let killed = Instant::now();
    r1.signal(Signal::SIGKILL);
    // The deadline is two intervals (1 s) past the last advert: silent by then, with the
    // address still on the dead daemon's interface.
    let silent = wait_until(Duration::from_secs(4), || !arp_answered(&lab));
    assert!(
        silent.is_ok(),
        "still answering ARP {:?} after SIGKILL",
        killed.elapsed()
    );
    eprintln!("VRRP master silent {:?} after SIGKILL", killed.elapsed());
    assert!(
        !arp_answered(&lab) && !arp_answered(&lab),
        "answering again after falling silent"
    );
}

/// `carpctl debug xdp on`: a VRRPv3 advert for the router served here that the XDP program
/// drops (TTL 64) leaves a decision record with the VRID and the carpdev, as CARP's advert
/// drops do; none while the records are off. Counted either way. `carpctl monitor` shows the
/// router's state changes.
#[test]
fn vrrp_routers_reach_the_decision_records_and_the_monitor() {
    use carp_tests::frames::advert_v4;
    let Some(lab) = lab("e2e_vrrp_xdp_log", 1) else {
        return;
    };
    let h1 = lab.host(0);
    let vrrp = format!(
        "inet {VIP4}/24 vhid 5 carpdev {} carpver 3 vrrpprio 120 vrrpinterval 50\n",
        h1.ifname()
    );
    let r1 = Router::start(&lab, h1, &vrrp, &[]);
    wait_status(&r1, "\tvrrp: MASTER vrid 5 prio 120 interval 50\n");
    let client = lab.client();
    let (mac, src) = (client.mac(), client.addr4());
    // Version 3, advertisement, VRID 5, priority 100, one address, interval 100 cs; the
    // checksum is never reached: the TTL is checked first.
    let mut advert = vec![0x31, 5, 100, 1, 0, 100, 0, 0];
    advert.extend_from_slice(&VIP4.octets());
    let bad_ttl = advert_v4(mac, src, 64, &advert);
    let counted = |n: u64| {
        wait_until(Duration::from_secs(5), || {
            let json = r1.carpctl(&["--json", "stats"]).stdout;
            let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
            v["vrrp"]["dataplane"]["vrrp_bad_ttl"] == n
        })
        .unwrap_or_else(|_| panic!("not counted {n} times: {}", ok(r1.carpctl(&["stats"]))));
    };
    let line = format!(
        "vrrp advert dropped: src={src} vrid=5 carpdev={} reason=bad_ttl",
        h1.ifname()
    );
    let lines = |log: &str| log.lines().filter(|l| l.contains(&line)).count();

    inject(&lab, vec![bad_ttl.clone()], 1);
    counted(1);
    ok(r1.carpctl(&["debug", "xdp", "on"]));
    inject(&lab, vec![bad_ttl.clone()], 1);
    counted(2);
    wait_until(Duration::from_secs(5), || lines(&r1.log()) >= 1)
        .unwrap_or_else(|_| panic!("no record {line:?} while on:\n{}", r1.log()));
    ok(r1.carpctl(&["debug", "xdp", "off"]));
    inject(&lab, vec![bad_ttl], 1);
    counted(3);
    let log = r1.log();
    assert_eq!(lines(&log), 1, "records while off:\n{log}");

    // `carpctl monitor` sees the router's changes as a vhid's: here its bow-out.
    let dir = r1.dir.to_str().unwrap();
    let argv = vec![carpctl_bin(), "--state-dir", dir, "--json", "monitor"];
    let monitor = h1.spawn(argv).expect("spawn carpctl monitor");
    let events = || -> Vec<serde_json::Value> {
        let log = monitor.log();
        log.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    // Subscribed once it reports a change made after it started.
    wait_until(Duration::from_secs(10), || {
        ok(r1.carpctl(&["-g", "carp", "carpdemote", "1"]));
        ok(r1.carpctl(&["-g", "carp", "-carpdemote", "1"]));
        events().iter().any(|e| e["event"] == "group_demote")
    })
    .unwrap_or_else(|_| panic!("the monitor saw no demotion:\n{}", monitor.log()));
    r1.signal(Signal::SIGTERM);
    assert!(
        r1.wait_exit(Duration::from_secs(10)),
        "carpd did not exit cleanly"
    );
    monitor
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap_or_else(|| panic!("the monitor outlived carpd:\n{}", monitor.log()));
    assert!(
        events().iter().any(|e| e["event"] == "state"
            && e["interface"] == "carp0"
            && e["vhid"] == 5
            && e["from"] == "MASTER"
            && e["to"] == "INIT"
            && e["reason"] == "VRRP shutdown"),
        "{}",
        monitor.log()
    );
}

/// RFC 5798 6.4.3: a master that is not the address owner and not in accept mode answers
/// ARP for its address (clients must reach the router through it) but drops packets to it:
/// the client's ping gets no answer, counted and recorded by the XDP program. With
/// `accept_mode = true` (a reload) the same ping is answered.
#[test]
fn accept_mode_off_answers_arp_but_not_ping() {
    let Some(lab) = lab("e2e_vrrp_accept", 1) else {
        return;
    };
    let h1 = lab.host(0);
    let toml = |accept: bool| {
        format!(
            "[[interface]]\nname = \"carp0\"\ncarpdev = \"{}\"\nprotocol = \"vrrp3\"\nvrid = 6\n\
             advert_interval = 50\naccept_mode = {accept}\naddresses = [\"{VIP4}/24\"]\n",
            h1.ifname()
        )
    };
    let r1 = Router::start_files(&lab, h1, &[("carpd.toml", &toml(false))], &[]);
    r1.wait_state("MASTER", Duration::from_secs(10));
    ok(r1.carpctl(&["debug", "xdp", "on"]));
    let dropped = || {
        let json = r1.carpctl(&["--json", "stats"]).stdout;
        let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        v["vrrp"]["dataplane"]["vrrp_dropped_accept_mode"]
            .as_u64()
            .unwrap_or(0)
    };
    assert!(arp_answered(&lab), "ARP for the VIP not answered");
    let client = lab.client();
    assert!(
        !client.ping(VIP4).unwrap(),
        "a priority-100 master without accept mode answered a ping to its VIP"
    );
    wait_until(Duration::from_secs(5), || dropped() >= 1).unwrap_or_else(|_| {
        panic!(
            "the dropped ping not counted: {}",
            ok(r1.carpctl(&["stats"]))
        )
    });
    let line = format!(
        "vrrp packet dropped: dst={VIP4} vrid=6 carpdev={} reason=accept_mode_off",
        h1.ifname()
    );
    wait_until(Duration::from_secs(5), || r1.log().contains(&line))
        .unwrap_or_else(|_| panic!("no record {line:?}:\n{}", r1.log()));
    let stats = ok(r1.carpctl(&["stats"]));
    assert!(
        stats.contains(" to a virtual address dropped (accept_mode off)\n"),
        "{stats}"
    );

    std::fs::write(&r1.config, toml(true)).unwrap();
    r1.signal(Signal::SIGHUP);
    // The router is built again and elects: answered once it is master anew.
    wait_until(Duration::from_secs(15), || client.ping(VIP4).unwrap())
        .unwrap_or_else(|_| panic!("accept_mode = true: ping not answered:\n{}", r1.log()));
    let before = dropped();
    assert!(client.ping(VIP4).unwrap());
    assert_eq!(dropped(), before, "a ping dropped with accept_mode = true");
    r1.signal(Signal::SIGTERM);
    assert!(
        r1.wait_exit(Duration::from_secs(10)),
        "carpd did not exit cleanly"
    );
}
