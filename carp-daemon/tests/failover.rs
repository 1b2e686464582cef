//! Failover a client can feel: SIGKILL of the master's carpd (link kept up), the master's
//! link cut, SIGTERM (bow-out), advskew change by SIGHUP, preempt on and off. And no moment
//! at which two routers answer ARP for the virtual address; and no failover when both
//! routers stood still together.
mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use carp_tests::{Signal, wait_until};
use common::*;

const T1: Timers = Timers {
    advbase: 0,
    advskew: 60,
};
const T2: Timers = Timers {
    advbase: 0,
    advskew: 120,
};

/// The client may wait this long for the address after the master fails: the backup's
/// master-down interval plus one advertisement interval, plus the client probe's
/// own granularity (a 0.2 s ping timeout and the time to spawn ping).
fn failover_bound() -> Duration {
    T2.master_down() + T2.interval() + Duration::from_millis(600)
}

/// ARP requests from the client every 10 ms for `duration`, captured on the client; the
/// largest number of replies any single request got.
fn max_replies_per_request(lab: &carp_tests::Lab, during: impl FnOnce()) -> usize {
    let client = lab.client();
    let capture = client.capture("arp").expect("capture");
    let probe = client
        .spawn([
            "arping",
            "-q",
            "-i",
            client.ifname(),
            "-W",
            "0.01",
            "-c",
            "400",
            &VIP4.to_string(),
        ])
        .expect("arping");
    during();
    let _ = probe.wait_timeout(Duration::from_secs(10));
    let pcap = capture.stop_and_read().expect("read capture");
    let mut max = 0;
    let mut current = 0;
    for p in &pcap.packets {
        let op = p.data.get(20..22).map(|b| u16::from_be_bytes([b[0], b[1]]));
        match op {
            Some(1) => {
                max = max.max(current);
                current = 0;
            }
            Some(2) => current += 1,
            _ => {}
        }
    }
    max.max(current)
}

#[test]
fn sigkill_of_the_master_daemon() {
    let Some(lab) = lab("e2e_sigkill", 2) else {
        return;
    };
    let (r1, r2) = master_and_backup(&lab, T1, T2, &[]);
    let client = lab.client();
    assert!(client.ping(IpAddr::V4(VIP4)).unwrap());

    let mut took = None;
    let max = max_replies_per_request(&lab, || {
        let kill = Instant::now();
        r1.signal(Signal::SIGKILL);
        took = time_to_reach(client, IpAddr::V4(VIP4), Duration::from_secs(10))
            .map(|_| kill.elapsed());
    });
    let took = took.expect("the client never reached the VIP again");
    assert!(
        took <= failover_bound(),
        "failover took {took:?}, bound {:?}",
        failover_bound()
    );
    r2.wait_state("MASTER", Duration::from_secs(5));
    assert!(
        max <= 1,
        "an ARP request got {max} replies: two routers answered"
    );
}

/// Both routers frozen (SIGSTOP) for twice the backup's master-down interval and thawed
/// apart, the backup first and the master 5 ms later, as a hypervisor resumes the virtual
/// CPUs of a VM it held: the backup's timer fires late, on a silence it slept through, and
/// it waits for the master's next advert instead of taking over (carpd's fsm, "A backup
/// that overslept"). Before that rule this took over at the thaw and the master took back
/// the address at its next advert: two state changes, as in the bench's soak.
#[test]
fn routers_frozen_together_and_thawed_apart_change_no_state() {
    let Some(lab) = lab("e2e_frozen_together", 2) else {
        return;
    };
    let (r1, r2) = master_and_backup(&lab, T1, T2, &[]);
    let changes = (r1.state_changes(), r2.state_changes());
    r1.signal(Signal::SIGSTOP);
    r2.signal(Signal::SIGSTOP);
    // The stall itself and the skew of the thaw are the scenario, not a wait for an event.
    std::thread::sleep(T2.master_down() * 2);
    r2.signal(Signal::SIGCONT);
    std::thread::sleep(Duration::from_millis(5));
    r1.signal(Signal::SIGCONT);
    // Three of the backup's master-down intervals of adverts after the thaw: it would
    // have taken over long before, and the master taken the address back.
    let sent = r1.adverts_sent();
    let enough = (T2.master_down() * 3).as_micros() / T1.interval().as_micros();
    if wait_until(Duration::from_secs(10), || {
        r1.adverts_sent() >= sent + enough as u64
    })
    .is_err()
    {
        panic!(
            "the master stopped advertising after the thaw:\n{}",
            r1.log()
        );
    }
    assert_eq!(
        (r1.state_changes(), r2.state_changes()),
        changes,
        "a state changed after the thaw; backup's log:\n{}",
        r2.log()
    );
    assert_eq!(r1.state().as_deref(), Some("MASTER"));
    assert_eq!(r2.state().as_deref(), Some("BACKUP"));
    assert!(
        r2.log().contains("master-down timer fired late"),
        "the backup logged no postponement:\n{}",
        r2.log()
    );
}

#[test]
fn link_cut_of_the_master() {
    let Some(lab) = lab("e2e_link_cut", 2) else {
        return;
    };
    let (r1, r2) = master_and_backup(&lab, T1, T2, &[]);
    let client = lab.client();

    let cut = Instant::now();
    lab.host(0).cut_link().unwrap();
    let took = time_to_reach(client, IpAddr::V4(VIP4), Duration::from_secs(10))
        .map(|_| cut.elapsed())
        .expect("the client never reached the VIP again");
    assert!(took <= failover_bound(), "failover took {took:?}");
    r2.wait_state("MASTER", Duration::from_secs(5));
    // The carpdev lost link: r1's vhid is in INIT and its groups are demoted by 1.
    r1.wait_state("INIT", Duration::from_secs(5));
    let demote = |r: &Router<'_>| r.carpctl(&["-g", "carp"]).stdout.trim().to_owned();
    assert_eq!(demote(&r1), "carp: carp demote count 1");
    // Link back: r1 runs again, the demotion is undone; without preempt it stays backup.
    lab.host(0).restore_link().unwrap();
    r1.wait_state("BACKUP", Duration::from_secs(5));
    assert_eq!(demote(&r1), "carp: carp demote count 0");
}

#[test]
fn sigterm_hands_over_at_once() {
    let Some(lab) = lab("e2e_sigterm", 2) else {
        return;
    };
    // Slow timers: a handover faster than the master-down interval can only be the bow-out.
    let slow1 = Timers {
        advbase: 1,
        advskew: 0,
    };
    let slow2 = Timers {
        advbase: 1,
        advskew: 100,
    };
    let (r1, r2) = master_and_backup(&lab, slow1, slow2, &[]);

    let start = Instant::now();
    r1.signal(Signal::SIGTERM);
    r2.wait_state("MASTER", Duration::from_secs(5));
    let took = start.elapsed();
    assert!(
        took < slow2.master_down() / 2,
        "handover took {took:?}: no bow-out?"
    );
    assert!(
        r1.wait_exit(Duration::from_secs(5)),
        "carpd did not exit cleanly"
    );
    // Everything r1's carpd created is gone.
    assert!(
        !links(lab.host(0)).iter().any(|l| l == "carp0"),
        "carp0 left behind"
    );
    assert!(
        !lab.pin_dir(lab.host(0).name()).exists(),
        "pins left behind"
    );
    assert!(lab.client().ping(IpAddr::V4(VIP4)).unwrap());
}

#[test]
fn advskew_change_by_sighup_hands_over_with_preempt() {
    let Some(lab) = lab("e2e_advskew", 2) else {
        return;
    };
    let (r1, r2) = master_and_backup(&lab, T1, T2, &["--preempt"]);
    // r1 becomes less preferred than r2.
    let worse = Timers {
        advbase: 0,
        advskew: 200,
    };
    std::fs::write(&r1.config, hostname_carp0(lab.host(0), worse)).unwrap();
    r1.signal(Signal::SIGHUP);
    r2.wait_state("MASTER", Duration::from_secs(5));
    r1.wait_state("BACKUP", Duration::from_secs(5));
    let out = r1.carpctl(&["carp0"]);
    assert!(out.stdout.contains("advskew 200"), "{}", out.stdout);
}

#[test]
fn preempt_off_keeps_the_master_preempt_on_takes_over() {
    let Some(lab) = lab("e2e_preempt", 3) else {
        return;
    };
    // r1 (less preferred) starts alone and becomes master.
    let r1 = Router::start(&lab, lab.host(0), &hostname_carp0(lab.host(0), T2), &[]);
    r1.wait_state("MASTER", Duration::from_secs(10));
    // r2 is more preferred but preempt is off: it stays backup.
    let r2 = Router::start(&lab, lab.host(1), &hostname_carp0(lab.host(1), T1), &[]);
    r2.wait_state("BACKUP", Duration::from_secs(10));
    assert!(
        wait_until(T2.master_down() * 3, || r2.state().as_deref()
            != Some("BACKUP"))
        .is_err(),
        "r2 took over without preempt"
    );
    assert_eq!(r1.state().as_deref(), Some("MASTER"));
    // r3 is the most preferred and preempts.
    let best = Timers {
        advbase: 0,
        advskew: 20,
    };
    let r3 = Router::start(
        &lab,
        lab.host(2),
        &hostname_carp0(lab.host(2), best),
        &["--preempt"],
    );
    r3.wait_state("MASTER", Duration::from_secs(10));
    r1.wait_state("BACKUP", Duration::from_secs(5));
    assert_eq!(r2.state().as_deref(), Some("BACKUP"));
}
