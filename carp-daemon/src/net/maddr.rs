//! A link-layer multicast address in a carpdev's receive filter (`ip maddr add`), for the
//! carp MAC of a balanced interface in `ip` mode (01:00:5e:00:01:<vhid>).
//!
//! That MAC cannot be the macvlan's own address (a multicast address is no unicast filter
//! entry), so without this a NIC that filters multicast would drop every frame for it
//! before XDP sees one. `SIOCADDMULTI` adds a "global" entry (`dev_mc_add_global`), which
//! `ip maddr` lists and which lives until `SIOCDELMULTI` or the device's end; adding it twice
//! is one entry.
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Adds `mac` to the receive filter of `dev` (in this network namespace).
pub fn add(dev: &str, mac: [u8; 6]) -> io::Result<()> {
    multi_ioctl(dev, mac, libc::SIOCADDMULTI)
}

/// Removes `mac` from the receive filter of `dev`.
pub fn remove(dev: &str, mac: [u8; 6]) -> io::Result<()> {
    multi_ioctl(dev, mac, libc::SIOCDELMULTI)
}

fn multi_ioctl(dev: &str, mac: [u8; 6], request: libc::Ioctl) -> io::Result<()> {
    if dev.is_empty() || dev.len() >= libc::IFNAMSIZ || dev.contains('\0') {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: plain syscall; the descriptor is owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; all zeros is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(dev.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: writing the hwaddr member of the union, which these requests read.
    unsafe {
        ifr.ifr_ifru.ifru_hwaddr.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
        for (dst, src) in ifr.ifr_ifru.ifru_hwaddr.sa_data.iter_mut().zip(mac) {
            *dst = src as libc::c_char;
        }
    }
    // SAFETY: `ifr` is a valid ifreq for the duration of the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request, &mut ifr) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
