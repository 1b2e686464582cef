//! Raw Ethernet traffic for the bench: the client's 1 ms ARP probe and the floods.
//!
//! Both send on a [`RawSocket`] (the lab's `AF_PACKET` socket, opened inside a lab namespace
//! with `PACKET_QDISC_BYPASS`, so frames go straight to the veth's transmit routine).
//! The flood sends with `sendmmsg` in batches of [`BATCH`]: on a veth that is the fastest
//! generator the kernel offers without another program (AF_XDP on veth runs in copy mode and
//! BPF_PROG_TEST_RUN's live frames need an XDP program of their own), and its rate is printed
//! next to every figure measured with it.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use carp_tests::{Host, RawSocket};

use super::Background;

/// Frames per `sendmmsg` call.
pub const BATCH: usize = 64;

/// A thread sending `frame` every `period` on `socket` until dropped (the client's ARP
/// probe), on absolute deadlines so a late wake-up does not shift the schedule; notes in
/// `sent` when each frame left (seconds since the epoch, the captures' clock).
pub fn ticker(
    socket: RawSocket,
    frame: Vec<u8>,
    period: Duration,
    sent: Arc<Mutex<Vec<f64>>>,
) -> Background {
    Background::spawn(move |stop| {
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            // A dropped probe frame is a missing reply, which is what the capture measures.
            if socket.try_send(&frame).is_ok() {
                sent.lock().expect("not poisoned").push(super::unix_now());
            }
            next += period;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else {
                // More than a period late: start a fresh schedule instead of bursting.
                next = now;
            }
        }
    })
}

/// Floods from `host` with one sending thread per core (each with its own socket), so the
/// generator and the kernel work it causes (which runs in the sender's context on a veth)
/// use the whole machine; returns the number of frames sent.
pub fn flood_all_cores(
    host: &Host,
    frames: &[Vec<u8>],
    duration: Duration,
    interrupted: &AtomicBool,
) -> Result<u64> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sockets = (0..threads)
        .map(|_| RawSocket::open(host).map_err(anyhow::Error::from))
        .collect::<Result<Vec<_>>>()?;
    std::thread::scope(|scope| {
        let handles: Vec<_> = sockets
            .iter()
            .map(|socket| scope.spawn(move || flood(socket, frames, duration, interrupted)))
            .collect();
        handles.into_iter().try_fold(0u64, |total, h| {
            let sent = h
                .join()
                .map_err(|_| anyhow::anyhow!("a flood thread panicked"))??;
            Ok(total + sent)
        })
    })
}

/// Sends `frames` round-robin as fast as the socket takes them for `duration` (or until
/// `interrupted` turns true); returns the number of frames sent.
pub fn flood(
    socket: &RawSocket,
    frames: &[Vec<u8>],
    duration: Duration,
    interrupted: &AtomicBool,
) -> Result<u64> {
    let batch: Vec<&[u8]> = frames
        .iter()
        .map(Vec::as_slice)
        .cycle()
        .take(BATCH)
        .collect();
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < duration && !interrupted.load(Ordering::Relaxed) {
        sent += socket.send_batch(&batch).context("sendmmsg")? as u64;
    }
    Ok(sent)
}
