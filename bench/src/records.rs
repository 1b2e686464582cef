//! What the XDP program's decision records (`carpctl debug xdp`) cost while off: the
//! dataplane's ARP answer rate of carpd as built, records off (its default), against a carpd
//! built with the carp-daemon feature `xdp-no-decision-records` (the program without the
//! switch lookup and the tail call at its decision sites). The two builds alternate, each
//! round starting a fresh pair, so that drift in the machine's load falls on both alike.
use std::time::Duration;

use anyhow::Result;

use super::dataplane::{Rate, flood_arp};
use super::tools::{Binaries, Setting};
use super::{Ctx, Pair};

/// The records' cost may be at most this share of the answer rate.
pub const ALLOWED_LOSS: f64 = 0.05;

#[derive(Debug, Clone)]
pub struct RecordsCost {
    /// carpd as built (records off), one entry per round.
    pub with_records: Vec<Rate>,
    /// carpd built without the records.
    pub without_records: Vec<Rate>,
    pub window: Duration,
}

impl RecordsCost {
    /// Median answers per second of `rates`.
    fn median(rates: &[Rate]) -> f64 {
        let mut v: Vec<f64> = rates.iter().map(|r| r.replies_per_s).collect();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    pub fn median_with(&self) -> f64 {
        Self::median(&self.with_records)
    }

    pub fn median_without(&self) -> f64 {
        Self::median(&self.without_records)
    }

    /// Answer rate with the records (off) ÷ without them.
    pub fn ratio(&self) -> f64 {
        self.median_with() / self.median_without().max(1.0)
    }

    pub fn within_allowance(&self) -> bool {
        self.ratio() >= 1.0 - ALLOWED_LOSS
    }
}

/// `rounds` rounds of one flood per build, `window` each.
pub fn measure(
    ctx: &Ctx,
    without: &Binaries,
    window: Duration,
    rounds: usize,
) -> Result<RecordsCost> {
    let mut cost = RecordsCost {
        with_records: Vec::new(),
        without_records: Vec::new(),
        window,
    };
    for round in 0..rounds {
        // Which build goes first alternates (A B, B A, ...), so that a drift over the run
        // does not always fall on the same build (rounds differ by up to 8 % here).
        let mut order = [(&ctx.bins, true), (without, false)];
        if round % 2 == 1 {
            order.reverse();
        }
        for (bins, with_records) in order {
            let out = if with_records {
                &mut cost.with_records
            } else {
                &mut cost.without_records
            };
            ctx.check()?;
            let (pair, m) = Pair::start_stable_with(ctx, Setting::carpd_default(), 1, bins)?;
            let rate = flood_arp(ctx, m, window);
            pair.stop(ctx)?;
            out.push(rate?);
        }
    }
    Ok(cost)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(replies_per_s: f64) -> Rate {
        Rate {
            sent_per_s: 1e6,
            replies_per_s,
        }
    }

    #[test]
    fn the_ratio_compares_medians() {
        let cost = RecordsCost {
            with_records: vec![rate(96.0), rate(10.0), rate(97.0)],
            without_records: vec![rate(100.0), rate(100.0), rate(500.0)],
            window: Duration::from_secs(1),
        };
        assert!((cost.ratio() - 0.96).abs() < 1e-9);
        assert!(cost.within_allowance());
        let slower = RecordsCost {
            with_records: vec![rate(90.0)],
            ..cost
        };
        assert!(!slower.within_allowance());
    }
}
