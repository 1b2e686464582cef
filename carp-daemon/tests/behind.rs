//! Changes behind carpd's back (carp0 deleted, set down, a virtual address removed, the
//! carpdev deleted and created again), a second carpd on the same pin directory, the
//! leftover of a carpd killed mid-creation, and the settings applied in place (pass,
//! up/down) or all or nothing (carpdev), end to end.
mod common;

use std::net::IpAddr;
use std::time::Duration;

use carp_tests::{CapturedAdvert, Host, Lab, Signal, wait_until};
use common::*;

const T1: Timers = Timers {
    advbase: 0,
    advskew: 60,
};
const T2: Timers = Timers {
    advbase: 0,
    advskew: 120,
};

/// A field of carp0 in `carpctl --json carp0`.
fn status_field(r: &Router<'_>, field: &str) -> serde_json::Value {
    let out = ok(r.carpctl(&["--json", "carp0"]));
    let v: serde_json::Value = serde_json::from_str(&out).expect("carpctl JSON");
    let iface = match v {
        serde_json::Value::Array(list) => list.into_iter().next().expect("carp0"),
        other => other,
    };
    iface.get(field).cloned().unwrap_or(serde_json::Value::Null)
}

/// carp0's ifindex as carpd reports it.
fn carp0_ifindex(r: &Router<'_>) -> u64 {
    status_field(r, "ifindex").as_u64().expect("ifindex")
}

/// The addresses the kernel holds on `dev` in `host` (`ip -o addr` words).
fn kernel_addresses(host: &Host, dev: &str) -> String {
    ok(host.run(["ip", "-o", "addr", "show", "dev", dev]).unwrap())
}

/// State changes carpd logged so far, as `FROM->TO` strings, in order.
fn transitions(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| {
            let field = |key: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(key))
                    .map(|v| v.trim_matches('"').to_owned())
            };
            Some(format!("{}->{}", field("from=")?, field("to=")?))
        })
        .collect()
}

/// Waits until carpd's log contains `text`.
fn wait_log(r: &Router<'_>, text: &str, timeout: Duration) {
    if wait_until(timeout, || r.log().contains(text)).is_err() {
        panic!(
            "carpd did not log {text:?} within {timeout:?}; log:\n{}",
            r.log()
        );
    }
}

/// The client reaches the VIPs, IPv4 and IPv6.
fn vips_reachable(lab: &Lab) {
    let client = lab.client();
    for vip in [IpAddr::V4(VIP4), IpAddr::V6(VIP6)] {
        assert!(
            time_to_reach(client, vip, Duration::from_secs(5)).is_some(),
            "client cannot reach {vip}"
        );
    }
}

/// One router alone: after a change behind its back it goes INIT at once, puts carp0 back,
/// and is master again (after its master-down interval), answering the client.
fn single_router_recovers(test: &str, change: &[&str], saw: &str, did: &str, same_ifindex: bool) {
    let Some(lab) = lab(test, 1) else {
        return;
    };
    let host = lab.host(0);
    let r = Router::start(&lab, host, &hostname_carp0(host, T1), &[]);
    r.wait_state("MASTER", Duration::from_secs(10));
    vips_reachable(&lab);
    let before = carp0_ifindex(&r);
    let seen = transitions(&r.log()).len();

    ok(host.run(change.iter().copied()).unwrap());
    wait_log(&r, &format!("carp interface {saw}"), Duration::from_secs(5));
    wait_log(&r, &format!("carp interface {did}"), Duration::from_secs(5));
    r.wait_state("MASTER", Duration::from_secs(10));

    // MASTER -> INIT as soon as the change was seen (the dataplane goes silent with it),
    // then an election from scratch.
    let log = r.log();
    let after: Vec<String> = transitions(&log)[seen..].to_vec();
    assert_eq!(
        after,
        ["MASTER->INIT", "INIT->BACKUP", "BACKUP->MASTER"],
        "{log}"
    );
    let saw_at = log.find(&format!("carp interface {saw}")).unwrap();
    let init_at = log.find("to=INIT").expect("INIT logged");
    let did_at = log.find(&format!("carp interface {did}")).unwrap();
    assert!(
        saw_at < init_at && init_at < did_at,
        "not seen, INIT, then put back:\n{log}"
    );
    assert_eq!(carp0_ifindex(&r) == before, same_ifindex, "{log}");
    let addrs = kernel_addresses(host, "carp0");
    assert!(addrs.contains(&format!("{VIP4}/24")), "{addrs}");
    assert!(addrs.contains(&format!("{VIP6}/64")), "{addrs}");
    let link = ok(host.run(["ip", "link", "show", "carp0"]).unwrap());
    assert!(link.contains(",UP"), "{link}");
    vips_reachable(&lab);
}

#[test]
fn carp0_deleted_by_hand_is_recreated() {
    single_router_recovers(
        "e2e_behind_del",
        &["ip", "link", "del", "carp0"],
        "deleted",
        "recreated",
        false,
    );
}

#[test]
fn carp0_set_down_by_hand_is_set_up_again() {
    single_router_recovers(
        "e2e_behind_down",
        &["ip", "link", "set", "carp0", "down"],
        "set down",
        "set up again",
        true,
    );
}

#[test]
fn a_virtual_address_removed_by_hand_is_added_again() {
    single_router_recovers(
        "e2e_behind_addr",
        &["ip", "addr", "del", "2001:db8::1/64", "dev", "carp0"],
        "virtual address(es) 2001:db8::1/64 removed",
        "addresses added again",
        true,
    );
}

#[test]
fn a_deleted_carpdev_is_used_again_when_it_returns() {
    let Some(lab) = lab("e2e_behind_carpdev", 1) else {
        return;
    };
    let host = lab.host(0);
    let r = Router::start(&lab, host, &hostname_carp0(host, T1), &[]);
    r.wait_state("MASTER", Duration::from_secs(10));
    vips_reachable(&lab);
    let dev = host.ifname();
    let old_ifindex = host.ifindex();

    // Deleting the host's end of the veth takes the switch port and carp0 with it.
    ok(host.run(["ip", "link", "del", dev]).unwrap());
    wait_log(&r, "carpdev deleted", Duration::from_secs(5));
    r.wait_state("INIT", Duration::from_secs(5));
    assert!(!links(host).contains(&"carp0".to_owned()));

    // The same port again, as the lab built it, with a new ifindex.
    let mac = carp_tests::lab::format_mac(&host.mac());
    let switch = lab.switch_netns();
    let port = host.switch_port();
    let ip_switch = |args: &[&str]| {
        let out = std::process::Command::new("ip")
            .arg("-n")
            .arg(switch)
            .args(args)
            .output()
            .expect("run ip");
        assert!(out.status.success(), "ip -n {switch} {args:?}: {out:?}");
    };
    ip_switch(&[
        "link",
        "add",
        port,
        "type",
        "veth",
        "peer",
        "name",
        dev,
        "address",
        &mac,
        "netns",
        host.netns(),
    ]);
    ip_switch(&["link", "set", port, "master", carp_tests::lab::BRIDGE, "up"]);
    ok(host
        .run([
            "ip",
            "addr",
            "add",
            &format!("{}/24", host.addr4()),
            "dev",
            dev,
        ])
        .unwrap());
    if let Some(a6) = host.addr6() {
        ok(host
            .run([
                "ip",
                "addr",
                "add",
                &format!("{a6}/64"),
                "dev",
                dev,
                "nodad",
            ])
            .unwrap());
    }
    ok(host.run(["ip", "link", "set", dev, "up"]).unwrap());

    wait_log(&r, "carpdev is back", Duration::from_secs(5));
    r.wait_state("MASTER", Duration::from_secs(10));
    let new_ifindex = ok(host
        .run(["cat", &format!("/sys/class/net/{dev}/ifindex")])
        .unwrap());
    assert_ne!(new_ifindex.trim(), old_ifindex.to_string());
    let link = ok(host.run(["ip", "-d", "link", "show", "carp0"]).unwrap());
    assert!(link.contains(&format!("carp0@{dev}")), "{link}");
    let xdp = ok(host.run(["ip", "link", "show", dev]).unwrap());
    assert!(
        xdp.contains("xdp"),
        "no XDP program on the new {dev}: {xdp}"
    );
    vips_reachable(&lab);
    let log = r.log();
    assert!(
        transitions(&log).ends_with(&[
            "MASTER->INIT".to_owned(),
            "INIT->BACKUP".to_owned(),
            "BACKUP->MASTER".to_owned()
        ]),
        "{log}"
    );
}

#[test]
fn a_second_carpd_on_the_same_pin_dir_refuses_and_changes_nothing() {
    let Some(lab) = lab("e2e_pin_lock", 1) else {
        return;
    };
    let host = lab.host(0);
    let r = Router::start(&lab, host, &hostname_carp0(host, T1), &[]);
    r.wait_state("MASTER", Duration::from_secs(10));
    let ifindex = carp0_ifindex(&r);
    let pin_dir = lab.pin_dir(host.name());
    let pins_before = ok(host
        .run(["ls", "-R", &pin_dir.display().to_string()])
        .unwrap());
    let seen = transitions(&r.log()).len();

    let other_state = lab.workdir().join("second-state");
    let second = host
        .run([
            carpd_bin(),
            "--config",
            &r.config.display().to_string(),
            "--state-dir",
            &other_state.display().to_string(),
            "--pin-dir",
            &pin_dir.display().to_string(),
            "--xdp-mode",
            "generic",
        ])
        .unwrap();
    assert!(!second.success(), "the second carpd started: {second:?}");
    let text = format!("{}{}", second.stdout, second.stderr);
    let pid = r.process.as_ref().unwrap().pid();
    assert!(
        text.contains(&format!("pin directory {} is in use", pin_dir.display()))
            && text.contains(&format!("pid {pid}")),
        "{text}"
    );
    assert!(
        !other_state.exists(),
        "the second carpd created its state directory"
    );

    // The first one is untouched: same interface, same pins, still master and answering.
    assert_eq!(carp0_ifindex(&r), ifindex);
    let pins_after = ok(host
        .run(["ls", "-R", &pin_dir.display().to_string()])
        .unwrap());
    assert_eq!(pins_before, pins_after);
    vips_reachable(&lab);
    assert_eq!(r.state().as_deref(), Some("MASTER"));
    assert_eq!(transitions(&r.log()).len(), seen, "{}", r.log());
}

#[test]
fn a_half_made_carp_interface_does_not_block_the_start() {
    let Some(lab) = lab("e2e_half_made", 1) else {
        return;
    };
    let host = lab.host(0);
    // What a carpd killed between creating carp0 and labelling it leaves behind.
    ok(host
        .run([
            "ip",
            "link",
            "add",
            "link",
            host.ifname(),
            "name",
            "carp0",
            "address",
            VMAC,
            "arp",
            "off",
            "type",
            "macvlan",
            "mode",
            "bridge",
        ])
        .unwrap());
    let r = Router::start(&lab, host, &hostname_carp0(host, T1), &[]);
    r.wait_state("MASTER", Duration::from_secs(10));
    assert!(r.log().contains("left unlabelled"), "{}", r.log());
    let link = ok(host.run(["ip", "link", "show", "carp0"]).unwrap());
    assert!(link.contains("alias carpd vhid 1"), "{link}");
    vips_reachable(&lab);
}

/// The (counter, HMAC) of the IPv4 adverts `host` sends during `window`.
fn adverts_sent(host: &Host, window: Duration) -> Vec<(Vec<u8>, Vec<u8>)> {
    let capture = host.capture_sent("ip proto 112", 0).expect("capture");
    std::thread::sleep(window);
    let pcap = capture.stop_and_read().expect("read capture");
    let adverts: Vec<(Vec<u8>, Vec<u8>)> = pcap
        .packets
        .iter()
        .filter_map(|p| CapturedAdvert::parse(&p.data))
        .map(|a| (a.carp.counter.to_be_bytes().to_vec(), a.carp.hmac.to_vec()))
        .collect();
    assert!(!adverts.is_empty(), "no advert sent by {}", host.name());
    adverts
}

#[test]
fn a_new_pass_is_applied_in_place_by_sighup_and_carpctl() {
    let Some(lab) = lab("e2e_pass_in_place", 2) else {
        return;
    };
    // Slow enough that the two routers can be given the new pass one after the other
    // within the backup's master-down interval.
    let t1 = Timers {
        advbase: 1,
        advskew: 0,
    };
    let t2 = Timers {
        advbase: 1,
        advskew: 100,
    };
    let (r1, r2) = master_and_backup(&lab, t1, t2, &[]);
    let (if1, if2) = (carp0_ifindex(&r1), carp0_ifindex(&r2));
    let (seen1, seen2) = (transitions(&r1.log()).len(), transitions(&r2.log()).len());
    let before = adverts_sent(lab.host(0), t1.interval() * 2);

    // The backup by SIGHUP, then the master by carpctl.
    let new_config = hostname_carp0(lab.host(1), t2).replace(PASS, "a-new-pass");
    std::fs::write(&r2.config, new_config).unwrap();
    r2.signal(Signal::SIGHUP);
    wait_log(
        &r2,
        "SIGHUP: configuration reloaded",
        Duration::from_secs(5),
    );
    ok(r1.carpctl(&["carp0", "pass", "a-new-pass"]));

    // The backup accepts the master's adverts again: its badauth count stops growing
    // while adverts keep arriving.
    let badauth = |r: &Router<'_>| -> u64 {
        let out = ok(r.carpctl(&["stats"]));
        out.lines()
            .find(|l| l.contains("discarded for bad authentication"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let settled = badauth(&r2);
    std::thread::sleep(t2.master_down());
    assert_eq!(
        badauth(&r2),
        settled,
        "the backup still rejects the master's adverts"
    );
    assert_eq!(r1.state().as_deref(), Some("MASTER"));
    assert_eq!(r2.state().as_deref(), Some("BACKUP"));
    // The master signs with the new key and the same counter.
    let after = adverts_sent(lab.host(0), t1.interval() * 2);
    let counters: Vec<&Vec<u8>> = before.iter().chain(&after).map(|(c, _)| c).collect();
    assert!(counters.windows(2).all(|w| w[0] == w[1]), "{counters:?}");
    assert_ne!(
        before[0].1, after[0].1,
        "adverts still signed with the old pass"
    );
    // No rebuild, no transition on either side.
    assert_eq!((carp0_ifindex(&r1), carp0_ifindex(&r2)), (if1, if2));
    assert_eq!(transitions(&r1.log()).len(), seen1, "{}", r1.log());
    assert_eq!(transitions(&r2.log()).len(), seen2, "{}", r2.log());
    for r in [&r1, &r2] {
        assert!(!r.log().contains("by someone else"), "{}", r.log());
    }
    vips_reachable(&lab);
}

#[test]
fn down_and_up_by_carpctl_and_sighup_keep_the_interface() {
    let Some(lab) = lab("e2e_up_down", 2) else {
        return;
    };
    let (r1, r2) = master_and_backup(&lab, T1, T2, &["--preempt"]);
    let host = lab.host(0);
    let ifindex = carp0_ifindex(&r1);

    // down: the master bows out, the backup takes over at once; carp0 stays, down.
    ok(r1.carpctl(&["carp0", "down"]));
    r2.wait_state("MASTER", T2.master_down());
    r1.wait_state("INIT", Duration::from_secs(2));
    assert_eq!(carp0_ifindex(&r1), ifindex);
    let link = ok(host.run(["ip", "link", "show", "carp0"]).unwrap());
    assert!(!link.contains(",UP"), "{link}");
    vips_reachable(&lab);

    // up: elects again (preempt: the better router takes the master role back).
    ok(r1.carpctl(&["carp0", "up"]));
    r1.wait_state("MASTER", Duration::from_secs(5));
    r2.wait_state("BACKUP", Duration::from_secs(5));
    assert_eq!(carp0_ifindex(&r1), ifindex);
    let addrs = kernel_addresses(host, "carp0");
    assert!(
        addrs.contains(&format!("{VIP4}/24")) && addrs.contains(&format!("{VIP6}/64")),
        "{addrs}"
    );
    vips_reachable(&lab);

    // The same by SIGHUP: `down` in hostname.carp0, then without it.
    let config = hostname_carp0(host, T1);
    let reload = |text: String, nth: usize| {
        std::fs::write(&r1.config, text).unwrap();
        r1.signal(Signal::SIGHUP);
        let done = "SIGHUP: configuration reloaded";
        if wait_until(Duration::from_secs(5), || {
            r1.log().matches(done).count() >= nth
        })
        .is_err()
        {
            panic!("no reload; log:\n{}", r1.log());
        }
    };
    reload(format!("{config}down\n"), 1);
    r2.wait_state("MASTER", T2.master_down());
    r1.wait_state("INIT", Duration::from_secs(2));
    reload(config, 2);
    r1.wait_state("MASTER", Duration::from_secs(5));
    assert_eq!(carp0_ifindex(&r1), ifindex);
    // carpd's own down/up is not a change behind its back.
    assert!(!r1.log().contains("by someone else"), "{}", r1.log());
    vips_reachable(&lab);
}

#[test]
fn a_carpdev_change_that_cannot_be_built_leaves_the_old_interface_working() {
    let Some(lab) = lab("e2e_carpdev_change", 1) else {
        return;
    };
    let host = lab.host(0);
    let dev = host.ifname();
    let r = Router::start(&lab, host, &hostname_carp0(host, T1), &[]);
    r.wait_state("MASTER", Duration::from_secs(10));
    let ifindex = carp0_ifindex(&r);
    let seen = transitions(&r.log()).len();
    let reload_to = |carpdev: &str, nth: usize| {
        let text = hostname_carp0(host, T1)
            .replace(&format!("carpdev {dev}"), &format!("carpdev {carpdev}"));
        std::fs::write(&r.config, text).unwrap();
        r.signal(Signal::SIGHUP);
        let refused = "SIGHUP: change not applied";
        if wait_until(Duration::from_secs(5), || {
            r.log().matches(refused).count() >= nth
        })
        .is_err()
        {
            panic!("reload to {carpdev} was not refused; log:\n{}", r.log());
        }
    };
    let still_on_dev = || {
        let out = ok(r.carpctl(&["carp0"]));
        assert!(out.contains(&format!("carpdev {dev}")), "{out}");
        let link = ok(host.run(["ip", "link", "show", "carp0"]).unwrap());
        assert!(link.contains(&format!("carp0@{dev}")), "{link}");
    };

    // lo exists, so the configuration is valid, but it is no Ethernet carpdev: refused
    // before the old interface is touched, which keeps its state.
    reload_to("lo", 1);
    assert!(r.log().contains("has no Ethernet address"), "{}", r.log());
    still_on_dev();
    assert_eq!(carp0_ifindex(&r), ifindex);
    assert_eq!(r.state().as_deref(), Some("MASTER"));
    assert_eq!(transitions(&r.log()).len(), seen, "{}", r.log());
    vips_reachable(&lab);

    // A bridge port: the dataplane attaches, but the kernel refuses a macvlan on it, after
    // the old interface was taken down. The old one is built again and elects.
    for cmd in [
        "link add brx type bridge",
        "link add vx0 type veth peer name vx1",
        "link set vx0 master brx",
        "link set vx0 up",
    ] {
        ok(host
            .run(std::iter::once("ip").chain(cmd.split(' ')))
            .unwrap());
    }
    reload_to("vx0", 2);
    r.wait_state("MASTER", Duration::from_secs(10));
    // Its own rebuild is not a change behind its back.
    assert!(!r.log().contains("by someone else"), "{}", r.log());
    still_on_dev();
    let vx0 = ok(host.run(["ip", "link", "show", "vx0"]).unwrap());
    assert!(
        !vx0.contains("xdp"),
        "the refused carpdev kept an XDP program: {vx0}"
    );
    vips_reachable(&lab);
}
