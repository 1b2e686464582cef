//! The peer daemons run beside carpd in a lab, started the one way the e2e tests and the
//! bench both need.
use std::ffi::OsStr;
use std::path::Path;

use crate::{Host, LabError, LabProcess};

/// Starts keepalived in `host` with `conf` (written to `dir/keepalived.conf`), in the
/// foreground, logging to its console (the process's log), VRRP only, its pid files in `dir`.
pub fn spawn_keepalived(host: &Host, dir: &Path, conf: &str) -> Result<LabProcess, LabError> {
    let file = dir.join("keepalived.conf");
    std::fs::write(&file, conf).map_err(|e| LabError::io("writing", &file, e))?;
    let pid = dir.join("keepalived.pid");
    let vrrp_pid = dir.join("vrrp.pid");
    // Left behind by a killed instance; keepalived would refuse to start while the pid in
    // them still names a process.
    let _ = std::fs::remove_file(&pid);
    let _ = std::fs::remove_file(&vrrp_pid);
    host.spawn([
        "keepalived".as_ref(),
        "--dont-fork".as_ref(),
        "--log-console".as_ref(),
        "--log-detail".as_ref(),
        "--no-syslog".as_ref(),
        "--vrrp".as_ref(),
        "--use-file".as_ref(),
        file.as_os_str(),
        "--pid".as_ref(),
        pid.as_os_str(),
        "--vrrp_pid".as_ref(),
        vrrp_pid.as_os_str(),
    ] as [&OsStr; 12])
}
