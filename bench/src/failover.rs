//! Failover as a client feels it: a series of faults on the master, each at a random point
//! of the advertisement schedule, with the client probing the VIP every 1 ms by ARP (raw
//! frames from a MAC and address of their own, so the kernel's neighbour cache is not
//! involved) and by ICMP (`ping -i 0.001`, through the client's stack as an application's
//! traffic would go). Everything is judged from captures at the switch ports of the two
//! routers (frames they sent), because carpd's routers answer with the same virtual MAC and
//! only the port tells who answered.
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use super::analysis::{self, Sent};
use super::plot::{RowKind, Timeline, TimelineRow};
use super::tools::{Daemon, Role, Setting, State, Tool, VIP};
use super::{Ctx, PROBE_IP, Pair, Probe, unix_now};

/// What happens to the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// SIGKILL of the daemon; the link stays up.
    Kill,
    /// The master's cable is pulled (switch port down); the daemon keeps running.
    LinkCut,
    /// SIGTERM: the tool's own graceful shutdown.
    Term,
    /// `carpctl -g carp carpdemote 50` (carpd only: the peers have no demotion counter).
    Demote,
}

impl Fault {
    pub const ALL: [Fault; 4] = [Fault::Kill, Fault::LinkCut, Fault::Term, Fault::Demote];

    pub fn applies_to(self, tool: Tool) -> bool {
        self != Fault::Demote || tool == Tool::Carpd
    }

    pub fn title(self) -> &'static str {
        match self {
            Fault::Kill => "SIGKILL of the master daemon (link up)",
            Fault::LinkCut => "link cut of the master",
            Fault::Term => "SIGTERM of the master daemon (graceful)",
            Fault::Demote => "demotion (carpctl -g carp carpdemote 50)",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Fault::Kill => "SIGKILL",
            Fault::LinkCut => "link cut",
            Fault::Term => "SIGTERM",
            Fault::Demote => "carpdemote",
        }
    }
}

/// The figures of one failover, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunFigures {
    /// Longest silence of ARP replies up to the new master's first one.
    pub arp_outage: f64,
    /// The same for ICMP echo replies (None if the new master answered no echo in time).
    pub icmp_outage: Option<f64>,
    /// From the fault to the new master's first ARP reply.
    pub takeover: f64,
    /// From the old master's last advert to the new master's first, the backup's reaction
    /// as the wire shows it: a master-down takeover cannot beat the backup's master-down
    /// time (3 intervals); a bow-out or a demoted advert is answered at once. None when
    /// the capture holds no advert of one of them around the fault.
    pub advert_gap: Option<f64>,
    /// Time both routers answered ARP, from the fault to the end of the run.
    pub split_brain: f64,
    /// Both still answered when the run ended (the old master never stopped).
    pub split_brain_open: bool,
}

/// A series of runs of one fault against one setting.
#[derive(Debug, Clone)]
pub struct Series {
    pub setting: Setting,
    pub fault: Fault,
    pub runs: Vec<RunFigures>,
    /// Runs where the new master never answered the probe.
    pub failed: usize,
    /// The run closest to the median ARP outage, drawn for the figure.
    pub timeline: Option<Timeline>,
}

/// One fault injection: the times (Unix seconds) and which router was master.
struct Record {
    fault: f64,
    end: f64,
    old: usize,
}

pub fn series(ctx: &Ctx, setting: Setting, fault: Fault, runs: usize) -> Result<Series> {
    let interval = setting.advert_interval();
    let (mut pair, mut master) = Pair::start_stable(ctx, setting, 1)?;
    let lab = &ctx.lab;
    let filter = "arp or icmp or ip proto 112";
    let captures = [
        lab.host(0).capture_sent(filter, 96)?,
        lab.host(1).capture_sent(filter, 96)?,
    ];
    let probe = Probe::start(ctx, true)?;
    // The captures should hold a few adverts before the first fault too (for the figure).
    ctx.sleep((2 * interval).min(Duration::from_secs(2)))?;
    let mut records = Vec::new();
    for run in 0..runs {
        // Let the probe and the adverts settle, then strike at a random phase.
        ctx.sleep(settle_time(interval) + ctx.random_below(interval))?;
        let fault_at = unix_now();
        inject(ctx, &pair, master, fault)?;
        let backup = &pair.routers[1 - master];
        let took_over = ctx.wait_state(backup, State::Master, takeover_timeout(&setting));
        // Keep capturing a while after the takeover: the old master may still answer.
        ctx.sleep(tail_time(interval))?;
        records.push(Record {
            fault: fault_at,
            end: unix_now(),
            old: master,
        });
        if let Err(e) = took_over {
            eprintln!(
                "bench:   run {}: the backup did not take over ({e:#})",
                run + 1
            );
        }
        restore(ctx, &mut pair, master, fault)?;
        let faulted = master;
        master = pair
            .wait_stable(ctx, |m| stable_period(&setting, m == faulted))
            .with_context(|| format!("after {} run {}", fault.short(), run + 1))?;
    }
    drop(probe);
    // Every failover is a state change of the backup at least: if the log count says
    // otherwise, the soak and flood counts of this tool cannot be trusted either.
    let changes = pair.state_changes();
    if changes < runs {
        bail!(
            "{}: {changes} state changes counted in the logs over {runs} failovers",
            setting.label()
        );
    }
    pair.stop(ctx)?;
    let sent: Vec<Sent> = captures
        .into_iter()
        .map(|c| {
            let path = c.stop()?;
            analysis::read_sent(&path, VIP, PROBE_IP)
        })
        .collect::<Result<_>>()?;
    let lead = 2.0 * interval.as_secs_f64() + 0.05;
    let mut figures = Vec::new();
    let mut failed = 0;
    for r in &records {
        match figures_of(&sent[r.old], &sent[1 - r.old], r, lead) {
            Some(f) => figures.push((f, r)),
            None => failed += 1,
        }
    }
    let timeline = median_run(&figures).map(|(f, r)| timeline(&setting, fault, &sent, r, f));
    Ok(Series {
        setting,
        fault,
        runs: figures.into_iter().map(|(f, _)| f).collect(),
        failed,
        timeline,
    })
}

/// Time before a fault for the probe to see a steady master (the roles were already checked
/// to be stable).
fn settle_time(interval: Duration) -> Duration {
    interval.clamp(Duration::from_millis(100), Duration::from_millis(300))
}

/// How long the capture goes on after the takeover, to see whether the old master still
/// answers.
fn tail_time(interval: Duration) -> Duration {
    interval.max(Duration::from_millis(300))
}

/// How long the roles must hold after a restore before the next fault. When the restored
/// router took over again (preemption), the backup is the one that ran all along: two
/// intervals do. When the restored router is the backup, a master-down time plus an
/// interval, so it has heard adverts since it came back and its timer runs from the last of
/// them; for ucarp 4.5 s at least, because after it sees its link down it sleeps 3 s before
/// it looks again, and a fault in that sleep would find it deaf.
fn stable_period(setting: &Setting, restored_is_master: bool) -> Duration {
    let interval = setting.advert_interval();
    if restored_is_master {
        return (2 * interval).max(Duration::from_millis(200));
    }
    let floor = match setting.tool() {
        Tool::Ucarp => Duration::from_millis(4500),
        _ => Duration::from_millis(500),
    };
    (setting.master_down() + interval).max(floor)
}

fn takeover_timeout(setting: &Setting) -> Duration {
    3 * setting.master_down() + Duration::from_secs(5)
}

fn inject(ctx: &Ctx, pair: &Pair, master: usize, fault: Fault) -> Result<()> {
    let daemon = &pair.routers[master];
    match fault {
        Fault::Kill => daemon.kill(),
        Fault::Term => daemon.terminate(),
        Fault::LinkCut => Ok(ctx.lab.host(master).cut_link()?),
        Fault::Demote => daemon
            .carpctl(&ctx.lab, &["-g", "carp", "carpdemote", "50"])
            .map(drop),
    }
}

/// Puts the faulted router back: it rejoins as backup (or, with better timers and
/// preemption, takes over again; [`Pair::wait_settled`] tells).
fn restore(ctx: &Ctx, pair: &mut Pair, faulted: usize, fault: Fault) -> Result<()> {
    let daemon = &pair.routers[faulted];
    match fault {
        Fault::Kill | Fault::Term => {
            daemon.remove_leftover_addresses(&ctx.lab);
            let role = if faulted == 0 {
                Role::Master
            } else {
                Role::Backup
            };
            let setting = daemon.setting();
            let daemon = Daemon::start(&ctx.lab, faulted, setting, role, 1, &ctx.bins)?;
            pair.replace(faulted, daemon);
            Ok(())
        }
        Fault::LinkCut => Ok(ctx.lab.host(faulted).restore_link()?),
        Fault::Demote => daemon
            .carpctl(&ctx.lab, &["-g", "carp", "-carpdemote", "50"])
            .map(drop),
    }
}

fn figures_of(old: &Sent, new: &Sent, r: &Record, lead: f64) -> Option<RunFigures> {
    let arp_outage = analysis::outage(&old.arp, &new.arp, r.fault, lead, r.end)?;
    let first_new = *analysis::window(&new.arp, r.fault, r.end).first()?;
    let icmp_outage = analysis::outage(&old.icmp, &new.icmp, r.fault, lead, r.end);
    let (split_brain, split_brain_open) = analysis::split_brain(&old.arp, &new.arp, r.fault, r.end);
    let advert_gap = analysis::advert_gap(&old.adverts, &new.adverts, r.fault, lead, r.end);
    Some(RunFigures {
        arp_outage,
        icmp_outage,
        takeover: first_new - r.fault,
        advert_gap,
        split_brain,
        split_brain_open,
    })
}

fn median_run<'a>(figures: &'a [(RunFigures, &'a Record)]) -> Option<(&'a RunFigures, &'a Record)> {
    let mut sorted: Vec<&(RunFigures, &Record)> = figures.iter().collect();
    sorted.sort_by(|a, b| a.0.arp_outage.total_cmp(&b.0.arp_outage));
    sorted.get(sorted.len() / 2).map(|(f, r)| (f, *r))
}

fn timeline(
    setting: &Setting,
    fault: Fault,
    sent: &[Sent],
    r: &Record,
    f: &RunFigures,
) -> Timeline {
    let interval = setting.advert_interval().as_secs_f64();
    let before = (2.5 * interval).clamp(0.05, 2.5);
    let after = (f.takeover + before.min(1.0)).min(r.end - r.fault);
    let rel = |times: &[f64]| -> Vec<f64> {
        analysis::window(times, r.fault - before, r.fault + after)
            .iter()
            .map(|t| t - r.fault)
            .collect()
    };
    let mut rows = Vec::new();
    for i in [r.old, 1 - r.old] {
        let s = &sent[i];
        let role = if i == r.old {
            "old master"
        } else {
            "new master"
        };
        let who = format!("r{} ({role})", i + 1);
        rows.push(TimelineRow {
            label: format!("{who} ARP replies"),
            kind: RowKind::ArpReplies,
            events: rel(&s.arp),
        });
        rows.push(TimelineRow {
            label: format!("{who} ICMP replies"),
            kind: RowKind::IcmpReplies,
            events: rel(&s.icmp),
        });
        rows.push(TimelineRow {
            label: format!("{who} adverts"),
            kind: RowKind::Adverts,
            events: rel(&s.adverts),
        });
    }
    Timeline {
        title: format!(
            "{}: {} — ARP outage {:.0} ms, split-brain {:.0} ms",
            setting.label(),
            fault.short(),
            f.arp_outage * 1e3,
            f.split_brain * 1e3
        ),
        fault_label: fault.short().to_owned(),
        window: (-before, after),
        rows,
    }
}

/// Checks that a series produced figures at all.
pub fn require_figures(series: &Series) -> Result<()> {
    if series.runs.is_empty() {
        bail!(
            "{} {}: no run produced figures ({} failed)",
            series.setting.label(),
            series.fault.short(),
            series.failed
        );
    }
    Ok(())
}
