//! The advert pacer: a thread of its own that sends a steady master's regular adverts.
//!
//! At 1 s timers a master's only work is one advert a second. Waking the event loop for it
//! (tokio's driver, the loop's `select!` over every source, the state machine and the maps,
//! all cold in the caches after a second asleep) costs more than the send itself. So the
//! loop lends the adverts of a master with nothing else riding on them
//! ([`Vhid::lend_adverts`]) for a lease of about [`LEASE`]. This thread repeats the frames
//! the loop built, on the machine's own schedule (each advert an interval after the last
//! was due, the same slack), renews the dataplane's fail-silent deadline after each one that
//! left, exactly as the loop does, and counts them. The loop wakes once a lease, sends one
//! advert itself, and lends the next ones.
//!
//! Whatever may change what an advert says or whether it goes out takes the loan back first
//! ([`Pacer::take_back`]): every event the loop feeds a state machine, and any of the rare
//! ones (link and address events, carpctl, a reload, health checks, scrapes, signals) takes
//! them all back. Taking back waits for a send in progress, so nothing leaves after it. A send
//! that fails ends its loan and wakes the loop ([`Pacer::failures`]), whose machine then
//! counts the error as if it had sent.
//!
//! Fail-silence is kept: a killed carpd takes this thread with it. An event loop that no
//! longer runs is seen ([`LoopWatch`]: busy with one event, or kept from running by another
//! task of its runtime, for [`HANG_LIMIT`](super::loop_watch::HANG_LIMIT)): the pacer
//! sends nothing then, so the dataplane's deadline runs out as if the loop had sent the
//! adverts itself. So the lease bounds nothing that matters for safety, and is long: each
//! renewal is a wake-up of the loop (100 to 400 µs here, its caches cold), which at 8 s
//! leases was a tenth of what a one-vhid master cost at 1 s timers.
//!
//! Under `realtime_priority` the thread runs SCHED_FIFO at the loop's priority while it
//! paces an interval shorter than [`REALTIME_BELOW`]: at advbase 0 a backup declares the
//! master down after three intervals (11.7 ms at advskew 1), and a few milliseconds spent
//! waiting for a CPU are a failover. At longer intervals the thread runs under the normal
//! policy: a wake-up that waits even tens of milliseconds for a CPU is a small part of
//! three intervals (300 ms or more), and a real-time wake-up costs more CPU (the
//! scheduler's real-time balancing), which at 1 s timers is most of what an advert costs.
//! The thread enters real time once at start, so that a missing privilege stops carpd
//! then, not at the first fast loan.
//!
//! A standby thread on another CPU covers the short intervals. On a virtual machine the
//! hypervisor stops one virtual CPU at a time, now and then for 5 to 20 ms (steal time),
//! and on any host a CPU can be held by higher-priority work; a pacer waiting on that CPU
//! sends nothing, and at advbase 0 advskew 0/1 a backup takes over after 11.7 ms. So with
//! two CPUs or more, the pacer is pinned off one of them and a standby is pinned to it:
//! the standby wakes half an interval after each short-interval advert's deadline and sends
//! the advert if it is still unsent, which keeps the gap a backup sees under one and a half
//! intervals. Measured here: over two minutes, 22 stand-stills of 4 ms or more, none of both
//! CPUs at once. It does not help when the whole machine stands still (the backup with it).
//!
//! So that a thread that stands still in a send holds nobody up, an advert is claimed under
//! the book's lock and sent outside it. A send is about 100 µs here (the switch and the
//! receivers' stacks run in it), 2.5 % of an advbase 0 interval: with the lock held through
//! it, the stand-stills above would catch the sender in a send about once per ten minutes,
//! and the standby would wait on the lock as long.
//! An advert the sender claimed and has not settled half an interval after its deadline is
//! sent again by the standby: the backup gets it twice rather than not at all.
//!
//! The standby wakes for every short-interval advert, sent or not, and costs CPU for it
//! (about 40 µs per advert here). A standby woken only for a late advert, by a timerfd the
//! pacer moves on after each send, was tried and taken out: an hrtimer is queued on the
//! CPU that arms it, so that timer lived on the pacer's CPU and stood still with it. The
//! standby's timer must be armed from the standby's own CPU.
//!
//! [`Vhid::lend_adverts`]: crate::proto::fsm::Vhid::lend_adverts
use std::io;
#[cfg(test)]
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::Notify;

use super::loop_watch::LoopWatch;
// carpd's clock (CLOCK_MONOTONIC), the state machines' and the dataplane's.
use super::now as clock;
use crate::dataplane::DeadlineCell;
use crate::send::frame::PacketSocket;

/// Which of the pacer's two threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Sends every advert at its deadline.
    Sender,
    /// On a CPU of its own, sends a short-interval advert still unsent half an interval
    /// after its deadline (see the module doc).
    Standby,
}

/// How long a loan lasts, at most: the adverts of this much time, and at least one.
pub const LEASE: Duration = Duration::from_secs(60);

/// Under `realtime_priority` the pacer runs SCHED_FIFO while it paces an interval shorter
/// than this (advbase 0 with advskew below 26), the normal policy otherwise.
pub const REALTIME_BELOW: Duration = Duration::from_millis(100);

/// The number of adverts to lend at `interval`.
pub fn lease_adverts(interval: Duration) -> u32 {
    let n = LEASE.as_nanos() / interval.as_nanos().max(1);
    n.clamp(1, u128::from(u32::MAX)) as u32
}

/// Where a loan's frames go: the carpdev's AF_PACKET socket (a recorder in tests).
pub trait FrameSink: Send + Sync {
    fn send(&self, frame: &[u8]) -> io::Result<()>;
}

impl FrameSink for PacketSocket {
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        PacketSocket::send(self, frame)
    }
}

/// One advert as whole frames, one per address family (IPv4 first), as the loop last sent
/// it.
#[derive(Debug)]
pub struct AdvertFrame {
    pub bytes: Vec<u8>,
    pub v6: bool,
}

// By hand for `clone_from`, which reuses the buffer: a claim copies its loan's frames
// into the same buffers advert after advert, with no allocation.
impl Clone for AdvertFrame {
    fn clone(&self) -> Self {
        Self {
            bytes: self.bytes.clone(),
            v6: self.v6,
        }
    }

    fn clone_from(&mut self, source: &Self) {
        self.bytes.clone_from(&source.bytes);
        self.v6 = source.v6;
    }
}

/// The adverts a state machine lends.
pub struct Lease {
    pub sink: Arc<dyn FrameSink>,
    /// The CARP header the frames carry: a lease that comes back can be lent again as it is
    /// while the machine would still send this.
    pub carp: [u8; 36],
    pub frames: Vec<AdvertFrame>,
    /// The first advert's deadline (CLOCK_MONOTONIC), from [`Vhid::lend_adverts`].
    ///
    /// [`Vhid::lend_adverts`]: crate::proto::fsm::Vhid::lend_adverts
    pub first: Duration,
    pub interval: Duration,
    /// How early an advert may leave ([`Vhid::advert_slack`]).
    ///
    /// [`Vhid::advert_slack`]: crate::proto::fsm::Vhid::advert_slack
    pub slack: Duration,
    pub count: u32,
    /// The master's dataplane deadline slot and how long after the clock reading before a
    /// send that left it holds ([`master_hold`](crate::dataplane::master_hold)).
    pub deadline: Option<(DeadlineCell, Duration)>,
}

/// What comes back of a loan.
pub struct Returned {
    /// The lease, to lend again (with a new first deadline and count).
    pub lease: Lease,
    /// The deadline of the first advert the pacer did not send (or try to).
    pub next: Duration,
    /// Adverts sent, per family (IPv4, IPv6).
    pub sent: [u64; 2],
    /// Adverts not sent because the event loop was hung ([`LoopWatch`]).
    pub skipped: u64,
    /// Adverts the standby sent because the sender had not (see the module doc).
    pub by_standby: u64,
    /// The send that failed and ended the loan: its family (`true`: IPv6) and error.
    pub failed: Option<(bool, io::Error)>,
}

struct Loan {
    key: String,
    /// Tells this loan apart from a later one under the same key.
    id: u64,
    lease: Lease,
    next: Duration,
    left: u32,
    sent: [u64; 2],
    failed: Option<(bool, io::Error)>,
    /// Adverts not sent because the loop was hung.
    skipped: u64,
    /// Adverts the standby sent because the sender had not.
    by_standby: u64,
    /// The IPv4 id generator (xorshift): OpenBSD gives every advert a random id.
    ip_id_state: u32,
    /// Adverts claimed and not yet settled: both threads send outside the lock.
    in_flight: u32,
    /// The deadline of the advert the sender claimed and has not settled; the standby sends
    /// a copy of it half an interval late (`covered`: it has).
    sender_claim: Option<Duration>,
    covered: bool,
    /// Being taken back: nothing more is claimed, the sends in flight are awaited.
    ending: bool,
    /// The latest dataplane deadline the pacer set: a send settled late never moves it back.
    renewed_to: Duration,
}

impl Loan {
    /// How long after an advert's deadline `role` sends it: the sender at the deadline,
    /// the standby half an interval later and only at short intervals (`None`: never).
    fn lag(&self, role: Role) -> Option<Duration> {
        match role {
            Role::Sender => Some(Duration::ZERO),
            Role::Standby => standby_lag(self.lease.interval),
        }
    }

    /// Whether anything more of this loan may be claimed.
    fn is_open(&self) -> bool {
        !self.ending && self.failed.is_none()
    }

    /// When `role` must wake for this loan: its next advert's deadline (the sender's, as
    /// the loop's timer is armed) and the role's lag, or for the standby the sender's
    /// unsettled claim and the lag if that is earlier; `None` when nothing is left to do.
    fn wake_at(&self, role: Role) -> Option<Duration> {
        let lag = self.lag(role)?;
        if !self.is_open() {
            return None;
        }
        let regular = (self.left > 0).then_some(self.next + lag);
        let cover = match role {
            Role::Standby if !self.covered => self.sender_claim.map(|due| due + lag),
            _ => None,
        };
        regular.into_iter().chain(cover).min()
    }

    /// Whether an advert due at `due` may go out at `now` for `role`: within the slack of
    /// its deadline and lag, so that a wake-up for one vhid takes the others due about then
    /// along.
    fn is_due(&self, due: Duration, lag: Duration, now: Duration) -> bool {
        (due + lag).saturating_sub(self.lease.slack) <= now
    }

    /// Claims what is due at `now` for `role` into `claims`, to be sent outside the lock
    /// (skips it while the loop is hung).
    fn claim_due(&mut self, now: Duration, role: Role, watch: &LoopWatch, claims: &mut Claims) {
        let Some(lag) = self.lag(role).filter(|_| self.is_open()) else {
            return;
        };
        // The sender claimed an advert and stands still before it left: send a copy.
        if role == Role::Standby
            && !self.covered
            && let Some(due) = self.sender_claim
            && self.is_due(due, lag, now)
        {
            self.covered = true;
            self.claim(due, clock(), watch, claims);
        }
        while self.left > 0 && self.is_due(self.next, lag, now) {
            // The deadline counts from a reading taken before the send, as the loop's.
            let before = clock();
            let interval = self.lease.interval;
            let due = self.next;
            self.left -= 1;
            // The schedule keeps its phase; a pacer so late that the next advert would be
            // due at once starts again from now (as the state machine does).
            let next = due + interval;
            self.next = if next.saturating_sub(self.lease.slack) > before {
                next
            } else {
                before + interval
            };
            if self.claim(due, before, watch, claims) && role == Role::Sender {
                self.sender_claim = Some(due);
                self.covered = false;
            }
        }
    }

    /// Copies the advert due at `due` into `claims`, with an IPv4 id of its own; false
    /// (counted as skipped) while the loop is hung: neither sent nor renewed, the dataplane
    /// falls silent on its own deadline.
    fn claim(
        &mut self,
        due: Duration,
        before: Duration,
        watch: &LoopWatch,
        claims: &mut Claims,
    ) -> bool {
        if watch.hung(before) {
            self.skipped += 1;
            return false;
        }
        self.in_flight += 1;
        let claim = claims.push();
        claim.loan = self.id;
        claim.due = due;
        claim.before = before;
        claim.sink = Some(Arc::clone(&self.lease.sink));
        claim.frames.clone_from(&self.lease.frames);
        for i in 0..claim.frames.len() {
            if !claim.frames[i].v6 {
                let id = self.next_ip_id();
                set_ipv4_id(&mut claim.frames[i].bytes, id);
            }
        }
        true
    }

    /// Takes in what `role`'s send of `claim` did; true if it failed (the loan has ended).
    fn settle(&mut self, claim: &mut Claim, role: Role) -> bool {
        self.in_flight -= 1;
        if role == Role::Sender && self.sender_claim == Some(claim.due) {
            self.sender_claim = None;
        }
        self.sent[0] += claim.sent[0];
        self.sent[1] += claim.sent[1];
        if let Some(failed) = claim.failed.take() {
            self.failed.get_or_insert(failed);
            return true;
        }
        if role == Role::Standby {
            self.by_standby += 1;
        }
        if let Some((cell, hold)) = &self.lease.deadline {
            let until = claim.before + *hold;
            if until > self.renewed_to {
                self.renewed_to = until;
                cell.store(until.as_nanos() as u64);
            }
        }
        false
    }

    /// Whether the thread must run real time for this loan ([`REALTIME_BELOW`]).
    fn needs_realtime(&self) -> bool {
        self.wake_at(Role::Sender).is_some() && self.lease.interval < REALTIME_BELOW
    }

    fn next_ip_id(&mut self) -> u16 {
        let mut x = self.ip_id_state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.ip_id_state = x;
        (x >> 8) as u16
    }

    fn returned(self) -> (String, Returned) {
        (
            self.key,
            Returned {
                lease: self.lease,
                next: self.next,
                sent: self.sent,
                skipped: self.skipped,
                by_standby: self.by_standby,
                failed: self.failed,
            },
        )
    }
}

/// Writes `id` into an IPv4 advert frame's header and its checksum anew.
fn set_ipv4_id(frame: &mut [u8], id: u16) {
    const IP: usize = carp_common::frame::ethernet::ETH_HLEN;
    const HLEN: usize = carp_common::frame::ip::IPV4_HLEN;
    let Some(header) = frame.get_mut(IP..IP + HLEN) else {
        return;
    };
    header[4..6].copy_from_slice(&id.to_be_bytes());
    header[10..12].fill(0);
    let sum = carp_common::frame::internet_checksum(header);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// An advert a thread claimed under the lock, to send outside it.
#[derive(Default)]
struct Claim {
    /// The loan's id ([`Loan::id`]).
    loan: u64,
    due: Duration,
    /// The clock reading before the claim, which the dataplane deadline counts from.
    before: Duration,
    sink: Option<Arc<dyn FrameSink>>,
    frames: Vec<AdvertFrame>,
    /// What the send did: frames sent per family, and the error that stopped it.
    sent: [u64; 2],
    failed: Option<(bool, io::Error)>,
}

impl Claim {
    fn send(&mut self) {
        let Some(sink) = &self.sink else {
            return;
        };
        for frame in &self.frames {
            if let Err(err) = sink.send(&frame.bytes) {
                self.failed = Some((frame.v6, err));
                return;
            }
            self.sent[usize::from(frame.v6)] += 1;
        }
    }
}

/// The claims of one round of a thread. Kept from round to round, so that the frame
/// buffers are reused rather than allocated per advert.
#[derive(Default)]
struct Claims {
    list: Vec<Claim>,
    len: usize,
}

impl Claims {
    /// A claim to fill in, cleared of what it said before.
    fn push(&mut self) -> &mut Claim {
        if self.len == self.list.len() {
            self.list.push(Claim::default());
        }
        self.len += 1;
        let claim = &mut self.list[self.len - 1];
        claim.sent = [0; 2];
        claim.failed = None;
        claim
    }

    fn as_mut_slice(&mut self) -> &mut [Claim] {
        &mut self.list[..self.len]
    }

    /// Forgets the round's claims, letting go of their sockets.
    fn clear(&mut self) {
        for claim in self.as_mut_slice() {
            claim.sink = None;
        }
        self.len = 0;
    }
}

#[derive(Default)]
struct Book {
    loans: Vec<Loan>,
    /// The id the next loan gets.
    next_id: u64,
    /// Until when the thread sleeps (`None`: until told): a loan due later needs no
    /// wake-up, so the loop's lending back and forth under a stream of adverts costs the
    /// thread nothing.
    asleep_until: Option<Duration>,
    /// Until when the standby sleeps, as `asleep_until`.
    standby_asleep_until: Option<Duration>,
    /// Times the sender went round its loop (tests count wake-ups with it).
    rounds: u64,
    /// Whether the thread runs SCHED_FIFO now (see [`REALTIME_BELOW`]).
    realtime: bool,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    book: Mutex<Book>,
    /// Wakes the sender; `standby_changed` the standby.
    changed: Condvar,
    standby_changed: Condvar,
    /// Tells a loop taking loans back that their sends in flight have settled.
    settled: Condvar,
    failed: Arc<Notify>,
    watch: LoopWatch,
    /// `realtime_priority`: the SCHED_FIFO priority for short intervals.
    priority: Option<u8>,
    /// The threads' ids (sender, standby), for tests that ask the kernel about them.
    #[cfg(test)]
    tids: [std::sync::atomic::AtomicI32; 2],
    /// Tests make the sender stand still with it, as a CPU the hypervisor stopped.
    #[cfg(test)]
    sender_stands_still: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn book(&self) -> MutexGuard<'_, Book> {
        // A panic while the lock was held leaves nothing half-done that matters here: the
        // worst is a loan that sent one frame of two, which the loop's next advert repeats.
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The pacer's threads and what they share with the event loop.
pub struct Pacer {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Pacer {
    /// Starts the sender and, with two CPUs or more, the standby; with `realtime_priority`
    /// the sender runs SCHED_FIFO at that priority while it paces short intervals
    /// ([`REALTIME_BELOW`]), the standby always (it wakes for short intervals only).
    pub fn start(realtime_priority: Option<u8>, watch: LoopWatch) -> Result<Self, crate::Error> {
        let shared = Arc::new(Shared {
            priority: realtime_priority,
            watch,
            ..Shared::default()
        });
        let cpus = allowed_cpus();
        let standby_cpu = cpus.get(1).and(cpus.last().copied());
        let sender_cpus: Vec<usize> = cpus
            .iter()
            .copied()
            .filter(|&c| Some(c) != standby_cpu)
            .collect();
        let mut pacer = Self {
            shared,
            threads: Vec::new(),
        };
        let sender_pin = standby_cpu.map(|_| sender_cpus);
        pacer.spawn(Role::Sender, sender_pin)?;
        if let Some(cpu) = standby_cpu {
            pacer.spawn(Role::Standby, Some(vec![cpu]))?;
        }
        Ok(pacer)
    }

    /// Starts `role`'s thread, pinned to `cpus` if given, and waits until it has set
    /// itself up.
    fn spawn(&mut self, role: Role, cpus: Option<Vec<usize>>) -> Result<(), crate::Error> {
        let name = match role {
            Role::Sender => "carpd-pacer",
            Role::Standby => "carpd-standby",
        };
        let io_err = |source| crate::Error::Io {
            what: "starting the advert pacer's threads",
            path: name.into(),
            source,
        };
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let shared = Arc::clone(&self.shared);
        let priority = shared.priority;
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                #[cfg(test)]
                // SAFETY: a plain system call.
                shared.tids[role as usize].store(unsafe { libc::gettid() }, Ordering::Relaxed);
                if let Some(cpus) = &cpus {
                    pin(name, cpus);
                }
                let setup = prepare_thread(priority);
                let ok = setup.is_ok();
                if role == Role::Sender {
                    shared.book().realtime = ok && priority.is_some();
                }
                let _ = ready_tx.send(setup);
                if ok {
                    run(&shared, role);
                }
            })
            .map_err(io_err)?;
        self.threads.push(thread);
        ready_rx.recv().unwrap_or_else(|_| {
            Err(io_err(io::Error::other(
                "the thread ended before it started",
            )))
        })
    }

    /// Lends `lease` under `key` (an election's name), replacing a loan it may still have.
    pub fn lend(&self, key: &str, lease: Lease) {
        let (mut book, _) = self.end_loans(|l| l.key == key);
        let ip_id_state = rand::random::<u32>() | 1;
        // Woken early for an earlier deadline, or to enter real time before a fast loan's
        // first advert.
        let wake = book.asleep_until.is_none_or(|at| lease.first < at)
            || (self.shared.priority.is_some()
                && !book.realtime
                && lease.interval < REALTIME_BELOW);
        let wake_standby = standby_lag(lease.interval).is_some_and(|lag| {
            book.standby_asleep_until
                .is_none_or(|at| lease.first + lag < at)
        });
        let id = book.next_id;
        book.next_id += 1;
        book.loans.push(Loan {
            key: key.to_owned(),
            id,
            next: lease.first,
            left: lease.count,
            lease,
            sent: [0; 2],
            failed: None,
            skipped: 0,
            by_standby: 0,
            ip_id_state,
            in_flight: 0,
            sender_claim: None,
            covered: false,
            ending: false,
            renewed_to: Duration::ZERO,
        });
        drop(book);
        if wake {
            self.shared.changed.notify_one();
        }
        if wake_standby {
            self.shared.standby_changed.notify_one();
        }
    }

    /// Ends `key`'s loan, if it has one, and says what it did. After this returns the pacer
    /// sends nothing more of it: a send in flight is waited for.
    pub fn take_back(&self, key: &str) -> Option<Returned> {
        let (book, mut ended) = self.end_loans(|l| l.key == key);
        drop(book);
        ended.pop().map(|loan| loan.returned().1)
    }

    /// Ends every loan; see [`Pacer::take_back`].
    pub fn take_back_all(&self) -> Vec<(String, Returned)> {
        let (book, ended) = self.end_loans(|_| true);
        drop(book);
        ended.into_iter().map(Loan::returned).collect()
    }

    /// Ends the loans `which` picks: nothing more of them is claimed, the sends in flight
    /// are waited for (a thread may stand still in one as long as its CPU is taken), and
    /// they leave the book.
    fn end_loans(&self, which: impl Fn(&Loan) -> bool) -> (MutexGuard<'_, Book>, Vec<Loan>) {
        let mut book = self.shared.book();
        let mut any = false;
        for loan in book.loans.iter_mut().filter(|l| which(l)) {
            loan.ending = true;
            any = true;
        }
        if !any {
            return (book, Vec::new());
        }
        while book.loans.iter().any(|l| l.ending && l.in_flight > 0) {
            book = (self.shared.settled)
                .wait(book)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let (ended, kept) = std::mem::take(&mut book.loans)
            .into_iter()
            .partition(|l| l.ending);
        book.loans = kept;
        (book, ended)
    }

    /// The names of the loans a failed send has ended.
    pub fn failed_loans(&self) -> Vec<String> {
        self.shared
            .book()
            .loans
            .iter()
            .filter(|l| l.failed.is_some())
            .map(|l| l.key.clone())
            .collect()
    }

    /// Notified when a send fails (then see [`Pacer::failed_loans`]).
    pub fn failures(&self) -> Arc<Notify> {
        Arc::clone(&self.shared.failed)
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.shared.book().stop = true;
        self.shared.changed.notify_one();
        self.shared.standby_changed.notify_one();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Real time like the event loop's (the memory is locked for the whole process already),
/// and no timer slack: a sleep ends at its deadline, as the loop's timerfd does. The first
/// round leaves real time again if no loan needs it ([`REALTIME_BELOW`]).
fn prepare_thread(realtime_priority: Option<u8>) -> Result<(), crate::Error> {
    // SAFETY: prctl with constant arguments, for the calling thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    if let Some(priority) = realtime_priority {
        crate::realtime::enter_thread(priority)?;
    }
    Ok(())
}

/// Enters (`realtime`) or leaves SCHED_FIFO at `priority`; returns whether the thread runs
/// real time now. Entering was allowed at start and carpd keeps its privileges, so a
/// refusal is unexpected: it is logged, and the thread paces under the normal policy.
fn switch_policy(priority: u8, realtime: bool) -> bool {
    if !realtime {
        crate::realtime::leave_thread();
        return false;
    }
    match crate::realtime::enter_thread(priority) {
        Ok(()) => true,
        Err(err) => {
            tracing::error!(%err, "the advert pacer could not enter real time");
            false
        }
    }
}

/// The standby's lag behind an advert's deadline at `interval`: half of it, at intervals
/// under [`REALTIME_BELOW`] only (at longer ones a late advert has two intervals of slack).
fn standby_lag(interval: Duration) -> Option<Duration> {
    (interval < REALTIME_BELOW).then_some(interval / 2)
}

/// The CPUs the calling thread may run on (empty if the kernel does not say).
fn allowed_cpus() -> Vec<usize> {
    cpus_of(0)
}

/// The CPUs thread `tid` (0: the calling thread) may run on.
fn cpus_of(tid: libc::pid_t) -> Vec<usize> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set; the kernel fills it in.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is as large as the size given.
    let rc = unsafe { libc::sched_getaffinity(tid, std::mem::size_of_val(&set), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `c` is below CPU_SETSIZE.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// Pins the calling thread to `cpus`; a refusal (a CPU gone since) leaves it where it may
/// run, which loses only the standby's cover.
fn pin(name: &str, cpus: &[usize]) {
    // SAFETY: as in `allowed_cpus`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        // SAFETY: the CPUs came from `allowed_cpus`, below CPU_SETSIZE.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: as in `allowed_cpus`.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) } != 0 {
        tracing::warn!(
            thread = name,
            ?cpus,
            err = %io::Error::last_os_error(),
            "pinning the advert pacer's thread refused"
        );
    }
}

fn run(shared: &Shared, role: Role) {
    let mut claims = Claims::default();
    let mut book = shared.book();
    while !book.stop {
        if role == Role::Sender {
            book.rounds += 1;
            if let Some(priority) = shared.priority {
                let wanted = book.loans.iter().any(Loan::needs_realtime);
                if wanted != book.realtime {
                    book.realtime = switch_policy(priority, wanted);
                }
            }
        }
        #[cfg(test)]
        if role == Role::Sender && shared.sender_stands_still.load(Ordering::Relaxed) {
            book = (shared.changed)
                .wait_timeout(book, Duration::from_millis(1))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            continue;
        }
        let now = clock();
        for loan in &mut book.loans {
            loan.claim_due(now, role, &shared.watch, &mut claims);
        }
        if claims.len > 0 {
            // Sent outside the lock: a thread that stands still in a send (its CPU taken by
            // the hypervisor) keeps neither the other thread nor the loop waiting.
            drop(book);
            for claim in claims.as_mut_slice() {
                claim.send();
            }
            book = shared.book();
            let (mut failed, mut settled) = (false, false);
            for claim in claims.as_mut_slice() {
                if let Some(loan) = book.loans.iter_mut().find(|l| l.id == claim.loan) {
                    failed |= loan.settle(claim, role);
                    settled |= loan.ending && loan.in_flight == 0;
                }
            }
            claims.clear();
            if failed {
                shared.failed.notify_one();
            }
            if settled {
                shared.settled.notify_all();
            }
        }
        let wake = book.loans.iter().filter_map(|l| l.wake_at(role)).min();
        let changed = match role {
            Role::Sender => {
                book.asleep_until = wake;
                &shared.changed
            }
            Role::Standby => {
                book.standby_asleep_until = wake;
                &shared.standby_changed
            }
        };
        book = match wake {
            Some(at) => {
                let now = clock();
                if at <= now {
                    continue;
                }
                changed
                    .wait_timeout(book, at - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => changed.wait(book).unwrap_or_else(PoisonError::into_inner),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::loop_watch::HANG_LIMIT;
    use carp_common::frame::internet_checksum;

    /// Records what it is given, with the time; fails from the `fail_from`th frame on.
    /// While `hold_sender` is set, a send from the pacer's sender stands still (as a thread
    /// whose CPU the hypervisor took in the middle of a send).
    #[derive(Default)]
    struct Recorder {
        frames: Mutex<Vec<(Duration, Vec<u8>)>>,
        fail_from: Option<usize>,
        hold_sender: std::sync::atomic::AtomicBool,
    }

    impl Recorder {
        /// When each advert left (an advert is an IPv4 and an IPv6 frame).
        fn advert_times(&self) -> Vec<Duration> {
            let frames = self.frames.lock().unwrap();
            frames.iter().step_by(2).map(|f| f.0).collect()
        }
    }

    impl FrameSink for Recorder {
        fn send(&self, frame: &[u8]) -> io::Result<()> {
            while self.hold_sender.load(Ordering::Relaxed)
                && std::thread::current().name() == Some("carpd-pacer")
            {
                std::thread::sleep(ms(1));
            }
            let mut frames = self.frames.lock().unwrap();
            if self.fail_from.is_some_and(|n| frames.len() >= n) {
                return Err(io::Error::from_raw_os_error(libc::ENOBUFS));
            }
            frames.push((clock(), frame.to_vec()));
            Ok(())
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// An IPv4 frame as the advert builder makes it, and an IPv6 one.
    fn frames() -> Vec<AdvertFrame> {
        let carp = [7u8; 36];
        vec![
            AdvertFrame {
                bytes: crate::send::advert::advert_frame_v4(
                    [0, 0, 0x5e, 0, 1, 1],
                    "192.0.2.1".parse().unwrap(),
                    0x1234,
                    &carp,
                ),
                v6: false,
            },
            AdvertFrame {
                bytes: crate::send::advert::advert_frame_v6(
                    [0, 0, 0x5e, 0, 1, 1],
                    "fe80::1".parse().unwrap(),
                    &carp,
                ),
                v6: true,
            },
        ]
    }

    fn lease(sink: Arc<dyn FrameSink>, first: Duration, count: u32) -> Lease {
        Lease {
            sink,
            carp: [7; 36],
            frames: frames(),
            first,
            interval: ms(20),
            slack: Duration::ZERO,
            count,
            deadline: None,
        }
    }

    /// Waits (bounded) until `done` holds.
    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let until = clock() + Duration::from_secs(10);
        while !done() {
            assert!(clock() < until, "timed out waiting for {what}");
            std::thread::sleep(ms(2));
        }
    }

    #[test]
    fn a_loan_sends_its_adverts_on_schedule_then_stops() {
        let pacer = Pacer::start(None, LoopWatch::default()).unwrap();
        let sink = Arc::new(Recorder::default());
        let first = clock() + ms(20);
        pacer.lend("carp1", lease(sink.clone(), first, 4));
        wait_until("4 adverts of 2 frames", || {
            sink.frames.lock().unwrap().len() == 8
        });
        let sent = sink.frames.lock().unwrap().clone();
        let v4 = frames()[0].bytes.clone();
        for (i, (at, frame)) in sent.iter().enumerate() {
            let due = first + ms(20) * (i as u32 / 2);
            assert!(*at >= due, "advert {} left {:?} early", i / 2, due - *at);
            if i % 2 == 0 {
                // The IPv4 id is new each time, and the header checksum with it.
                assert_eq!(frame.len(), v4.len());
                assert_eq!(internet_checksum(&frame[14..34]), 0);
                assert_eq!(frame[..18], v4[..18]);
                assert_eq!(frame[20..24], v4[20..24]);
                assert_eq!(frame[26..], v4[26..]);
            } else {
                assert_eq!(*frame, frames()[1].bytes);
            }
        }
        let ids: std::collections::HashSet<_> = sent
            .iter()
            .step_by(2)
            .map(|(_, f)| [f[18], f[19]])
            .collect();
        assert!(ids.len() > 1, "every advert got the same IPv4 id");
        // Ended: nothing more, and what comes back says so.
        std::thread::sleep(ms(60));
        assert_eq!(sink.frames.lock().unwrap().len(), 8);
        let back = pacer
            .take_back("carp1")
            .expect("the loan is still on the books");
        assert_eq!(back.sent, [4, 4]);
        // An interval after the last (later only if a busy machine made the pacer late).
        assert!(back.next >= first + ms(80), "{:?}", back.next);
        assert!(back.next <= sent[6].0 + ms(20), "{:?}", back.next);
        assert!(back.failed.is_none());
        assert!(pacer.take_back("carp1").is_none());
    }

    #[test]
    fn taking_back_stops_the_sends_and_says_where_the_schedule_is() {
        let pacer = Pacer::start(None, LoopWatch::default()).unwrap();
        let sink = Arc::new(Recorder::default());
        let first = clock() + ms(20);
        pacer.lend("carp1", lease(sink.clone(), first, 1000));
        wait_until("3 adverts", || sink.frames.lock().unwrap().len() >= 6);
        let back = pacer.take_back("carp1").unwrap();
        let taken = clock();
        let sent = sink.frames.lock().unwrap().len();
        assert_eq!(sent as u64, back.sent[0] + back.sent[1]);
        // The advert after the last sent (or, on a busy machine, the one that is due).
        assert!(back.next >= first + ms(20) * back.sent[0] as u32);
        assert!(back.next <= taken + ms(20));
        std::thread::sleep(ms(60));
        assert_eq!(
            sink.frames.lock().unwrap().len(),
            sent,
            "sent after take_back"
        );
    }

    #[test]
    fn a_failed_send_ends_the_loan_and_wakes_the_loop() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let pacer = Pacer::start(None, LoopWatch::default()).unwrap();
        let failures = pacer.failures();
        // The second advert's IPv6 frame fails.
        let sink = Arc::new(Recorder {
            fail_from: Some(3),
            ..Default::default()
        });
        let other = Arc::new(Recorder::default());
        let first = clock() + ms(20);
        runtime.block_on(async {
            let notified = failures.notified();
            pacer.lend("carp1", lease(sink.clone(), first, 100));
            pacer.lend("carp2", lease(other.clone(), first, 100));
            tokio::time::timeout(Duration::from_secs(10), notified)
                .await
                .expect("the loop is told");
        });
        assert_eq!(pacer.failed_loans(), ["carp1"]);
        let back = pacer.take_back("carp1").unwrap();
        assert_eq!(back.sent, [2, 1]);
        let (v6, err) = back.failed.expect("the failure comes back");
        assert!(v6);
        assert_eq!(err.raw_os_error(), Some(libc::ENOBUFS));
        // The failed advert counts as sent: the schedule continues after it.
        assert!(back.next >= first + ms(40));
        assert!(back.next <= clock() + ms(20));
        // The other loan goes on.
        wait_until("carp2's adverts", || {
            other.frames.lock().unwrap().len() >= 10
        });
        assert_eq!(pacer.take_back_all().len(), 1);
    }

    #[test]
    fn a_late_pacer_starts_the_schedule_again_from_now_never_a_burst() {
        let pacer = Pacer::start(None, LoopWatch::default()).unwrap();
        let sink = Arc::new(Recorder::default());
        // Lent with a first deadline long past: one advert now, then one an interval later.
        let first = clock() - ms(1000);
        pacer.lend("carp1", lease(sink.clone(), first, 3));
        wait_until("3 adverts", || sink.frames.lock().unwrap().len() == 6);
        let at = sink.advert_times();
        assert!(at[1] - at[0] >= ms(19), "burst: {:?}", at[1] - at[0]);
        assert!(at[2] - at[1] >= ms(19), "burst: {:?}", at[2] - at[1]);
    }

    #[test]
    fn adverts_due_within_their_slack_share_a_wake_up() {
        let pacer = Pacer::start(None, LoopWatch::default()).unwrap();
        let sink = Arc::new(Recorder::default());
        // Lent well ahead of the first deadline, as the loop lends an interval ahead.
        let first = clock() + ms(150);
        let (slack, gap) = (ms(50), ms(40));
        for (key, at) in [("carp1", first), ("carp2", first + gap)] {
            pacer.lend(
                key,
                Lease {
                    interval: ms(200),
                    slack,
                    ..lease(sink.clone(), at, 1)
                },
            );
        }
        wait_until("both adverts", || sink.frames.lock().unwrap().len() == 4);
        let sent = sink.frames.lock().unwrap().clone();
        assert!(sent[0].0 >= first, "the first left before its deadline");
        // The second left with the first, before its own deadline: the slack let it.
        assert!(
            sent[2].0 < first + gap,
            "{:?} after the first",
            sent[2].0 - sent[0].0
        );
    }

    #[test]
    fn lending_back_and_forth_under_a_stream_of_events_does_not_wake_the_thread() {
        let pacer = Pacer::start(None, LoopWatch::default()).unwrap();
        let sink = Arc::new(Recorder::default());
        let first = clock() + Duration::from_secs(5);
        pacer.lend("carp1", lease(sink.clone(), first, 8));
        wait_until("the thread asleep until the loan", || {
            pacer.shared.book().asleep_until == Some(first)
        });
        let rounds = pacer.shared.book().rounds;
        // What the loop does for each advert received: take back, lend again.
        for _ in 0..1000 {
            let back = pacer.take_back("carp1").expect("lent");
            pacer.lend(
                "carp1",
                Lease {
                    first: back.next,
                    ..back.lease
                },
            );
        }
        // A later loan of another vhid does not wake it either; an earlier one does.
        pacer.lend("carp2", lease(sink.clone(), first + ms(10), 8));
        assert_eq!(pacer.shared.book().rounds, rounds);
        pacer.lend("carp3", lease(sink.clone(), first - ms(10), 8));
        wait_until("the earlier loan's wake-up", || {
            pacer.shared.book().asleep_until == Some(first - ms(10))
        });
        assert!(sink.frames.lock().unwrap().is_empty());
    }

    #[test]
    fn nothing_leaves_while_the_loop_is_hung_and_sending_resumes_when_it_waits_again() {
        let watch = LoopWatch::default();
        let pacer = Pacer::start(None, watch.clone()).unwrap();
        let sink = Arc::new(Recorder::default());
        // Busy with one event for longer than the limit: hung.
        watch.busy_at(clock() - HANG_LIMIT - ms(1));
        let first = clock() + ms(20);
        pacer.lend("carp1", lease(sink.clone(), first, 1000));
        wait_until("adverts skipped", || {
            pacer.shared.book().loans[0].skipped >= 3
        });
        assert!(sink.frames.lock().unwrap().is_empty(), "sent while hung");
        // Busy, but not for long: a loop at work, not hung.
        watch.busy();
        wait_until("adverts again", || sink.frames.lock().unwrap().len() >= 4);
        watch.waiting();
        wait_until("more adverts", || sink.frames.lock().unwrap().len() >= 8);
        let back = pacer.take_back("carp1").unwrap();
        assert!(back.skipped >= 3);
        assert!(back.sent[0] >= 4);
    }

    #[test]
    fn a_task_that_keeps_the_loops_thread_stops_the_adverts_once_a_poke_goes_unanswered() {
        let watch = LoopWatch::default();
        let pacer = Pacer::start(None, watch.clone()).unwrap();
        let sink = Arc::new(Recorder::default());
        // The runtime's thread has been awake, and the loop has not run, for longer than
        // the limit: the next advert still leaves, and the loop is poked.
        let long_ago = clock() - 2 * HANG_LIMIT;
        watch.waiting_at(long_ago);
        watch.thread_woke_at(long_ago);
        pacer.lend("carp1", lease(sink.clone(), clock() + ms(20), 1000));
        wait_until("the first advert", || {
            !sink.frames.lock().unwrap().is_empty()
        });
        // No answer: a limit after the poke, adverts are skipped.
        wait_until("adverts skipped", || {
            pacer.shared.book().loans[0].skipped >= 3
        });
        let sent = sink.frames.lock().unwrap().len();
        // Two frames an advert, one advert every 20 ms: half a limit's worth at least.
        assert!(
            sent >= HANG_LIMIT.as_millis() as usize / 20,
            "adverts stopped before the poke went unanswered: {sent} frames"
        );
        // The loop goes round (as it does when poked): sending resumes.
        watch.waiting();
        wait_until("adverts again", || {
            sink.frames.lock().unwrap().len() >= sent + 4
        });
        assert!(pacer.take_back("carp1").unwrap().skipped >= 3);
    }

    /// The pacer thread's scheduling policy, as the kernel has it.
    fn pacer_policy(pacer: &Pacer) -> i32 {
        let tid = pacer.shared.tids[0].load(Ordering::Relaxed);
        // SAFETY: a plain system call on a thread of this process.
        let policy = unsafe { libc::sched_getscheduler(tid) };
        policy & !libc::SCHED_RESET_ON_FORK
    }

    #[test]
    fn real_time_only_while_a_short_interval_is_paced() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: SCHED_FIFO needs root");
            return;
        }
        let pacer = Pacer::start(Some(5), LoopWatch::default()).expect("real time as root");
        // Nothing lent: the normal policy after the first round.
        wait_until("the normal policy", || {
            pacer_policy(&pacer) == libc::SCHED_OTHER
        });
        let sink = Arc::new(Recorder::default());
        let slow = |first| Lease {
            interval: REALTIME_BELOW,
            ..lease(sink.clone(), first, 8)
        };
        let first = clock() + Duration::from_secs(5);
        pacer.lend("carp1", slow(first));
        // A loan at 100 ms keeps it there (the thread went round for it); a loan due later
        // than the thread wakes still switches it before its first advert.
        wait_until("the round for carp1", || {
            pacer.shared.book().asleep_until == Some(first)
        });
        assert_eq!(pacer_policy(&pacer), libc::SCHED_OTHER);
        let fast = Lease {
            interval: REALTIME_BELOW - ms(1),
            ..lease(sink.clone(), clock() + Duration::from_secs(10), 8)
        };
        pacer.lend("carp2", fast);
        wait_until("SCHED_FIFO", || pacer_policy(&pacer) == libc::SCHED_FIFO);
        assert!(sink.frames.lock().unwrap().is_empty());
        // The fast loan taken back: the next round leaves real time.
        pacer.take_back("carp2").unwrap();
        pacer.lend("carp3", slow(clock() + ms(10)));
        wait_until("the normal policy again", || {
            pacer_policy(&pacer) == libc::SCHED_OTHER
        });
    }

    #[test]
    fn the_standby_sends_what_a_stalled_sender_does_not_half_an_interval_late() {
        let pacer = Pacer::start(None, LoopWatch::default()).unwrap();
        if pacer.threads.len() < 2 {
            eprintln!("skipping: one CPU, no standby");
            return;
        }
        // Pinned apart: the standby to one CPU, the sender to the others.
        let affinity =
            |role: Role| cpus_of(pacer.shared.tids[role as usize].load(Ordering::Relaxed));
        let standby_cpus = affinity(Role::Standby);
        assert_eq!(standby_cpus.len(), 1);
        assert!(!affinity(Role::Sender).contains(&standby_cpus[0]));

        let sink = Arc::new(Recorder::default());
        let interval = ms(20);
        pacer
            .shared
            .sender_stands_still
            .store(true, Ordering::Relaxed);
        let first = clock() + ms(20);
        pacer.lend(
            "carp1",
            Lease {
                interval,
                ..lease(sink.clone(), first, 1000)
            },
        );
        wait_until("5 adverts from the standby", || {
            sink.frames.lock().unwrap().len() >= 10
        });
        pacer
            .shared
            .sender_stands_still
            .store(false, Ordering::Relaxed);
        let at = sink.advert_times();
        // Each half an interval after its deadline, never before; the schedule keeps its
        // phase (one interval apart), so the sender can take over where the standby was.
        assert!(
            at[0] >= first + interval / 2,
            "{:?} early",
            first + interval / 2 - at[0]
        );
        for pair in at.windows(2).take(4) {
            assert!(
                pair[1] - pair[0] >= interval - ms(5),
                "{:?}",
                pair[1] - pair[0]
            );
        }
        // The sender back: the schedule continues, the standby idle but for a late sender.
        wait_until("10 more adverts", || {
            sink.frames.lock().unwrap().len() >= at.len() * 2 + 20
        });
        let back = pacer.take_back("carp1").unwrap();
        let sent = back.sent[0];
        assert!(back.by_standby >= 5, "{}", back.by_standby);
        assert!(
            back.by_standby < sent / 2 + 5,
            "the standby sent {} of {sent}",
            back.by_standby
        );
        // A long interval (1 s timers) is not the standby's: it does not wake for it.
        pacer.lend(
            "carp2",
            Lease {
                interval: REALTIME_BELOW,
                ..lease(sink.clone(), clock() + Duration::from_secs(5), 1)
            },
        );
        wait_until("the sender's round for carp2", || {
            pacer.shared.book().asleep_until.is_some()
        });
        wait_until("the standby idle", || {
            pacer.shared.book().standby_asleep_until.is_none()
        });
    }

    #[test]
    fn the_standby_covers_a_sender_that_stands_still_in_a_send() {
        let pacer = Pacer::start(None, LoopWatch::default()).unwrap();
        if pacer.threads.len() < 2 {
            eprintln!("skipping: one CPU, no standby");
            return;
        }
        let sink = Arc::new(Recorder::default());
        let interval = ms(20);
        pacer.lend(
            "carp1",
            Lease {
                interval,
                ..lease(sink.clone(), clock() + ms(20), 1000)
            },
        );
        wait_until("2 adverts", || sink.frames.lock().unwrap().len() >= 4);
        sink.hold_sender.store(true, Ordering::Relaxed);
        // Released however the test ends: a sender still held would hang the pacer's drop.
        struct Release<'a>(&'a Recorder);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.hold_sender.store(false, Ordering::Relaxed);
            }
        }
        let _release = Release(&sink);
        let held = clock();
        // The sender claims its next advert and stands still in the send; the standby
        // sends a copy of it and the ones after, half an interval late each.
        wait_until("6 adverts while the sender stands still in a send", || {
            let frames = sink.frames.lock().unwrap();
            frames.iter().filter(|f| f.0 > held).count() >= 12
        });
        let is_v4 = |f: &&(Duration, Vec<u8>)| f.1[12..14] == [0x08, 0x00];
        let times: Vec<Duration> = {
            let frames = sink.frames.lock().unwrap();
            frames.iter().filter(is_v4).map(|f| f.0).collect()
        };
        // A backup declares the master down after three intervals; the gaps stay well
        // under two.
        for pair in times.windows(2) {
            assert!(pair[1] - pair[0] < interval * 2, "{:?}", pair[1] - pair[0]);
        }

        std::thread::scope(|scope| {
            // Taking back waits for the send in flight.
            let taking = scope.spawn(|| pacer.take_back("carp1").unwrap());
            wait_until("the loan ending", || {
                pacer.shared.book().loans.iter().any(|l| l.ending)
            });
            assert!(!taking.is_finished(), "took back under a send in flight");
            sink.hold_sender.store(false, Ordering::Relaxed);
            let back = taking.join().unwrap();
            let sent = sink.frames.lock().unwrap().len();
            assert_eq!(sent as u64, back.sent[0] + back.sent[1]);
            assert!(back.by_standby >= 6, "{}", back.by_standby);
            std::thread::sleep(interval * 3);
            assert_eq!(
                sink.frames.lock().unwrap().len(),
                sent,
                "sent after take_back"
            );
        });
    }

    #[test]
    fn lease_length_is_the_adverts_of_a_minute_and_at_least_one() {
        assert_eq!(lease_adverts(Duration::from_secs(1)), 60);
        assert_eq!(lease_adverts(Duration::from_nanos(3_906_250)), 15360);
        assert_eq!(lease_adverts(Duration::from_secs(255)), 1);
    }
}
