//! Bad input never changes the elected master: adverts with a wrong passphrase, wrong TTL,
//! unserved vhid, bad checksum, truncated, and a flood of them; and configuration errors are
//! reported without touching any interface.
mod common;

use carp_tests::frames::{CarpFields, advert_v4};
use common::*;

// Default OpenBSD timers: the flood comes from a namespace on the same two CPUs as both
// routers, so sub-second timers would measure CPU starvation of the test machine, not carpd.
const T1: Timers = Timers {
    advbase: 1,
    advskew: 0,
};
const T2: Timers = Timers {
    advbase: 1,
    advskew: 100,
};

fn transitions(r: &Router<'_>) -> u64 {
    let out = r.carpctl(&["stats"]);
    // "N state transitions" style line, or fall back to the JSON status below.
    out.stdout
        .lines()
        .find(|l| l.contains("transition"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn bad_adverts_and_a_flood_never_change_the_master() {
    let Some(lab) = lab("e2e_bad_input", 2) else {
        return;
    };
    let (r1, r2) = master_and_backup(&lab, T1, T2, &[]);
    let before = (transitions(&r1), transitions(&r2));

    let attacker = lab.client();
    let mac = attacker.mac();
    let src = attacker.addr4();
    // Every forged advert claims the best possible priority: advbase 0, advskew 0, demote 0
    // (a master seeing a valid one would step back, a backup seeing a demoted master would
    // take over).
    let best = CarpFields {
        advbase: 0,
        advskew: 0,
        ..CarpFields::advert(1)
    };
    let demoted_master = CarpFields {
        demote: 255,
        advbase: 0,
        advskew: 0,
        ..CarpFields::advert(1)
    };
    let mut bad_sum = best.encode();
    bad_sum[6] ^= 0x55;
    let frames = vec![
        advert_v4(mac, src, 255, &best.encode()), // wrong passphrase (random HMAC)
        advert_v4(mac, src, 255, &demoted_master.encode()), // wrong passphrase
        advert_v4(mac, src, 64, &best.encode()),  // wrong TTL
        advert_v4(mac, src, 255, &CarpFields { vhid: 2, ..best }.encode()), // unserved vhid
        advert_v4(mac, src, 255, &bad_sum),       // bad checksum
        advert_v4(mac, src, 255, &best.encode()[..20]), // truncated
        advert_v4(mac, src, 255, &CarpFields { version: 3, ..best }.encode()),
    ];
    inject(&lab, frames.clone(), 1);
    // A flood: 20 000 of each kind, as fast as the socket takes them.
    inject(&lab, frames, 20_000);
    // Three master-down intervals of quiet for any effect to show.
    std::thread::sleep(T2.master_down() * 3);
    assert_eq!(
        r1.state().as_deref(),
        Some("MASTER"),
        "r1 log:\n{}",
        r1.log()
    );
    assert_eq!(
        r2.state().as_deref(),
        Some("BACKUP"),
        "r2 log:\n{}",
        r2.log()
    );
    assert_eq!(
        (transitions(&r1), transitions(&r2)),
        before,
        "state changed; r1 log:\n{}\nr2 log:\n{}",
        r1.log(),
        r2.log()
    );
    assert!(lab.client().ping(std::net::IpAddr::V4(VIP4)).unwrap());
    // Logging to a file: no terminal colour codes (they break grep and the journal).
    assert!(
        !r1.log().contains('\x1b'),
        "escape codes in carpd's log:\n{}",
        r1.log()
    );
    // The drops were counted.
    let stats = r2.carpctl(&["stats"]).stdout;
    assert!(!stats.is_empty());
}

#[test]
fn configuration_errors_touch_no_interface() {
    let Some(lab) = lab("e2e_bad_config", 1) else {
        return;
    };
    let host = lab.host(0);
    let dir = lab.workdir().join("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hostname.carp0");
    std::fs::write(
        &file,
        "inet 192.0.2.1 255.255.255.0 vhid 300 pass x carpdev eth0 advskew 255\n",
    )
    .unwrap();
    let before = links(host);
    let check = host
        .run([carpd_bin(), "--check", "--config", file.to_str().unwrap()])
        .unwrap();
    assert!(!check.success());
    assert!(check.stderr.contains("hostname.carp0"), "{}", check.stderr);
    assert!(check.stderr.contains("vhid"), "{}", check.stderr);
    assert!(check.stderr.contains("advskew"), "{}", check.stderr);

    let pin_dir = lab.pin_dir("bad");
    let run = host
        .run([
            carpd_bin(),
            "--config",
            file.to_str().unwrap(),
            "--state-dir",
            dir.to_str().unwrap(),
            "--pin-dir",
            pin_dir.to_str().unwrap(),
        ])
        .unwrap();
    assert!(!run.success(), "carpd started with a bad configuration");
    assert_eq!(links(host), before, "interfaces changed");
    assert!(!pin_dir.exists(), "pins created from a bad configuration");
}

#[test]
fn a_start_that_fails_half_way_leaves_nothing_behind() {
    let Some(lab) = lab("e2e_failed_start", 1) else {
        return;
    };
    let host = lab.host(0);
    let dir = lab.workdir().join("half");
    std::fs::create_dir_all(&dir).unwrap();
    // carp0 builds; "lo" passes validation but cannot be created (the name is taken), so
    // carpd fails after carp0 exists and must take carp0 down again.
    let ok = dir.join("hostname.carp0");
    std::fs::write(&ok, "inet 192.0.2.1 255.255.255.0 vhid 1 carpdev eth0\n").unwrap();
    let taken = dir.join("hostname.lo");
    std::fs::write(&taken, "inet 192.0.2.2 255.255.255.0 vhid 2 carpdev eth0\n").unwrap();
    let before = links(host);
    let arp_ignore = host
        .run(["cat", "/proc/sys/net/ipv4/conf/eth0/arp_ignore"])
        .unwrap()
        .stdout;
    let pin_dir = lab.pin_dir("half");
    let run = host
        .run([
            carpd_bin(),
            "--config",
            ok.to_str().unwrap(),
            "--config",
            taken.to_str().unwrap(),
            "--state-dir",
            dir.to_str().unwrap(),
            "--pin-dir",
            pin_dir.to_str().unwrap(),
        ])
        .unwrap();
    if run.success() {
        panic!(
            "carpd started although lo could not be created: {}",
            run.stderr
        );
    }
    assert!(
        run.stderr.contains("undoing"),
        "carpd must have failed while building, not while validating: {}",
        run.stderr
    );
    assert_eq!(links(host), before, "links left behind: {}", run.stderr);
    assert!(!pin_dir.exists(), "pins left behind");
    let after = host
        .run(["cat", "/proc/sys/net/ipv4/conf/eth0/arp_ignore"])
        .unwrap()
        .stdout;
    assert_eq!(after, arp_ignore, "sysctl not restored");
}
