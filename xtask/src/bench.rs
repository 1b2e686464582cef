//! `cargo xtask bench`: setup (ucarp, keepalived and the eBPF toolchain are what the bench
//! runs and builds), then the benchmark itself, the carp-bench crate, run with the arguments
//! given here; `cargo xtask bench --help` is carp-bench's own help.
use std::ffi::OsString;
use std::process::Stdio;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::{command, display, setup, workspace_root};

#[derive(clap::Args)]
#[command(disable_help_flag = true, disable_version_flag = true)]
pub struct Args {
    /// carp-bench's options (see `cargo xtask bench --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
}

/// The last SIGINT or SIGTERM this process got (0: none), to pass on to the bench.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNAL.store(sig, Ordering::Relaxed);
}

pub fn run(args: &Args) -> Result<()> {
    let only_help = args
        .args
        .iter()
        .any(|a| ["--help", "-h", "--version", "-V"].iter().any(|h| a == *h));
    if !only_help {
        setup::setup(false)?;
    }
    let mut cargo = command("cargo")?;
    cargo
        .current_dir(workspace_root())
        .args(["run", "--quiet", "-p", "carp-bench", "--"])
        .args(&args.args)
        .stdin(Stdio::null());
    // The bench removes its lab when SIGINT or SIGTERM asks it to stop: this process waits
    // for that instead of dying first, and passes on a SIGTERM sent to it alone (Ctrl-C
    // reaches the whole foreground process group, the bench included).
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
    let mut child = cargo
        .spawn()
        .with_context(|| format!("could not start `{}`", display(&cargo)))?;
    let mut passed_on = false;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for the bench")? {
            break status;
        }
        let sig = SIGNAL.load(Ordering::Relaxed);
        if sig != 0 && !passed_on {
            passed_on = true;
            // SAFETY: kill(2) on our own child's pid (`cargo run` execs the bench in place).
            unsafe {
                libc::kill(child.id() as libc::pid_t, sig);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if !status.success() {
        bail!("`{}` failed ({status})", display(&cargo));
    }
    Ok(())
}
