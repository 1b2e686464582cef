//! From captures to figures: what each router sent (ARP replies to the probe, ICMP echo
//! replies, advertisements), client-seen outages, split-brain time, advertisement jitter,
//! and order statistics.
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{Context as _, Result};

/// Replies closer together than this are one continuous answering period: the probe runs
/// every 1 ms, so 5 ms tolerates a late tick or two but not a real silence.
pub const CONTINUITY: f64 = 0.005;

/// What one router sent, as Unix times in seconds.
#[derive(Debug, Default, Clone)]
pub struct Sent {
    /// ARP replies for the VIP addressed to the probe.
    pub arp: Vec<f64>,
    /// ICMP echo replies from the VIP.
    pub icmp: Vec<f64>,
    /// IP protocol 112 multicast (CARP or VRRP advertisements).
    pub adverts: Vec<f64>,
}

/// Classifies the frames of a capture taken at a router's switch port.
pub fn read_sent(path: &Path, vip: Ipv4Addr, probe_ip: Ipv4Addr) -> Result<Sent> {
    let pcap =
        carp_tests::pcap::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut sent = Sent::default();
    for p in &pcap.packets {
        let t = p.timestamp.as_secs_f64();
        match classify(&p.data, vip, probe_ip) {
            Some(Kind::Arp) => sent.arp.push(t),
            Some(Kind::Icmp) => sent.icmp.push(t),
            Some(Kind::Advert) => sent.adverts.push(t),
            None => {}
        }
    }
    Ok(sent)
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Arp,
    Icmp,
    Advert,
}

fn classify(frame: &[u8], vip: Ipv4Addr, probe_ip: Ipv4Addr) -> Option<Kind> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let l3 = frame.get(14..)?;
    match ethertype {
        0x0806 => {
            let arp = l3.get(..28)?;
            let op = u16::from_be_bytes([arp[6], arp[7]]);
            let spa = Ipv4Addr::new(arp[14], arp[15], arp[16], arp[17]);
            let tpa = Ipv4Addr::new(arp[24], arp[25], arp[26], arp[27]);
            (op == 2 && spa == vip && tpa == probe_ip).then_some(Kind::Arp)
        }
        0x0800 => {
            let ihl = usize::from(l3.first()? & 0x0f) * 4;
            let protocol = *l3.get(9)?;
            let src = Ipv4Addr::new(*l3.get(12)?, l3[13], l3[14], l3[15]);
            let dst = Ipv4Addr::new(*l3.get(16)?, l3[17], l3[18], l3[19]);
            match protocol {
                1 if src == vip && *l3.get(ihl)? == 0 => Some(Kind::Icmp),
                112 if dst.is_multicast() => Some(Kind::Advert),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Times in `[from, to]` of a sorted list.
pub fn window(times: &[f64], from: f64, to: f64) -> &[f64] {
    let start = times.partition_point(|&t| t < from);
    let end = times.partition_point(|&t| t <= to);
    &times[start..end.max(start)]
}

/// The client-seen outage of one failover: the longest silence between two consecutive
/// replies (from any router) between `fault - lead` and the first reply of the new master
/// after the fault. `None` if the new master never answered before `end`.
pub fn outage(old: &[f64], new: &[f64], fault: f64, lead: f64, end: f64) -> Option<f64> {
    let first_new = *window(new, fault, end).first()?;
    let mut all: Vec<f64> = window(old, fault - lead, first_new).to_vec();
    all.extend_from_slice(window(new, fault - lead, first_new));
    all.sort_by(f64::total_cmp);
    let gap = all.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    Some(gap)
}

/// From the old master's last advert before the new master's first (after the fault) to
/// that first one. `None` if either is missing, or if the old master's last advert is
/// more than `lead` before the fault (the capture missed the adverts in between).
pub fn advert_gap(old: &[f64], new: &[f64], fault: f64, lead: f64, end: f64) -> Option<f64> {
    let first_new = *window(new, fault, end).first()?;
    let last_old = *window(old, fault - lead, first_new).last()?;
    Some(first_new - last_old)
}

/// Merges reply times into answering periods `[first reply, last reply]`; replies at most
/// `CONTINUITY` apart belong to one period. A period ends at its last reply, not later: a
/// router that stopped answering 2 ms before the other started did not answer together
/// with it (a tail of `CONTINUITY` after the last reply counted such a handover, shorter than
/// `CONTINUITY`, as split-brain). The resolution is one probe period: a single request
/// answered by both routers and nothing else would not show (the e2e test
/// `carp-daemon/tests/deadline.rs` numbers its requests and checks each one).
fn periods(times: &[f64]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for &t in times {
        match out.last_mut() {
            Some(last) if t <= last.1 + CONTINUITY => last.1 = t,
            _ => out.push((t, t)),
        }
    }
    out
}

/// Total time in `[from, to]` during which both routers answered (their answering periods
/// overlap), and whether they still both answered at `to`.
pub fn split_brain(a: &[f64], b: &[f64], from: f64, to: f64) -> (f64, bool) {
    let pa = periods(window(a, from, to));
    let pb = periods(window(b, from, to));
    let (mut i, mut j, mut total) = (0, 0, 0.0);
    let mut open = false;
    while i < pa.len() && j < pb.len() {
        let lo = pa[i].0.max(pb[j].0);
        let hi = pa[i].1.min(pb[j].1);
        if hi > lo {
            total += hi - lo;
            // Both answering in the last few probe periods of the window.
            open |= hi >= to - 2.0 * CONTINUITY;
        }
        if pa[i].1 < pb[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    (total, open)
}

/// Advertisement timing: the intervals between consecutive adverts compared with the
/// nominal interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Jitter {
    pub adverts: usize,
    /// Mean absolute deviation of the intervals from the nominal one, in seconds.
    pub mean_abs: f64,
    /// Longest interval seen, in seconds.
    pub max_interval: f64,
    /// Intervals longer than 1.5 × nominal: a backup would have been that much closer to
    /// declaring the master dead.
    pub late: usize,
}

pub fn jitter(adverts: &[f64], nominal: f64) -> Jitter {
    let intervals: Vec<f64> = adverts.windows(2).map(|w| w[1] - w[0]).collect();
    if intervals.is_empty() {
        return Jitter {
            adverts: adverts.len(),
            ..Jitter::default()
        };
    }
    Jitter {
        adverts: adverts.len(),
        mean_abs: intervals.iter().map(|i| (i - nominal).abs()).sum::<f64>()
            / intervals.len() as f64,
        max_interval: intervals.iter().copied().fold(0.0, f64::max),
        late: intervals.iter().filter(|&&i| i > 1.5 * nominal).count(),
    }
}

/// min / median / p95 / max of a sample (nearest-rank percentiles).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub p95: f64,
    pub max: f64,
}

pub fn summarize(values: &[f64]) -> Option<Summary> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Some(Summary {
        n: v.len(),
        min: v[0],
        median: rank(0.5),
        p95: rank(0.95),
        max: v[v.len() - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticks(from: f64, to: f64, step: f64) -> Vec<f64> {
        let n = ((to - from) / step).round() as usize;
        (0..=n).map(|i| from + i as f64 * step).collect()
    }

    #[test]
    fn outage_is_the_gap_before_the_new_master_answers() {
        // Old master answers until 10.2, the new one from 13.0 on; fault at 10.0.
        let old = ticks(9.0, 10.2, 0.001);
        let new = ticks(13.0, 14.0, 0.001);
        let gap = outage(&old, &new, 10.0, 0.5, 15.0).unwrap();
        assert!((gap - 2.8).abs() < 1e-6, "{gap}");
        // Never answered: no figure.
        assert_eq!(outage(&old, &[], 10.0, 0.5, 15.0), None);
    }

    #[test]
    fn outage_is_small_when_the_old_master_keeps_answering() {
        let old = ticks(9.0, 20.0, 0.001);
        let new = ticks(13.0, 14.0, 0.001);
        let gap = outage(&old, &new, 10.0, 0.5, 15.0).unwrap();
        assert!(gap < 0.0011, "{gap}");
    }

    #[test]
    fn advert_gap_runs_from_the_old_masters_last_advert_to_the_new_masters_first() {
        // Old master advertises every 4 ms until 10.0 (the fault at 10.003), the new one
        // from 10.0117 on.
        let old = ticks(9.0, 10.0, 0.004);
        let new = ticks(10.0117, 11.0117, 0.004);
        let gap = advert_gap(&old, &new, 10.003, 0.05, 12.0).unwrap();
        assert!((gap - 0.0117).abs() < 1e-6, "{gap}");
        // A demoted master that still advertises until the new one's first: the last
        // before that first counts.
        let old = ticks(9.0, 10.01, 0.002);
        let gap = advert_gap(&old, &new, 10.003, 0.05, 12.0).unwrap();
        assert!((gap - 0.0017).abs() < 1e-6, "{gap}");
        // No new advert, or none of the old master's within the lead: no figure.
        assert_eq!(advert_gap(&old, &[], 10.003, 0.05, 12.0), None);
        assert_eq!(
            advert_gap(&ticks(9.0, 9.5, 0.1), &new, 10.003, 0.05, 12.0),
            None
        );
    }

    #[test]
    fn split_brain_counts_overlap_and_whether_it_lasts() {
        let a = ticks(0.0, 5.0, 0.001);
        let b = ticks(4.0, 8.0, 0.001);
        let (total, open) = split_brain(&a, &b, 0.0, 8.0);
        assert!((total - 1.0).abs() < 0.002, "{total}");
        assert!(!open);
        // A handover with a 2 ms gap is no split-brain, however short the gap.
        let (total, _) = split_brain(&ticks(0.0, 5.0, 0.001), &ticks(5.002, 8.0, 0.001), 0.0, 8.0);
        assert_eq!(total, 0.0);
        let (total, open) = split_brain(&a, &b, 0.0, 5.0);
        assert!(total > 0.99 && open);
        let (total, _) = split_brain(&a, &ticks(6.0, 7.0, 0.001), 0.0, 8.0);
        assert_eq!(total, 0.0);
    }

    #[test]
    fn jitter_measures_deviation_and_late_adverts() {
        let j = jitter(&[0.0, 1.0, 2.1, 3.0, 5.0], 1.0);
        assert_eq!(j.adverts, 5);
        assert!((j.mean_abs - (0.0 + 0.1 + 0.1 + 1.0) / 4.0).abs() < 1e-9);
        assert_eq!(j.max_interval, 2.0);
        assert_eq!(j.late, 1);
    }

    #[test]
    fn summary_uses_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        let s = summarize(&v).unwrap();
        assert_eq!((s.min, s.median, s.p95, s.max), (1.0, 10.0, 19.0, 20.0));
        assert_eq!(summarize(&[]), None);
    }

    #[test]
    fn frames_are_classified_by_what_they_answer() {
        let vip = Ipv4Addr::new(192, 0, 2, 1);
        let probe = Ipv4Addr::new(192, 0, 2, 250);
        let mac = [2, 0, 0, 0, 0, 1];
        let reply = carp_tests::frames::arp_reply(mac, vip, [2; 6], probe);
        assert_eq!(classify(&reply, vip, probe), Some(Kind::Arp));
        // A gratuitous ARP is not an answer to the probe.
        let garp = carp_tests::frames::arp_reply(mac, vip, [0xff; 6], vip);
        assert_eq!(classify(&garp, vip, probe), None);
        let icmp = carp_tests::frames::ethernet(
            [2; 6],
            mac,
            0x0800,
            &carp_tests::frames::ipv4(vip, probe, 1, 64, &[0, 0, 0, 0, 0, 0, 0, 0]),
        );
        assert_eq!(classify(&icmp, vip, probe), Some(Kind::Icmp));
        let advert = carp_tests::frames::advert_v4(
            mac,
            Ipv4Addr::new(192, 0, 2, 11),
            255,
            &carp_tests::frames::CarpFields::advert(1).encode(),
        );
        assert_eq!(classify(&advert, vip, probe), Some(Kind::Advert));
        assert_eq!(classify(&advert[..20], vip, probe), None);
    }
}
