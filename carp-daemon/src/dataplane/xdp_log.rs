//! The XDP program's decision records (carp-ebpf `log`): the switch carpd flips for
//! `carpctl debug xdp on|off`, the `carp_log` program the records are written by, and the
//! bridge from aya-log's records to tracing (target `carpd::xdp`) and `carpctl monitor`.
//!
//! Who reports what: the XDP program reports what it decides alone (adverts it drops: bad
//! length, TTL, checksum, version, own source, ring full; a VRRPv3 router's as `vrrp advert
//! dropped` with its VRID; a packet a VRRPv3 master without accept mode refuses, as `vrrp
//! packet dropped` with its destination; ARP and NS it answers or drops).
//! It cannot check the HMAC: an advert with a wrong passphrase passes it and is rejected by
//! carpd, which reports that itself (`advert rejected` at debug, and the monitor's
//! `rejected` event with the source and `badauth`).
//!
//! The rate limit is the program's (20 records per CPU and second, then one line saying how
//! many were suppressed), so the bridge passes every record on.
use aya::Ebpf;
use aya::maps::{Array, MapData, ProgramArray};
use aya::programs::Xdp;
use tokio::io::unix::AsyncFd;
use tracing::{info, warn};

use super::DataplaneError;
use crate::control::monitor::{MonitorEvent, MonitorHandle};

/// The program that writes the records, reached by tail call from `carp`.
const LOG_PROGRAM: &str = "carp_log";
const LOG_SWITCH: &str = "log_switch";
const LOG_PROGS: &str = "log_progs";

/// carpd's own decision records (adverts it rejects) per second at most, as the program's.
const CARPD_RECORDS_PER_SECOND: u32 = 20;

/// The switch and the program array (unpinned: every start begins with logging off).
pub struct XdpLog {
    switch: Array<MapData, u32>,
    /// Holds `carp_log` in slot 0 for as long as carpd runs.
    _progs: ProgramArray<MapData>,
    /// What the switch was set to (read per rejected advert: no syscall).
    on: bool,
    /// carpd's own records: the current one-second window, records in it, suppressed.
    window: (std::time::Instant, u32, u64),
}

impl XdpLog {
    /// Loads `carp_log` and puts it in `log_progs`; the switch starts off.
    pub fn load(ebpf: &mut Ebpf) -> Result<Self, DataplaneError> {
        let map = |ebpf: &mut Ebpf, name: &'static str| {
            ebpf.take_map(name).ok_or(DataplaneError::MissingMap(name))
        };
        let switch =
            Array::try_from(map(ebpf, LOG_SWITCH)?).map_err(|source| DataplaneError::Map {
                map: LOG_SWITCH,
                source,
            })?;
        let mut progs = ProgramArray::try_from(map(ebpf, LOG_PROGS)?).map_err(|source| {
            DataplaneError::Map {
                map: LOG_PROGS,
                source,
            }
        })?;
        let program: &mut Xdp = ebpf
            .program_mut(LOG_PROGRAM)
            .ok_or(DataplaneError::Program(
                aya::programs::ProgramError::NotLoaded,
            ))?
            .try_into()?;
        program.load()?;
        progs
            .set(0, program.fd()?, 0)
            .map_err(|source| DataplaneError::Map {
                map: LOG_PROGS,
                source,
            })?;
        let mut log = Self {
            switch,
            _progs: progs,
            on: false,
            window: (std::time::Instant::now(), 0, 0),
        };
        // A program array slot or switch left by nobody: start off, whatever the map held.
        log.set(false)?;
        Ok(log)
    }

    /// `carpctl debug xdp on|off`.
    pub fn set(&mut self, on: bool) -> Result<(), DataplaneError> {
        self.switch
            .set(0, u32::from(on), 0)
            .map_err(|source| DataplaneError::Map {
                map: LOG_SWITCH,
                source,
            })?;
        self.on = on;
        Ok(())
    }

    /// Whether the records are on.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Whether carpd may write one of its own decision records now: the switch is on and
    /// this second's budget has room (the program's limit, applied to carpd's side). The
    /// first record of a window after suppressed ones says how many.
    pub fn carpd_record_due(&mut self) -> bool {
        if !self.on {
            return false;
        }
        let now = std::time::Instant::now();
        let (start, used, suppressed) = &mut self.window;
        if now.duration_since(*start) >= std::time::Duration::from_secs(1) {
            if *suppressed > 0 {
                warn!(target: "carpd::xdp", suppressed = *suppressed, "carpd's decision records suppressed by the rate limit ({CARPD_RECORDS_PER_SECOND} per second)");
            }
            *start = now;
            *used = 0;
            *suppressed = 0;
        }
        if *used >= CARPD_RECORDS_PER_SECOND {
            *suppressed += 1;
            return false;
        }
        *used += 1;
        true
    }
}

/// aya-log's records into tracing and the monitor.
pub struct Bridge {
    monitor: MonitorHandle,
}

impl Bridge {
    pub fn new(monitor: MonitorHandle) -> Self {
        Self { monitor }
    }
}

impl log::Log for Bridge {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        // The program pads its last word to a fixed width.
        let message = name_carpdev(record.args().to_string().trim_end());
        match record.level() {
            log::Level::Error | log::Level::Warn => warn!(target: "carpd::xdp", "{message}"),
            _ => info!(target: "carpd::xdp", "{message}"),
        }
        self.monitor.publish(MonitorEvent::Dataplane { message });
    }

    fn flush(&self) {}
}

/// `ifindex=N` (what the program knows) as `carpdev=NAME` (what the operator knows);
/// left as it is when no interface has that index any more.
pub fn name_carpdev(message: &str) -> String {
    let Some(at) = message.find("ifindex=") else {
        return message.to_owned();
    };
    let digits = &message[at + "ifindex=".len()..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let Some(name) = digits[..end]
        .parse::<u32>()
        .ok()
        .and_then(|index| nix::net::if_::if_indextoname(index).ok())
        .filter(|name| !name.is_empty())
    else {
        return message.to_owned();
    };
    format!(
        "{}carpdev={}{}",
        &message[..at],
        name.to_string_lossy(),
        &digits[end..]
    )
}

/// Passes the program's records on as they arrive, until carpd stops (the task is
/// dropped with the runtime).
pub async fn pump(logger: aya_log::EbpfLogger<Bridge>) {
    // SAFETY: the logger owns the ring's map fd for as long as the AsyncFd owns the logger,
    // and as_raw_fd always returns that same fd.
    let registered =
        unsafe { AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE) };
    let mut logger = match registered.map_err(std::io::Error::from) {
        Ok(logger) => logger,
        Err(err) => {
            warn!(error = %err, "polling the XDP log ring: XDP decision records are lost");
            return;
        }
    };
    loop {
        let Ok(mut ready) = logger.readable_mut().await else {
            return;
        };
        ready.get_inner_mut().flush();
        ready.clear_ready();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_carpdev_of_an_index() {
        // Index 1 is the loopback device in every network namespace.
        assert_eq!(
            name_carpdev("advert dropped: src=192.0.2.9 vhid=1 ifindex=1 reason=bad_ttl"),
            "advert dropped: src=192.0.2.9 vhid=1 carpdev=lo reason=bad_ttl"
        );
        assert_eq!(
            name_carpdev("arp dropped: target=192.0.2.1 ifindex=1 by=BACKUP"),
            "arp dropped: target=192.0.2.1 carpdev=lo by=BACKUP"
        );
        assert_eq!(name_carpdev("no index here"), "no index here");
        assert_eq!(
            name_carpdev("ifindex=4000000000 gone"),
            "ifindex=4000000000 gone"
        );
    }
}
