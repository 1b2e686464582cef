//! keepalived (Debian 2.2.7, `vrrp_version 3`) in a lab host, for the VRRP interop tests:
//! its own configuration and pid files in a private directory, its state read from its log,
//! stopped by PID (SIGTERM, which makes its master send priority 0; its VRRP child exits
//! with it).
use std::path::PathBuf;
use std::time::Duration;

use carp_tests::{Host, Lab, LabProcess, Signal, wait_until};

/// One `vrrp_instance`.
#[derive(Clone, Debug)]
pub struct Instance {
    pub name: &'static str,
    pub vrid: u8,
    pub priority: u8,
    /// Centiseconds.
    pub advert_int_cs: u16,
    /// `ADDR/LEN` each; an IPv6 instance starts with its link-local address.
    pub vips: Vec<String>,
    pub preempt: bool,
}

pub struct Keepalived {
    pub process: LabProcess,
    dir: PathBuf,
    instance: &'static str,
}

impl Keepalived {
    /// Starts keepalived in `host` with one instance; `tag` names its private directory.
    pub fn start(lab: &Lab, host: &Host, tag: &str, i: &Instance) -> Keepalived {
        let dir = lab
            .workdir()
            .join(format!("{}-keepalived-{tag}", host.name()));
        std::fs::create_dir_all(&dir).unwrap();
        let vips: String = i.vips.iter().map(|v| format!("        {v}\n")).collect();
        let nopreempt = if i.preempt { "" } else { "    nopreempt\n" };
        let conf = format!(
            "global_defs {{\n    router_id {}\n    vrrp_version 3\n}}\n\
             vrrp_instance {} {{\n    state BACKUP\n    interface {}\n    \
             virtual_router_id {}\n    priority {}\n    advert_int {}\n{nopreempt}    \
             virtual_ipaddress {{\n{vips}    }}\n}}\n",
            host.name(),
            i.name,
            host.ifname(),
            i.vrid,
            i.priority,
            f64::from(i.advert_int_cs) / 100.0,
        );
        let process =
            carp_tests::peers::spawn_keepalived(host, &dir, &conf).expect("spawn keepalived");
        Keepalived {
            process,
            dir,
            instance: i.name,
        }
    }

    /// The state keepalived logged last for the instance.
    pub fn state(&self) -> Option<String> {
        let needle = format!("({}) Entering ", self.instance);
        let log = self.process.log();
        let at = log.rfind(&needle)? + needle.len();
        log[at..].split_whitespace().next().map(str::to_owned)
    }

    /// Waits for `want`; how long it took.
    pub fn wait_state(&self, want: &str, timeout: Duration) -> Duration {
        wait_until(timeout, || self.state().as_deref() == Some(want)).unwrap_or_else(|_| {
            panic!(
                "keepalived is not {want} (state {:?}); log:\n{}",
                self.state(),
                self.process.log()
            )
        })
    }

    /// A clean stop: SIGTERM, and wait for the exit.
    pub fn stop(&self) {
        self.process
            .terminate(Duration::from_secs(10))
            .expect("stop keepalived");
    }

    /// A crash: SIGKILL to keepalived and to its VRRP child (whose pid file it wrote), then
    /// the addresses it leaves behind are removed, as a supervisor would.
    pub fn kill(&self, host: &Host, vips: &[String]) {
        let child = std::fs::read_to_string(self.dir.join("vrrp.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        self.process
            .signal(Signal::SIGKILL)
            .expect("kill keepalived");
        if let Some(pid) = child {
            // Our own child's child, still alive (only its parent could reap it).
            // SAFETY: a plain kill(2) of a pid read from the pid file keepalived wrote.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = self.process.wait_timeout(Duration::from_secs(5));
        if let Some(pid) = child {
            // Re-parented to us (the lab is a subreaper) or to init: reap it if ours.
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = wait_until(Duration::from_secs(2), || {
                !matches!(
                    nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)),
                    Ok(nix::sys::wait::WaitStatus::StillAlive)
                )
            });
        }
        for vip in vips {
            let _ = host.run(["ip", "addr", "del", vip, "dev", host.ifname()]);
        }
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        let _ = self.process.terminate(Duration::from_secs(10));
    }
}
