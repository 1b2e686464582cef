//! `cargo xtask test`: everything CI checks, in order, stopping at the first failure.
//!
//! 1. setup (see setup.rs);
//! 2. `cargo fmt --all --check`;
//! 3. clippy on the host crates, warnings denied;
//! 4. clippy on the eBPF crate for bpfel-unknown-none (nightly, `-Z build-std=core`), with
//!    the `bpf_target_arch` cfg that aya-build passes when it builds the crate;
//! 5. the fuzz targets' build, if the workspace has a fuzz/ directory;
//! 6. `cargo test --workspace --exclude carp-ebpf`, with the arguments given after `--`
//!    (the network-namespace tests need root, as CI has);
//! 7. `cargo xtask bench --smoke`: one short run of every benchmark section, so the bench
//!    code cannot rot (as root only; the report goes to target/bench-smoke/).
use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{command, display, human, is_root, setup, workspace_root};

#[derive(clap::Args)]
pub struct Args {
    /// Arguments for `cargo test`, after `--`: a test name filter, or `-- --nocapture`.
    #[arg(last = true, value_name = "CARGO_TEST_ARGS")]
    pub cargo_test_args: Vec<String>,
}

struct Step {
    name: &'static str,
    cmd: Command,
    /// Count the `test result:` lines of its output.
    counts_tests: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let root = workspace_root();
    let mut done: Vec<(&str, Duration)> = Vec::new();

    println!("==> setup");
    let t = Instant::now();
    let setup = setup::setup(false).context("step `setup` failed")?;
    done.push(("setup", t.elapsed()));
    if !setup.needs_root.is_empty() {
        println!(
            "==> WARNING: setup skipped steps that need root ({}); later steps may fail",
            setup.needs_root.join(", ")
        );
    }
    if !is_root() {
        println!("==> WARNING: not root: the network-namespace tests need root and will fail");
    }

    let steps = steps(args, &root)?;
    let total = steps.len();
    let mut tests = TestCounts::default();
    for (i, mut step) in steps.into_iter().enumerate() {
        println!(
            "==> [{}/{total}] {}: {}",
            i + 1,
            step.name,
            display(&step.cmd)
        );
        let t = Instant::now();
        let result = if step.counts_tests {
            run_counting(&mut step.cmd, &mut tests)
        } else {
            crate::run_inherit(&mut step.cmd)
        };
        let took = t.elapsed();
        if let Err(err) = result {
            summary(&done, Some((step.name, took)), &tests, step.counts_tests);
            bail!(
                "step `{}` failed after {}: {err:#}\n(after {})",
                step.name,
                human(took),
                human(started.elapsed())
            );
        }
        done.push((step.name, took));
    }
    summary(&done, None, &tests, true);
    println!(
        "xtask test: all {} steps passed in {}",
        done.len(),
        human(started.elapsed())
    );
    println!("{}", tests.line());
    Ok(())
}

fn steps(args: &Args, root: &std::path::Path) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    let step = |name, cmd, counts_tests| Step {
        name,
        cmd,
        counts_tests,
    };

    let mut fmt = command("cargo")?;
    fmt.args(["fmt", "--all", "--check"]);
    steps.push(step("fmt", fmt, false));

    let mut clippy = command("cargo")?;
    clippy.args([
        "clippy",
        "--workspace",
        "--exclude",
        "carp-ebpf",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    steps.push(step("clippy (host crates)", clippy, false));

    // As aya-template: clippy checks the eBPF crate for the BPF target with the same cfg
    // that aya-build sets when it builds it.
    let mut ebpf = command("cargo")?;
    ebpf.env(
        "CARGO_ENCODED_RUSTFLAGS",
        format!("--cfg=bpf_target_arch=\"{}\"", std::env::consts::ARCH),
    )
    .args([
        "+nightly",
        "clippy",
        "-p",
        "carp-ebpf",
        "--target",
        "bpfel-unknown-none",
        "-Z",
        "build-std=core",
        "--",
        "-D",
        "warnings",
    ]);
    steps.push(step("clippy (carp-ebpf, bpfel-unknown-none)", ebpf, false));

    if root.join("fuzz").is_dir() {
        let mut fuzz = command("cargo")?;
        fuzz.args(["+nightly", "fuzz", "build"]);
        steps.push(step("fuzz build", fuzz, false));
    }

    let mut test = command("cargo")?;
    test.args(["test", "--workspace", "--exclude", "carp-ebpf"])
        .args(&args.cargo_test_args);
    steps.push(step("cargo test", test, true));

    // The benchmarks do not run in CI (they take long and measure the machine), but their
    // code must not rot: one short run of every section, report to target/bench-smoke/.
    if is_root() {
        let mut smoke = command("cargo")?;
        smoke.args(["xtask", "bench", "--smoke"]);
        steps.push(step("bench smoke", smoke, false));
    } else {
        println!("==> note: not root: the bench smoke run (namespaces, XDP) is skipped");
    }

    for s in &mut steps {
        s.cmd.current_dir(root);
    }
    Ok(steps)
}

/// Runs `cmd`, echoing its stdout line by line and counting its `test result:` lines.
fn run_counting(cmd: &mut Command, counts: &mut TestCounts) -> Result<()> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{}`", display(cmd)))?;
    let mut out = BufReader::new(child.stdout.take().context("no stdout pipe")?);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if out.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buf);
        print!("{line}");
        counts.add(&line);
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("`{}` failed ({status})", display(cmd));
    }
    Ok(())
}

#[derive(Default, Debug, PartialEq)]
struct TestCounts {
    passed: u64,
    failed: u64,
    ignored: u64,
    binaries: u64,
}

impl TestCounts {
    /// Adds `test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 3 filtered out; …`.
    fn add(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        self.binaries += 1;
        for part in rest.split(';') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let n = |w: &str| w.parse::<u64>().unwrap_or(0);
            match words.as_slice() {
                [.., count, "passed"] => self.passed += n(count),
                [count, "failed"] => self.failed += n(count),
                [count, "ignored"] => self.ignored += n(count),
                _ => {}
            }
        }
    }

    /// The closing line, in the plain `N passed, N failed, N skipped` form.
    fn line(&self) -> String {
        format!(
            "tests: {} passed, {} failed, {} skipped",
            self.passed, self.failed, self.ignored
        )
    }
}

fn summary(
    done: &[(&str, Duration)],
    failed: Option<(&str, Duration)>,
    tests: &TestCounts,
    show_tests: bool,
) {
    println!("==> summary");
    for (name, took) in done {
        println!("    ok      {name:<42} {}", human(*took));
    }
    if let Some((name, took)) = failed {
        println!("    FAILED  {name:<42} {}", human(took));
    }
    if show_tests && tests.binaries > 0 {
        println!(
            "    {} test suites: {} passed, {} failed, {} ignored",
            tests.binaries, tests.passed, tests.failed, tests.ignored
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_test_result_lines() {
        let mut c = TestCounts::default();
        c.add("test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 3 filtered out; finished in 0.01s\n");
        c.add("running 3 tests\n");
        c.add("test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.20s");
        c.add("test foo::bar ... ok");
        assert_eq!(
            c,
            TestCounts {
                passed: 14,
                failed: 1,
                ignored: 1,
                binaries: 2
            }
        );
        assert_eq!(c.line(), "tests: 14 passed, 1 failed, 1 skipped");
    }

    #[test]
    fn trailing_args_go_to_cargo_test() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let cli = Cli::parse_from(["x", "--", "xdp", "--", "--nocapture"]);
        assert_eq!(cli.args.cargo_test_args, ["xdp", "--", "--nocapture"]);
        let cli = Cli::parse_from(["x"]);
        assert!(cli.args.cargo_test_args.is_empty());
    }
}
