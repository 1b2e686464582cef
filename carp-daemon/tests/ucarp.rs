//! Interoperation with ucarp (another CARP speaker, Debian package `ucarp`): same vhid,
//! passphrase and single IPv4 address; they elect with carpd in both directions and fail over
//! both ways.
mod common;

use std::path::Path;
use std::time::Duration;

use carp_tests::{Host, Lab, LabProcess, Signal, wait_until};
use common::*;

/// ucarp with up/down scripts that record its state in `<dir>/ucarp.state`.
fn start_ucarp(
    lab: &Lab,
    host: &Host,
    advskew: u8,
    preempt: bool,
) -> (LabProcess, std::path::PathBuf) {
    let dir = lab.workdir().join(format!("{}-ucarp", host.name()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("ucarp.state");
    for (name, word) in [("up.sh", "MASTER"), ("down.sh", "BACKUP")] {
        let script = dir.join(name);
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho {word} > {}\n", state.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut args = vec![
        "ucarp".to_owned(),
        format!("--interface={}", host.ifname()),
        format!("--srcip={}", host.addr4()),
        "--vhid=1".into(),
        format!("--pass={PASS}"),
        format!("--addr={VIP4}"),
        "--advbase=1".into(),
        format!("--advskew={advskew}"),
        format!("--upscript={}", dir.join("up.sh").display()),
        format!("--downscript={}", dir.join("down.sh").display()),
    ];
    if preempt {
        args.push("--preempt".into());
    }
    (host.spawn(args).expect("spawn ucarp"), state)
}

fn ucarp_state(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// carp0 with the one address ucarp knows (ucarp's HMAC covers exactly its one VIP).
fn ipv4_only(host: &Host, advskew: u8) -> String {
    format!(
        "inet {VIP4} 255.255.255.0 vhid 1 pass {PASS} carpdev {} advbase 1 advskew {advskew}\n",
        host.ifname()
    )
}

fn wait_ucarp(path: &Path, want: &str, timeout: Duration, log: &LabProcess) {
    if wait_until(timeout, || ucarp_state(path).as_deref() == Some(want)).is_err() {
        panic!(
            "ucarp is not {want} (state {:?}); log:\n{}",
            ucarp_state(path),
            log.log()
        );
    }
}

#[test]
fn carpd_master_ucarp_backup_and_failover_both_ways() {
    let Some(lab) = lab("e2e_ucarp_a", 2) else {
        return;
    };
    let mut r1 = Router::start(
        &lab,
        lab.host(0),
        &ipv4_only(lab.host(0), 0),
        &["--preempt"],
    );
    r1.wait_state("MASTER", Duration::from_secs(10));
    let (ucarp, state) = start_ucarp(&lab, lab.host(1), 100, false);
    // ucarp hears carpd's adverts and authenticates them: it stays backup.
    wait_ucarp(&state, "BACKUP", Duration::from_secs(10), &ucarp);
    assert!(
        wait_until(Duration::from_secs(5), || ucarp_state(&state).as_deref()
            == Some("MASTER"))
        .is_err(),
        "ucarp took over from a live carpd: it does not accept carpd's adverts"
    );
    assert_eq!(r1.state().as_deref(), Some("MASTER"));

    // carpd dies: ucarp takes over.
    r1.signal(Signal::SIGKILL);
    wait_ucarp(&state, "MASTER", Duration::from_secs(10), &ucarp);

    // carpd comes back, more preferred and preempting: ucarp steps back.
    r1.restart(&["--preempt"]);
    r1.wait_state("MASTER", Duration::from_secs(10));
    wait_ucarp(&state, "BACKUP", Duration::from_secs(10), &ucarp);
}

#[test]
fn ucarp_master_carpd_backup_and_failover() {
    let Some(lab) = lab("e2e_ucarp_b", 2) else {
        return;
    };
    let (ucarp, state) = start_ucarp(&lab, lab.host(1), 0, false);
    wait_ucarp(&state, "MASTER", Duration::from_secs(10), &ucarp);
    let r1 = Router::start(&lab, lab.host(0), &ipv4_only(lab.host(0), 100), &[]);
    // carpd authenticates ucarp's adverts: it stays backup.
    r1.wait_state("BACKUP", Duration::from_secs(10));
    assert!(
        wait_until(Duration::from_secs(5), || r1.state().as_deref()
            == Some("MASTER"))
        .is_err(),
        "carpd took over from a live ucarp: it does not accept ucarp's adverts; log:\n{}",
        r1.log()
    );
    // ucarp dies: carpd takes over and the client reaches the address.
    ucarp.kill().unwrap();
    r1.wait_state("MASTER", Duration::from_secs(10));
    assert!(lab.client().ping(std::net::IpAddr::V4(VIP4)).unwrap());
}
