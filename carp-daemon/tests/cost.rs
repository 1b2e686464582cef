//! What a master's carpd costs per advertisement at 1 s timers, by number of vhids: the
//! scheduler runtime of all its threads (se.sum_exec_runtime in /proc/PID/task/*/sched)
//! over a window, divided by the adverts it sent (counted in a capture at its switch port).
//! On a veth the receivers' work (the switch, the backup's XDP program) runs in the sender's
//! context and is charged to it, as it is to the peers in the bench's cost section.
//!
//! `CARP_COST_NATIVE=1` measures in the bench's lab (native XDP, NAPI-mode switch ports),
//! `CARP_COST_ADVBASE` and `CARP_COST_CARPD_ARGS` change the timers and carpd's arguments.
//! `CARP_COST_WINDOW_S` sets the window (default 3 s, 6 s for one vhid, enough for the
//! bound; measure with 20), `CARP_COST_VHIDS` the vhid counts (default `1,16,255`); the figures are printed.
//! Measure with `--release`, as carpd ships:
//! `CARP_COST_WINDOW_S=20 cargo test --release -p carp-daemon --test cost -- --nocapture`. The bound
//! asserted is loose: it catches a per-advert cost gone wrong by an order of magnitude, not a
//! busy machine.
mod common;

use std::time::{Duration, Instant};

use carp_tests::CapturedAdvert;
use common::*;

/// Far above what a healthy carpd costs per advert on a loaded 2-core machine.
const BOUND: Duration = Duration::from_millis(2);

/// The measuring window: `CARP_COST_WINDOW_S`, else 3 s, and 6 s for one vhid: one advert a
/// second, and one stand-still of the machine (a few ms of steal) among three adverts was
/// enough to pass the bound.
fn window(vhids: u8) -> Duration {
    let default = if vhids == 1 { 6 } else { 3 };
    Duration::from_secs(
        std::env::var("CARP_COST_WINDOW_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default),
    )
}

/// Runtime of every thread of `pid`, in seconds.
fn runtime(pid: u32) -> f64 {
    let mut total = 0.0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc/PID/task") {
        let task = task.unwrap().file_name();
        let path = format!("/proc/{pid}/task/{}/sched", task.to_string_lossy());
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        total += text
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "se.sum_exec_runtime").then(|| v.trim().parse::<f64>().ok())?
            })
            .unwrap_or(0.0)
            / 1e3;
    }
    total
}

/// advbase of the measured pair: `CARP_COST_ADVBASE` (default 1).
fn advbase() -> u8 {
    std::env::var("CARP_COST_ADVBASE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Extra carpd arguments: `CARP_COST_CARPD_ARGS` (whitespace-separated).
fn extra_args() -> Vec<String> {
    let mut args = vec!["--preempt".to_owned()];
    if std::env::var("CARP_COST_NATIVE").is_ok_and(|v| v == "1") {
        args.extend(["--xdp-mode".to_owned(), "native".to_owned()]);
    }
    if let Ok(more) = std::env::var("CARP_COST_CARPD_ARGS") {
        args.extend(more.split_whitespace().map(str::to_owned));
    }
    args
}

/// A TOML configuration with `n` carp interfaces (vhids 1..=n, addresses 10.1.x.1/24).
fn config(n: u8, advskew: u8) -> String {
    let mut toml = String::new();
    for vhid in 1..=n {
        toml.push_str(&format!(
            "[[interface]]\nname = \"carp{vhid}\"\ncarpdev = \"eth0\"\nvhid = {vhid}\n\
             advbase = {}\nadvskew = {advskew}\npass = \"{PASS}\"\n\
             addresses = [\"10.1.{vhid}.1/24\"]\n\n",
            advbase()
        ));
    }
    toml
}

fn per_advert(vhids: u8) -> Duration {
    // CARP_COST_NATIVE=1: the bench's lab (NAPI-mode switch ports, native XDP), IPv4 only.
    let native = std::env::var("CARP_COST_NATIVE").is_ok_and(|v| v == "1");
    if !carp_tests::require_root("cpu_per_advert_at_1_16_and_255_vhids") {
        return Duration::ZERO;
    }
    let spec = carp_tests::LabSpec {
        hosts: 2,
        client: true,
        ipv6: !native,
        napi_peers: native,
    };
    let lab = carp_tests::Lab::new(&format!("e2e_cost{vhids}"), spec).expect("build the lab");
    let extra = extra_args();
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let r1 = Router::start_files(
        &lab,
        lab.host(0),
        &[("carpd.toml", &config(vhids, 0))],
        &extra,
    );
    let r2 = Router::start_files(
        &lab,
        lab.host(1),
        &[("carpd.toml", &config(vhids, 1))],
        &extra,
    );
    let last = format!("carp{vhids}");
    let settled = |r: &Router<'_>, want: &str| {
        carp_tests::wait_until(Duration::from_secs(60), || {
            (1..=vhids).all(|v| r.state_of(&format!("carp{v}")).as_deref() == Some(want))
        })
        .unwrap_or_else(|_| panic!("{} not all {want} ({last})", r.host.name()));
    };
    settled(&r1, "MASTER");
    settled(&r2, "BACKUP");
    let pid = r1.process.as_ref().unwrap().pid();
    let capture = lab
        .host(0)
        .capture_sent("ip proto 112", 128)
        .expect("capture");
    let before = runtime(pid);
    let started = Instant::now();
    // The window is the measurement itself.
    std::thread::sleep(window(vhids));
    let cpu = runtime(pid) - before;
    let elapsed = started.elapsed().as_secs_f64();
    let pcap = capture.stop_and_read().expect("read the capture");
    // A snap length that holds a whole advert and leaves the capture ring room for the
    // burst of a few hundred adverts due together (0, whole frames, drops most of them).
    let adverts = pcap
        .packets
        .iter()
        .filter(|p| CapturedAdvert::parse(&p.data).is_some())
        .count();
    assert!(adverts > 0, "no adverts captured");
    let advertised: std::collections::BTreeSet<u8> = pcap
        .packets
        .iter()
        .filter_map(|p| CapturedAdvert::parse(&p.data).map(|a| a.carp.vhid))
        .collect();
    assert_eq!(
        advertised.len(),
        usize::from(vhids),
        "vhids that advertised"
    );
    let each = cpu / adverts as f64;
    eprintln!(
        "{vhids} vhids: {adverts} adverts in {elapsed:.1} s, master CPU {:.3} %, {:.1} µs/advert",
        cpu / elapsed * 100.0,
        each * 1e6
    );
    Duration::from_secs_f64(each)
}

#[test]
fn cpu_per_advert_at_1_16_and_255_vhids() {
    let counts = std::env::var("CARP_COST_VHIDS").unwrap_or_else(|_| "1,16,255".to_owned());
    for vhids in counts
        .split(',')
        .map(|n| n.trim().parse::<u8>().expect("CARP_COST_VHIDS"))
    {
        let each = per_advert(vhids);
        assert!(each < BOUND, "{vhids} vhids: {each:?} per advert");
    }
}
