//! `cargo xtask bench`: the benchmarks (failover time and the dataplane, against ucarp and
//! keepalived).
//!
//! Not written yet: it lands with issue #6.
use anyhow::{Result, bail};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> Result<()> {
    bail!("not yet implemented: lands with issue #6")
}
