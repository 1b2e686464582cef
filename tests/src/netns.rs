//! Named network namespaces: create, delete, and enter them to run commands or code.
//!
//! Namespaces are created with `ip netns add`, so they are visible to `ip netns list` and to
//! people debugging a stuck test. Commands are *not* run through `ip netns exec`, though:
//! that also unshares the mount namespace and remounts /sys, which hides the bpffs at
//! /sys/fs/bpf, where carpd pins its maps. Instead the child calls setns(2) for the network
//! namespace only, between fork and exec (what `nsenter --net` does). The one visible
//! difference: /sys/class/net inside such a command still shows the root namespace's
//! interfaces; use `ip` (netlink) to look at the namespace's links.
//!
//! A lab owns its namespaces; a test that needs one bare namespace and no lab (carp-daemon's
//! unit tests of netlink, sysctl and ethtool code, which work on "the namespace of the
//! calling thread") takes an [`OwnedNetns`], named and swept like a lab's.
use std::ffi::{CString, OsStr};
use std::fmt;
use std::fs::File;
use std::ops::{Deref, DerefMut};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use nix::sched::CloneFlags;

use crate::LabError;
use crate::cleanup;

/// Where iproute2 keeps the bind mounts that give namespaces their names.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// `ip netns add`/`del` mount and unmount under /run/netns; iproute2 sets that directory up
/// on first use, and concurrent first uses race. One lock per process is enough for the
/// parallel tests of one test binary.
static NETNS_LOCK: Mutex<()> = Mutex::new(());

/// A named network namespace. Dropping the handle does *not* delete the namespace: the
/// [`Lab`](crate::Lab) owns deletion, so that cleanup happens in one place and in order.
#[derive(Debug, Clone)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace with `ip netns add NAME`.
    pub(crate) fn create(name: &str) -> Result<Netns, LabError> {
        let _guard = NETNS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        run_root_ok(&["ip", "netns", "add", name])?;
        Ok(Netns {
            name: name.to_owned(),
        })
    }

    /// A handle for an existing namespace (e.g. one found by the stale sweep).
    pub(crate) fn existing(name: &str) -> Netns {
        Netns {
            name: name.to_owned(),
        }
    }

    /// The namespace's name, as `ip netns list` shows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace file under /run/netns.
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_RUN_DIR).join(&self.name)
    }

    /// Whether the namespace is still named (its /run/netns file exists).
    pub fn exists(&self) -> bool {
        self.path().exists()
    }

    /// Deletes the namespace name with `ip netns del`. Links inside it go away when the
    /// kernel frees the namespace, which happens once no process is left in it: kill those
    /// first (see [`Netns::pids`]). Deleting a namespace that is already gone is no error.
    pub(crate) fn delete(&self) -> Result<(), LabError> {
        let _guard = NETNS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        if !self.exists() {
            return Ok(());
        }
        run_root_ok(&["ip", "netns", "del", &self.name]).map(drop)
    }

    /// PIDs of the processes whose network namespace is this one (like `ip netns pids`):
    /// compares the nsfs inode of /proc/PID/ns/net with that of the namespace file. This
    /// process is never listed, even if a thread of it has entered the namespace.
    pub fn pids(&self) -> Vec<u32> {
        let Ok(meta) = std::fs::metadata(self.path()) else {
            return Vec::new();
        };
        let (dev, ino) = (meta.dev(), meta.ino());
        let me = std::process::id();
        let Ok(proc_dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        proc_dir
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| pid != me)
            .filter(|pid| {
                std::fs::metadata(format!("/proc/{pid}/ns/net"))
                    .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
            })
            .collect()
    }

    /// Whether process `pid` is in this namespace.
    pub fn holds(&self, pid: u32) -> bool {
        let (Ok(ns), Ok(proc_ns)) = (
            std::fs::metadata(self.path()),
            std::fs::metadata(format!("/proc/{pid}/ns/net")),
        ) else {
            return false;
        };
        ns.dev() == proc_ns.dev() && ns.ino() == proc_ns.ino()
    }

    /// A command that runs `args` inside this namespace (network namespace only; see the
    /// module docs). Stdin is null; stdout and stderr are inherited unless set.
    pub fn command<I, S>(&self, args: I) -> NetnsCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let display = args
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let (program, rest) = args
            .split_first()
            .expect("a command needs at least a program name");
        let mut cmd = Command::new(program);
        cmd.args(rest).stdin(Stdio::null());
        // Built before fork: only async-signal-safe calls (open, setns, close) after it.
        let path = CString::new(self.path().as_os_str().as_bytes())
            .expect("namespace path has no NUL byte");
        // SAFETY: the closure only makes raw system calls and reads errno; it allocates
        // nothing and takes no locks, as required between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let fd = nix::libc::open(path.as_ptr(), nix::libc::O_RDONLY | nix::libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let rc = nix::libc::setns(fd, nix::libc::CLONE_NEWNET);
                let err = std::io::Error::last_os_error();
                nix::libc::close(fd);
                if rc < 0 { Err(err) } else { Ok(()) }
            });
        }
        NetnsCommand {
            cmd,
            netns: self.name.clone(),
            display,
        }
    }

    /// Runs `f` on a fresh thread that has entered this network namespace, and returns its
    /// result. Use it for code that must see the namespace's interfaces: loading and
    /// attaching XDP programs, opening raw sockets. File descriptors created there keep
    /// their namespace after the thread ends (a socket stays in the namespace it was
    /// created in). A panic in `f` is resumed on the caller's thread.
    pub fn enter<F, T>(&self, f: F) -> Result<T, LabError>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let path = self.path();
        let file = File::open(&path).map_err(|e| LabError::io("open namespace", &path, e))?;
        let name = self.name.clone();
        std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name(format!("netns {name}"))
                .spawn_scoped(scope, move || -> Result<T, LabError> {
                    nix::sched::setns(&file, CloneFlags::CLONE_NEWNET)
                        .map_err(|e| LabError::sys("setns", Some(&name), e))?;
                    drop(file);
                    Ok(f())
                })
                .map_err(|e| LabError::sys("spawn namespace thread", Some(&self.name), e))?;
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl fmt::Display for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A network namespace of its own, outside any lab, deleted on drop (also while a panic
/// unwinds) after the processes left in it are killed. Its name is a lab id plus `hint`, so a
/// namespace of a test binary killed outright is removed by the next run's stale sweep
/// ([`cleanup`]). Derefs to [`Netns`]: [`Netns::enter`] runs code inside it.
#[derive(Debug)]
pub struct OwnedNetns {
    netns: Netns,
}

impl OwnedNetns {
    /// Creates `carplab-<pid>-<n>-<random>-<hint>` (the hint sanitised as a lab's), sweeping
    /// stale labs first.
    pub fn create(hint: &str) -> Result<OwnedNetns, LabError> {
        cleanup::sweep_stale_once();
        let name = format!(
            "{}-{}",
            cleanup::new_lab_id(),
            crate::lab::sanitize_hint(hint)
        );
        Ok(OwnedNetns {
            netns: Netns::create(&name)?,
        })
    }
}

impl Deref for OwnedNetns {
    type Target = Netns;
    fn deref(&self) -> &Netns {
        &self.netns
    }
}

impl Drop for OwnedNetns {
    fn drop(&mut self) {
        let strays = cleanup::kill_netns_processes(&self.netns);
        if !strays.is_empty() {
            eprintln!(
                "netns cleanup: killed stray processes {strays:?} in {}",
                self.netns
            );
        }
        if let Err(e) = self.netns.delete() {
            eprintln!("netns cleanup: {e}");
        }
    }
}

/// A [`Command`] that enters a network namespace before exec. Derefs to `Command`, so
/// `.env()`, `.stdout()` and the like work; only commands built by [`Netns::command`] (or
/// `Host::command`) can be spawned by the lab, so nothing runs in the root namespace by
/// mistake.
pub struct NetnsCommand {
    cmd: Command,
    netns: String,
    display: String,
}

impl NetnsCommand {
    /// The namespace the command will run in.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// The command line, for messages.
    pub fn display(&self) -> &str {
        &self.display
    }

    pub(crate) fn into_parts(self) -> (Command, String, String) {
        (self.cmd, self.netns, self.display)
    }
}

impl Deref for NetnsCommand {
    type Target = Command;
    fn deref(&self) -> &Command {
        &self.cmd
    }
}

impl DerefMut for NetnsCommand {
    fn deref_mut(&mut self) -> &mut Command {
        &mut self.cmd
    }
}

impl fmt::Debug for NetnsCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` in netns {}", self.display, self.netns)
    }
}

/// Runs a tool in the root namespace (only `ip` itself, whose `-n`/`netns` arguments do
/// the namespace switching) and fails with its stderr unless it succeeds.
pub(crate) fn run_root_ok(args: &[&str]) -> Result<String, LabError> {
    let display = args.join(" ");
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::Spawn {
            cmd: display.clone(),
            netns: None,
            source,
        })?;
    if !out.status.success() {
        return Err(LabError::Command {
            cmd: display,
            netns: None,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
