//! Several [`VirtualRouter`]s on one simulated LAN (adverts delivered at once to every other
//! live router), driven by their own deadlines: the RFC's timers order the backups so that
//! exactly one takes over, the best, whatever happened to the master.
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::fsm::{VirtualRouter, VrrpAction, VrrpEvent, VrrpParams, VrrpReason};
use crate::proto::fsm::{Family, State};

struct Node {
    router: VirtualRouter,
    addr: IpAddr,
    alive: bool,
    /// Times it became master, with why.
    takeovers: Vec<(Duration, VrrpReason)>,
}

struct Lan {
    nodes: Vec<Node>,
    now: Duration,
}

impl Lan {
    /// Routers with these priorities (1 s interval, preempt), addresses .1, .2, ...
    fn new(priorities: &[u8]) -> Lan {
        let nodes = priorities
            .iter()
            .enumerate()
            .map(|(i, &priority)| Node {
                router: VirtualRouter::new(
                    VrrpParams {
                        vrid: 1,
                        priority,
                        advert_interval: 100,
                        preempt: true,
                        accept_mode: false,
                    },
                    Family::V4,
                )
                .unwrap(),
                addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, i as u8 + 1)),
                alive: true,
                takeovers: Vec::new(),
            })
            .collect();
        Lan {
            nodes,
            now: Duration::ZERO,
        }
    }

    /// Feeds `event` to node `i` and everything that follows from it, at `now`.
    fn feed(&mut self, i: usize, event: VrrpEvent) {
        self.feed_together(vec![(i, event)]);
    }

    /// Feeds these events first, then what they cause: events at the same instant see
    /// none of each other's adverts (those are still on the wire).
    fn feed_together(&mut self, events: Vec<(usize, VrrpEvent)>) {
        let mut queue = VecDeque::from(events);
        while let Some((i, event)) = queue.pop_front() {
            if !self.nodes[i].alive && !matches!(event, VrrpEvent::Shutdown) {
                continue;
            }
            let now = self.now;
            for action in self.nodes[i].router.handle(now, event) {
                match action {
                    VrrpAction::SendAdvert {
                        priority,
                        max_advert_int,
                    } => {
                        let src = self.nodes[i].addr;
                        for j in (0..self.nodes.len()).filter(|&j| j != i) {
                            let advert = VrrpEvent::AdvertReceived {
                                priority,
                                max_advert_int,
                                src,
                            };
                            queue.push_back((j, advert));
                        }
                    }
                    VrrpAction::StateChanged {
                        to: State::Master,
                        reason,
                        ..
                    } => self.nodes[i].takeovers.push((now, reason)),
                    _ => {}
                }
            }
        }
    }

    fn up_all(&mut self) {
        for i in 0..self.nodes.len() {
            let primary = self.nodes[i].addr;
            self.feed(i, VrrpEvent::Up { primary });
        }
    }

    /// Runs every timer due until `until`; timers due at the same instant fire together.
    fn run_until(&mut self, until: Duration) {
        loop {
            let deadline = |i: usize| {
                let n = &self.nodes[i];
                n.alive.then(|| n.router.next_deadline()).flatten()
            };
            let Some(at) = (0..self.nodes.len()).filter_map(deadline).min() else {
                break;
            };
            if at > until {
                break;
            }
            self.now = at;
            let due = (0..self.nodes.len())
                .filter(|&i| deadline(i) == Some(at))
                .map(|i| (i, VrrpEvent::TimerExpired))
                .collect();
            self.feed_together(due);
        }
        self.now = until;
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].alive && self.nodes[i].router.state() == State::Master)
            .collect()
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Skew_Time at a 1 s interval, as the machine computes it (whole microseconds).
fn skew(priority: u64) -> Duration {
    Duration::from_micros((256 - priority) * 1_000_000 / 256)
}

#[test]
fn the_best_priority_wins_the_first_election_alone() {
    let mut lan = Lan::new(&[100, 200, 150]);
    lan.up_all();
    lan.run_until(secs(30.0));
    assert_eq!(lan.masters(), vec![1]);
    // Its Master_Down_Interval (3 s + 56/256 s) is the shortest: nobody else ever took over.
    assert_eq!(
        lan.nodes[1].takeovers,
        vec![(secs(3.21875), VrrpReason::MasterDownTimer)]
    );
    assert!(lan.nodes[0].takeovers.is_empty() && lan.nodes[2].takeovers.is_empty());
}

#[test]
fn a_dead_master_is_replaced_by_the_next_best_only() {
    let mut lan = Lan::new(&[100, 200, 150]);
    lan.up_all();
    lan.run_until(secs(10.0));
    // Its last advert left at 9.21875 s (every second from 3.21875 s); it dies silently.
    lan.nodes[1].alive = false;
    lan.run_until(secs(30.0));
    assert_eq!(lan.masters(), vec![2]);
    // 3 s + 106/256 s after the last advert.
    assert_eq!(
        lan.nodes[2].takeovers,
        vec![(secs(9.21875 + 3.0) + skew(150), VrrpReason::MasterDownTimer)]
    );
    assert!(lan.nodes[0].takeovers.is_empty());
}

#[test]
fn a_resigning_master_is_replaced_after_the_next_best_skew() {
    let mut lan = Lan::new(&[100, 200, 150]);
    lan.up_all();
    lan.run_until(secs(10.0));
    lan.feed(1, VrrpEvent::Shutdown);
    lan.nodes[1].alive = false;
    lan.run_until(secs(30.0));
    assert_eq!(lan.masters(), vec![2]);
    assert_eq!(
        lan.nodes[2].takeovers,
        vec![(secs(10.0) + skew(150), VrrpReason::MasterResigned)]
    );
    assert!(lan.nodes[0].takeovers.is_empty());
}

#[test]
fn a_better_router_coming_up_preempts_and_the_old_master_steps_back() {
    let mut lan = Lan::new(&[100, 200]);
    lan.nodes[1].alive = false;
    lan.up_all();
    lan.run_until(secs(10.0));
    assert_eq!(lan.masters(), vec![0]);
    lan.nodes[1].alive = true;
    let primary = lan.nodes[1].addr;
    lan.feed(1, VrrpEvent::Up { primary });
    lan.run_until(secs(30.0));
    assert_eq!(lan.masters(), vec![1]);
    assert_eq!(lan.nodes[0].router.state(), State::Backup);
}

#[test]
fn equal_priorities_settle_on_the_higher_address() {
    let mut lan = Lan::new(&[100, 100, 100]);
    lan.up_all();
    lan.run_until(secs(30.0));
    // All three time out at the same instant and advertise; as masters they compare
    // primary addresses and the highest stays.
    assert!(lan.nodes.iter().all(|n| n.takeovers.len() == 1));
    assert_eq!(lan.masters(), vec![2]);
    let before: Vec<usize> = lan.nodes.iter().map(|n| n.takeovers.len()).collect();
    lan.run_until(secs(60.0));
    let after: Vec<usize> = lan.nodes.iter().map(|n| n.takeovers.len()).collect();
    assert_eq!(before, after, "stable: no further takeovers");
}
