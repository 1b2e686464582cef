//! The carp interface's IPv6 link-local address, fe80::200:5eff:fe00:101 for vhid 1, in a
//! plain lab (bridge, veth pairs, carpd from its binary with a hostname.carp0): answered by
//! the master only, reachable from the client, shown by carpctl; and the egress guard that
//! lets carp0 resolve neighbours without NOARP: nothing with the virtual MAC as source leaves
//! a BACKUP, also after it was master once and stepped back.
mod common;

use std::net::Ipv6Addr;
use std::time::Duration;

use carp_tests::{Capture, Host, wait_until};
use common::*;

const T1: Timers = Timers {
    advbase: 0,
    advskew: 60,
};
const T2: Timers = Timers {
    advbase: 0,
    advskew: 120,
};
const LINK_LOCAL: &str = "fe80::200:5eff:fe00:101";

/// The first IPv6 link-local address of `ifname` on `host`.
fn link_local_of(host: &Host, ifname: &str) -> Ipv6Addr {
    let out = host
        .run([
            "ip", "-6", "-o", "addr", "show", "dev", ifname, "scope", "link",
        ])
        .unwrap();
    out.stdout
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no link-local address on {ifname}: {}", out.stdout))
}

fn ifindex_of(host: &Host, ifname: &str) -> u32 {
    let out = host.run(["ip", "-o", "link", "show", ifname]).unwrap();
    out.stdout
        .split(':')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ifindex for {ifname}: {}", out.stdout))
}

/// Solicits the carp link-local from the client (ndisc6) and returns how many neighbour
/// advertisements answering it each router put on the wire (captured at its switch port:
/// unsolicited ones, which a new master sends to all nodes, are not answers).
fn ndisc_answers(lab: &carp_tests::Lab) -> Vec<usize> {
    let client = lab.client();
    let filter = format!(
        "icmp6 and ip6[40] == 136 and ether dst {}",
        carp_tests::lab::format_mac(&client.mac())
    );
    let captures: Vec<Capture> = lab
        .hosts()
        .iter()
        .map(|h| h.capture_sent(&filter, 0).expect("capture"))
        .collect();
    let out = client
        .run([
            "ndisc6",
            "-n",
            "-r",
            "3",
            "-w",
            "1000",
            LINK_LOCAL,
            client.ifname(),
        ])
        .unwrap();
    assert!(out.success(), "no answer to ndisc6: {out:?}");
    assert!(
        out.stdout.to_ascii_lowercase().contains(VMAC),
        "{}",
        out.stdout
    );
    captures
        .into_iter()
        .map(|c| c.stop_and_read().expect("read capture").packets.len())
        .collect()
}

/// `carpctl stats`' count of frames the egress guard dropped.
fn guard_drops(r: &Router<'_>) -> u64 {
    let out = r.carpctl(&["stats"]);
    out.stdout
        .lines()
        .find(|l| l.contains("leaving a carp interface dropped"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no guard counter in carpctl stats:\n{}", out.stdout))
}

/// `carpctl stats`' count of transitions to master.
fn became_master(r: &Router<'_>) -> u64 {
    let out = r.carpctl(&["stats"]);
    out.stdout
        .lines()
        .find(|l| l.contains("to master"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Makes the backup try to send from carp0: an ARP request (arping on carp0) and the
/// kernel's NS (a ping to the client's link-local through carp0). Both must fail: the
/// egress guard drops them, which its counter shows.
fn backup_kernel_tries_to_send(backup: &Router<'_>, client_ll: Ipv6Addr) {
    let host = backup.host;
    // The ARP request first: the kernel's NS retries after the ping below would also move
    // the guard's counter. Habets arping (Debian's) names the interface with `-i`.
    let before = guard_drops(backup);
    let client4 = backup.lab.client().addr4().to_string();
    let arping = host
        .run(["arping", "-c", "1", "-w", "1", "-i", "carp0", &client4])
        .unwrap();
    assert!(
        !arping.success() && arping.stdout.contains("1 packets transmitted"),
        "the backup resolved the client via carp0, or arping sent nothing:\n{}{}",
        arping.stdout,
        arping.stderr
    );
    let after_arping = guard_drops(backup);
    assert!(
        after_arping > before,
        "the guard counted nothing for arping's request on carp0"
    );
    let target = format!("{client_ll}%carp0");
    let ping = host
        .run(["ping", "-6", "-c", "2", "-W", "1", &target])
        .unwrap();
    assert!(!ping.success(), "the backup reached the client via carp0");
    assert!(
        guard_drops(backup) > after_arping,
        "the guard counted nothing for the NS: the kernel sent nothing?"
    );
}

/// The frames with the virtual MAC as source a capture at a switch port saw.
fn frames_from_the_virtual_mac(capture: Capture) -> Vec<String> {
    let pcap = capture.stop_and_read().expect("read capture");
    pcap.packets
        .iter()
        .map(|p| hex::encode(&p.data[..p.data.len().min(64)]))
        .collect()
}

fn capture_virtual_mac_sent_by(host: &Host) -> Capture {
    host.capture_sent(&format!("ether src {VMAC}"), 0)
        .expect("capture")
}

#[test]
fn link_local_is_the_masters_and_backups_stay_silent() {
    let Some(lab) = lab("e2e_link_local", 2) else {
        return;
    };
    let (h1, h2, client) = (lab.host(0), lab.host(1), lab.client());
    let r1 = Router::start(&lab, h1, &hostname_carp0(h1, T1), &[]);
    r1.wait_state("MASTER", Duration::from_secs(10));
    // Everything h2 sends from the virtual MAC, from before its carp0 exists: the MLD
    // reports of the groups its kernel joins on carp0 would be the first.
    let capture = capture_virtual_mac_sent_by(h2);
    let r2 = Router::start(&lab, h2, &hostname_carp0(h2, T2), &[]);
    r2.wait_state("BACKUP", Duration::from_secs(10));

    // carpctl prints it as OpenBSD's ifconfig does, and lists it in JSON.
    for r in [&r1, &r2] {
        let ifindex = ifindex_of(r.host, "carp0");
        let text = r.carpctl(&["carp0"]).stdout;
        let line = format!("\tinet6 {LINK_LOCAL}%carp0 prefixlen 64 scopeid 0x{ifindex:x}\n");
        assert!(text.contains(&line), "{text}");
        let json: serde_json::Value =
            serde_json::from_str(&r.carpctl(&["--json", "carp0"]).stdout).unwrap();
        let addrs = &json[0]["addresses"];
        assert!(
            addrs
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["addr"] == LINK_LOCAL && a["prefix_len"] == 64),
            "{json}"
        );
    }

    // The client reaches the link-local; only the master answers for it.
    let target = format!("{LINK_LOCAL}%{}", client.ifname());
    wait_until(Duration::from_secs(5), || {
        client
            .run(["ping", "-6", "-c", "1", "-W", "1", &target])
            .is_ok_and(|o| o.success())
    })
    .unwrap_or_else(|_| panic!("the client never reached {target}"));
    assert_eq!(
        ndisc_answers(&lab),
        [1, 0],
        "NAs for the link-local by h1, h2"
    );

    // The master's kernel reaches the client's link-local through carp0 (its fe80::/64
    // route), resolving it from the virtual MAC; the backup's cannot.
    let client_ll = link_local_of(client, client.ifname());
    let from_master = h1
        .run([
            "ping",
            "-6",
            "-c",
            "1",
            "-W",
            "2",
            &format!("{client_ll}%carp0"),
        ])
        .unwrap();
    assert!(from_master.success(), "{from_master:?}");
    backup_kernel_tries_to_send(&r2, client_ll);
    let leaked = frames_from_the_virtual_mac(capture);
    assert!(
        leaked.is_empty(),
        "the backup sent {} frame(s) from the virtual MAC:\n{}",
        leaked.len(),
        leaked.join("\n")
    );

    // h2 becomes master once (forced), and steps back when h1's better advert arrives.
    let before = became_master(&r2);
    let forced = r2.carpctl(&["carp0", "state", "master"]);
    assert!(forced.success(), "{forced:?}");
    wait_until(Duration::from_secs(5), || became_master(&r2) > before)
        .expect("h2 never became master");
    r2.wait_state("BACKUP", Duration::from_secs(5));
    assert_eq!(r1.state().as_deref(), Some("MASTER"));

    // From then on, silent again: the kernel's attempts are dropped, and a few seconds of
    // its own chatter (MLD, neighbour probes) show nothing either.
    let capture = capture_virtual_mac_sent_by(h2);
    backup_kernel_tries_to_send(&r2, client_ll);
    assert_eq!(ndisc_answers(&lab), [1, 0], "NAs after the step back");
    std::thread::sleep(Duration::from_secs(2));
    let leaked = frames_from_the_virtual_mac(capture);
    assert!(
        leaked.is_empty(),
        "the backup sent {} frame(s) from the virtual MAC after stepping back:\n{}",
        leaked.len(),
        leaked.join("\n")
    );
}

#[test]
fn sigkilled_backup_stays_silent() {
    let Some(lab) = lab("e2e_link_local_kill", 2) else {
        return;
    };
    let (r1, r2) = master_and_backup(&lab, T1, T2, &[]);
    let client_ll = link_local_of(lab.client(), lab.client().ifname());
    r2.signal(carp_tests::Signal::SIGKILL);
    assert!(
        !r2.wait_exit(Duration::from_secs(5)),
        "SIGKILL is no clean exit"
    );
    // carp0 and its guard outlive the daemon; the guard still drops what its kernel sends.
    let capture = capture_virtual_mac_sent_by(lab.host(1));
    let target = format!("{client_ll}%carp0");
    let ping = lab
        .host(1)
        .run(["ping", "-6", "-c", "2", "-W", "1", &target])
        .unwrap();
    assert!(
        !ping.success(),
        "the dead backup reached the client via carp0"
    );
    let filters = lab
        .host(1)
        .run(["tc", "filter", "show", "dev", "carp0", "egress"])
        .unwrap();
    assert!(filters.stdout.contains("carp_guard"), "{filters:?}");
    let leaked = frames_from_the_virtual_mac(capture);
    assert!(leaked.is_empty(), "{}", leaked.join("\n"));
    assert_eq!(r1.state().as_deref(), Some("MASTER"));
}

#[test]
fn down_and_up_keep_the_link_local() {
    let Some(lab) = lab("e2e_link_local_down_up", 1) else {
        return;
    };
    let h1 = lab.host(0);
    let r1 = Router::start(&lab, h1, &hostname_carp0(h1, T1), &[]);
    r1.wait_state("MASTER", Duration::from_secs(10));
    for words in [["carp0", "down"], ["carp0", "up"]] {
        let out = r1.carpctl(&words);
        assert!(out.success(), "{out:?}");
    }
    r1.wait_state("MASTER", Duration::from_secs(10));
    // Linux drops a link's IPv6 addresses when it goes down; carpd puts them back.
    let addrs = h1
        .run(["ip", "-6", "addr", "show", "dev", "carp0"])
        .unwrap()
        .stdout;
    assert!(addrs.contains(&format!("{LINK_LOCAL}/64")), "{addrs}");
    assert!(addrs.contains(&format!("{VIP6}/64")), "{addrs}");
    let target = format!("{LINK_LOCAL}%{}", lab.client().ifname());
    wait_until(Duration::from_secs(5), || {
        lab.client()
            .run(["ping", "-6", "-c", "1", "-W", "1", &target])
            .is_ok_and(|o| o.success())
    })
    .unwrap_or_else(|_| panic!("the client never reached {target} after down and up"));
}

/// `carpctl stats`' count of IPv4 adverts sent.
fn adverts_sent_v4(r: &Router<'_>) -> u64 {
    let out = r.carpctl(&["stats"]);
    out.stdout
        .lines()
        .find(|l| l.contains("sent (IPv4)"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn ipv4_only_interface_has_the_link_local_but_sends_no_ipv6_adverts() {
    let Some(lab) = lab("e2e_link_local_v4only", 1) else {
        return;
    };
    let h1 = lab.host(0);
    let config = format!(
        "inet {VIP4} 255.255.255.0 vhid 1 pass {PASS} carpdev {} advbase {} advskew {}\n",
        h1.ifname(),
        T1.advbase,
        T1.advskew
    );
    let capture = h1.capture_sent("ip proto 112 or ip6 proto 112", 0).unwrap();
    let r1 = Router::start(&lab, h1, &config, &[]);
    r1.wait_state("MASTER", Duration::from_secs(10));
    let before = adverts_sent_v4(&r1);
    wait_until(Duration::from_secs(5), || {
        adverts_sent_v4(&r1) >= before + 3
    })
    .expect("three more IPv4 adverts");
    let pcap = capture.stop_and_read().unwrap();
    let adverts: Vec<_> = pcap
        .packets
        .iter()
        .filter_map(|p| carp_tests::CapturedAdvert::parse(&p.data))
        .collect();
    assert_eq!(
        adverts.len(),
        pcap.packets.len(),
        "every frame is a whole advert"
    );
    assert!(adverts.iter().any(|a| a.is_v4()));
    assert!(
        adverts.iter().all(|a| a.is_v4()),
        "an IPv4-only carp interface sent IPv6 adverts"
    );
    let text = r1.carpctl(&["carp0"]).stdout;
    assert!(
        text.contains(&format!("\tinet6 {LINK_LOCAL}%carp0 prefixlen 64")),
        "{text}"
    );
    let target = format!("{LINK_LOCAL}%{}", lab.client().ifname());
    wait_until(Duration::from_secs(5), || {
        lab.client()
            .run(["ping", "-6", "-c", "1", "-W", "1", &target])
            .is_ok_and(|o| o.success())
    })
    .unwrap_or_else(|_| panic!("the client never reached {target}"));
}
