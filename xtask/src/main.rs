//! Project tasks, run as `cargo xtask <command>` (the alias is in .cargo/config.toml).
//!
//! - `setup`: install what building and testing needs, idempotently (see setup.rs).
//! - `test`: setup, then formatting, clippy (host and eBPF), the fuzz build and every test.
//! - `run`: setup, build, and run carpd with the given arguments.
//! - `demo`: the lab demo.
//! - `bench`: setup, then the benchmark crate (bench/, carp-bench) with the arguments given:
//!   failover, dataplane, flood and cost against ucarp and keepalived.
mod bench;
mod demo;
mod run;
mod setup;
mod test;

use std::{
    ffi::OsString,
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Project tasks for carp-linux",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what building and testing needs (idempotent; a second run changes nothing).
    Setup(setup::Args),
    /// Setup, then fmt, clippy (host crates and the eBPF crate), fuzz build, and every test.
    Test(test::Args),
    /// Setup, build, and run carpd with the arguments after `--`.
    Run(run::Args),
    /// Run the lab demo: two routers and a client in namespaces, an election, a failover.
    Demo(demo::Args),
    /// Benchmarks against ucarp and keepalived; writes docs/BENCHMARKS.md (--quick: < 5 min).
    /// `cargo xtask bench --help` lists its options.
    Bench(bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (name, result) = match cli.command {
        Cmd::Setup(args) => ("setup", setup::run(&args)),
        Cmd::Test(args) => ("test", test::run(&args)),
        Cmd::Run(args) => ("run", run::run(&args)),
        Cmd::Demo(args) => ("demo", demo::run(&args)),
        Cmd::Bench(args) => ("bench", bench::run(&args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask {name}: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// `$CARGO_HOME`, or `$HOME/.cargo` as cargo and rustup default to.
fn cargo_home() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("CARGO_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("neither CARGO_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cargo"))
}

/// PATH for child processes: `$CARGO_HOME/bin` (where setup installs bpf-linker and cargo-fuzz)
/// is put in front if it is not on PATH at all; an existing PATH order is left as it is.
fn child_path() -> Result<OsString> {
    let bin = cargo_home()?.join("bin");
    let current = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&current).collect();
    if !dirs.iter().any(|d| d == &bin) {
        dirs.insert(0, bin);
    }
    std::env::join_paths(dirs).context("PATH contains an invalid entry")
}

/// A command with the PATH of [`child_path`].
fn command(program: &str) -> Result<Command> {
    let mut cmd = Command::new(program);
    cmd.env("PATH", child_path()?);
    Ok(cmd)
}

/// The command line as a person would type it, with the environment variables it sets
/// (PATH excepted).
fn display(cmd: &Command) -> String {
    let mut parts: Vec<String> = cmd
        .get_envs()
        .filter(|(k, _)| *k != "PATH")
        .filter_map(|(k, v)| {
            v.map(|v| format!("{}={}", k.to_string_lossy(), quote(&v.to_string_lossy())))
        })
        .collect();
    parts.push(quote(&cmd.get_program().to_string_lossy()));
    parts.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
    parts.join(" ")
}

fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@+,%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs `cmd` with inherited stdio; an error names the command and its exit status.
fn run_inherit(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("could not start `{}`", display(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", display(cmd));
    }
    Ok(())
}

/// Runs `cmd` with its output captured and returns stdout; on failure the error carries the
/// command, its status and the end of its output.
fn run_capture(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start `{}`", display(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({})\n{}",
            display(cmd),
            out.status,
            tail(&out.stdout, &out.stderr, 40)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last `n` lines of a command's stdout followed by its stderr.
fn tail(stdout: &[u8], stderr: &[u8], n: usize) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(stdout),
        String::from_utf8_lossy(stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| format!("    | {l}\n"))
        .collect()
}

/// True if the effective uid is 0 (read from /proc/self/status; no libc needed).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| effective_uid(&s))
        == Some(0)
}

fn effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

fn flush() {
    let _ = std::io::stdout().flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_uid_is_the_second_field() {
        let status = "Name:\tcat\nUid:\t1000\t0\t1000\t1000\nGid:\t1\t1\t1\t1\n";
        assert_eq!(effective_uid(status), Some(0));
        assert_eq!(effective_uid("Name:\tcat\n"), None);
    }

    #[test]
    fn quote_leaves_plain_words_alone() {
        assert_eq!(quote("--features"), "--features");
        assert_eq!(quote("bpf-linker@0.13.0"), "bpf-linker@0.13.0");
        assert_eq!(
            quote(r#"--cfg=bpf_target_arch="x86_64""#),
            r#"'--cfg=bpf_target_arch="x86_64"'"#
        );
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn display_shows_env_and_args() {
        let mut cmd = Command::new("cargo");
        cmd.env("LLVM_PREFIX", "/p")
            .env("PATH", "/x")
            .args(["install", "a b"]);
        assert_eq!(display(&cmd), "LLVM_PREFIX=/p cargo install 'a b'");
    }
}
