//! `--realtime-priority`: carpd's event loop runs under SCHED_FIFO with the memory locked,
//! its advert pacer too while it paces an interval under 100 ms (and under the normal
//! policy at longer ones), and so does its standby, pinned to a CPU of its own; a hook it
//! runs does not (SCHED_RESET_ON_FORK).
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use carp_tests::wait_until;

mod common;
use common::{PASS, Router, VIP4, lab, ok};

/// A field of /proc/PID/sched ("policy", "prio"), as a number.
fn sched_field(pid: u32, field: &str) -> i64 {
    task_sched_field(&format!("/proc/{pid}"), field)
}

/// A field of `proc`/sched, `proc` a process's or a thread's directory in /proc.
fn task_sched_field(proc: &str, field: &str) -> i64 {
    let text = std::fs::read_to_string(format!("{proc}/sched")).expect("/proc/PID/sched");
    text.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            (name.trim() == field).then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {field} in {proc}/sched:\n{text}"))
}

/// The CPUs of a list as /proc shows them ("0", "0-1,4").
fn cpu_list(list: &str) -> Vec<usize> {
    list.split(',')
        .flat_map(|part| {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            a.trim().parse::<usize>().unwrap()..=b.trim().parse::<usize>().unwrap()
        })
        .collect()
}

/// VmLck of /proc/PID/status in kB.
fn locked_kb(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    text.lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmLck in /proc/PID/status")
}

#[test]
fn the_event_loop_runs_sched_fifo_and_a_hook_does_not() {
    let Some(lab) = lab("e2e_realtime", 1) else {
        return;
    };
    let host = lab.host(0);
    let dir = lab.workdir().join("hooks");
    std::fs::create_dir_all(&dir).unwrap();
    let seen = dir.join("hook.sched");
    let hook = dir.join("hook.sh");
    // The hook records its own scheduling policy (0: SCHED_OTHER, 1: SCHED_FIFO).
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nawk -F: '/^policy/ {{gsub(/ /, \"\", $2); print $2}}' /proc/$$/sched > {seen}.tmp\n\
             mv {seen}.tmp {seen}\n",
            seen = seen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let toml = format!(
        "[daemon]\nhooks = [\"{}\"]\n\n[[interface]]\nname = \"carp0\"\ncarpdev = \"eth0\"\n\
         vhid = 1\nadvbase = 0\nadvskew = 60\npass = \"{PASS}\"\naddresses = [\"{VIP4}/24\"]\n",
        hook.display()
    );
    let router = Router::start_files(
        &lab,
        host,
        &[("carpd.toml", &toml)],
        &["--realtime-priority", "10"],
    );
    router.wait_state("MASTER", Duration::from_secs(10));
    let pid = router.process.as_ref().unwrap().pid();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "carpd", "pid {pid} is not carpd");
    // The main thread runs the event loop: SCHED_FIFO (1) at priority 10 (the kernel's prio
    // 99 - 10 = 89), and the memory is locked.
    assert_eq!(sched_field(pid, "policy"), 1, "{}", router.log());
    assert_eq!(sched_field(pid, "prio"), 89);
    assert!(locked_kb(pid) > 0, "carpd's memory is not locked");
    // The advert pacer sends the master's regular adverts. At advskew 60 (an advert every
    // 234 ms) under the normal policy; at advskew 1 (3.9 ms) at the loop's priority; at
    // advskew 60 again under the normal policy.
    let thread = |name: &str| {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .map(|t| t.unwrap().path().display().to_string())
            .find(|t| std::fs::read_to_string(format!("{t}/comm")).is_ok_and(|c| c.trim() == name))
    };
    let pacer = thread("carpd-pacer").expect("a carpd-pacer thread");
    let pacer_policy = || {
        (
            task_sched_field(&pacer, "policy"),
            task_sched_field(&pacer, "prio"),
        )
    };
    let normal = (0, 120);
    let fifo = (1, 89);
    for (advskew, want) in [("60", normal), ("1", fifo), ("60", normal)] {
        ok(router.carpctl(&["carp0", "advskew", advskew]));
        wait_until(Duration::from_secs(10), || pacer_policy() == want).unwrap_or_else(|_| {
            panic!(
                "advskew {advskew}: pacer policy/prio {:?}, want {want:?}\n{}",
                pacer_policy(),
                router.log()
            )
        });
    }

    // With two CPUs or more, the pacer's standby: real time always (it wakes only for
    // short intervals), pinned to a CPU the pacer is pinned off.
    if let Some(standby) = thread("carpd-standby") {
        assert_eq!(task_sched_field(&standby, "policy"), 1);
        assert_eq!(task_sched_field(&standby, "prio"), 89);
        let cpus = |task: &str| {
            let status = std::fs::read_to_string(format!("{task}/status")).unwrap();
            status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .expect("Cpus_allowed_list")
                .trim()
                .to_owned()
        };
        let standby_cpu: usize = cpus(&standby).parse().expect("the standby on one CPU");
        let pacer_cpus = cpus(&pacer);
        assert!(
            !cpu_list(&pacer_cpus).contains(&standby_cpu),
            "pacer on {pacer_cpus}, standby on {standby_cpu}"
        );
    } else {
        assert_eq!(
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            1,
            "no carpd-standby thread on a machine with two CPUs or more"
        );
    }

    wait_until(Duration::from_secs(10), || seen.exists()).expect("the hook ran");
    let policy = std::fs::read_to_string(&seen).unwrap();
    assert_eq!(policy.trim(), "0", "the hook ran under policy {policy}");
}
