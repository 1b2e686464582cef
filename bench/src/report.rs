//! docs/BENCHMARKS.md: one Markdown table per section, ratios against each peer, the
//! exact command, the machine and the date, and the failover timelines as an SVG next to it.
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::analysis::{Summary, summarize};
use super::cost::CostResult;
use super::dataplane::RateResult;
use super::failover::{Fault, RunFigures, Series};
use super::flood::{FloodResult, RingFloodResult, SMALL_RING_BYTES};
use super::plot;
use super::soak::SoakResult;
use super::tools::{Setting, Tool};
use super::{PROBE_IP, Plan, traffic};

/// Everything one bench run measured.
pub struct Results {
    pub plan: Plan,
    pub command: String,
    pub search: Vec<SoakResult>,
    pub failover: Vec<Series>,
    pub soak: Option<SoakResult>,
    /// The chosen setting with carpd's real-time option off.
    pub soak_without_realtime: Option<SoakResult>,
    pub rate: Option<RateResult>,
    /// What the XDP decision records cost while off.
    pub records: Option<crate::records::RecordsCost>,
    pub flood: Vec<FloodResult>,
    /// carpd under the valid-checksum flood into a small advert ring.
    pub ring_flood: Vec<RingFloodResult>,
    pub cost: Vec<CostResult>,
    /// VRRPv3: carpd and keepalived at the same timers.
    pub vrrp: Vec<crate::vrrp::VrrpRow>,
    /// carpd's load balancing across 1 to 3 hosts.
    pub balancing: Option<crate::balancing::BalanceResult>,
    /// Parts that failed, with the first line of their error.
    pub errors: Vec<String>,
    pub elapsed: Duration,
}

impl Results {
    pub fn new(plan: &Plan, command: &str) -> Results {
        Results {
            plan: plan.clone(),
            command: command.to_owned(),
            search: Vec::new(),
            failover: Vec::new(),
            soak: None,
            soak_without_realtime: None,
            rate: None,
            records: None,
            flood: Vec::new(),
            ring_flood: Vec::new(),
            cost: Vec::new(),
            vrrp: Vec::new(),
            balancing: None,
            errors: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }
}

/// The figure's file name, next to the report (docs/BENCHMARKS.md's).
const FIGURE: &str = "failover-timelines.svg";

/// The figure of the report `out`: [`FIGURE`] next to BENCHMARKS.md, `<stem>-` + FIGURE
/// next to any other report (`--plain-lab --out docs/BENCHMARKS-plain-lab.md`), so a second
/// report does not overwrite the first one's figure.
fn figure_name(out: &Path) -> String {
    match out.file_stem().and_then(|s| s.to_str()) {
        Some("BENCHMARKS") | None => FIGURE.to_owned(),
        Some(stem) => format!("{stem}-{FIGURE}"),
    }
}

/// Reference figures for the peers, measured outside this bench (client ARP probe every
/// 10 ms, SIGKILL plus link down; min / median / max in ms), compared with this run's
/// link-cut series.
const REFERENCE: [(&str, Setting, Fault, [f64; 3]); 4] = [
    (
        "ucarp default",
        Setting::ucarp_default(),
        Fault::LinkCut,
        [2226.0, 2632.0, 2963.0],
    ),
    (
        "ucarp deadratio 1",
        Setting::ucarp_fastest(),
        Fault::LinkCut,
        [80.0, 469.0, 1006.0],
    ),
    (
        "keepalived 10 ms",
        Setting::keepalived_fastest(),
        Fault::LinkCut,
        [31.0, 36.0, 45.0],
    ),
    (
        "keepalived 10 ms graceful",
        Setting::keepalived_fastest(),
        Fault::Term,
        [10.0, 12.0, 17.0],
    ),
];

/// The ratio tables of every fault, for the terminal at the end of a run.
pub fn ratios(r: &Results) -> String {
    let mut text = String::new();
    for fault in Fault::ALL {
        let rows: Vec<&Series> = r.failover.iter().filter(|s| s.fault == fault).collect();
        if rows.iter().any(|s| s.setting.tool() != Tool::Carpd) {
            let _ = writeln!(text, "{}:", fault.title());
            ratio_table(&mut text, &rows);
        }
    }
    text
}

pub fn write(r: &Results, out: &Path) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let name = figure_name(out);
    // A run without failover series (`--cost-only` and the like) has nothing to draw.
    if !r.failover.is_empty() {
        let figure = out.with_file_name(&name);
        let panels: Vec<plot::Timeline> = figure_panels(r);
        std::fs::write(&figure, plot::render_svg(&panels))
            .with_context(|| format!("writing {}", figure.display()))?;
    }
    std::fs::write(out, markdown(r, &name)).with_context(|| format!("writing {}", out.display()))
}

/// The figure: for SIGKILL and for link cut, one panel per tool and timers, each the run
/// closest to its series' median.
fn figure_panels(r: &Results) -> Vec<plot::Timeline> {
    let mut panels = Vec::new();
    for fault in [Fault::Kill, Fault::LinkCut] {
        for s in &r.failover {
            if s.fault == fault
                && let Some(t) = &s.timeline
            {
                panels.push(t.clone());
            }
        }
    }
    panels
}

/// What a run measured: one section (`--cost-only` and the like), or the plan's series.
fn scope(plan: &Plan) -> String {
    if plan.records_only {
        format!("{} plan, only the decision records' cost", plan.name)
    } else if plan.cost_only {
        format!("{} plan, only the cost section", plan.name)
    } else if plan.search_only {
        "only the search for carpd's fastest stable timers".to_owned()
    } else if plan.failover_only {
        format!(
            "{} plan, only the failover series at the fastest timers, {} failovers each",
            plan.name, plan.runs
        )
    } else {
        format!(
            "{} plan, {} failovers per series at the fastest timers, {} at default timers",
            plan.name, plan.runs, plan.default_runs
        )
    }
}

fn markdown(r: &Results, figure: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks: carpd vs ucarp vs keepalived\n");
    let _ = writeln!(
        md,
        "Generated by `{}` ({}) on {}, in {}.\n",
        r.command,
        scope(&r.plan),
        today(),
        crate::human(r.elapsed)
    );
    let _ = writeln!(md, "Machine: {}.\n", machine());
    let _ = writeln!(md, "{}\n", versions());
    if !r.errors.is_empty() {
        let _ = writeln!(
            md,
            "**Parts of this run failed** (their tables are missing):\n"
        );
        for e in &r.errors {
            let _ = writeln!(md, "- {e}");
        }
        md.push('\n');
    }
    let lab = if r.plan.plain_lab {
        "the plain lab users have (no program on the switch side; carpd in XDP mode auto, \
         which is generic on these veths)"
    } else {
        "native XDP on veth (a pass program on each switch-side port puts it in NAPI mode, \
         which native XDP_TX on a veth needs)"
    };
    md.push_str(&METHOD.replace("native XDP on veth", lab));
    md.push('\n');
    // A one-section run has no failover series or soak: no empty tables for them.
    if !r.failover.is_empty() {
        failover_section(&mut md, r);
        reference_section(&mut md, r);
        let _ = writeln!(md, "\n![Failover timelines]({figure})\n");
    }
    if !r.search.is_empty() {
        soak_section(&mut md, r);
    }
    rate_section(&mut md, r);
    records_section(&mut md, r);
    flood_section(&mut md, r);
    ring_flood_section(&mut md, r);
    cost_section(&mut md, r);
    vrrp_section(&mut md, r);
    balancing_section(&mut md, r);
    md
}

/// carpd as a VRRPv3 router against keepalived, same timers and priorities.
fn vrrp_section(md: &mut String, r: &Results) {
    if r.vrrp.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\n## VRRPv3: carpd vs keepalived\n\n\
         Both as VRRPv3 routers of VRID 1 (advert_int {} s, priorities 150/100): the backup's \
         time from the master's SIGKILL to reporting MASTER (RFC 5798 Master_Down_Interval: \
         3.61 s after the last advert, so 2.61 to 3.61 s after the kill), and the master's \
         CPU per advert.\n\n\
         | tool | failover min / median / max (ms) | runs | master CPU per advert | adverts/s |\n\
         | --- | --- | --- | --- | --- |",
        f64::from(crate::vrrp::ADVERT_INT_CS) / 100.0
    );
    for row in &r.vrrp {
        let mut f: Vec<f64> = row
            .failovers
            .iter()
            .map(|d| d.as_secs_f64() * 1e3)
            .collect();
        f.sort_by(f64::total_cmp);
        let stats = match (f.first(), f.get(f.len() / 2), f.last()) {
            (Some(a), Some(m), Some(b)) => format!("{a:.0} / {m:.0} / {b:.0}"),
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            md,
            "| {} | {stats} | {} | {:.1} µs | {:.2} |",
            row.tool,
            f.len(),
            row.cpu_per_advert * 1e6,
            row.adverts_per_s
        );
    }
}

fn balancing_section(md: &mut String, r: &Results) {
    let Some(b) = &r.balancing else {
        return;
    };
    let _ = writeln!(
        md,
        "## Load balancing (carpd only)
"
    );
    let _ = writeln!(
        md,
        "OpenBSD's `carpnodes` with `balancing ip`, in a lab of its own (three routers, a \
         client): host i prefers node i + 1; one host is a plain `vhid 1`. The client floods \
         UDP from 256 source addresses to the carp MAC for {} (one AF_PACKET socket per \
         core); each host's XDP program keeps its buckets and drops the others' \
         (`lb_accepted` / `vmac_accepted`). The generator, the bridge and every host share \
         this machine's {} cores, so more hosts spread the same work rather than add \
         capacity here; on separate machines each host carries its share.\n",
        crate::human(b.window),
        cores()
    );
    let _ = writeln!(
        md,
        "| hosts | offered frames/s | accepted frames/s | per host |"
    );
    let _ = writeln!(md, "|---|---|---|---|");
    for a in &b.accepted {
        let per_host = a
            .per_host
            .iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(" / ");
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.0} | {per_host} |",
            a.hosts,
            a.offered_per_s,
            a.total_per_s()
        );
    }
    let _ = writeln!(
        md,
        "\nOne bucket's outage when its host's carpd is SIGKILLed (two hosts, advbase 1, \
         advskew 0/100; the client pings every 2 ms from an address of that bucket): \
         **{:.0} ms**, from the fail-silent deadline of the dead carpd's node to the other \
         host's master-down takeover; the other bucket is not interrupted.\n",
        b.outage.as_secs_f64() * 1e3
    );
}

const METHOD: &str = "\
## Method

One lab of network namespaces: routers r1 (preferred master) and r2 (backup) and a client on \
one bridge, IPv4 only, native XDP on veth. Each tool manages VIP 192.0.2.1/24 (vhid 1) with \
preemption on; ucarp adds and removes the address with up/down scripts; keepalived runs \
VRRPv3 with priorities 150/100. carpd runs with `--realtime-priority 10`, as the shipped \
systemd unit does; the peers with their defaults. Tools run one at a time.

- **Client probe**: raw ARP requests for the VIP every 1 ms from a MAC and address of their \
own (so the client's neighbour cache plays no part), and `ping -i 0.001` through the \
client's stack. Captures at the switch ports of r1 and r2 (frames each router sent) tell who \
answered: carpd's routers answer with the same virtual MAC, so only the port can tell.
- **ARP/ICMP outage**: the longest silence between two replies (from either router) up to \
the new master's first reply. **Split-brain**: time during which both routers answered the \
ARP probe, from the fault to the end of the run (\"open\" when both still answered then: the \
old master never stopped). A fault lands at a random point of the advertisement schedule; \
after each run the bench restores r1 (restart, replug, undemote) and waits for r1 MASTER and \
r2 BACKUP.
- Demotion exists only in carpd (the peers have no demote counter). A killed ucarp or \
keepalived leaves its address on the interface (nobody runs its down script); the bench \
removes it before the restart, as a supervisor would have to.
";

fn ms(x: f64) -> String {
    if x.is_nan() {
        "–".to_owned()
    } else if x < 0.01 {
        format!("{:.2}", x * 1e3)
    } else {
        format!("{:.0}", x * 1e3)
    }
}

fn summary_cells(s: Option<Summary>) -> String {
    match s {
        Some(s) => format!(
            "{} / {} / {} / {}",
            ms(s.min),
            ms(s.median),
            ms(s.p95),
            ms(s.max)
        ),
        None => "–".to_owned(),
    }
}

fn failover_section(md: &mut String, r: &Results) {
    let _ = writeln!(md, "## Failover\n");
    let _ = writeln!(
        md,
        "Times in ms: min / median / p95 / max over the runs of each series.\n"
    );
    for fault in Fault::ALL {
        let rows: Vec<&Series> = r.failover.iter().filter(|s| s.fault == fault).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(md, "### {}\n", fault.title());
        let _ = writeln!(
            md,
            "| tool (timers) | runs | ARP outage | ICMP outage | new master answers after | new master's first advert after the old's last | split-brain | open |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
        for s in &rows {
            let arp: Vec<f64> = s.runs.iter().map(|f| f.arp_outage).collect();
            let icmp: Vec<f64> = s.runs.iter().filter_map(|f| f.icmp_outage).collect();
            let take: Vec<f64> = s.runs.iter().map(|f| f.takeover).collect();
            let gap: Vec<f64> = s.runs.iter().filter_map(|f| f.advert_gap).collect();
            let split: Vec<f64> = s.runs.iter().map(|f| f.split_brain).collect();
            let open = s.runs.iter().filter(|f| f.split_brain_open).count();
            let failed = if s.failed > 0 {
                format!(" ({} failed)", s.failed)
            } else {
                String::new()
            };
            let _ = writeln!(
                md,
                "| {} | {}{failed} | {} | {} | {} | {} | {} | {open} |",
                s.setting.label(),
                s.runs.len(),
                summary_cells(summarize(&arp)),
                summary_cells(summarize(&icmp)),
                summary_cells(summarize(&take)),
                summary_cells(summarize(&gap)),
                summary_cells(summarize(&split)),
            );
        }
        md.push('\n');
        ratio_table(md, &rows);
    }
}

/// Median ARP outage of each peer divided by carpd's, at default and at fastest timers
/// (how many times longer the client waits with the peer), and the median split-brain time
/// of each tool next to it.
fn ratio_table(md: &mut String, rows: &[&Series]) {
    let median = |s: &Series, f: fn(&RunFigures) -> f64| {
        summarize(&s.runs.iter().map(f).collect::<Vec<_>>()).map(|m| m.median)
    };
    let mut lines = Vec::new();
    for fastest in [false, true] {
        let pick = |tool: Tool| {
            rows.iter()
                .find(|s| s.setting.tool() == tool && is_default(&s.setting) != fastest)
        };
        let Some(carpd) = pick(Tool::Carpd) else {
            continue;
        };
        let carpd_outage = median(carpd, |f| f.arp_outage);
        let ratio = |tool: Tool| match (
            pick(tool).and_then(|s| median(s, |f| f.arp_outage)),
            carpd_outage,
        ) {
            (Some(p), Some(c)) if c > 0.0 => format!("{:.2}×", p / c),
            _ => "–".to_owned(),
        };
        let split = |tool: Tool| {
            pick(tool)
                .and_then(|s| median(s, |f| f.split_brain))
                .map_or("–".to_owned(), ms)
        };
        lines.push(format!(
            "| {} | {} | {} | {} / {} / {} |",
            if fastest { "fastest" } else { "default (1 s)" },
            ratio(Tool::Ucarp),
            ratio(Tool::Keepalived),
            split(Tool::Carpd),
            split(Tool::Ucarp),
            split(Tool::Keepalived),
        ));
    }
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "Peer ÷ carpd, median ARP outage (above 1: carpd's client waits less), and median \
         split-brain in ms:\n"
    );
    let _ = writeln!(
        md,
        "| timers | ucarp ÷ carpd | keepalived ÷ carpd | split-brain carpd / ucarp / keepalived |"
    );
    let _ = writeln!(md, "|---|---|---|---|");
    for l in lines {
        let _ = writeln!(md, "{l}");
    }
    md.push('\n');
}

fn reference_section(md: &mut String, r: &Results) {
    let _ = writeln!(md, "### The peers against reference figures\n");
    let _ = writeln!(
        md,
        "Reference: client ARP probe every 10 ms, SIGKILL of the master plus link down. Here: \
         1 ms probe, link cut (SIGTERM for graceful). min / median / max in ms.\n"
    );
    let _ = writeln!(md, "| peer | reference | this run |");
    let _ = writeln!(md, "|---|---|---|");
    for (name, setting, fault, refs) in REFERENCE {
        let measured = r
            .failover
            .iter()
            .find(|s| s.setting == setting && s.fault == fault)
            .and_then(|s| summarize(&s.runs.iter().map(|f| f.arp_outage).collect::<Vec<_>>()));
        let this = measured.map_or("not run".to_owned(), |m| {
            format!("{} / {} / {}", ms(m.min), ms(m.median), ms(m.max))
        });
        let _ = writeln!(
            md,
            "| {name} | {:.0} / {:.0} / {:.0} | {this} |",
            refs[0], refs[1], refs[2]
        );
    }
    md.push('\n');
}

fn soak_section(md: &mut String, r: &Results) {
    let _ = writeln!(md, "## Soak: carpd's fastest stable timers\n");
    let _ = writeln!(
        md,
        "Each candidate runs with the other core spinning and the 1 ms ARP probe on; stable \
         means no state change after the initial election. Shown too: the longest gap \
         between two ARP replies, the longest a request of the probe waited for a reply \
         (from its sending: the probe is a normal-priority thread next to the spinning one, \
         and a gap in which it sent nothing is its own delay), and the master's longest \
         advert interval: when a silence is as long as that interval and nobody took over, \
         the whole machine stood still (steal time on this shared VM), not the dataplane. \
         Steal is what the hypervisor took from this VM's virtual CPUs during the soak \
         (/proc/stat, 10 ms ticks): in all, and the most from one CPU in one 10-ms reading. \
         The standby's adverts are those the master's standby thread sent because its \
         sender had not (its CPU held, see the advert pacer), and the postponements the \
         master-down timers the backup found it had overslept and moved once (README, \
         \"A backup that overslept\"): stand-stills carpd rode out. \
         The first stable candidate is used as carpd's fastest setting above. carpd \
         runs with `--realtime-priority {}` (SCHED_FIFO, memory locked), as the shipped \
         systemd unit runs it; the last row is the chosen setting without it.\n",
        super::tools::CARPD_REALTIME_PRIORITY
    );
    let _ = writeln!(
        md,
        "| timers | real time | advert interval | master down after | duration | state changes | longest ARP silence (ms) | longest unanswered request (ms) | master's longest advert interval (ms) | adverts late (> 1.5 × interval) | mean advert deviation (ms) | steal: all / longest (ms) | standby's adverts / postponed master-downs | stable |"
    );
    let _ = writeln!(
        md,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for s in r
        .search
        .iter()
        .chain(&r.soak)
        .chain(&r.soak_without_realtime)
    {
        let _ = writeln!(
            md,
            "| {} | {} | {} ms | {} ms | {} | {} | {} | {} | {} | {} | {:.2} | {:.0} / {:.0} | {} | {} |",
            s.setting.timers(),
            if s.realtime { "yes" } else { "no" },
            ms(s.setting.advert_interval().as_secs_f64()),
            ms(s.setting.master_down().as_secs_f64()),
            crate::human(s.duration),
            s.state_changes,
            ms(s.longest_arp_gap),
            ms(s.longest_unanswered),
            ms(s.jitter.max_interval),
            s.jitter.late,
            s.jitter.mean_abs * 1e3,
            s.steal.total_ms,
            s.steal.longest_ms,
            s.counters.map_or_else(
                || "–".to_owned(),
                |c| format!("{} / {}", c.adverts_by_standby, c.master_down_postponed)
            ),
            if s.stable() { "yes" } else { "no" }
        );
    }
    md.push('\n');
}

fn rate_section(md: &mut String, r: &Results) {
    let Some(rate) = &r.rate else {
        return;
    };
    let _ = writeln!(md, "## Dataplane: ARP answers per second\n");
    let _ = writeln!(
        md,
        "The client floods ARP requests for the VIP for {} from one AF_PACKET socket per \
         core (PACKET_QDISC_BYPASS, sendmmsg in batches of {}): on a veth this is the \
         fastest generator without a program of its own (AF_XDP on veth runs in copy mode; \
         BPF_PROG_TEST_RUN live frames would need an XDP program to generate them). On a \
         veth the receiving side's work (bridge, XDP or the kernel's ARP code, the reply's \
         way back) runs in the sender's context, so the generator, the switch and both ends \
         share this machine's {} cores: answers per second measure the whole path, and the \
         ratio between the two rows is what the responder changes. Answers are the frames \
         r1's switch port received. ucarp and keepalived answer through the kernel stack: \
         the kernel row is theirs.\n",
        crate::human(rate.window),
        traffic::BATCH,
        cores()
    );
    let _ = writeln!(
        md,
        "| responder | requests offered /s | answers /s | answered |"
    );
    let _ = writeln!(md, "|---|---|---|---|");
    for (name, x) in [
        ("carpd XDP (master)", rate.xdp),
        ("kernel stack (VIP on eth0, no XDP)", rate.kernel),
    ] {
        let _ = writeln!(
            md,
            "| {name} | {:.0} | {:.0} | {:.1} % |",
            x.sent_per_s,
            x.replies_per_s,
            100.0 * x.replies_per_s / x.sent_per_s.max(1.0)
        );
    }
    let _ = writeln!(
        md,
        "\nXDP ÷ kernel: **{:.2}×** answers per second.\n",
        rate.xdp.replies_per_s / rate.kernel.replies_per_s.max(1.0)
    );
}

fn records_section(md: &mut String, r: &Results) {
    let Some(c) = &r.records else {
        return;
    };
    let _ = writeln!(
        md,
        "## Dataplane: what the decision records cost while off\n"
    );
    let _ = writeln!(
        md,
        "The ARP flood of the section above, {} per round, against carpd as built (its XDP \
         decision records off, the default: one array lookup at the decision site) and a \
         carpd built with the feature `xdp-no-decision-records` (no lookup, no tail call), \
         alternating, {} round(s), a fresh pair each time. Allowed: {:.0} % fewer answers.\n",
        crate::human(c.window),
        c.with_records.len(),
        crate::records::ALLOWED_LOSS * 100.0
    );
    let _ = writeln!(md, "| carpd | answers /s (median) | per round |");
    let _ = writeln!(md, "|---|---|---|");
    for (name, median, rates) in [
        ("records off (as built)", c.median_with(), &c.with_records),
        (
            "built without records",
            c.median_without(),
            &c.without_records,
        ),
    ] {
        let rounds = rates
            .iter()
            .map(|x| format!("{:.0}", x.replies_per_s))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(md, "| {name} | {median:.0} | {rounds} |");
    }
    let _ = writeln!(
        md,
        "\nOff ÷ without: **{:.3}×** ({}).\n",
        c.ratio(),
        if c.within_allowance() {
            "within the allowance"
        } else {
            "outside the allowance"
        }
    );
}

fn flood_section(md: &mut String, r: &Results) {
    if r.flood.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Flood resilience\n");
    let _ = writeln!(
        md,
        "Bogus protocol-112 multicast from the client at the generator's maximum rate \
         (round-robin: a CARP advert for vhid 1 with a wrong HMAC, the same with TTL 64, 36 \
         bytes of garbage; source {PROBE_IP}), reaching master and backup at once, for {} at \
         each tool's fastest timers.\n",
        crate::human(r.plan.flood)
    );
    let _ = writeln!(
        md,
        "| tool (timers) | bogus frames /s | state changes | master CPU | backup CPU | adverts sent | late (> 1.5 × interval) | longest interval (ms) |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for f in &r.flood {
        let _ = writeln!(
            md,
            "| {} | {:.0} | {} | {:.1} % | {:.1} % | {} | {} | {} |",
            f.setting.label(),
            f.sent_per_s,
            f.state_changes,
            f.master_cpu * 100.0,
            f.backup_cpu * 100.0,
            f.jitter.adverts,
            f.jitter.late,
            ms(f.jitter.max_interval)
        );
    }
    let carpd = r.flood.iter().find(|f| f.setting.tool() == Tool::Carpd);
    if let Some(c) = carpd {
        let _ = writeln!(md, "\nCPU under flood, peer ÷ carpd (master, backup):\n");
        let _ = writeln!(md, "| peer | master | backup |");
        let _ = writeln!(md, "|---|---|---|");
        for f in r.flood.iter().filter(|f| f.setting.tool() != Tool::Carpd) {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                f.setting.label(),
                ratio(f.master_cpu, c.master_cpu),
                ratio(f.backup_cpu, c.backup_cpu)
            );
        }
    }
    md.push('\n');
}

fn ring_flood_section(md: &mut String, r: &Results) {
    if r.ring_flood.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "### carpd: a valid-checksum flood into a small advert ring
"
    );
    let _ = writeln!(
        md,
        "Adverts for vhid 1 with a valid checksum and a wrong HMAC (the best priority, and a \
         demoted master forged from the master's own address) from the client at the \
         generator's maximum rate, for {}, with carpd's advert ring at {SMALL_RING_BYTES} bytes \
         (`--advert-ring-bytes`; 256 KiB by default), so that it is full all the time. The \
         backup keeps its master because its dataplane takes the master's repeats before the \
         ring (the fast path: `advert_master_fastpath`); every other advert competes for a \
         ring slot (`advert_ring_full` counts the losers).\n",
        crate::human(r.plan.flood)
    );
    let _ = writeln!(
        md,
        "| carpd (timers) | flood frames /s | state changes | master's adverts | taken by the backup's fast path | backup ring-full drops | backup CPU |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for f in &r.ring_flood {
        let _ = writeln!(
            md,
            "| {} | {:.0} | {} | {} | {} | {} | {:.1} % |",
            f.setting.label(),
            f.sent_per_s,
            f.state_changes,
            f.master_sent,
            f.backup_fastpath,
            f.backup_ring_full,
            f.backup_cpu * 100.0
        );
    }
    md.push('\n');
}

fn ratio(peer: f64, carpd: f64) -> String {
    if carpd > 0.0 {
        format!("{:.1}×", peer / carpd)
    } else {
        "–".to_owned()
    }
}

fn cost_section(md: &mut String, r: &Results) {
    if r.cost.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Cost\n");
    let _ = writeln!(
        md,
        "Over {} per row ({} for the rows of one vhid at default timers, which send one \
         advert a second, in windows of {} that take turns between those rows, so that \
         the host's load, which drifts over minutes, weighs on every tool alike): \
         scheduler runtime (se.sum_exec_runtime of every thread, from \
         /proc/PID/task/*/sched) as a share of one core and per advertisement sent, context \
         switches per second, the backup's wakeups (voluntary context switches) per second \
         and per master-down interval (a carpd backup's XDP program takes its master's \
         repeated adverts, so its carpd wakes about once per master-down interval, not once \
         per advert), resident memory (VmRSS, all processes of the \
         instance: ucarp runs one process per vhid, keepalived a parent and a VRRP child). \
         The kernel share (utime/stime, 10 ms ticks, \"–\" when under a tick) matters: on a \
         veth, sending one advert runs the switch's and the receivers' work in the \
         sender's context, so it is charged to whichever daemon sent it. carpd runs as its \
         systemd unit does (`--realtime-priority`: the event loop SCHED_FIFO, memory \
         locked; its advert pacer, which sends a steady master's adverts, SCHED_FIFO only \
         below 100 ms intervals, so under the normal policy here), the peers with their \
         defaults (no real-time priority); the row \"without real time\" is carpd at one \
         vhid as the peers run, since a real-time task's wake-up costs more.\n",
        crate::human(r.plan.cost_window),
        crate::human(r.plan.cost_window * crate::cost::ONE_ADVERT_A_SECOND_WINDOWS),
        crate::human(r.plan.cost_window)
    );
    let _ = writeln!(
        md,
        "| tool (timers) | vhids | adverts /s | master CPU | of it in the kernel | µs CPU / advert | master switches /s | master RSS (MiB) | backup CPU | backup switches /s | backup wakeups /s (per master-down) | backup RSS (MiB) |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for c in &r.cost {
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} | {:.3} % | {} | {:.1} | {:.1} | {:.1} | {:.3} % | {:.1} | {:.1} ({:.2}) | {:.1} |",
            crate::cost::label(&c.setting, c.without_realtime),
            c.vhids,
            c.adverts_per_s,
            c.master.cpu * 100.0,
            if c.master.kernel_share.is_nan() {
                "–".to_owned()
            } else {
                format!("{:.0} %", c.master.kernel_share * 100.0)
            },
            c.master.cpu_per_advert * 1e6,
            c.master.switches_per_s,
            c.master.rss_kib as f64 / 1024.0,
            c.backup.cpu * 100.0,
            c.backup.switches_per_s,
            c.backup.wakeups_per_s,
            c.backup.wakeups_per_s * c.setting.master_down().as_secs_f64(),
            c.backup.rss_kib as f64 / 1024.0
        );
    }
    let spread: Vec<String> = r
        .cost
        .iter()
        .filter(|c| !c.windows_per_advert.is_empty())
        .map(|c| {
            let each: Vec<String> = c
                .windows_per_advert
                .iter()
                .map(|x| format!("{:.0}", x * 1e6))
                .collect();
            format!(
                "{}: {}",
                crate::cost::label(&c.setting, c.without_realtime),
                each.join(", ")
            )
        })
        .collect();
    if !spread.is_empty() {
        let _ = writeln!(
            md,
            "\nµs CPU per advert in each window of the one-vhid rows (in the order measured; \
             the row is all their CPU over all their adverts): {}.",
            spread.join("; ")
        );
    }
    let _ = writeln!(
        md,
        "\nCPU per advertisement and RSS, peer ÷ carpd (same vhid count and timers class):\n"
    );
    let _ = writeln!(md, "| peer | vhids | µs/advert ratio | RSS ratio |");
    let _ = writeln!(md, "|---|---|---|---|");
    for c in r.cost.iter().filter(|c| c.setting.tool() != Tool::Carpd) {
        let default = is_default(&c.setting);
        // carpd as its unit runs it (real time), the row the bound is about.
        let Some(carpd) = r.cost.iter().find(|x| {
            x.setting.tool() == Tool::Carpd
                && !x.without_realtime
                && x.vhids == c.vhids
                && is_default(&x.setting) == default
        }) else {
            continue;
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            c.setting.label(),
            c.vhids,
            ratio(c.master.cpu_per_advert, carpd.master.cpu_per_advert),
            ratio(c.master.rss_kib as f64, carpd.master.rss_kib as f64)
        );
    }
    md.push('\n');
}

fn is_default(s: &Setting) -> bool {
    match *s {
        Setting::Carpd { advbase, .. } => advbase == 1,
        Setting::Ucarp { deadratio, .. } => deadratio == 3,
        Setting::Keepalived { advert_int_cs } => advert_int_cs == 100,
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!(
        "{} cores ({cpu}), {mem_gib:.0} GiB, Linux {kernel}",
        cores()
    )
}

fn versions() -> String {
    let first_line = |program: &str, arg: &str| {
        std::process::Command::new(program)
            .arg(arg)
            .output()
            .ok()
            .map(|o| {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                text.lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            })
            .unwrap_or_else(|| "not found".to_owned())
    };
    format!(
        "Peers: {}; {}. carpd {}.",
        first_line("ucarp", "--help"),
        first_line("keepalived", "--version"),
        env!("CARGO_PKG_VERSION")
    )
}

fn today() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_report_gets_a_figure_of_its_own() {
        assert_eq!(figure_name(Path::new("docs/BENCHMARKS.md")), FIGURE);
        assert_eq!(
            figure_name(Path::new("docs/BENCHMARKS-plain-lab.md")),
            "BENCHMARKS-plain-lab-failover-timelines.svg"
        );
    }

    #[test]
    fn a_one_section_run_says_so_and_names_no_failovers() {
        let mut plan = Plan::quick(3);
        assert!(scope(&plan).contains("3 failovers per series"));
        plan.cost_only = true;
        let cost = scope(&plan);
        assert!(cost.contains("only the cost section"), "{cost}");
        assert!(!cost.contains("failovers"), "{cost}");
        let md = markdown(
            &Results::new(&plan, "cargo xtask bench --cost-only"),
            FIGURE,
        );
        for absent in ["## Failover", "reference figures", FIGURE, "## Soak"] {
            assert!(!md.contains(absent), "{absent} in:\n{md}");
        }
    }

    fn series(setting: Setting, fault: Fault, outages_ms: &[f64], split_ms: f64) -> Series {
        Series {
            setting,
            fault,
            runs: outages_ms
                .iter()
                .map(|&o| RunFigures {
                    arp_outage: o / 1e3,
                    icmp_outage: Some(o / 1e3),
                    takeover: o / 1e3,
                    advert_gap: Some(o / 1e3),
                    split_brain: split_ms / 1e3,
                    split_brain_open: split_ms > 0.0,
                })
                .collect(),
            failed: 0,
            timeline: None,
        }
    }

    fn results() -> Results {
        let mut r = Results::new(&Plan::quick(3), "cargo xtask bench --quick");
        r.failover = vec![
            series(
                Setting::carpd_default(),
                Fault::LinkCut,
                &[900.0, 1000.0, 1100.0],
                0.0,
            ),
            series(
                Setting::ucarp_default(),
                Fault::LinkCut,
                &[1800.0, 2000.0, 2200.0],
                0.0,
            ),
            series(Setting::carpd_default(), Fault::Kill, &[1000.0; 3], 0.0),
            series(Setting::ucarp_default(), Fault::Kill, &[2.0; 3], 2000.0),
        ];
        r
    }

    #[test]
    fn failover_tables_carry_summaries_and_ratios() {
        let md = markdown(&results(), FIGURE);
        assert!(md.contains("### link cut of the master"), "{md}");
        // min / median / p95 / max of 900, 1000, 1100 ms.
        assert!(md.contains("| 900 / 1000 / 1100 / 1100 |"), "{md}");
        // ucarp's median 2000 ms over carpd's 1000 ms.
        assert!(
            md.contains("| default (1 s) | 2.00× | – | 0.00 / 0.00 / – |"),
            "{md}"
        );
        // The SIGKILL split-brain of ucarp shows, and is marked open.
        assert!(md.contains("| 2000 / 2000 / 2000 / 2000 | 3 |"), "{md}");
        assert!(md.contains("| ucarp default | 2226 / 2632 / 2963 | 1800 / 2000 / 2200 |"));
    }

    #[test]
    fn terminal_summary_has_one_table_per_fault_with_peers() {
        let text = ratios(&results());
        assert_eq!(text.matches("| timers |").count(), 2, "{text}");
        assert!(text.contains("2.00×"));
    }

    #[test]
    fn failed_parts_are_listed_first() {
        let mut r = results();
        r.errors.push("flood ucarp: boom".to_owned());
        let md = markdown(&r, FIGURE);
        let failed = md.find("- flood ucarp: boom").unwrap();
        assert!(failed < md.find("## Method").unwrap());
    }
}
