//! systemd's notify protocol (sd_notify(3)) without libsystemd: datagrams to the socket named
//! by `NOTIFY_SOCKET`. carpd sends `READY=1` once the dataplane is attached and elections run,
//! `WATCHDOG=1` at half the `WATCHDOG_USEC` period, and `STOPPING=1` on shutdown. Without
//! `NOTIFY_SOCKET` (not started by systemd) every call does nothing.
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// A connection to the service manager, if there is one.
pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC`/`WATCHDOG_PID` from the environment.
    pub fn from_env() -> std::io::Result<Self> {
        let socket = match std::env::var_os("NOTIFY_SOCKET") {
            Some(path) => {
                let path = path.to_string_lossy().into_owned();
                let addr = if let Some(name) = path.strip_prefix('@') {
                    SocketAddr::from_abstract_name(name.as_bytes())?
                } else {
                    SocketAddr::from_pathname(&path)?
                };
                Some((UnixDatagram::unbound()?, addr))
            }
            None => None,
        };
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|pid| pid == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|u| *u > 0 && for_us)
            .map(Duration::from_micros);
        Ok(Self { socket, watchdog })
    }

    /// How often to send `WATCHDOG=1`: half the period systemd enforces.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    fn send(&self, message: &str) {
        if let Some((socket, addr)) = &self.socket
            && let Err(err) = socket.send_to_addr(message.as_bytes(), addr)
        {
            tracing::warn!(error = %err, "sd_notify failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_datagrams_to_the_notify_socket() {
        let dir = std::env::temp_dir().join(format!("carpd-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            socket: Some((
                UnixDatagram::unbound().unwrap(),
                SocketAddr::from_pathname(&path).unwrap(),
            )),
            watchdog: Some(Duration::from_secs(10)),
        };
        n.ready("running");
        n.watchdog();
        let mut buf = [0u8; 256];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=running");
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(5)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_systemd_nothing_happens() {
        let n = Notifier {
            socket: None,
            watchdog: None,
        };
        n.ready("x");
        assert_eq!(n.watchdog_interval(), None);
    }
}
