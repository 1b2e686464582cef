//! What a daemon costs: scheduler runtime (se.sum_exec_runtime in /proc/PID/task/*/sched,
//! every thread and every process of the instance), context switches, wakeups (the voluntary
//! ones: a backup's carpd should wake about once per master-down interval, its master's
//! repeats being taken by the XDP fast path), resident memory, and CPU per advertisement
//! sent, for master and backup, by number of vhids.
use std::time::{Duration, Instant};

use anyhow::Result;

use super::analysis;
use super::tools::{Setting, VIP};
use super::{Ctx, PROBE_IP, Pair};

/// The rows of one vhid at default timers (one advert a second) are measured over this many
/// windows: a window holds only as many adverts as seconds, and one slow wake-up among 20
/// moves the mean by several percent (in one quarter of an hour the windows of one row
/// measured 116 to 146 µs per advert, the peers' alike, and with three windows carpd and
/// keepalived, within 5 % of each other, swapped places from run to run). The windows of
/// those rows take turns (each tool's first, then each tool's second, ...; see [`merge`]):
/// this shared VM's load drifts over minutes, and rows measured one after the other
/// compared the host's quarter-hours more than the tools.
pub const ONE_ADVERT_A_SECOND_WINDOWS: u32 = 6;

/// One daemon instance's cost over the window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// Fraction of one core.
    pub cpu: f64,
    /// Share of that CPU time spent in the kernel (from utime/stime in /proc/PID/task/*/stat,
    /// 10 ms ticks): sending an advert on a veth runs the switch's and the receivers' work
    /// in the sender's context, so the kernel share is most of it for every tool.
    pub kernel_share: f64,
    /// Context switches per second.
    pub switches_per_s: f64,
    /// Voluntary context switches per second: wakeups from sleep.
    pub wakeups_per_s: f64,
    pub rss_kib: u64,
    /// CPU seconds per advertisement the master sent (0 for the backup's row).
    pub cpu_per_advert: f64,
}

#[derive(Debug, Clone)]
pub struct CostResult {
    pub setting: Setting,
    /// carpd run without its real-time option (the shipped unit's SCHED_FIFO and locked
    /// memory), as the peers run by default; false for every other row.
    pub without_realtime: bool,
    pub vhids: u8,
    pub adverts_per_s: f64,
    pub master: Usage,
    pub backup: Usage,
    /// The window's length in seconds and the adverts the master sent in it, for [`merge`].
    pub elapsed: f64,
    pub adverts: f64,
    /// CPU seconds per advert of each window [`merge`]d into this row, in the order
    /// measured (empty for a row of one window): the spread the report shows.
    pub windows_per_advert: Vec<f64>,
}

/// One row of several windows of the same setting: rates over their whole time, CPU per
/// advert as all CPU seconds over all adverts, the largest RSS. `None` without windows.
pub fn merge(windows: &[CostResult]) -> Option<CostResult> {
    let first = windows.first()?;
    let elapsed: f64 = windows.iter().map(|w| w.elapsed).sum();
    let adverts: f64 = windows.iter().map(|w| w.adverts).sum();
    let usage = |of: fn(&CostResult) -> &Usage, master: bool| {
        let cpu_s: f64 = windows.iter().map(|w| of(w).cpu * w.elapsed).sum();
        let per_s = |rate: fn(&Usage) -> f64| {
            windows.iter().map(|w| rate(of(w)) * w.elapsed).sum::<f64>() / elapsed
        };
        // The kernel share of all CPU time, from the windows that measured one.
        let shared: Vec<&CostResult> = windows
            .iter()
            .filter(|w| !of(w).kernel_share.is_nan())
            .collect();
        let shared_cpu: f64 = shared.iter().map(|w| of(w).cpu * w.elapsed).sum();
        Usage {
            cpu: cpu_s / elapsed,
            kernel_share: if shared_cpu > 0.0 {
                shared
                    .iter()
                    .map(|w| of(w).kernel_share * of(w).cpu * w.elapsed)
                    .sum::<f64>()
                    / shared_cpu
            } else {
                f64::NAN
            },
            switches_per_s: per_s(|u| u.switches_per_s),
            wakeups_per_s: per_s(|u| u.wakeups_per_s),
            rss_kib: windows.iter().map(|w| of(w).rss_kib).max().unwrap_or(0),
            cpu_per_advert: if master && adverts > 0.0 {
                cpu_s / adverts
            } else {
                0.0
            },
        }
    };
    Some(CostResult {
        adverts_per_s: adverts / elapsed,
        master: usage(|w| &w.master, true),
        backup: usage(|w| &w.backup, false),
        elapsed,
        adverts,
        windows_per_advert: windows.iter().map(|w| w.master.cpu_per_advert).collect(),
        ..first.clone()
    })
}

/// One row: `setting` with `vhids` vhids over `window`; carpd `without_realtime` if asked.
pub fn measure(
    ctx: &Ctx,
    setting: Setting,
    vhids: u8,
    window: Duration,
    without_realtime: bool,
) -> Result<CostResult> {
    let bins = if without_realtime {
        ctx.bins.without_realtime()
    } else {
        ctx.bins.clone()
    };
    // Every vhid's election ends within the same period as vhid 1's.
    let (pair, m) = Pair::start_stable_with(ctx, setting, vhids, &bins)?;
    let capture = ctx.lab.host(m).capture_sent("ip proto 112", 64)?;
    let pids = [pair.routers[m].pids(), pair.routers[1 - m].pids()];
    let before = [sample(&pids[0]), sample(&pids[1])];
    let started = Instant::now();
    let from = super::unix_now();
    ctx.sleep(window)?;
    let to = super::unix_now();
    let elapsed = started.elapsed().as_secs_f64();
    let after = [sample(&pids[0]), sample(&pids[1])];
    pair.stop(ctx)?;
    let sent = analysis::read_sent(&capture.stop()?, VIP, PROBE_IP)?;
    let adverts = analysis::window(&sent.adverts, from, to).len() as f64;
    let usage = |i: usize| {
        let cpu_s = after[i].runtime - before[i].runtime;
        let ticks = |x: &Sample| x.utime + x.stime;
        let all_ticks = ticks(&after[i]).saturating_sub(ticks(&before[i]));
        Usage {
            cpu: cpu_s / elapsed,
            kernel_share: if all_ticks > 0 {
                after[i].stime.saturating_sub(before[i].stime) as f64 / all_ticks as f64
            } else {
                f64::NAN
            },
            switches_per_s: (after[i].switches - before[i].switches) as f64 / elapsed,
            wakeups_per_s: (after[i].wakeups - before[i].wakeups) as f64 / elapsed,
            rss_kib: after[i].rss_kib,
            cpu_per_advert: if i == 0 && adverts > 0.0 {
                cpu_s / adverts
            } else {
                0.0
            },
        }
    };
    Ok(CostResult {
        setting,
        without_realtime,
        vhids,
        adverts_per_s: adverts / elapsed,
        master: usage(0),
        backup: usage(1),
        elapsed,
        adverts,
        windows_per_advert: Vec::new(),
    })
}

/// A row's name: the setting's label, and for carpd without its real-time option, that.
pub fn label(setting: &Setting, without_realtime: bool) -> String {
    if without_realtime {
        format!("{}, without real time", setting.label())
    } else {
        setting.label()
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    runtime: f64,
    switches: u64,
    wakeups: u64,
    rss_kib: u64,
    /// User and system time in clock ticks.
    utime: u64,
    stime: u64,
}

fn sample(pids: &[u32]) -> Sample {
    let mut s = Sample::default();
    for &pid in pids {
        for task in tasks(pid) {
            if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/task/{task}/sched")) {
                s.runtime += field(&text, "se.sum_exec_runtime").unwrap_or(0.0) / 1e3;
                s.switches += field(&text, "nr_switches").unwrap_or(0.0) as u64;
                s.wakeups += field(&text, "nr_voluntary_switches").unwrap_or(0.0) as u64;
            }
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/task/{task}/stat")) {
                let (u, k) = stat_times(&stat);
                s.utime += u;
                s.stime += k;
            }
        }
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            s.rss_kib += status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    s
}

/// CPU seconds used so far by every thread of `pids`.
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    sample(pids).runtime
}

fn tasks(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// utime and stime (fields 14 and 15) of a /proc/PID/stat line; the command name in
/// parentheses may contain spaces, so fields are counted after its closing parenthesis.
fn stat_times(stat: &str) -> (u64, u64) {
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return (0, 0);
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, index 11 here.
    let at = |i: usize| fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(0);
    (at(11), at(12))
}

/// A `name : value` line of /proc/PID/sched (runtime in milliseconds).
fn field(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        (key.trim() == name).then(|| value.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(cpu: f64, adverts: f64, rss_kib: u64) -> CostResult {
        let usage = Usage {
            cpu,
            kernel_share: 0.5,
            switches_per_s: 2.0,
            wakeups_per_s: 1.0,
            rss_kib,
            cpu_per_advert: cpu * 60.0 / adverts,
        };
        CostResult {
            setting: Setting::carpd_default(),
            without_realtime: false,
            vhids: 1,
            adverts_per_s: adverts / 60.0,
            master: usage,
            backup: Usage {
                cpu_per_advert: 0.0,
                ..usage
            },
            elapsed: 60.0,
            adverts,
            windows_per_advert: Vec::new(),
        }
    }

    #[test]
    fn windows_merge_into_all_cpu_over_all_adverts() {
        assert!(merge(&[]).is_none());
        // 6 ms of CPU over 60 adverts, then 12 ms over 40: 18 ms over 100 adverts.
        let merged = merge(&[window(0.0001, 60.0, 100), window(0.0002, 40.0, 300)]).unwrap();
        assert!((merged.master.cpu_per_advert - 180e-6).abs() < 1e-12);
        assert!((merged.master.cpu - 0.00015).abs() < 1e-12);
        assert!((merged.adverts_per_s - 100.0 / 120.0).abs() < 1e-12);
        assert_eq!(merged.master.rss_kib, 300);
        assert!((merged.master.kernel_share - 0.5).abs() < 1e-12);
        assert_eq!(merged.backup.cpu_per_advert, 0.0);
        assert_eq!(merged.elapsed, 120.0);
        // Each window's own figure, in order: 6 ms / 60 and 12 ms / 40.
        let spread = &merged.windows_per_advert;
        assert_eq!(spread.len(), 2);
        assert!((spread[0] - 100e-6).abs() < 1e-12 && (spread[1] - 300e-6).abs() < 1e-12);
    }

    #[test]
    fn sched_fields_are_read_by_name() {
        let text = "carpd (42, #threads: 2)\n-------\nse.exec_start : 1.5\nse.sum_exec_runtime                          :            12.345678\nnr_switches                                  :                  310\nnr_voluntary_switches : 300\n";
        assert_eq!(field(text, "se.sum_exec_runtime"), Some(12.345678));
        assert_eq!(field(text, "nr_switches"), Some(310.0));
        assert_eq!(field(text, "missing"), None);
    }

    #[test]
    fn stat_times_skip_the_command_name() {
        let stat = "42 (ucarp (x) y) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0";
        assert_eq!(stat_times(stat), (7, 3));
        assert_eq!(stat_times("garbage"), (0, 0));
    }

    #[test]
    fn this_process_has_runtime() {
        let me = std::process::id();
        let s = sample(&[me]);
        assert!(s.runtime > 0.0 && s.rss_kib > 0, "{s:?}");
    }
}
