//! Raw Ethernet frames out of a lab host's port: the one `AF_PACKET` sender of the tests and
//! the bench (carpd's own packet socket, in carp-daemon's send/, is the product's).
//!
//! The socket is opened inside the host's namespace and bound to its `eth0`; a socket stays
//! bound to the interface of the namespace it was made in, so the sending thread itself need
//! not be in there. `PACKET_QDISC_BYPASS` hands frames straight to the veth's transmit
//! routine (the lab's veths have no queueing discipline to skip anyway: `noqueue`). Protocol
//! 0: the socket receives nothing.
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::LabError;
use crate::lab::Host;

/// A packet socket bound to a host's LAN port, for sending only.
#[derive(Debug)]
pub struct RawSocket {
    fd: OwnedFd,
}

impl RawSocket {
    /// Opens the socket inside `host`'s namespace, bound to its `eth0`.
    pub fn open(host: &Host) -> Result<RawSocket, LabError> {
        let ifindex = host.ifindex();
        let fd = host
            .in_netns(move || open_packet_socket(ifindex))?
            .map_err(|e| {
                LabError::sys(
                    format!("AF_PACKET socket on {} of {}", host.ifname(), host.name()),
                    Some(host.netns()),
                    e,
                )
            })?;
        Ok(RawSocket { fd })
    }

    /// Sends one frame, waiting for room in the transmit path if there is none.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.send_flags(frame, 0)
    }

    /// Sends one frame if the transmit path takes it now (`MSG_DONTWAIT`).
    pub fn try_send(&self, frame: &[u8]) -> io::Result<()> {
        self.send_flags(frame, libc::MSG_DONTWAIT)
    }

    fn send_flags(&self, frame: &[u8], flags: libc::c_int) -> io::Result<()> {
        // SAFETY: the buffer is valid for its length; the socket is bound, so no address is needed.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                flags,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sends `frames` in one `sendmmsg` call; returns how many went out. A full transmit
    /// queue (ENOBUFS/EAGAIN) counts as zero sent, not as an error: the caller retries.
    pub fn send_batch(&self, frames: &[&[u8]]) -> io::Result<usize> {
        let mut iovecs: Vec<libc::iovec> = frames
            .iter()
            .map(|f| libc::iovec {
                iov_base: f.as_ptr() as *mut libc::c_void,
                iov_len: f.len(),
            })
            .collect();
        let mut msgs: Vec<libc::mmsghdr> = iovecs
            .iter_mut()
            .map(|iov| {
                // SAFETY: an all-zero mmsghdr is valid (no name, no control data).
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
