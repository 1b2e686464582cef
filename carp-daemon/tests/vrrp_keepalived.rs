//! carpd as a VRRPv3 router (`protocol = "vrrp3"`) against keepalived 2.2.7 (`vrrp_version
//! 3`) on the plain bridge lab, IPv4 and IPv6: each follows the other's adverts, failover
//! both ways by master-down, priority 0 on SIGTERM, preemption, and the checksum setting.
mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use carp_tests::{Host, Signal, wait_until};
use common::keepalived::{Instance, Keepalived};
use common::*;

const VIP4_CIDR: &str = "192.0.2.1/24";
const VIP6_LL: &str = "fe80::1:1/64";
const VIP6_CIDR: &str = "2001:db8::1/64";

/// carp0 as a VRRP router of the family of `addresses`.
fn vrrp_toml(host: &Host, vrid: u8, priority: u8, addresses: &[&str], extra: &str) -> String {
    let list: Vec<String> = addresses.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "[[interface]]\nname = \"carp0\"\ncarpdev = \"{}\"\nprotocol = \"vrrp3\"\nvrid = {vrid}\n\
         priority = {priority}\nadvert_interval = 100\naddresses = [{}]\n{extra}",
        host.ifname(),
        list.join(", ")
    )
}

/// What keepalived does without `vrrp_strict`: its master answers packets to the VIPs, as
/// the client's pings below expect (carpd's default is the RFC's: it drops them).
const ACCEPT: &str = "accept_mode = true\n";

fn instance(vrid: u8, priority: u8, vips: &[&str]) -> Instance {
    Instance {
        name: "VI_1",
        vrid,
        priority,
        advert_int_cs: 100,
        vips: vips.iter().map(|s| s.to_string()).collect(),
        preempt: true,
    }
}

/// Master_Down_Interval at 1 s for a priority (RFC 5798 6.1).
fn master_down(priority: u8) -> Duration {
    Duration::from_secs(3) + Duration::from_micros((256 - u64::from(priority)) * 1_000_000 / 256)
}

/// Asserts that `cond` stays false for `window`.
fn stays(window: Duration, what: &str, mut broke: impl FnMut() -> bool, log: impl Fn() -> String) {
    if wait_until(window, &mut broke).is_ok() {
        panic!("{what}; log:\n{}", log());
    }
}

#[test]
fn keepalived_master_carpd_backup_then_failover_and_preemption_ipv4() {
    let Some(lab) = lab("e2e_vrrp_ka_v4", 2) else {
        return;
    };
    let (h1, h2) = (lab.host(0), lab.host(1));
    let vips = [VIP4_CIDR];
    let ka = Keepalived::start(&lab, h2, "a", &instance(1, 200, &vips));
    ka.wait_state("MASTER", Duration::from_secs(10));

    // keepalived better: carpd hears it and stays backup past its own master-down.
    let r1 = Router::start_files(
        &lab,
        h1,
        &[("carpd.toml", &vrrp_toml(h1, 1, 100, &vips, ACCEPT))],
        &[],
    );
    r1.wait_state("BACKUP", Duration::from_secs(10));
    stays(
        master_down(100) + Duration::from_secs(1),
        "carpd took over from a live, better keepalived",
        || r1.state().as_deref() != Some("BACKUP"),
        || r1.log(),
    );
    assert_eq!(ka.state().as_deref(), Some("MASTER"));
    let status = ok(r1.carpctl(&["carp0"]));
    assert!(
        status.contains("\tvrrp: BACKUP vrid 1 prio 100 interval 100\n"),
        "{status}"
    );

    // keepalived dies: carpd master within master-down, answering with the virtual MAC.
    let killed = Instant::now();
    ka.kill(h2, &vips.map(str::to_owned));
    r1.wait_state("MASTER", master_down(100) + Duration::from_secs(2));
    let took = killed.elapsed();
    eprintln!(
        "keepalived SIGKILL: carpd MASTER after {took:?} (master down {:?})",
        master_down(100)
    );
    assert!(
        took <= master_down(100) + Duration::from_millis(1500),
        "{took:?}"
    );
    let vip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    assert!(
        lab.client().ping(vip).unwrap(),
        "client cannot reach the VIP"
    );
    assert_eq!(neighbour_mac(lab.client(), vip).as_deref(), Some(VMAC));
    drop(ka);

    // keepalived back with a lower priority: it hears carpd and stays backup.
    let low = Keepalived::start(&lab, h2, "b", &instance(1, 50, &vips));
    low.wait_state("BACKUP", Duration::from_secs(10));
    stays(
        master_down(50) + Duration::from_secs(1),
        "keepalived (lower priority) took over from carpd: it does not accept carpd's adverts",
        || low.state().as_deref() != Some("BACKUP"),
        || low.process.log(),
    );
    assert_eq!(r1.state().as_deref(), Some("MASTER"));
    low.stop();
    drop(low);

    // keepalived back with a higher priority and preempt: it takes over, carpd steps back.
    let high = Keepalived::start(&lab, h2, "c", &instance(1, 200, &vips));
    high.wait_state("MASTER", master_down(200) + Duration::from_secs(3));
    r1.wait_state("BACKUP", Duration::from_secs(3));
    let json = ok(r1.carpctl(&["--json", "carp0"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        v[0]["vrrp"]["adverts_received"].as_u64().unwrap() > 0,
        "{json}"
    );
    assert!(
        v[0]["vrrp"]["became_master"].as_u64().unwrap() >= 1,
        "{json}"
    );
    // carpctl stats counts VRRP apart from CARP: the adverts are VRRP's, none CARP's.
    let stats = ok(r1.carpctl(&["stats"]));
    let vrrp = &stats[stats.find("vrrp:\n").expect("a vrrp: section")..];
    assert!(
        !vrrp.starts_with("vrrp:\n\t0 advertisements received"),
        "{stats}"
    );
    assert!(stats.contains("\t0 packets received (IPv4)\n"), "{stats}");
}

#[test]
fn carpd_master_keepalived_backup_and_sigterm_handover_ipv6() {
    let Some(lab) = lab("e2e_vrrp_ka_v6", 2) else {
        return;
    };
    let (h1, h2) = (lab.host(0), lab.host(1));
    let vips = [VIP6_LL, VIP6_CIDR];
    let r1 = Router::start_files(
        &lab,
        h1,
        &[("carpd.toml", &vrrp_toml(h1, 2, 200, &vips, ACCEPT))],
        &[],
    );
    r1.wait_state("MASTER", Duration::from_secs(10));
    let status = ok(r1.carpctl(&["carp0"]));
    assert!(status.contains("\tlladdr 00:00:5e:00:02:02\n"), "{status}");
    // carpctl's CARP words do not apply to a VRRP interface.
    let refused = r1.carpctl(&["carp0", "advskew", "10"]);
    assert!(!refused.success());
    assert!(
        refused
            .stderr
            .contains("'advskew' does not apply to a VRRP interface"),
        "{}{}",
        refused.stdout,
        refused.stderr
    );

    // keepalived (lower) hears carpd's IPv6 adverts: it stays backup past its master-down.
    let ka = Keepalived::start(&lab, h2, "a", &instance(2, 100, &vips));
    ka.wait_state("BACKUP", Duration::from_secs(10));
    stays(
        master_down(100) + Duration::from_secs(1),
        "keepalived took over from carpd: it does not accept carpd's IPv6 adverts",
        || ka.state().as_deref() != Some("BACKUP"),
        || ka.process.log(),
    );
    let vip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    assert!(
        lab.client().ping(vip).unwrap(),
        "client cannot reach the VIP"
    );
    assert_eq!(
        neighbour_mac(lab.client(), vip).as_deref(),
        Some("00:00:5e:00:02:02"),
        "the IPv6 virtual MAC"
    );

    // carpd stops: priority 0, keepalived takes over after its Skew_Time, not master-down.
    let stopped = Instant::now();
    r1.signal(Signal::SIGTERM);
    ka.wait_state("MASTER", Duration::from_secs(5));
    let took = stopped.elapsed();
    let skew = Duration::from_micros(156 * 1_000_000 / 256);
    eprintln!("carpd SIGTERM: keepalived MASTER after {took:?} (skew {skew:?})");
    assert!(
        took < skew + Duration::from_millis(1200),
        "keepalived took {took:?}: it did not hear priority 0"
    );
    assert!(
        r1.wait_exit(Duration::from_secs(10)),
        "carpd did not exit cleanly"
    );
}

#[test]
fn carpd_follows_keepalived_ipv6_and_the_rfc9568_checksum_is_what_keepalived_refuses() {
    let Some(lab) = lab("e2e_vrrp_ka_sum", 2) else {
        return;
    };
    let (h1, h2) = (lab.host(0), lab.host(1));
    // IPv6: carpd backup behind a better keepalived.
    let vips6 = [VIP6_LL, VIP6_CIDR];
    let ka6 = Keepalived::start(&lab, h2, "v6", &instance(3, 200, &vips6));
    ka6.wait_state("MASTER", Duration::from_secs(10));
    let r6 = Router::start_files(
        &lab,
        h1,
        &[("carpd.toml", &vrrp_toml(h1, 3, 100, &vips6, ""))],
        &[],
    );
    r6.wait_state("BACKUP", Duration::from_secs(10));
    stays(
        master_down(100) + Duration::from_secs(1),
        "carpd took over from a live, better keepalived (IPv6)",
        || r6.state().as_deref() != Some("BACKUP"),
        || r6.log(),
    );
    r6.signal(Signal::SIGTERM);
    assert!(r6.wait_exit(Duration::from_secs(10)));
    ka6.stop();
    drop(ka6);

    // IPv4 with vrrp_checksum = "message-only" (RFC 9568): keepalived 2.2.7 refuses the
    // adverts, so it does not follow carpd; with the default it would (see the test above).
    let vips = [VIP4_CIDR];
    let r1 = Router::start_files(
        &lab,
        h1,
        &[(
            "carpd.toml",
            &vrrp_toml(h1, 4, 200, &vips, "vrrp_checksum = \"message-only\"\n"),
        )],
        &[],
    );
    r1.wait_state("MASTER", Duration::from_secs(10));
    let ka = Keepalived::start(&lab, h2, "v4", &instance(4, 100, &vips));
    wait_until(Duration::from_secs(5), || {
        ka.process.log().contains("Invalid VRRPv3 checksum")
    })
    .unwrap_or_else(|_| {
        panic!(
            "keepalived accepted RFC 9568 checksums; log:\n{}",
            ka.process.log()
        )
    });
    let json = ok(r1.carpctl(&["--json", "carp0"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["vrrp"]["checksum"], "message-only", "{json}");
}
