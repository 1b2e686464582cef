//! `cargo xtask demo`: the lab demo (network namespaces, two carpd instances, a failover).
//!
//! Not written yet: it lands with the daemon, issue #4.
use anyhow::{Result, bail};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> Result<()> {
    bail!("not yet implemented: lands with issue #4 (the daemon)")
}
