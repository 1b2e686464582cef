//! Several [`Vhid`]s on one lossless link, driven by a discrete-event loop: every advert a
//! peer sends reaches every other peer after a fixed delay. Checks that the election settles
//! on exactly one master, soon, and on the best one when preempt is on.
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use proptest::prelude::*;

use super::fsm::{Action, Event, Families, Family, State, Vhid, VhidParams};
use super::packet::{advertised_us, interval};

/// One peer's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Peer {
    demote: u8,
    advbase: u8,
    advskew: u8,
    seed: u64,
}

impl Peer {
    fn interval(&self) -> Duration {
        interval(self.advbase, self.advskew)
    }

    /// Election preference: lower demote, then shorter advertised interval.
    fn rank(&self) -> (u8, u64) {
        (self.demote, advertised_us(self.advbase, self.advskew))
    }
}

/// An advert in flight: (arrival, sequence number for a stable order, receiver, values).
type Delivery = Reverse<(Duration, u64, usize, u8, u8, u8)>;

struct Sim {
    peers: Vec<Vhid>,
    in_flight: BinaryHeap<Delivery>,
    seq: u64,
    delay: Duration,
    now: Duration,
}

impl Sim {
    fn start(config: &[Peer], preempt: bool, delay: Duration) -> Self {
        let mut sim = Sim {
            peers: Vec::new(),
            in_flight: BinaryHeap::new(),
            seq: 0,
            delay,
            now: Duration::ZERO,
        };
        for p in config {
            let params = VhidParams {
                vhid: 1,
                advbase: p.advbase,
                advskew: p.advskew,
            };
            let mut v = Vhid::new(params, preempt, p.seed).expect("valid settings");
            v.handle(Duration::ZERO, Event::DemoteChanged(p.demote));
            sim.peers.push(v);
        }
        for i in 0..sim.peers.len() {
            let actions = sim.peers[i].handle(Duration::ZERO, Event::Up(Families::V4));
            sim.carry_out(i, actions);
        }
        sim
    }

    fn carry_out(&mut self, from: usize, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::SendAdvert {
                    advbase,
                    advskew,
                    demote,
                } => {
                    for to in (0..self.peers.len()).filter(|&j| j != from) {
                        self.seq += 1;
                        self.in_flight.push(Reverse((
                            self.now + self.delay,
                            self.seq,
                            to,
                            advbase,
                            advskew,
                            demote,
                        )));
                    }
                    let follow =
                        self.peers[from].handle(self.now, Event::AdvertSendResult { ok: true });
                    assert!(follow.is_empty());
                }
                Action::AdjustDemote(_) => panic!("no send errors on this link"),
                Action::Announce(_)
                | Action::StateChanged { .. }
                | Action::MasterDownPostponed { .. } => {}
            }
        }
    }

    /// When the next thing happens.
    fn next_time(&self) -> Option<Duration> {
        let timer = self.peers.iter().filter_map(Vhid::next_deadline).min();
        let arrival = self.in_flight.peek().map(|Reverse(d)| d.0);
        timer.into_iter().chain(arrival).min()
    }

    /// Processes one event at `next_time()`. Arrivals go before timers due at the same
    /// instant, as a packet already on the wire would.
    fn step(&mut self) {
        let Some(t) = self.next_time() else { return };
        self.now = t;
        if let Some(Reverse((at, _, to, advbase, advskew, demote))) = self.in_flight.peek().copied()
            && at == t
        {
            self.in_flight.pop();
            let ev = Event::AdvertReceived {
                family: Family::V4,
                advbase,
                advskew,
                demote,
            };
            let actions = self.peers[to].handle(t, ev);
            self.carry_out(to, actions);
            return;
        }
        let Some(i) = (0..self.peers.len()).find(|&i| self.peers[i].next_deadline() == Some(t))
        else {
            return;
        };
        let actions = self.peers[i].handle(t, Event::TimerExpired);
        self.carry_out(i, actions);
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.peers.len())
            .filter(|&i| self.peers[i].state() == State::Master)
            .collect()
    }

    /// Runs until `until`; from `settled` on, checks at the end of every instant that
    /// exactly one peer is master, and returns which.
    fn run(&mut self, settled: Duration, until: Duration) -> Result<usize, String> {
        let mut master = None;
        while let Some(t) = self.next_time().filter(|t| *t <= until) {
            // Everything up to self.now has been processed: judge that instant.
            if t > self.now && self.now >= settled {
                let m = self.masters();
                if m.len() != 1 {
                    return Err(format!("masters {m:?} at {:?}", self.now));
                }
                if master.is_some_and(|old| old != m[0]) {
                    return Err(format!("master changed to {} at {:?}", m[0], self.now));
                }
                master = Some(m[0]);
            }
            self.step();
        }
        let m = self.masters();
        match (m.as_slice(), master) {
            ([only], None) => Ok(*only),
            ([only], Some(old)) if *only == old => Ok(old),
            _ => Err(format!("masters {m:?} at the end")),
        }
    }
}

/// Settings on which any CARP election is stable: every peer's adverts arrive more often
/// than any other peer's master-down timeout, and no peer looks "too slow" to another
/// (interval above 3 × advbase + advskew/256). Outside this, OpenBSD flaps too.
fn compatible(peers: &[Peer], delay: Duration) -> bool {
    peers.iter().all(|a| {
        peers.iter().all(|b| {
            let keeps_a_waiting = b.interval() + delay < a.interval() * 3;
            let not_too_slow = a.advbase == 0
                || advertised_us(b.advbase, b.advskew)
                    <= u64::from(a.advbase) * 3_000_000 + advertised_us(0, a.advskew);
            keeps_a_waiting && not_too_slow
        })
    })
}

fn distinct(peers: &[Peer]) -> bool {
    peers.iter().enumerate().all(|(i, a)| {
        peers[i + 1..]
            .iter()
            .all(|b| (a.demote, a.advbase, a.advskew) != (b.demote, b.advbase, b.advskew))
    })
}

fn peer() -> impl Strategy<Value = Peer> {
    (0u8..=2, 0u8..=3, 0u8..=254, any::<u64>()).prop_map(|(demote, advbase, advskew, seed)| Peer {
        demote,
        advbase,
        advskew,
        seed,
    })
}

fn peers() -> impl Strategy<Value = (Vec<Peer>, Duration)> {
    (
        proptest::collection::vec(peer(), 2..=3),
        (0u64..=200).prop_map(Duration::from_micros),
    )
        .prop_filter("distinct, compatible settings", |(p, delay)| {
            distinct(p) && compatible(p, *delay)
        })
}

/// Two master-down intervals of the slowest peer.
fn settle_time(peers: &[Peer]) -> Duration {
    peers.iter().map(Peer::interval).max().unwrap_or_default() * 6
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn one_master_and_it_is_the_best_with_preempt((config, delay) in peers()) {
        let settled = settle_time(&config);
        let mut sim = Sim::start(&config, true, delay);
        let master = sim.run(settled, settled * 6).map_err(TestCaseError::fail)?;
        let best = (0..config.len()).min_by_key(|&i| config[i].rank()).unwrap();
        prop_assert_eq!(master, best, "{:?}", config);
    }

    #[test]
    fn one_master_without_preempt((config, delay) in peers()) {
        let settled = settle_time(&config);
        let mut sim = Sim::start(&config, false, delay);
        let master = sim.run(settled, settled * 6).map_err(TestCaseError::fail)?;
        // Without preempt the first to take over may stay, unless a peer is less demoted.
        let m = config[master].demote;
        prop_assert!(config.iter().all(|p| p.demote >= m), "{:?}", config);
    }

    #[test]
    fn identical_settings_settle_through_jitter(
        advbase in 0u8..=3,
        advskew in 0u8..=254,
        seeds in any::<[u64; 2]>(),
        delay_us in 0u64..=100,
    ) {
        prop_assume!(seeds[0] != seeds[1]);
        let config: Vec<Peer> = seeds
            .iter()
            .map(|&seed| Peer { demote: 0, advbase, advskew, seed })
            .collect();
        // Lock step can repeat a few times when the jitters land within the delay; give it
        // twenty master-down intervals.
        let md = interval(advbase, advskew) * 3;
        let mut sim = Sim::start(&config, true, Duration::from_micros(delay_us));
        sim.run(md * 20, md * 30).map_err(TestCaseError::fail)?;
    }
}

#[test]
fn the_master_is_replaced_when_it_bows_out() {
    let config = [
        Peer {
            demote: 0,
            advbase: 1,
            advskew: 0,
            seed: 1,
        },
        Peer {
            demote: 0,
            advbase: 1,
            advskew: 100,
            seed: 2,
        },
    ];
    let mut sim = Sim::start(&config, true, Duration::from_micros(50));
    let settled = settle_time(&config);
    assert_eq!(sim.run(settled, settled * 2), Ok(0));
    let t = sim.now;
    let actions = sim.peers[0].handle(t, Event::Shutdown);
    sim.carry_out(0, actions);
    // One packet, not a master-down timeout: the backup is master 50 µs later.
    sim.step();
    assert_eq!(sim.now, t + Duration::from_micros(50));
    assert_eq!(sim.masters(), vec![1]);
}

#[test]
fn the_backup_takes_over_three_intervals_after_the_master_dies() {
    let config = [
        Peer {
            demote: 0,
            advbase: 1,
            advskew: 0,
            seed: 1,
        },
        Peer {
            demote: 0,
            advbase: 1,
            advskew: 100,
            seed: 2,
        },
    ];
    let mut sim = Sim::start(&config, true, Duration::ZERO);
    let settled = settle_time(&config);
    assert_eq!(sim.run(settled, settled * 2), Ok(0));
    // Peer 0 vanishes without a word: drop its state machine's timers.
    let died = sim.now;
    sim.peers[0].handle(died, Event::LinkDown);
    while sim.masters() != vec![1] {
        sim.step();
    }
    let md = interval(1, 100) * 3;
    assert!(sim.now <= died + md, "{:?}", sim.now - died);
    assert!(sim.now > died + md - interval(1, 0), "{:?}", sim.now - died);
}

#[test]
fn the_better_host_is_master_exactly_three_intervals_after_coming_up() {
    // OpenBSD's carp_1.sh: both configured at once, advbase 1; the better one is master
    // after 3 s (it checks at 3.1 s), whatever the seeds.
    for seeds in [(1, 2), (99, 3), (u64::MAX, 0)] {
        let config = [
            Peer {
                demote: 0,
                advbase: 1,
                advskew: 0,
                seed: seeds.0,
            },
            Peer {
                demote: 0,
                advbase: 1,
                advskew: 100,
                seed: seeds.1,
            },
        ];
        let mut sim = Sim::start(&config, false, Duration::from_micros(50));
        while sim.masters().is_empty() {
            sim.step();
        }
        assert_eq!(sim.now, Duration::from_secs(3));
        assert_eq!(sim.masters(), vec![0]);
    }
}

#[test]
fn a_double_master_heals_within_a_round_trip() {
    let config = [
        Peer {
            demote: 0,
            advbase: 1,
            advskew: 0,
            seed: 1,
        },
        Peer {
            demote: 0,
            advbase: 1,
            advskew: 100,
            seed: 2,
        },
    ];
    let delay = Duration::from_micros(50);
    let mut sim = Sim::start(&config, false, delay);
    let settled = settle_time(&config);
    assert_eq!(sim.run(settled, settled * 2), Ok(0));
    // The worse peer becomes master too (a healed partition, a forced state).
    let t = sim.now;
    let actions = sim.peers[1].handle(t, Event::ForceState(super::fsm::ForcedState::Master));
    sim.carry_out(1, actions);
    assert_eq!(sim.masters(), vec![0, 1]);
    // Its advert reaches peer 0, which answers at once; that answer sends peer 1 back.
    while sim.masters().len() > 1 {
        sim.step();
    }
    assert_eq!(sim.masters(), vec![0]);
    assert_eq!(sim.now, t + delay * 2);
}
