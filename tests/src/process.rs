//! Child processes of a lab: one-shot commands with a deadline, and long-running processes
//! ([`LabProcess`]) that are killed and reaped by the lab at the latest.
//!
//! Every child is tracked through a pidfd (pidfd_open(2)), opened right after spawn while the
//! child cannot have been reaped yet. Signals go through pidfd_send_signal(2), so a signal can
//! never hit an unrelated process that reused the PID, and waiting is an event (poll on the
//! pidfd) rather than a sleep loop.
use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
pub use nix::sys::signal::Signal;

use crate::LabError;
use crate::netns::NetnsCommand;

/// What a finished one-shot command printed and how it exited.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    /// Exit status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// Runs `cmd` to completion, capturing stdout and stderr. The child is SIGKILLed when it is
/// still running after `timeout`, and the error carries what it had printed. A non-zero exit
/// is not an error here (a failing ping is a result); see [`run_ok`].
pub fn run(cmd: NetnsCommand, timeout: Duration) -> Result<CmdOutput, LabError> {
    let (mut cmd, netns, display) = cmd.into_parts();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| LabError::Spawn {
        cmd: display.clone(),
        netns: Some(netns.clone()),
        source,
    })?;
    let pidfd =
        PidFd::open(child.id()).map_err(|e| LabError::sys("pidfd_open", Some(&netns), e))?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    std::thread::scope(|scope| {
        let out = scope.spawn(|| read_all(stdout));
        let err = scope.spawn(|| read_all(stderr));
        let exited = pidfd.wait(Some(timeout)).unwrap_or(false);
        if !exited {
            let _ = pidfd.signal(Signal::SIGKILL);
        }
        let status = child
            .wait()
            .map_err(|e| LabError::sys("wait", Some(&netns), e))?;
        let (stdout, stderr) = (
            out.join().unwrap_or_default(),
            err.join().unwrap_or_default(),
        );
        if !exited {
            return Err(LabError::Timeout {
                what: format!(
                    "`{display}` in netns {netns} (stdout: {stdout:?}, stderr: {stderr:?})"
                ),
                after: timeout,
            });
        }
        Ok(CmdOutput {
            status,
            stdout,
            stderr,
        })
    })
}

/// [`run`], and a non-zero exit becomes [`LabError::Command`] with the stderr.
pub fn run_ok(cmd: NetnsCommand, timeout: Duration) -> Result<CmdOutput, LabError> {
    let (netns, display) = (cmd.netns().to_owned(), cmd.display().to_owned());
    let out = run(cmd, timeout)?;
    if !out.success() {
        return Err(LabError::Command {
            cmd: display,
            netns: Some(netns),
            status: out.status.to_string(),
            stderr: out.stderr,
        });
    }
    Ok(out)
}

fn read_all(pipe: Option<impl Read>) -> String {
    let mut buf = Vec::new();
    if let Some(mut pipe) = pipe {
        let _ = pipe.read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// A process handle that cannot be confused with a later process of the same PID.
#[derive(Debug)]
pub(crate) struct PidFd(OwnedFd);

impl PidFd {
    pub(crate) fn open(pid: u32) -> std::io::Result<PidFd> {
        // SAFETY: plain system call; the result is a new fd we own, or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a freshly opened descriptor owned by no one else.
        Ok(PidFd(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
    }

    pub(crate) fn signal(&self, signal: Signal) -> std::io::Result<()> {
        // SAFETY: plain system call on a descriptor we own; no siginfo passed.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                signal as libc::c_int,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits until the process has exited (the pidfd turns readable), at most `timeout`
    /// (`None`: forever). True if it has exited. The process is not reaped.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> std::io::Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let remaining = match deadline {
                None => PollTimeout::NONE,
                Some(d) => {
                    let ms = d.saturating_duration_since(Instant::now()).as_millis();
                    // Round up so a sub-millisecond remainder still waits instead of spinning.
                    PollTimeout::try_from(ms.saturating_add(1).min(i32::MAX as u128) as i32)
                        .unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, remaining) {
                Ok(0) if deadline.is_some_and(|d| Instant::now() >= d) => return Ok(false),
                Ok(0) => continue,
                Ok(_) => return Ok(true),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

enum Slot {
    Running {
        child: Child,
        pidfd: Arc<PidFd>,
        label: String,
    },
    Exited(ExitStatus),
}

/// The lab's processes, shared by the [`Lab`](crate::Lab) and every [`LabProcess`], so that
/// whichever is dropped first kills and reaps, and the other finds nothing left to do. Only
/// the holder of the lock may reap, so a PID is never signalled after it was reaped.
#[derive(Default)]
pub(crate) struct ProcTable {
    slots: Mutex<HashMap<u32, Slot>>,
}

impl ProcTable {
    fn lock(&self) -> MutexGuard<'_, HashMap<u32, Slot>> {
        // A panic while holding the lock leaves the map consistent; keep going so cleanup
        // still works during unwinding.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawns `cmd` and tracks it. `label` names it in messages; `log` is where its output
    /// goes, if the caller redirected it to a file.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        cmd: NetnsCommand,
        label: String,
        log: Option<PathBuf>,
    ) -> Result<LabProcess, LabError> {
        let (mut cmd, netns, display) = cmd.into_parts();
        let mut child = cmd.spawn().map_err(|source| LabError::Spawn {
            cmd: display.clone(),
            netns: Some(netns.clone()),
            source,
        })?;
        let pid = child.id();
        let pidfd = match PidFd::open(pid) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(LabError::sys("pidfd_open", Some(&netns), e));
            }
        };
        self.lock().insert(
            pid,
            Slot::Running {
                child,
                pidfd: Arc::new(pidfd),
                label: label.clone(),
            },
        );
        Ok(LabProcess {
            table: Arc::clone(self),
            pid,
            label,
            netns,
            log,
        })
    }

    /// SIGKILLs every running process and reaps it. Returns the labels of those that were
    /// still running, for the cleanup report.
    pub(crate) fn kill_all(&self) -> Vec<String> {
        let pids: Vec<u32> = self.lock().keys().copied().collect();
        pids.into_iter()
            .filter_map(|pid| match self.kill(pid) {
                Ok(Some(label)) => Some(label),
                _ => None,
            })
            .collect()
    }

    /// SIGKILLs and reaps one process. `Some(label)` if it was still running.
    fn kill(&self, pid: u32) -> Result<Option<String>, LabError> {
        let mut slots = self.lock();
        let Some(Slot::Running {
            child,
            pidfd,
            label,
        }) = slots.get_mut(&pid)
        else {
            return Ok(None);
        };
        let label = label.clone();
        let was_running = matches!(child.try_wait(), Ok(None));
        if was_running {
            let _ = pidfd.signal(Signal::SIGKILL);
        }
        // SIGKILL cannot be caught; the wait is short unless the process is stuck in the
        // kernel, and then there is nothing better to do than wait for it.
        let status = child
            .wait()
            .map_err(|e| LabError::sys(format!("wait for {label} (pid {pid})"), None, e))?;
        slots.insert(pid, Slot::Exited(status));
        Ok(was_running.then_some(label))
    }

    fn forget(&self, pid: u32) {
        self.lock().remove(&pid);
    }
}

/// A long-running process inside a lab namespace, e.g. carpd or tcpdump.
///
/// It is SIGKILLed and reaped when this handle is dropped, or when the lab is dropped,
/// whichever comes first. For a graceful stop call [`LabProcess::terminate`].
pub struct LabProcess {
    table: Arc<ProcTable>,
    pid: u32,
    label: String,
    netns: String,
    log: Option<PathBuf>,
}

impl std::fmt::Debug for LabProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (pid {}, netns {})", self.label, self.pid, self.netns)
    }
}

impl LabProcess {
    /// The process ID (valid until the process is reaped).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The name given in messages: host and program.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The namespace it runs in.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// The file that receives its stdout and stderr, if it was spawned with
    /// [`Host::spawn`](crate::Host::spawn).
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// Everything it has written to its log so far (empty without a log).
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Takes its stdout pipe, if the command was set up with `Stdio::piped()`.
    pub fn take_stdout(&self) -> Option<ChildStdout> {
        match self.table.lock().get_mut(&self.pid) {
            Some(Slot::Running { child, .. }) => child.stdout.take(),
            _ => None,
        }
    }

    /// Takes its stderr pipe, if the command was set up with `Stdio::piped()`.
    pub fn take_stderr(&self) -> Option<ChildStderr> {
        match self.table.lock().get_mut(&self.pid) {
            Some(Slot::Running { child, .. }) => child.stderr.take(),
            _ => None,
        }
    }

    /// Sends `signal` (SIGTERM, SIGHUP, SIGSTOP, ...). Fails once the process has been
    /// reaped; a process that exited but was not reaped yet takes the signal harmlessly.
    pub fn signal(&self, signal: Signal) -> Result<(), LabError> {
        let what = || format!("send {signal} to {self:?}");
        let pidfd = self.pidfd().ok_or_else(|| {
            LabError::sys(
                what(),
                Some(&self.netns),
                std::io::Error::from_raw_os_error(libc::ESRCH),
            )
        })?;
        pidfd
            .signal(signal)
            .map_err(|e| LabError::sys(what(), Some(&self.netns), e))
    }

    /// The exit status if it has exited (reaping it), `None` while it runs.
    pub fn try_wait(&self) -> Result<Option<ExitStatus>, LabError> {
        let mut slots = self.table.lock();
        match slots.get_mut(&self.pid) {
            Some(Slot::Running { child, .. }) => {
                let status = child
                    .try_wait()
                    .map_err(|e| LabError::sys(format!("wait for {self:?}"), None, e))?;
                if let Some(status) = status {
                    slots.insert(self.pid, Slot::Exited(status));
                }
                Ok(status)
            }
            Some(Slot::Exited(status)) => Ok(Some(*status)),
            None => Err(LabError::sys(
                format!("wait for {self:?}"),
                None,
                std::io::Error::from_raw_os_error(libc::ECHILD),
            )),
        }
    }

    /// True while it has not exited.
    pub fn is_running(&self) -> bool {
        matches!(self.try_wait(), Ok(None))
    }

    /// Waits for it to exit, at most `timeout`; `None` if it is still running then.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Option<ExitStatus>, LabError> {
        if let Some(pidfd) = self.pidfd() {
            // Poll without holding the table lock, so other handles stay usable.
            pidfd
                .wait(Some(timeout))
                .map_err(|e| LabError::sys(format!("wait for {self:?}"), None, e))?;
        }
        self.try_wait()
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace`. Returns the exit status.
    pub fn terminate(&self, grace: Duration) -> Result<ExitStatus, LabError> {
        if self.pidfd().is_some() {
            let _ = self.signal(Signal::SIGTERM);
            if let Some(status) = self.wait_timeout(grace)? {
                return Ok(status);
            }
        }
        self.kill()
    }

    /// SIGKILL and reap. Returns the exit status (also if it had exited already).
    pub fn kill(&self) -> Result<ExitStatus, LabError> {
        self.table.kill(self.pid)?;
        self.try_wait()?.ok_or_else(|| {
            LabError::sys(
                format!("reap {self:?}"),
                None,
                std::io::Error::from_raw_os_error(libc::ECHILD),
            )
        })
    }

    fn pidfd(&self) -> Option<Arc<PidFd>> {
        match self.table.lock().get(&self.pid) {
            Some(Slot::Running { pidfd, .. }) => Some(Arc::clone(pidfd)),
            _ => None,
        }
    }
}

impl Drop for LabProcess {
    fn drop(&mut self) {
        if let Err(e) = self.table.kill(self.pid) {
            eprintln!("lab cleanup: {e}");
        }
        self.table.forget(self.pid);
    }
}
