//! carp-bench, run as `cargo xtask bench`: carpd against ucarp and keepalived on one lab, in
//! one run. xtask runs its setup first (ucarp, keepalived, the eBPF toolchain), then builds
//! and runs this binary with the arguments it was given.
//!
//! Sections (each in its own module): failover as a client feels it ([`failover`]), the soak
//! that picks carpd's fastest stable timers ([`soak`]), the dataplane's ARP answer rate
//! against the kernel's ([`dataplane`]), resilience to protocol-112 floods ([`flood`]) and
//! the daemons' cost ([`cost`]), carpd as a VRRPv3 router against keepalived at the same
//! timers ([`vrrp`]), and carpd's load balancing across 1 to 3 hosts ([`balancing`], a lab
//! of its own). [`report`] writes docs/BENCHMARKS.md and the timeline
//! figure ([`plot`]).
//!
//! Everything runs in one [`carp_tests::Lab`] (two routers, a client, a switch); it is
//! removed when the bench ends, also on error and on Ctrl-C: SIGINT and SIGTERM only set a
//! flag here, every wait checks it, and the lab's Drop does the cleanup.
mod analysis;
mod balancing;
mod cost;
mod dataplane;
mod failover;
mod flood;
mod plot;
mod records;
mod report;
mod soak;
mod steal;
mod tools;
mod traffic;
mod vrrp;

use std::cell::Cell;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use carp_tests::{Lab, LabProcess, LabSpec, frames};
use clap::Parser;

use failover::Fault;
use tools::{Binaries, Daemon, Role, Setting, State, Tool, VIP};

const ALL_TOOLS: [Tool; 3] = [Tool::Carpd, Tool::Ucarp, Tool::Keepalived];

/// The probe's own (unused elsewhere) MAC and address: replies to it reach no stack.
pub const PROBE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x50];
pub const PROBE_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 250);

/// Benchmarks against ucarp and keepalived; writes docs/BENCHMARKS.md (--quick: < 5 min).
#[derive(Parser)]
#[command(name = "cargo xtask bench", bin_name = "cargo xtask bench", version)]
pub struct Args {
    /// A reduced run in under 5 minutes: 2 failovers per series at the fastest timers, one
    /// link cut at default timers, 3 s candidate trials, a 10 s soak, 3 s floods, 1 vhid.
    #[arg(long, conflicts_with = "smoke")]
    quick: bool,
    /// The smallest run that exercises every section (CI's check that the bench works);
    /// writes to target/bench-smoke/ instead of docs/.
    #[arg(long)]
    smoke: bool,
    /// Failovers per series (default: 20; --quick: 2; --smoke: 1).
    #[arg(long)]
    runs: Option<usize>,
    /// Where the report goes (default: docs/BENCHMARKS.md; --smoke: target/bench-smoke/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only these tools (repeatable; default all three). carpd's fastest timers are searched
    /// only when carpd is included; without it the dataplane section is skipped.
    #[arg(long, value_enum)]
    only: Vec<Tool>,
    /// The lab users have: no NAPI-mode program on the switch-side ports, carpd in its
    /// default XDP mode (auto: generic on these veths). Default: the native-mode lab.
    #[arg(long)]
    plain_lab: bool,
    /// Only these faults at default timers (repeatable; default: all four in the full plan,
    /// link-cut in the quick one). The fastest timers always get all four.
    #[arg(long, value_enum)]
    default_faults: Vec<Fault>,
    /// Only the section on what the XDP decision records cost while off (with --smoke: one
    /// short round).
    #[arg(long, conflicts_with = "cost_only")]
    records_only: bool,
    /// Only the section on what each daemon costs, at default timers (CPU per advert, context
    /// switches, memory by number of vhids).
    #[arg(long)]
    cost_only: bool,
    /// Only the search for carpd's fastest stable timers, each candidate soaked this many
    /// seconds with the other core busy (an A/B of stability in minutes, not the full run's
    /// 10 minutes per candidate).
    #[arg(long, value_name = "SECONDS", conflicts_with_all = ["cost_only", "records_only"])]
    search_only: Option<u64>,
    /// Only the failover series at the fastest timers, carpd at its fastest candidate
    /// (advbase 0, advskew 0/1) without the search (an A/B of failover figures in minutes);
    /// default-timer series only for the faults given with --default-faults.
    #[arg(long, conflicts_with_all = ["cost_only", "records_only", "search_only"])]
    failover_only: bool,
}

/// How much of everything to do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: &'static str,
    pub tools: Vec<Tool>,
    /// Failovers per series at the fastest timers, and at default timers (slower: 3 s each).
    pub runs: usize,
    pub default_runs: usize,
    /// Fault types at default timers (all of them in a full run).
    pub default_faults: Vec<Fault>,
    /// carpd timer candidates tried, fastest first, each for `search` with the other core
    /// busy; the first without a state change is carpd's fastest stable setting.
    pub candidates: Vec<Setting>,
    pub search: Duration,
    /// The soak of the chosen setting; run apart from the search only when longer than it
    /// (in the full plan every candidate is soaked for this long already).
    pub soak: Duration,
    /// The chosen setting again, carpd without its real-time option, for comparison.
    pub soak_without_realtime: Duration,
    pub flood: Duration,
    pub cost_window: Duration,
    pub vhid_counts: Vec<u8>,
    pub rate_window: Duration,
    /// Rounds of the records' cost (one flood per build each, `rate_window` long).
    pub records_rounds: usize,
    /// Only the records' cost section.
    pub records_only: bool,
    /// Only the cost section, at default timers.
    pub cost_only: bool,
    /// Only the fastest-timer search (`--search-only`).
    pub search_only: bool,
    /// Only the failover section, carpd at its fastest candidate (`--failover-only`).
    pub failover_only: bool,
    /// The plain lab (no NAPI-mode peers on the switch side, carpd in auto mode).
    pub plain_lab: bool,
}

impl Plan {
    fn full(runs: usize) -> Plan {
        Plan {
            name: "full",
            tools: ALL_TOOLS.to_vec(),
            runs,
            default_runs: runs,
            default_faults: Fault::ALL.to_vec(),
            candidates: soak::CANDIDATES.to_vec(),
            search: Duration::from_secs(600),
            soak: Duration::from_secs(600),
            soak_without_realtime: Duration::from_secs(60),
            flood: Duration::from_secs(30),
            cost_window: Duration::from_secs(20),
            vhid_counts: vec![1, 16, 255],
            rate_window: Duration::from_secs(10),
            records_rounds: 5,
            records_only: false,
            cost_only: false,
            search_only: false,
            failover_only: false,
            plain_lab: false,
        }
    }

    fn quick(runs: usize) -> Plan {
        Plan {
            name: "quick",
            tools: ALL_TOOLS.to_vec(),
            runs,
            default_runs: 1,
            default_faults: vec![Fault::LinkCut],
            candidates: soak::CANDIDATES.to_vec(),
            search: Duration::from_secs(3),
            soak: Duration::from_secs(10),
            soak_without_realtime: Duration::from_secs(3),
            flood: Duration::from_secs(3),
            cost_window: Duration::from_secs(2),
            vhid_counts: vec![1],
            rate_window: Duration::from_secs(3),
            records_rounds: 2,
            records_only: false,
            cost_only: false,
            search_only: false,
            failover_only: false,
            plain_lab: false,
        }
    }

    fn smoke() -> Plan {
        Plan {
            name: "smoke",
            tools: ALL_TOOLS.to_vec(),
            runs: 1,
            default_runs: 1,
            default_faults: vec![],
            // The fastest candidate: a short smoke of the soak that makes it carpd's fastest.
            candidates: soak::CANDIDATES[..1].to_vec(),
            search: Duration::from_secs(2),
            soak: Duration::from_secs(3),
            soak_without_realtime: Duration::from_secs(1),
            flood: Duration::from_secs(1),
            cost_window: Duration::from_secs(2),
            vhid_counts: vec![1, 2],
            rate_window: Duration::from_secs(1),
            records_rounds: 1,
            records_only: false,
            cost_only: false,
            search_only: false,
            failover_only: false,
            plain_lab: false,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<()> {
    if !carp_tests::is_privileged() {
        bail!("the bench builds network namespaces and loads XDP programs: run it as root");
    }
    let bins = build(!args.smoke)?;
    let mut plan = if args.smoke {
        Plan::smoke()
    } else if args.quick {
        Plan::quick(args.runs.unwrap_or(2))
    } else {
        Plan::full(args.runs.unwrap_or(20))
    };
    if !args.only.is_empty() {
        plan.tools = args.only.clone();
    }
    plan.plain_lab = args.plain_lab;
    if !args.default_faults.is_empty() {
        plan.default_faults = args.default_faults.clone();
    }
    plan.records_only = args.records_only;
    plan.cost_only = args.cost_only;
    if args.failover_only {
        plan.failover_only = true;
        // The default-timer series only as asked for.
        plan.default_faults = args.default_faults.clone();
    }
    if let Some(seconds) = args.search_only {
        plan.search_only = true;
        plan.search = Duration::from_secs(seconds);
    }
    let out = match &args.out {
        Some(out) => out.clone(),
        None if args.smoke => workspace_root().join("target/bench-smoke/BENCHMARKS.md"),
        None => workspace_root().join("docs/BENCHMARKS.md"),
    };
    let command_line = std::iter::once("cargo xtask bench".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    bench(&plan, bins, &out, &command_line)
}

/// Runs `plan` and writes the report to `out` (the figure next to it).
pub fn bench(plan: &Plan, bins: Binaries, out: &Path, command_line: &str) -> Result<()> {
    install_interrupt_handler();
    let started = Instant::now();
    let lab = Lab::new(
        "bench",
        LabSpec {
            hosts: 2,
            client: true,
            ipv6: false,
            // By default the bench measures native mode, and native XDP_TX on a veth reaches
            // the switch only if the switch-side port receives in NAPI mode.
            napi_peers: !plan.plain_lab,
        },
    )
    .context("building the lab")?;
    let ctx = Ctx {
        lab,
        bins,
        rng: Cell::new(seed()),
    };
    let mut results = report::Results::new(plan, command_line);

    println!("bench ({} plan): carpd vs ucarp vs keepalived", plan.name);
    let with = |tool: Tool| plan.tools.contains(&tool);
    if plan.records_only {
        run_records_cost(&ctx, plan, &mut results)?;
        return write_one_section(&mut results, started, out, "the records' cost");
    }
    let defaults = [
        Setting::carpd_default(),
        Setting::ucarp_default(),
        Setting::keepalived_default(),
    ]
    .into_iter()
    .filter(|s| with(s.tool()))
    .collect::<Vec<_>>();
    if plan.cost_only {
        // The fastest timers' rows need carpd's fastest, which only the search finds.
        run_costs(&ctx, plan, &defaults, &[], &mut results)?;
        return write_one_section(&mut results, started, out, "the cost section");
    }
    let mut fastest = *plan.candidates.last().expect("a plan has candidates");
    if plan.failover_only {
        fastest = plan.candidates[0];
    } else if with(Tool::Carpd) {
        section("carpd's fastest stable timers");
        if let Some((found, search)) =
            ctx.attempt("fastest-timer search", &mut results.errors, || {
                soak::search(&ctx, plan)
            })?
        {
            fastest = found;
            results.search = search;
        }
        println!("  carpd fastest stable: {}", fastest.timers());
    }
    if plan.search_only {
        return write_one_section(&mut results, started, out, "the fastest-timer search");
    }
    let fastests = [
        fastest,
        Setting::ucarp_fastest(),
        Setting::keepalived_fastest(),
    ]
    .into_iter()
    .filter(|s| with(s.tool()))
    .collect::<Vec<_>>();

    run_failover(&ctx, plan, &defaults, &fastests, &mut results)?;
    if plan.failover_only {
        return write_one_section(&mut results, started, out, "the failover section");
    }
    if with(Tool::Carpd) {
        run_soak_and_rate(&ctx, plan, fastest, &mut results)?;
        run_records_cost(&ctx, plan, &mut results)?;
    }
    run_floods(&ctx, plan, &fastests, &mut results)?;
    run_costs(&ctx, plan, &defaults, &fastests, &mut results)?;
    if with(Tool::Carpd) && with(Tool::Keepalived) {
        run_vrrp(&ctx, plan, &mut results)?;
    }
    if with(Tool::Carpd) {
        section("load balancing (carpnodes)");
        results.balancing = ctx.attempt("load balancing", &mut results.errors, || {
            balancing::measure(
                &ctx.bins,
                plan.rate_window,
                !plan.plain_lab,
                ctx.interrupted(),
            )
        })?;
    }

    results.elapsed = started.elapsed();
    report::write(&results, out)?;
    println!();
    print!("{}", report::ratios(&results));
    println!(
        "bench: report written to {} ({})",
        out.display(),
        human(started.elapsed())
    );
    if !results.errors.is_empty() {
        bail!(
            "{} part(s) of the bench failed (listed in the report):\n  {}",
            results.errors.len(),
            results.errors.join("\n  ")
        );
    }
    Ok(())
}

/// The end of a run of one section (`--records-only`, `--cost-only`, `--search-only`): the
/// report, and an error if the section failed.
fn write_one_section(
    results: &mut report::Results,
    started: Instant,
    out: &Path,
    what: &str,
) -> Result<()> {
    results.elapsed = started.elapsed();
    report::write(results, out)?;
    println!("bench: report written to {}", out.display());
    if !results.errors.is_empty() {
        bail!("{what} failed: {}", results.errors.join("; "));
    }
    Ok(())
}

/// Every failover series: each fault at default timers (as the plan says) and at the
/// fastest timers, per tool.
fn run_failover(
    ctx: &Ctx,
    plan: &Plan,
    defaults: &[Setting],
    fastests: &[Setting],
    results: &mut report::Results,
) -> Result<()> {
    section("failover");
    let mut series_plan: Vec<(Setting, Fault, usize)> = Vec::new();
    for &setting in defaults {
        for &fault in &plan.default_faults {
            if fault.applies_to(setting.tool()) {
                series_plan.push((setting, fault, plan.default_runs));
            }
        }
    }
    for &setting in fastests {
        for fault in Fault::ALL {
            if fault.applies_to(setting.tool()) {
                series_plan.push((setting, fault, plan.runs));
            }
        }
    }
    for (setting, fault, runs) in series_plan {
        ctx.check()?;
        let t = Instant::now();
        print!("  {:<55} {:<10} ", setting.label(), fault.short());
        flush();
        let what = format!("failover {} {}", setting.label(), fault.short());
        let Some(s) = ctx.attempt(&what, &mut results.errors, || {
            let s = failover::series(ctx, setting, fault, runs)?;
            failover::require_figures(&s)?;
            Ok(s)
        })?
        else {
            continue;
        };
        let arp = analysis::summarize(&s.runs.iter().map(|r| r.arp_outage).collect::<Vec<_>>());
        let gap = analysis::summarize(
            &s.runs
                .iter()
                .filter_map(|r| r.advert_gap)
                .collect::<Vec<_>>(),
        );
        println!(
            "ARP outage median {:>7.1} ms, advert gap median {:>7.1} ms, {} runs ({})",
            arp.map_or(f64::NAN, |a| a.median * 1e3),
            gap.map_or(f64::NAN, |a| a.median * 1e3),
            s.runs.len(),
            human(t.elapsed())
        );
        results.failover.push(s);
    }

    Ok(())
}

/// carpd's soak at its fastest timers, and its dataplane's ARP rate against the kernel's.
fn run_soak_and_rate(
    ctx: &Ctx,
    plan: &Plan,
    fastest: Setting,
    results: &mut report::Results,
) -> Result<()> {
    section("soak");
    let print = |s: &soak::SoakResult| {
        println!(
            "  {} for {}{}: {} state changes, longest ARP silence {:.1} ms (a request \
             unanswered {:.1} ms, longest advert interval {:.1} ms), mean advert deviation {:.3} ms",
            fastest.label(),
            human(s.duration),
            if s.realtime { "" } else { " without real time" },
            s.state_changes,
            s.longest_arp_gap * 1e3,
            s.longest_unanswered * 1e3,
            s.jitter.max_interval * 1e3,
            s.jitter.mean_abs * 1e3
        )
    };
    if plan.soak > plan.search {
        results.soak = ctx.attempt("soak", &mut results.errors, || {
            soak::soak(ctx, fastest, plan.soak, true)
        })?;
        results.soak.iter().for_each(print);
    }
    results.soak_without_realtime =
        ctx.attempt("soak without real time", &mut results.errors, || {
            soak::soak(ctx, fastest, plan.soak_without_realtime, false)
        })?;
    results.soak_without_realtime.iter().for_each(print);

    section("dataplane ARP rate");
    results.rate = ctx.attempt("dataplane rate", &mut results.errors, || {
        dataplane::measure(ctx, plan.rate_window)
    })?;
    if let Some(r) = &results.rate {
        println!(
            "  XDP {:.0} answers/s of {:.0} offered; kernel {:.0} of {:.0}",
            r.xdp.replies_per_s, r.xdp.sent_per_s, r.kernel.replies_per_s, r.kernel.sent_per_s
        );
    }
    Ok(())
}

/// The XDP ARP answer rate of carpd as built (decision records off) against a build
/// without the records.
fn run_records_cost(ctx: &Ctx, plan: &Plan, results: &mut report::Results) -> Result<()> {
    section("decision records' cost (off)");
    let without = Binaries {
        carpd: ctx.bins.carpd_without_records.clone(),
        ..ctx.bins.clone()
    };
    results.records = ctx.attempt("records' cost", &mut results.errors, || {
        records::measure(ctx, &without, plan.rate_window, plan.records_rounds)
    })?;
    if let Some(c) = &results.records {
        println!(
            "  XDP answers/s, records off {:.0}, without records {:.0}: {:.3}× ({})",
            c.median_with(),
            c.median_without(),
            c.ratio(),
            if c.within_allowance() {
                "within 5 %"
            } else {
                "MORE than 5 % slower"
            }
        );
    }
    Ok(())
}

/// Each tool's flood resilience at its fastest timers.
fn run_floods(
    ctx: &Ctx,
    plan: &Plan,
    fastests: &[Setting],
    results: &mut report::Results,
) -> Result<()> {
    section("flood resilience");
    for &setting in fastests {
        ctx.check()?;
        let what = format!("flood {}", setting.label());
        let Some(f) = ctx.attempt(&what, &mut results.errors, || {
            flood::measure(ctx, setting, plan.flood)
        })?
        else {
            continue;
        };
        println!(
            "  {:<55} {:>9.0} frames/s: {} state changes, master CPU {:.1} %, late adverts {}",
            setting.label(),
            f.sent_per_s,
            f.state_changes,
            f.master_cpu * 100.0,
            f.jitter.late
        );
        results.flood.push(f);
    }
    // carpd alone: the valid-checksum flood into a small ring, at default timers (advbase 1)
    // and at its fastest.
    let mut carpds = [Setting::carpd_default()]
        .into_iter()
        .chain(fastests.iter().copied())
        .filter(|s| s.tool() == Tool::Carpd && plan.tools.contains(&Tool::Carpd))
        .collect::<Vec<_>>();
    carpds.dedup();
    for setting in carpds {
        ctx.check()?;
        let what = format!("small-ring flood {}", setting.label());
        let Some(f) = ctx.attempt(&what, &mut results.errors, || {
            flood::measure_small_ring(ctx, setting, plan.flood)
        })?
        else {
            continue;
        };
        println!(
            "  {:<55} {:>9.0} frames/s into a {} B ring: {} state changes, {} of the master's {} adverts on the backup's fast path",
            setting.label(),
            f.sent_per_s,
            flood::SMALL_RING_BYTES,
            f.state_changes,
            f.backup_fastpath,
            f.master_sent
        );
        results.ring_flood.push(f);
    }

    Ok(())
}

/// carpd in VRRP mode against keepalived at the same timers (see `vrrp.rs`).
fn run_vrrp(ctx: &Ctx, plan: &Plan, results: &mut report::Results) -> Result<()> {
    section("VRRPv3: carpd vs keepalived");
    for tool in [Tool::Carpd, Tool::Keepalived] {
        ctx.check()?;
        let what = format!("vrrp {tool}");
        let Some(row) = ctx.attempt(&what, &mut results.errors, || {
            vrrp::measure(ctx, tool, plan.default_runs, plan.cost_window)
        })?
        else {
            continue;
        };
        println!(
            "  {tool:<11} failover {:?}, master {:.1} µs/advert",
            row.failovers,
            row.cpu_per_advert * 1e6
        );
        results.vrrp.push(row);
    }
    Ok(())
}

/// Each tool's cost at default timers by number of vhids, and at its fastest timers.
fn run_costs(
    ctx: &Ctx,
    plan: &Plan,
    defaults: &[Setting],
    fastests: &[Setting],
    results: &mut report::Results,
) -> Result<()> {
    section("cost");
    // (setting, vhids, window, carpd without its real-time option)
    let mut cost_plan: Vec<(Setting, u8, Duration, bool)> = Vec::new();
    let one_a_second = plan.cost_window * cost::ONE_ADVERT_A_SECOND_WINDOWS;
    for &setting in defaults {
        for &n in &plan.vhid_counts {
            let window = if n == 1 {
                one_a_second
            } else {
                plan.cost_window
            };
            cost_plan.push((setting, n, window, false));
        }
        // The peers run without real-time scheduling by default; carpd's unit turns it on.
        // One vhid without it says what the real-time wake-up costs.
        if setting.tool() == Tool::Carpd {
            cost_plan.push((setting, 1, one_a_second, true));
        }
    }
    for &setting in fastests {
        cost_plan.push((setting, 1, plan.cost_window, false));
    }
    // The rows of one vhid at default timers take turns window by window (see
    // `cost::ONE_ADVERT_A_SECOND_WINDOWS`), the first of each round a different one.
    let turns: Vec<(Setting, bool)> = cost_plan
        .iter()
        .filter(|&&(_, vhids, window, _)| vhids == 1 && window == one_a_second)
        .map(|&(setting, _, _, without_realtime)| (setting, without_realtime))
        .collect();
    let mut windows: Vec<Vec<cost::CostResult>> = vec![Vec::new(); turns.len()];
    for round in 0..cost::ONE_ADVERT_A_SECOND_WINDOWS as usize {
        for k in 0..turns.len() {
            let i = (round + k) % turns.len();
            let (setting, without_realtime) = turns[i];
            ctx.check()?;
            let label = cost::label(&setting, without_realtime);
            let what = format!("cost {label} 1 vhid, window {}", round + 1);
            if let Some(c) = ctx.attempt(&what, &mut results.errors, || {
                cost::measure(ctx, setting, 1, plan.cost_window, without_realtime)
            })? {
                println!(
                    "  {:<55}   1 vhid, window {}: {:.1} µs/advert",
                    label,
                    round + 1,
                    c.master.cpu_per_advert * 1e6
                );
                windows[i].push(c);
            }
        }
    }
    for (setting, vhids, window, without_realtime) in cost_plan {
        ctx.check()?;
        let label = cost::label(&setting, without_realtime);
        let c = if let Some(i) = turns
            .iter()
            .position(|&t| t == (setting, without_realtime))
            .filter(|_| vhids == 1 && window == one_a_second)
        {
            let Some(c) = cost::merge(&windows[i]) else {
                continue;
            };
            c
        } else {
            let what = format!("cost {label} {vhids} vhids");
            let Some(c) = ctx.attempt(&what, &mut results.errors, || {
                cost::measure(ctx, setting, vhids, window, without_realtime)
            })?
            else {
                continue;
            };
            c
        };
        println!(
            "  {:<55} {:>3} vhids: master {:.2} % CPU, {:.1} µs/advert, RSS {:.1} MiB",
            label,
            vhids,
            c.master.cpu * 100.0,
            c.master.cpu_per_advert * 1e6,
            c.master.rss_kib as f64 / 1024.0
        );
        results.cost.push(c);
    }

    Ok(())
}

fn section(name: &str) {
    println!();
    println!("== {name}");
}

/// Builds carpd and carpctl (release unless `release` is false) and returns their paths.
/// The eBPF toolchain this needs is on the PATH `cargo xtask bench` gives.
fn build(release: bool) -> Result<Binaries> {
    let dir = workspace_root()
        .join("target")
        .join(if release { "release" } else { "debug" });
    // The build without the decision records first, kept aside: the plain build after it
    // puts the binaries users run back in place (both share the dependencies' builds).
    cargo_build(release, &["--features", "xdp-no-decision-records"])?;
    let aside = workspace_root().join("target/bench-no-records");
    std::fs::create_dir_all(&aside).with_context(|| format!("creating {}", aside.display()))?;
    let carpd_without_records = aside.join("carpd");
    std::fs::copy(dir.join("carpd"), &carpd_without_records)
        .with_context(|| format!("copying carpd to {}", carpd_without_records.display()))?;
    cargo_build(release, &[])?;
    Ok(Binaries {
        carpd: dir.join("carpd"),
        carpctl: dir.join("carpctl"),
        carpd_args: Binaries::realtime_args(),
        carpd_without_records,
    })
}

/// `cargo build -p carp-daemon --bins [--release] EXTRA...`.
fn cargo_build(release: bool, extra: &[&str]) -> Result<()> {
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(workspace_root())
        .args(["build", "--quiet", "-p", "carp-daemon", "--bins"])
        .args(extra);
    if release {
        cargo.arg("--release");
    }
    let status = cargo
        .stdin(Stdio::null())
        .status()
        .context("could not start cargo")?;
    if !status.success() {
        bail!(
            "`cargo build -p carp-daemon --bins{}{}` failed ({status})",
            if release { " --release" } else { "" },
            extra.iter().map(|a| format!(" {a}")).collect::<String>()
        );
    }
    Ok(())
}

/// The workspace root (this crate lives one level below it).
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

fn flush() {
    let _ = std::io::stdout().flush();
}

/// Set by SIGINT/SIGTERM: the bench stops at its next wait and the lab is cleaned up.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

fn install_interrupt_handler() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    nanos ^ u64::from(std::process::id()) << 32 | 1
}

/// Seconds since the Unix epoch, as pcap timestamps are.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// What every section needs: the lab, the binaries, randomness, and interruption.
pub struct Ctx {
    pub lab: Lab,
    pub bins: Binaries,
    rng: Cell<u64>,
}

impl Ctx {
    /// Fails if the bench was interrupted.
    pub fn check(&self) -> Result<()> {
        if INTERRUPTED.load(Ordering::Relaxed) {
            bail!("interrupted; the lab is being removed");
        }
        Ok(())
    }

    pub fn interrupted(&self) -> &'static AtomicBool {
        &INTERRUPTED
    }

    /// Runs one part of the bench. A failure is printed, recorded in `errors` and cleaned
    /// up after (links replugged, hosts swept), and the bench goes on with the next part;
    /// an interruption ends the bench.
    pub fn attempt<T>(
        &self,
        what: &str,
        errors: &mut Vec<String>,
        part: impl FnOnce() -> Result<T>,
    ) -> Result<Option<T>> {
        match part() {
            Ok(value) => Ok(Some(value)),
            Err(err) => {
                self.check()?;
                println!("FAILED");
                println!("  {what}: {err:#}");
                errors.push(format!(
                    "{what}: {}",
                    format!("{err:#}").lines().next().unwrap_or("")
                ));
                for i in 0..2 {
                    let _ = self.lab.host(i).restore_link();
                    tools::reset_host(&self.lab, i)?;
                }
                Ok(None)
            }
        }
    }

    /// Sleeps, waking early (with an error) on interruption.
    pub fn sleep(&self, d: Duration) -> Result<()> {
        let until = Instant::now() + d;
        loop {
            self.check()?;
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            std::thread::sleep((until - now).min(Duration::from_millis(50)));
        }
    }

    /// Uniform in [0, d) (xorshift64*; the bench needs spread, not cryptography).
    pub fn random_below(&self, d: Duration) -> Duration {
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        d.mul_f64(r as f64 / (1u64 << 53) as f64)
    }

    /// Waits until `daemon` reports `state`.
    pub fn wait_state(&self, daemon: &Daemon, state: State, timeout: Duration) -> Result<()> {
        let until = Instant::now() + timeout;
        loop {
            self.check()?;
            if daemon.state(&self.lab) == Some(state) {
                return Ok(());
            }
            if Instant::now() >= until {
                bail!(
                    "{} on r{} not {state:?} after {}",
                    daemon.setting().label(),
                    daemon.host_index() + 1,
                    human(timeout)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A thread that runs until its handle is dropped: the loop it runs checks the flag it is
/// given. Dropping the handle sets the flag and joins the thread.
pub struct Background {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    pub fn spawn(work: impl FnOnce(&AtomicBool) + Send + 'static) -> Background {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || work(&flag));
        Background {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The two routers running one setting: r1 (host 0) with the master's timers or priority,
/// r2 (host 1) with the backup's. Which one is master at a given moment is what
/// [`Pair::wait_settled`] says: with equal timers (ucarp) the roles swap at each failover.
pub struct Pair {
    pub routers: [Daemon; 2],
    /// State changes logged by instances that were replaced (restarted after a kill).
    retired_changes: usize,
}

impl Pair {
    pub fn start(ctx: &Ctx, setting: Setting, vhids: u8) -> Result<Pair> {
        Pair::start_with(ctx, setting, vhids, &ctx.bins)
    }

    /// As [`Pair::start`], with other binaries.
    pub fn start_with(ctx: &Ctx, setting: Setting, vhids: u8, bins: &Binaries) -> Result<Pair> {
        let r1 = Daemon::start(&ctx.lab, 0, setting, Role::Master, vhids, bins)?;
        let r2 = Daemon::start(&ctx.lab, 1, setting, Role::Backup, vhids, bins)?;
        Ok(Pair {
            routers: [r1, r2],
            retired_changes: 0,
        })
    }

    /// Starts the pair and waits until the first election is over: the same router master
    /// for a master-down time and two intervals (a preferred router that lost the first
    /// election to start-up jitter preempts within that); returns the master's index.
    pub fn start_stable(ctx: &Ctx, setting: Setting, vhids: u8) -> Result<(Pair, usize)> {
        Pair::start_stable_with(ctx, setting, vhids, &ctx.bins)
    }

    /// As [`Pair::start_stable`], with other binaries.
    pub fn start_stable_with(
        ctx: &Ctx,
        setting: Setting,
        vhids: u8,
        bins: &Binaries,
    ) -> Result<(Pair, usize)> {
        let pair = Pair::start_with(ctx, setting, vhids, bins)?;
        let period = setting.master_down() + 2 * setting.advert_interval();
        let master = pair.wait_stable(ctx, |_| period)?;
        Ok((pair, master))
    }

    /// Waits until one router is master and the other backup (vhid 1); returns the
    /// master's index.
    pub fn wait_settled(&self, ctx: &Ctx) -> Result<usize> {
        let timeout = 3 * self.routers[0].setting().master_down() + Duration::from_secs(20);
        let until = Instant::now() + timeout;
        loop {
            ctx.check()?;
            let states = [
                self.routers[0].state(&ctx.lab),
                self.routers[1].state(&ctx.lab),
            ];
            match states {
                [Some(State::Master), Some(State::Backup)] => return Ok(0),
                [Some(State::Backup), Some(State::Master)] => return Ok(1),
                _ if Instant::now() >= until => bail!(
                    "{}: no single master after {} (states {states:?})\n--- r1 log ---\n{}\n--- r2 log ---\n{}",
                    self.routers[0].setting().label(),
                    human(timeout),
                    tail_lines(&self.routers[0].logs(), 15),
                    tail_lines(&self.routers[1].logs(), 15)
                ),
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// Waits until the same router has been master, and the other backup, without a state
    /// change for `period(master index)`; returns the master's index.
    pub fn wait_stable(&self, ctx: &Ctx, period: impl Fn(usize) -> Duration) -> Result<usize> {
        let mut master = self.wait_settled(ctx)?;
        for _ in 0..10 {
            let changes = self.state_changes();
            ctx.sleep(period(master))?;
            let now = self.wait_settled(ctx)?;
            if now == master && self.state_changes() == changes {
                return Ok(now);
            }
            master = now;
        }
        bail!(
            "{}: the roles kept changing",
            self.routers[0].setting().label()
        )
    }

    /// State changes both routers logged so far, by every instance they ran.
    pub fn state_changes(&self) -> usize {
        self.retired_changes
            + self
                .routers
                .iter()
                .map(Daemon::state_changes)
                .sum::<usize>()
    }

    /// Replaces router `index` by a new instance (after a kill or a stop).
    pub fn replace(&mut self, index: usize, daemon: Daemon) {
        self.retired_changes += self.routers[index].state_changes();
        self.routers[index] = daemon;
    }

    /// Stops both gracefully (each tool removes what it added) and sweeps what a tool that
    /// failed to stop may have left: addresses, carp interfaces, pins.
    pub fn stop(self, ctx: &Ctx) -> Result<()> {
        for d in &self.routers {
            if d.terminate().is_err() {
                let _ = d.kill();
            }
        }
        drop(self);
        for i in 0..2 {
            tools::reset_host(&ctx.lab, i)?;
        }
        Ok(())
    }
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The client's probes of the VIP: raw ARP requests every 1 ms and, optionally, a 1 ms ping.
pub struct Probe {
    arp: Background,
    ping: Option<LabProcess>,
    /// When each ARP request left the client (seconds since the epoch, the captures' clock).
    requests: Arc<Mutex<Vec<f64>>>,
}

impl Probe {
    pub fn start(ctx: &Ctx, with_ping: bool) -> Result<Probe> {
        let client = ctx.lab.client();
        let socket = carp_tests::RawSocket::open(client)?;
        let frame = frames::arp_request(PROBE_MAC, PROBE_IP, VIP);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let arp = traffic::ticker(
            socket,
            frame,
            Duration::from_millis(1),
            Arc::clone(&requests),
        );
        let ping = if with_ping {
            let vip = VIP.to_string();
            Some(client.spawn(["ping", "-q", "-n", "-i", "0.001", &vip])?)
        } else {
            None
        };
        Ok(Probe {
            arp,
            ping,
            requests,
        })
    }

    /// Stops the probe; returns when each ARP request was sent, in order.
    pub fn stop(self) -> Vec<f64> {
        drop(self.arp);
        drop(self.ping);
        std::mem::take(&mut *self.requests.lock().expect("not poisoned"))
    }
}
