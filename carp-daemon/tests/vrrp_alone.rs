//! carpd's VRRPv3 routers without a peer: a carp interface turned into a VRRPv3 router and
//! back by SIGHUP, written in FreeBSD's hostname.carpN words (`carpver 3 vrrpprio P
//! vrrpinterval CS`), and the fail-silent dataplane of a VRRP master whose carpd is killed.
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

    let vrrp = format!(
        "inet {VIP4}/24 vhid 5 carpdev {} carpver 3 vrrpprio 120 vrrpinterval 50\n",
        h1.ifname()
    );
    std::fs::write(&r1.config, vrrp).unwrap();
    r1.signal(Signal::SIGHUP);
    wait_status(&r1, "\tvrrp: MASTER vrid 5 prio 120 interval 50\n");
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
