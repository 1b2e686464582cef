//! Stability: the two routers left alone at carpd's fast timers while the other core spins,
//! counting state changes (zero after the initial election is the bar) and the longest
//! silence the client's 1 ms ARP probe saw. The search tries the candidates fastest first;
//! the first that passes is carpd's "fastest stable setting" for the rest of the bench.
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;

use super::tools::{Setting, VIP};
use super::{Background, Ctx, PROBE_IP, Pair, Plan, Probe, unix_now};
use super::{analysis, steal};

/// carpd timers tried, fastest first: advbase 0 with the master's and the backup's advskew
/// (1/256 s units). First the fastest CARP allows: 0/1, where both send every 1/256 s (the
/// floor) and the backup declares the master down after 3 of them (11.7 ms); the election
/// compares the advertised values without the floor (0 < 1/256 s), so the two do not tie.
/// It needs exact timers and a real-time event loop to hold with the other core busy. The
/// slower ones give the backup at least 6 of the master's intervals.
pub const CANDIDATES: [Setting; 7] = [
    Setting::Carpd {
        advbase: 0,
        master_skew: 0,
        backup_skew: 1,
    },
    Setting::Carpd {
        advbase: 0,
        master_skew: 0,
        backup_skew: 2,
    },
    Setting::Carpd {
        advbase: 0,
        master_skew: 0,
        backup_skew: 3,
    },
    Setting::Carpd {
        advbase: 0,
        master_skew: 2,
        backup_skew: 6,
    },
    Setting::Carpd {
        advbase: 0,
        master_skew: 4,
        backup_skew: 12,
    },
    Setting::Carpd {
        advbase: 0,
        master_skew: 8,
        backup_skew: 24,
    },
    Setting::Carpd {
        advbase: 0,
        master_skew: 16,
        backup_skew: 48,
    },
];

/// What a soak saw.
#[derive(Debug, Clone)]
pub struct SoakResult {
    pub setting: Setting,
    pub duration: Duration,
    /// State changes of both routers after the initial election.
    pub state_changes: usize,
    /// Longest gap between two ARP replies to the probe (from either router).
    pub longest_arp_gap: f64,
    /// Longest time a request of the probe waited for the next reply (from its sending):
    /// the silence a client asking saw. Differs from the gap when the probe itself ran late
    /// (a normal-priority thread next to the spinning one): a gap with no request in it
    /// is no silence of the routers.
    pub longest_unanswered: f64,
    pub jitter: analysis::Jitter,
    /// What the hypervisor took from this VM's CPUs meanwhile.
    pub steal: steal::Steal,
    /// carpd ran with `--realtime-priority` (as the shipped systemd unit does).
    pub realtime: bool,
    /// What carpd's own counters said at the end (its metrics endpoint); `None` for a
    /// scrape that failed.
    pub counters: Option<Counters>,
}

/// carpd's counters of the stand-stills it rode out in a soak.
#[derive(Debug, Clone, Copy)]
pub struct Counters {
    /// Adverts the master's standby thread sent because the sender had not (its CPU held).
    pub adverts_by_standby: u64,
    /// Master-down timers the backup postponed because it had overslept them.
    pub master_down_postponed: u64,
}

/// Where carpd serves its metrics in a soak, inside each router's namespace.
const METRICS: &str = "127.0.0.1:9120";

impl SoakResult {
    /// Flap-free: no state change after the initial election. The silences are reported
    /// next to it, not part of it: when the whole machine stands still (steal time on a
    /// shared VM), the probe's answers stop, but so do the master's adverts and the backup's
    /// timer, and nobody takes over. The master's longest advert interval tells such a
    /// pause from a dataplane that fell silent while carpd kept sending.
    pub fn stable(&self) -> bool {
        self.state_changes == 0
    }
}

/// Tries the plan's candidates; returns the first stable one (the slowest if none is) and
/// every trial.
pub fn search(ctx: &Ctx, plan: &Plan) -> Result<(Setting, Vec<SoakResult>)> {
    let mut trials = Vec::new();
    for &setting in &plan.candidates {
        let r = soak(ctx, setting, plan.search, true)?;
        println!(
            "  {:<55} {}: {} state changes, longest ARP silence {:.1} ms (a request unanswered \
             {:.1} ms), late adverts {}, longest advert interval {:.1} ms, steal {:.0} ms \
             (longest {:.0} ms), standby's adverts / postponed master-downs {}",
            setting.label(),
            crate::human(plan.search),
            r.state_changes,
            r.longest_arp_gap * 1e3,
            r.longest_unanswered * 1e3,
            r.jitter.late,
            r.jitter.max_interval * 1e3,
            r.steal.total_ms,
            r.steal.longest_ms,
            r.counters.map_or_else(
                || "unknown".to_owned(),
                |c| format!("{} / {}", c.adverts_by_standby, c.master_down_postponed)
            )
        );
        let stable = r.stable();
        trials.push(r);
        if stable {
            return Ok((setting, trials));
        }
    }
    let slowest = *plan
        .candidates
        .last()
        .expect("a plan has at least one candidate");
    Ok((slowest, trials))
}

/// Runs the pair at `setting` for `duration` with the other core busy; carpd with its
/// real-time option (the bench's default) or without it.
pub fn soak(ctx: &Ctx, setting: Setting, duration: Duration, realtime: bool) -> Result<SoakResult> {
    let mut bins = if realtime {
        ctx.bins.clone()
    } else {
        ctx.bins.without_realtime()
    };
    bins.carpd_args
        .extend(["--metrics".to_owned(), METRICS.to_owned()]);
    let (pair, m) = Pair::start_stable_with(ctx, setting, 1, &bins)?;
    let before = pair.state_changes();
    let captures = [
        ctx.lab.host(0).capture_sent("arp or ip proto 112", 64)?,
        ctx.lab.host(1).capture_sent("arp or ip proto 112", 64)?,
    ];
    let probe = Probe::start(ctx, false)?;
    let _busy = spinner();
    let stolen = steal::StealRecorder::start();
    // Let the probe start answering before the measured window opens.
    ctx.sleep(Duration::from_millis(200))?;
    let from = unix_now();
    ctx.sleep(duration)?;
    let to = unix_now();
    let requests = probe.stop();
    let steal = stolen.stop();
    let after = pair.state_changes();
    let counters = counters(ctx, m);
    pair.stop(ctx)?;
    let mut sent = Vec::new();
    for c in captures {
        sent.push(analysis::read_sent(&c.stop()?, VIP, PROBE_IP)?);
    }
    let mut replies: Vec<f64> = analysis::window(&sent[0].arp, from, to).to_vec();
    replies.extend_from_slice(analysis::window(&sent[1].arp, from, to));
    replies.sort_by(f64::total_cmp);
    // Silence at the window's edges counts too.
    let mut edges = vec![from];
    edges.extend(replies);
    edges.push(to);
    let longest_arp_gap = edges.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    let requests = analysis::window(&requests, from, to);
    let longest_unanswered = longest_unanswered(&edges, requests);
    let jitter = analysis::jitter(
        analysis::window(&sent[m].adverts, from, to),
        setting.advert_interval().as_secs_f64(),
    );
    Ok(SoakResult {
        setting,
        duration,
        state_changes: after - before,
        longest_arp_gap,
        longest_unanswered,
        jitter,
        steal,
        realtime,
        counters,
    })
}

/// The master's standby sends and the backup's postponements, from their metrics.
fn counters(ctx: &Ctx, master: usize) -> Option<Counters> {
    let scrape = |host: usize, family: &str| -> Option<u64> {
        let url = format!("http://{METRICS}/metrics");
        let out = ctx.lab.host(host).run(["curl", "-sf", &url]).ok()?;
        if !out.success() {
            return None;
        }
        sum_counter(&out.stdout, family)
    };
    Some(Counters {
        adverts_by_standby: scrape(master, "carp_vhid_adverts_by_standby_total")?,
        master_down_postponed: scrape(1 - master, "carp_vhid_master_down_postponed_total")?,
    })
}

/// The sum of a counter family's samples in a Prometheus text exposition; `None` if it has
/// none.
fn sum_counter(text: &str, family: &str) -> Option<u64> {
    let samples: Vec<u64> = text
        .lines()
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!samples.is_empty()).then(|| samples.iter().sum())
}

/// The longest time from a request to the next reply: for each gap between two replies
/// (`replies` sorted, the window's edges included), from the first request sent in it to
/// the reply that ends it. `requests` sorted.
fn longest_unanswered(replies: &[f64], requests: &[f64]) -> f64 {
    replies
        .windows(2)
        .filter_map(|w| {
            let first = requests.partition_point(|&t| t <= w[0]);
            requests
                .get(first)
                .filter(|&&asked| asked < w[1])
                .map(|&asked| w[1] - asked)
        })
        .fold(0.0, f64::max)
}

/// A thread spinning on one core ("the other core busy") until dropped.
fn spinner() -> Background {
    Background::spawn(|stop| {
        while !stop.load(Ordering::Relaxed) {
            std::hint::spin_loop();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{longest_unanswered, sum_counter};

    #[test]
    fn a_counter_family_sums_its_samples_and_only_its_own() {
        let text = "# TYPE carp_vhid_adverts_by_standby counter\n\
                    carp_vhid_adverts_by_standby_total{interface=\"carp0\",vhid=\"1\"} 3\n\
                    carp_vhid_adverts_by_standby_total{interface=\"carp1\",vhid=\"2\"} 4\n\
                    carp_vhid_adverts_by_standby_total_other 9\n";
        assert_eq!(
            sum_counter(text, "carp_vhid_adverts_by_standby_total"),
            Some(7)
        );
        assert_eq!(
            sum_counter(text, "carp_vhid_master_down_postponed_total"),
            None
        );
    }

    #[test]
    fn a_gap_counts_from_the_first_request_in_it() {
        // Replies at 0, 1, 2 ms, then none until 30 ms; the probe was late too and asked
        // again only at 25 ms: the client waited 5 ms, not 28.
        let replies = [0.000, 0.001, 0.002, 0.030];
        let requests = [0.0005, 0.0015, 0.025, 0.026];
        let waited = longest_unanswered(&replies, &requests);
        assert!((waited - 0.005).abs() < 1e-9, "{waited}");
        // Asked all along: the whole gap is a silence.
        let requests: Vec<f64> = (0..30).map(|i| 0.0005 + f64::from(i) * 0.001).collect();
        let waited = longest_unanswered(&replies, &requests);
        assert!((waited - 0.0275).abs() < 1e-9, "{waited}");
        // No request at all: nobody waited.
        assert_eq!(longest_unanswered(&replies, &[]), 0.0);
    }
}
