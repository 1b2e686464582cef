//! The XDP fast path for the followed master's adverts, end to end: a flood of adverts with a
//! valid checksum (and a wrong HMAC) that fills a small advert ring does not make the backup
//! lose its master's adverts, and a backup's carpd is not woken for every advert of its
//! master.
mod common;

use std::time::{Duration, Instant};

use common::*;

/// A ring of one page: a flood fills it at once (the default is 256 KiB).
const SMALL_RING: &str = "4096";

/// carpctl's counters as JSON (`carpctl --json stats`).
fn stats(r: &Router<'_>) -> serde_json::Value {
    let out = r.carpctl(&["--json", "stats"]);
    assert!(out.success(), "carpctl stats: {}", out.stderr);
    serde_json::from_str(&out.stdout).expect("stats JSON")
}

fn counter(stats: &serde_json::Value, section: &str, name: &str) -> u64 {
    stats[section][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {section}.{name} in {stats}"))
}

/// Adverts carpd itself received (both families), adverts it sent, and the dataplane's
/// fast-path and ring-full counters.
#[derive(Debug, Clone, Copy)]
struct Counts {
    received: u64,
    sent: u64,
    fastpath: u64,
    ring_full: u64,
}

fn counts(r: &Router<'_>) -> Counts {
    let s = stats(r);
    Counts {
        received: counter(&s, "carp", "carps_ipackets") + counter(&s, "carp", "carps_ipackets6"),
        sent: counter(&s, "carp", "carps_opackets") + counter(&s, "carp", "carps_opackets6"),
        fastpath: counter(&s, "dataplane", "advert_master_fastpath"),
        ring_full: counter(&s, "dataplane", "advert_ring_full"),
    }
}

/// Voluntary context switches of every thread of a process: its wakeups from sleep.
fn wakeups(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .sum()
}

/// Sends `frames` round-robin out of the client's port (AF_PACKET) as fast as the socket
/// takes them, for `duration`; how many were sent.
fn flood_for(lab: &carp_tests::Lab, frames: Vec<Vec<u8>>, duration: Duration) -> u64 {
    let socket = carp_tests::RawSocket::open(lab.client()).expect("AF_PACKET socket");
    let end = Instant::now() + duration;
    let mut sent = 0u64;
    while Instant::now() < end {
        for _ in 0..64 {
            for f in &frames {
                if socket.send(f).is_ok() {
                    sent += 1;
                }
            }
        }
    }
    sent
}

#[test]
fn a_flood_of_valid_checksum_adverts_into_a_small_ring_changes_no_state() {
    let Some(lab) = lab("e2e_fastpath_flood", 2) else {
        return;
    };
    let t1 = Timers {
        advbase: 1,
        advskew: 0,
    };
    let t2 = Timers {
        advbase: 1,
        advskew: 100,
    };
    let (r1, r2) = master_and_backup(&lab, t1, t2, &["--advert-ring-bytes", SMALL_RING]);
    // The backup follows r1 once it has authenticated one of its adverts: wait for the
    // first repeat XDP consumes.
    carp_tests::wait_until(t2.master_down(), || counts(&r2).fastpath > 0).unwrap_or_else(|_| {
        panic!(
            "the backup never took its master's adverts on the fast path: {:?}\n{}",
            counts(&r2),
            r2.log()
        )
    });
    let changes = (r1.state_changes(), r2.state_changes());
    let before = (counts(&r1), counts(&r2));

    // Valid checksum, wrong HMAC, the best priority a backup could see (advbase 0, and a
    // demoted master's), from the attacker and forged from the master's own address.
    let attacker = lab.client();
    let frames = carp_tests::frames::forged_best_adverts(
        attacker.mac(),
        attacker.addr4(),
        lab.host(0).addr4(),
    );
    let flood = Duration::from_secs(10);
    let sent = flood_for(&lab, frames, flood);
    // The flood ended; give any effect one master-down interval to show.
    std::thread::sleep(t2.master_down());
    let after = (counts(&r1), counts(&r2));
    eprintln!(
        "flood: {sent} frames in {flood:?} ({:.0}/s); backup before {:?} after {:?}",
        sent as f64 / flood.as_secs_f64(),
        before.1,
        after.1
    );

    assert_eq!(
        (r1.state_changes(), r2.state_changes()),
        changes,
        "a state changed under the flood; r1 log:\n{}\nr2 log:\n{}",
        r1.log(),
        r2.log()
    );
    assert_eq!(r1.state().as_deref(), Some("MASTER"));
    assert_eq!(r2.state().as_deref(), Some("BACKUP"));
    // The flood did fill the backup's ring (else this test proves nothing) ...
    assert!(
        after.1.ring_full > before.1.ring_full,
        "the flood never filled the backup's ring: {:?} -> {:?}",
        before.1,
        after.1
    );
    // ... and the master's adverts kept arriving by the fast path meanwhile: about one
    // per family and interval, at least half of what it sent.
    let master_sent = after.0.sent - before.0.sent;
    let fast = after.1.fastpath - before.1.fastpath;
    assert!(
        master_sent >= 10 && fast * 2 >= master_sent,
        "master sent {master_sent}, the backup's fast path took {fast}"
    );
}

#[test]
fn a_backups_carpd_is_not_woken_for_every_advert_of_its_master() {
    let Some(lab) = lab("e2e_fastpath_wakeups", 2) else {
        return;
    };
    // The bench's fastest carpd timers: 256 adverts a second per family from the master,
    // master-down after 3 × 2/256 s on the backup.
    let t1 = Timers {
        advbase: 0,
        advskew: 0,
    };
    let t2 = Timers {
        advbase: 0,
        advskew: 2,
    };
    let (r1, r2) = master_and_backup(&lab, t1, t2, &[]);
    let pid = r2.process.as_ref().expect("running").pid();
    carp_tests::wait_until(Duration::from_secs(2), || counts(&r2).fastpath > 0)
        .unwrap_or_else(|_| panic!("no fast path: {:?}\n{}", counts(&r2), r2.log()));
    let changes = (r1.state_changes(), r2.state_changes());
    let before = (counts(&r1), counts(&r2), wakeups(pid));
    let started = Instant::now();
    let window = Duration::from_secs(5);
    std::thread::sleep(window);
    let elapsed = started.elapsed().as_secs_f64();
    let after = (counts(&r1), counts(&r2), wakeups(pid));

    let master_sent = after.0.sent - before.0.sent;
    let received = after.1.received - before.1.received;
    let fast = after.1.fastpath - before.1.fastpath;
    let per_s = (after.2 - before.2) as f64 / elapsed;
    eprintln!(
        "master sent {master_sent} adverts ({:.0}/s); the backup's carpd received {received}, \
         its fast path took {fast}; backup wakeups {per_s:.1}/s (master-down every {:?})",
        master_sent as f64 / elapsed,
        t2.master_down()
    );
    assert_eq!(
        (r1.state_changes(), r2.state_changes()),
        changes,
        "r1 log:\n{}\nr2 log:\n{}",
        r1.log(),
        r2.log()
    );
    assert!(master_sent > 500, "the master sent only {master_sent}");
    // Nearly every advert took the fast path; carpd saw only the few that differed or came
    // while it republished.
    assert!(
        received * 10 < master_sent && fast * 10 > master_sent * 8,
        "master sent {master_sent}, backup carpd received {received}, fast path {fast}"
    );
}
