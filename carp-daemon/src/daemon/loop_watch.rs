//! Whether the event loop still runs, as the advert pacer sees it.
//!
//! The pacer sends a steady master's adverts on a thread of its own (see `pacer`), so a
//! master whose event loop no longer runs would go on advertising: a backup would never
//! take over, and nothing on this host would answer a change (a demotion, a link event,
//! carpctl). The pacer reads this watch before each advert and sends nothing while the loop
//! is hung; the dataplane's deadline then runs out as if the loop had stopped sending
//! itself. Two ways a loop stops, each seen after [`HANG_LIMIT`]:
//!
//! - The loop took an event and its handler does not return (a system call that blocks, an
//!   await that never ends): the loop says when it took the event ([`LoopWatch::busy`]) and
//!   when it waits for the next ([`LoopWatch::waiting`]).
//! - Another task of the loop's runtime (one thread: the control server, the metrics
//!   endpoint, the XDP record pump) keeps the thread and never yields, so the loop is never
//!   polled. The runtime tells when its thread wakes from its idle wait and when it goes
//!   back to it ([`LoopWatch::thread_woke`], [`LoopWatch::thread_idles`]). A thread awake
//!   for a while while the loop has not run may still be a loop with nothing to do and
//!   another task busy with honest work (a stream of carpctl requests): the pacer then asks
//!   the loop to show that it runs ([`LoopWatch::poked`]) and takes it as hung only if it
//!   does not within [`HANG_LIMIT`].
//!
//! The watch costs the loop no wake-up while its thread sleeps or the loop runs; a poke
//! happens only while the thread has been awake for [`HANG_LIMIT`] without the loop.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

// carpd's clock (CLOCK_MONOTONIC), the pacer's.
use super::now as clock;

/// A loop that has not come back for this long is taken as hung: the pacer sends nothing
/// until it does.
pub const HANG_LIMIT: Duration = Duration::from_secs(1);

/// What the event loop and its runtime tell of their progress (times in CLOCK_MONOTONIC
/// nanoseconds, 0 for none); the pacer asks [`LoopWatch::hung`] before each advert.
#[derive(Clone, Debug, Default)]
pub struct LoopWatch(Arc<Progress>);

#[derive(Debug, Default)]
struct Progress {
    /// When the loop took the event it handles now; 0 while it waits for events.
    handling_since: AtomicU64,
    /// When the loop last ran: took an event, or went back to wait for one.
    loop_ran_at: AtomicU64,
    /// When the runtime's thread woke from its idle wait; 0 while it waits.
    thread_awake_since: AtomicU64,
    /// When the pacer last asked the loop to show that it runs.
    poked_at: AtomicU64,
    poke: Notify,
}

/// The event loop's tokio runtime: one thread, whose wake-ups and idle waits `watch` is told
/// of.
pub fn runtime(watch: &LoopWatch) -> std::io::Result<tokio::runtime::Runtime> {
    let (woke, idles) = (watch.clone(), watch.clone());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_unpark(move || woke.thread_woke())
        .on_thread_park(move || idles.thread_idles())
        .build()
}

fn nanos(t: Duration) -> u64 {
    t.as_nanos() as u64
}

impl LoopWatch {
    /// The loop waits for the next event.
    pub fn waiting(&self) {
        self.waiting_at(clock());
    }

    /// The loop took an event and handles it.
    pub fn busy(&self) {
        self.busy_at(clock());
    }

    /// The runtime's thread woke from its idle wait (tokio's `on_thread_unpark`).
    pub fn thread_woke(&self) {
        self.thread_woke_at(clock());
    }

    /// The runtime's thread goes back to its idle wait (tokio's `on_thread_park`).
    pub fn thread_idles(&self) {
        self.0.thread_awake_since.store(0, Ordering::Relaxed);
    }

    /// Completes when the pacer asks the loop to show that it runs: the loop selects on it
    /// and does nothing else for it (going round is the answer).
    pub async fn poked(&self) {
        self.0.poke.notified().await;
    }

    /// Whether the loop is hung at `now`: busy with one event for [`HANG_LIMIT`], or not
    /// run since a poke [`HANG_LIMIT`] ago. Pokes the loop when its thread has been awake
    /// for [`HANG_LIMIT`] without it.
    pub fn hung(&self, now: Duration) -> bool {
        let p = &*self.0;
        let since = |t: u64| now.saturating_sub(Duration::from_nanos(t));
        let handling = p.handling_since.load(Ordering::Relaxed);
        if handling != 0 && since(handling) >= HANG_LIMIT {
            return true;
        }
        let awake = p.thread_awake_since.load(Ordering::Relaxed);
        let ran = p.loop_ran_at.load(Ordering::Relaxed);
        if awake == 0 || since(awake) < HANG_LIMIT || since(ran) < HANG_LIMIT {
            return false;
        }
        let poked = p.poked_at.load(Ordering::Relaxed);
        if poked <= ran {
            // Not asked since the loop last ran: ask now, judge at a later advert.
            p.poked_at.store(nanos(now).max(1), Ordering::Relaxed);
            p.poke.notify_one();
            return false;
        }
        since(poked) >= HANG_LIMIT
    }

    pub(super) fn waiting_at(&self, now: Duration) {
        self.0.handling_since.store(0, Ordering::Relaxed);
        self.0.loop_ran_at.store(nanos(now), Ordering::Relaxed);
    }

    pub(super) fn busy_at(&self, now: Duration) {
        self.0.handling_since.store(nanos(now), Ordering::Relaxed);
        self.0.loop_ran_at.store(nanos(now), Ordering::Relaxed);
    }

    pub(super) fn thread_woke_at(&self, now: Duration) {
        self.0
            .thread_awake_since
            .store(nanos(now), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(1000);
    const L: Duration = HANG_LIMIT;

    #[test]
    fn a_loop_busy_with_one_event_past_the_limit_is_hung_until_it_waits_again() {
        let watch = LoopWatch::default();
        watch.busy_at(T);
        assert!(!watch.hung(T + L / 2));
        assert!(watch.hung(T + L));
        watch.waiting_at(T + L);
        assert!(!watch.hung(T + 2 * L));
    }

    #[test]
    fn an_idle_thread_is_never_hung_however_long_the_loop_waits() {
        let watch = LoopWatch::default();
        watch.waiting_at(T);
        watch.thread_woke_at(T);
        watch.thread_idles();
        assert!(!watch.hung(T + 100 * L));
    }

    #[test]
    fn a_thread_kept_awake_without_the_loop_is_poked_then_hung_if_the_loop_does_not_answer() {
        let watch = LoopWatch::default();
        watch.waiting_at(T);
        watch.thread_woke_at(T);
        // Awake, and the loop ran, within the limit: nothing to ask.
        assert!(!watch.hung(T + L / 2));
        // Awake for the limit without the loop: poked, not yet hung.
        assert!(!watch.hung(T + L));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(1), watch.poked())
                .await
                .expect("the poke reaches the loop")
        });
        // No answer within the limit after the poke: hung from then on.
        assert!(!watch.hung(T + L + L / 2));
        assert!(watch.hung(T + 2 * L));
        assert!(watch.hung(T + 3 * L));
    }

    #[test]
    fn the_runtime_tells_when_a_task_keeps_its_thread() {
        let watch = LoopWatch::default();
        let rt = runtime(&watch).unwrap();
        let judge = watch.clone();
        let verdicts = std::thread::spawn(move || {
            // Asked as the pacer asks before its adverts, while the task below blocks.
            let mut verdicts = Vec::new();
            for _ in 0..5 {
                std::thread::sleep(HANG_LIMIT / 2);
                verdicts.push(judge.hung(clock()));
            }
            verdicts
        });
        let w = watch.clone();
        rt.block_on(async move {
            w.waiting();
            // Idle once, so the thread wakes for what follows.
            tokio::time::sleep(Duration::from_millis(10)).await;
            // A task that keeps the thread without yielding: the loop cannot run.
            std::thread::sleep(3 * HANG_LIMIT);
        });
        let verdicts = verdicts.join().unwrap();
        // Not hung before the limit; hung once a poke has gone unanswered for the limit.
        assert!(!verdicts[0], "{verdicts:?}");
        assert!(verdicts[4], "{verdicts:?}");
        // While the runtime idles: not hung, however long it waits.
        let judge = watch.clone();
        let idle = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            judge.hung(clock() + 10 * HANG_LIMIT)
        });
        rt.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await });
        assert!(!idle.join().unwrap(), "hung while the runtime idled");
    }

    #[test]
    fn a_loop_that_answers_the_poke_is_not_hung() {
        let watch = LoopWatch::default();
        watch.waiting_at(T);
        watch.thread_woke_at(T);
        assert!(!watch.hung(T + L));
        // The loop went round: judged from that run, not from the poke.
        watch.waiting_at(T + L + L / 4);
        assert!(!watch.hung(T + 2 * L));
        // The thread still awake and the loop quiet for another limit: asked again first.
        assert!(!watch.hung(T + 2 * L + L / 4));
        assert!(!watch.hung(T + 3 * L + L / 4 - Duration::from_nanos(1)));
        assert!(watch.hung(T + 3 * L + L / 4));
    }
}
