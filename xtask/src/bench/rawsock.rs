//! Raw Ethernet traffic for the bench: the client's 1 ms ARP probe and the floods.
//!
//! Both use an `AF_PACKET` socket opened inside a lab namespace (a socket stays bound to the
//! interface of the namespace it was made in, so the sending thread itself need not be in
//! there), with `PACKET_QDISC_BYPASS` so frames go straight to the veth's transmit routine.
//! The flood sends with `sendmmsg` in batches of [`BATCH`]: on a veth that is the fastest
//! generator the kernel offers without another program (AF_XDP on veth runs in copy mode and
//! BPF_PROG_TEST_RUN's live frames need an XDP program of their own), and its rate is printed
//! next to every figure measured with it.
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use carp_tests::Host;

use super::Background;

/// Frames per `sendmmsg` call.
pub const BATCH: usize = 64;

/// A packet socket bound to a host's LAN port, for sending only.
pub struct RawSocket {
    fd: OwnedFd,
}

impl RawSocket {
    /// Opens the socket inside `host`'s namespace, bound to its `eth0`.
    pub fn open(host: &Host) -> Result<RawSocket> {
        let ifindex = host.ifindex();
        let fd = host
            .in_netns(move || open_packet_socket(ifindex))
            .context("entering the namespace")?
            .with_context(|| format!("AF_PACKET socket on {} of {}", host.ifname(), host.name()))?;
        Ok(RawSocket { fd })
    }

    /// Sends one frame.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: the buffer is valid for its length; the socket is bound, so no address is needed.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sends `frames` (cycled) in one `sendmmsg` call; returns how many went out. A full
    /// transmit queue (ENOBUFS/EAGAIN) counts as zero sent, not as an error: the caller retries.
    pub fn send_batch(&self, frames: &[&[u8]]) -> io::Result<usize> {
        let mut iovecs: Vec<libc::iovec> = frames
            .iter()
            .map(|f| libc::iovec {
                iov_base: f.as_ptr() as *mut libc::c_void,
                iov_len: f.len(),
            })
            .collect();
        // SAFETY: an all-zero mmsghdr is valid (no name, no control data).
        let mut msgs: Vec<libc::mmsghdr> = iovecs
            .iter_mut()
            .map(|iov| {
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_iov = iov;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        // SAFETY: msgs and the iovecs they point to outlive the call.
        let n = unsafe {
            libc::sendmmsg(
                self.fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                msgs.len() as libc::c_uint,
                0,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::ENOBUFS) | Some(libc::EAGAIN) => Ok(0),
                _ => Err(err),
            };
        }
        Ok(n as usize)
    }
}

fn open_packet_socket(ifindex: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned at once.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            0, // protocol 0: this socket receives nothing
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let one: libc::c_int = 1;
    // SAFETY: option value is a c_int of the right size.
    let rc = unsafe {
        libc::setsockopt(
            raw,
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: an all-zero sockaddr_ll is valid; the fields set below make it a bind address.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_ifindex = ifindex as i32;
    addr.sll_protocol = 0;
    // SAFETY: addr is a sockaddr_ll of the size given.
    let rc = unsafe {
        libc::bind(
            raw,
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// A thread sending `frame` every `period` on `socket` until dropped (the client's ARP
/// probe), on absolute deadlines so a late wake-up does not shift the schedule.
pub fn ticker(socket: RawSocket, frame: Vec<u8>, period: Duration) -> Background {
    Background::spawn(move |stop| {
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            // A dropped probe frame is a missing reply, which is what the capture measures.
            let _ = socket.send(&frame);
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
        .map(|_| RawSocket::open(host))
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
