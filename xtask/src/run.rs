//! `cargo xtask run -- ARGS`: without ARGS, the lab demo (see demo.rs). Otherwise: setup (a few seconds when everything is there), build carpd and
//! carpctl, then run carpd with ARGS, e.g. `cargo xtask run -- --config /etc/carp/carp.toml`.
//!
//! carpd attaches XDP programs and opens raw sockets, so it needs root. This process is
//! replaced by carpd (exec), so signals such as Ctrl-C reach carpd alone and its exit status
//! is the command's.
use std::os::unix::process::CommandExt as _;

use anyhow::{Result, bail};

use crate::{command, display, is_root, run_inherit, setup, workspace_root};

#[derive(clap::Args)]
pub struct Args {
    /// Build and run the release profile.
    #[arg(long)]
    pub release: bool,
    /// Arguments for carpd, after `--` (carpd takes `--config PATH`; see `carpd --help`).
    #[arg(last = true, value_name = "CARPD_ARGS")]
    pub carpd_args: Vec<String>,
}

pub fn run(args: &Args) -> Result<()> {
    if args.carpd_args.is_empty() {
        // No configuration given: the lab demo is the main job.
        println!("run: no carpd arguments given; running the lab demo (`cargo xtask demo`)");
        return crate::demo::run(&crate::demo::Args {});
    }
    let summary = setup::setup(false)?;
    if !summary.needs_root.is_empty() {
        println!(
            "run: WARNING: setup skipped steps that need root: {}",
            summary.needs_root.join(", ")
        );
    }
    let profile: &[&str] = if args.release { &["--release"] } else { &[] };

    let mut build = command("cargo")?;
    build
        .current_dir(workspace_root())
        .args(["build", "-p", "carp-daemon", "--bins"])
        .args(profile);
    println!("==> {}", display(&build));
    run_inherit(&mut build)?;

    if !is_root() {
        println!(
            "run: WARNING: not root; carpd needs root (XDP, raw sockets) and will likely fail"
        );
    }
    println!(
        "run: to install carpd as a service instead: install -m 0755 target/{}/carpd \
         target/{0}/carpctl /usr/local/sbin/ && install -m 0644 dist/systemd/*.service \
         /etc/systemd/system/ && systemctl daemon-reload && systemctl enable --now carpd \
         carp-undemote (README: Running carpd under systemd)",
        if args.release { "release" } else { "debug" }
    );
    let mut carpd = command("cargo")?;
    carpd
        .current_dir(workspace_root())
        .args(["run", "--quiet", "-p", "carp-daemon", "--bin", "carpd"])
        .args(profile)
        .arg("--")
        .args(&args.carpd_args);
    println!("==> {}", display(&carpd));
    // Only returns if the exec failed.
    let err = carpd.exec();
    bail!("could not run `{}`: {err}", display(&carpd))
}
