//! `cargo xtask setup`: install what building and testing needs, idempotently.
//!
//! Every step first checks, and installs only what is missing; each prints one line saying
//! whether the thing was present or has been installed. A second run changes nothing and takes
//! a few seconds. Steps:
//!
//! 1. the nightly toolchain (`--profile minimal`) with `rust-src` and `clippy`: the eBPF crate
//!    is built with `-Z build-std=core`, and `cargo xtask test` runs clippy on it;
//! 2. `clippy` and `rustfmt` on the active (default, stable) toolchain;
//! 3. Debian packages (bpftool, iproute2, arping, tcpdump, ethtool, ucarp, keepalived, ndisc6, iputils-ping, nftables, systemd, prometheus for promtool), with
//!    service starts denied while apt-get runs, so keepalived is not left running [root];
//! 4. bpffs mounted at /sys/fs/bpf [root];
//! 5. bpf-linker 0.13.0, built against the nightly's own libLLVM (see README, Toolchain);
//! 6. cargo-fuzz, if the workspace has a fuzz/ directory.
//!
//! Steps marked [root] are skipped with a message when not run as root.
//! `--dry-run` checks everything and installs nothing.
use std::{
    fs,
    io::ErrorKind,
    os::unix::fs::{PermissionsExt as _, symlink},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{cargo_home, command, display, flush, human, is_root, run_capture, workspace_root};

const NIGHTLY_COMPONENTS: &[&str] = &["rust-src", "clippy"];
const ACTIVE_COMPONENTS: &[&str] = &["clippy", "rustfmt"];
const PACKAGES: &[&str] = &[
    "bpftool",
    "iproute2",
    "arping",
    "tcpdump",
    "ethtool",
    "ucarp",
    "keepalived",
    // ndisc6: neighbour solicitations from the test client, as arping does for ARP.
    "ndisc6",
    // ping: the lab's reachability checks (not on a minimal Debian).
    "iputils-ping",
    // nftables: carp-daemon/tests/unicast.rs drops IPv6 CARP multicast at the lab's switch
    // (bridge family), to show a network without multicast.
    "nftables",
    // systemd: carp-daemon/tests/systemd.rs runs the units under it, as PID 1 of its own
    // namespaces (it is only installed, never started as the machine's init).
    "systemd",
    // prometheus: its promtool parses carpd's metrics in carp-daemon/tests/observability.rs
    // (only installed; service starts are denied while apt-get runs).
    "prometheus",
];
const BPF_LINKER: &str = "bpf-linker";
const BPF_LINKER_VERSION: &str = "0.13.0";
/// The LLVM versions bpf-linker 0.13.0 has `llvm-NN` features for.
const BPF_LINKER_LLVM: std::ops::RangeInclusive<u32> = 21..=23;
const BPFFS: &str = "/sys/fs/bpf";
const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

#[derive(clap::Args)]
pub struct Args {
    /// Only check: say what would be installed, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: &Args) -> Result<()> {
    setup(args.dry_run).map(|_| ())
}

/// What a finished setup could not do.
pub struct Summary {
    /// Labels of the steps skipped because they need root.
    pub needs_root: Vec<String>,
}

/// Runs every step (see the module documentation).
pub fn setup(dry_run: bool) -> Result<Summary> {
    let started = Instant::now();
    let mut s = Setup {
        dry_run,
        root: is_root(),
        cargo_home: cargo_home()?,
        needs_root: Vec::new(),
        nightly_present: false,
    };
    if dry_run {
        println!("setup: dry run: checking only, nothing is installed");
    }
    if !s.root {
        println!(
            "setup: not running as root: Debian packages and the bpffs mount need root and are \
             only checked"
        );
    }

    let nightly = s.step("nightly toolchain", nightly_toolchain)?;
    s.nightly_present = !matches!(nightly, Outcome::WouldInstall(_));
    s.step("nightly components rust-src, clippy", |s| {
        components(s, Some("nightly"), NIGHTLY_COMPONENTS)
    })?;
    s.step("active toolchain components clippy, rustfmt", |s| {
        components(s, None, ACTIVE_COMPONENTS)
    })?;
    debian_packages(&mut s)?;
    s.step("bpffs mounted at /sys/fs/bpf", bpffs)?;
    s.step("bpf-linker 0.13 (nightly's LLVM)", bpf_linker)?;
    if workspace_root().join("fuzz").is_dir() {
        s.step("cargo-fuzz (fuzz/ exists)", cargo_fuzz)?;
    } else {
        s.line("cargo-fuzz", "not needed (no fuzz/ directory)");
    }

    let took = human(started.elapsed());
    if s.needs_root.is_empty() {
        println!("setup: done in {took}");
    } else {
        println!(
            "setup: done in {took}, but SKIPPED (need root): {}; run `cargo xtask setup` as \
             root for them",
            s.needs_root.join(", ")
        );
    }
    Ok(Summary {
        needs_root: s.needs_root,
    })
}

struct Setup {
    dry_run: bool,
    root: bool,
    cargo_home: PathBuf,
    needs_root: Vec<String>,
    nightly_present: bool,
}

/// What a step found or did.
enum Outcome {
    Present(String),
    Installed(String),
    /// Dry run: missing, and this would install it.
    WouldInstall(String),
    /// Missing, and installing it needs root.
    NeedsRoot(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let detail = |d: &str| {
            if d.is_empty() {
                String::new()
            } else {
                format!(" ({d})")
            }
        };
        match self {
            Outcome::Present(d) => write!(f, "present{}", detail(d)),
            Outcome::Installed(d) => write!(f, "installed{}", detail(d)),
            Outcome::WouldInstall(d) => write!(f, "MISSING: would run: {d}"),
            Outcome::NeedsRoot(d) => write!(f, "MISSING: skipped, needs root: {d}"),
        }
    }
}

impl Setup {
    fn line(&self, label: &str, what: &str) {
        println!("setup: {label:<44} {what}");
    }

    /// Prints the label, runs the step, then prints its outcome on the same line.
    fn step(
        &mut self,
        label: &str,
        f: impl FnOnce(&mut Self) -> Result<Outcome>,
    ) -> Result<Outcome> {
        print!("setup: {label:<44} ");
        flush();
        let started = Instant::now();
        match f(self) {
            Ok(outcome) => {
                let took = started.elapsed();
                let took = if took >= Duration::from_secs(2) {
                    format!(" in {}", human(took))
                } else {
                    String::new()
                };
                println!("{outcome}{took}");
                if matches!(outcome, Outcome::NeedsRoot(_)) {
                    self.needs_root.push(label.to_string());
                }
                Ok(outcome)
            }
            Err(err) => {
                println!("FAILED");
                Err(err.context(format!("setup step `{label}`")))
            }
        }
    }
}

fn nightly_toolchain(s: &mut Setup) -> Result<Outcome> {
    let list = run_capture(command("rustup")?.args(["toolchain", "list"]))
        .context("rustup is needed (https://rustup.rs) and must be on PATH")?;
    if has_nightly(&list) {
        return Ok(Outcome::Present(nightly_version()?));
    }
    let mut install = command("rustup")?;
    install.args(["toolchain", "install", "nightly", "--profile", "minimal"]);
    if s.dry_run {
        return Ok(Outcome::WouldInstall(display(&install)));
    }
    run_capture(&mut install)?;
    Ok(Outcome::Installed(nightly_version()?))
}

fn nightly_version() -> Result<String> {
    Ok(run_capture(command("rustc")?.args(["+nightly", "-V"]))?
        .trim()
        .to_string())
}

/// True if `rustup toolchain list` shows the `nightly` channel (not a dated nightly).
fn has_nightly(list: &str) -> bool {
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .any(|name| {
            name == "nightly"
                || name
                    .strip_prefix("nightly-")
                    .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
        })
}

/// `toolchain` None means the active one (the default toolchain, here stable).
fn components(s: &mut Setup, toolchain: Option<&str>, wanted: &[&str]) -> Result<Outcome> {
    let mut add = command("rustup")?;
    add.args(["component", "add"]);
    if !s.nightly_present && toolchain == Some("nightly") {
        // Only in a dry run: the toolchain step would have installed it otherwise.
        add.args(wanted).args(["--toolchain", "nightly"]);
        return Ok(Outcome::WouldInstall(display(&add)));
    }
    let mut list = command("rustup")?;
    list.args(["component", "list", "--installed"]);
    if let Some(t) = toolchain {
        list.args(["--toolchain", t]);
    }
    let missing = missing_components(&run_capture(&mut list)?, wanted);
    if missing.is_empty() {
        return Ok(Outcome::Present(String::new()));
    }
    add.args(&missing);
    if let Some(t) = toolchain {
        add.args(["--toolchain", t]);
    }
    if s.dry_run {
        return Ok(Outcome::WouldInstall(display(&add)));
    }
    run_capture(&mut add)?;
    let still = missing_components(&run_capture(&mut list)?, wanted);
    if !still.is_empty() {
        bail!(
            "`{}` ran but {} still missing",
            display(&add),
            still.join(", ")
        );
    }
    Ok(Outcome::Installed(missing.join(", ")))
}

/// `x86_64-unknown-linux-gnu`, not `dev-x86_64-unknown-linux-gnu` (as in `rustc-dev-…`): the
/// architecture has a digit, or is one of the few without.
fn is_target_triple(s: &str) -> bool {
    let mut parts = s.split('-');
    let arch = parts.next().unwrap_or("");
    let arch_like = arch.contains(|c: char| c.is_ascii_digit())
        || ["arm", "mips", "mipsel", "powerpc", "sparc", "loongarch"].contains(&arch);
    arch_like && parts.count() >= 2
}

/// The `wanted` components that `rustup component list --installed` does not show. It lists
/// components as `rust-src` or with the host triple, `clippy-x86_64-unknown-linux-gnu`.
fn missing_components<'a>(installed: &str, wanted: &[&'a str]) -> Vec<&'a str> {
    wanted
        .iter()
        .copied()
        .filter(|w| {
            !installed.lines().map(str::trim).any(|l| {
                l == *w
                    || l.strip_prefix(*w)
                        .and_then(|rest| rest.strip_prefix('-'))
                        .is_some_and(is_target_triple)
            })
        })
        .collect()
}

/// One line per package; the missing ones are installed with one apt-get run.
fn debian_packages(s: &mut Setup) -> Result<()> {
    let mut query = Command::new("dpkg-query");
    query
        .args(["-W", "-f=${Package}\t${Status}\n"])
        .args(PACKAGES);
    let out = match query.output() {
        Ok(out) => out,
        Err(err) if err.kind() == ErrorKind::NotFound => {
            s.line(
                "Debian packages",
                &format!(
                    "skipped: no dpkg-query (not Debian?); install by hand: {}",
                    PACKAGES.join(" ")
                ),
            );
            return Ok(());
        }
        Err(err) => return Err(err).context("could not run dpkg-query"),
    };
    // dpkg-query exits 1 when a package is unknown; stdout still lists the others.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let installed = installed_packages(&stdout);
    let (present, missing): (Vec<&str>, Vec<&str>) =
        PACKAGES.iter().partition(|p| installed.contains(p));
    for p in &present {
        s.line(&format!("package {p}"), "present");
    }
    if missing.is_empty() {
        return Ok(());
    }
    let label = format!("package {}", missing.join(", "));
    s.step(&label, |s| {
        let shown = format!(
            "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
             --no-install-recommends {}",
            missing.join(" ")
        );
        if s.dry_run {
            return Ok(Outcome::WouldInstall(shown));
        }
        if !s.root {
            return Ok(Outcome::NeedsRoot(shown));
        }
        apt_install(&missing)?;
        let out = run_capture(&mut query)?;
        let installed = installed_packages(&out);
        let still: Vec<&str> = missing
            .iter()
            .copied()
            .filter(|p| !installed.contains(p))
            .collect();
        if !still.is_empty() {
            bail!("apt-get ran but {} still not installed", still.join(", "));
        }
        let mut detail = "service starts were denied while installing".to_string();
        if let Some(pid) = running_keepalived() {
            detail = format!(
                "WARNING: keepalived is running (pid {pid}); stop it with `service keepalived \
                 stop`"
            );
        }
        Ok(Outcome::Installed(detail))
    })?;
    Ok(())
}

/// Package names whose status is `install ok installed` in `dpkg-query -W
/// -f='${Package}\t${Status}\n'` output.
fn installed_packages(out: &str) -> Vec<&str> {
    out.lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(_, status)| status.trim() == "install ok installed")
        .map(|(name, _)| name.trim())
        .collect()
}

fn apt_install(packages: &[&str]) -> Result<()> {
    let _deny = DenyServiceStarts::new(Path::new(POLICY_RC_D))?;
    run_capture(
        Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    run_capture(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            // Wait for another apt/dpkg run to finish instead of failing at once.
            .args(["-o", "DPkg::Lock::Timeout=300"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    Ok(())
}

/// While alive, /usr/sbin/policy-rc.d denies every service start (exit 101, as Debian's
/// invoke-rc.d and deb-systemd-invoke read it), so installing keepalived does not start it.
/// A policy-rc.d that was there is moved aside and put back on drop.
struct DenyServiceStarts {
    path: PathBuf,
    saved: Option<PathBuf>,
}

impl DenyServiceStarts {
    fn new(path: &Path) -> Result<Self> {
        let aside = PathBuf::from(format!("{}.carp-xtask-saved", path.display()));
        let saved = if aside.exists() {
            // A run that was killed left ours in place and the original aside: keep that.
            Some(aside)
        } else if path.symlink_metadata().is_ok() {
            fs::rename(path, &aside).with_context(|| format!("moving {} aside", path.display()))?;
            Some(aside)
        } else {
            None
        };
        let guard = Self {
            path: path.to_path_buf(),
            saved,
        };
        fs::write(
            path,
            "#!/bin/sh\n# Written by `cargo xtask setup` while it runs apt-get; removed after.\n\
             exit 101\n",
        )
        .with_context(|| format!("writing {}", path.display()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
        Ok(guard)
    }
}

impl Drop for DenyServiceStarts {
    fn drop(&mut self) {
        let restored = match &self.saved {
            Some(aside) => fs::rename(aside, &self.path),
            None => fs::remove_file(&self.path),
        };
        if let Err(err) = restored {
            eprintln!(
                "setup: WARNING: could not restore {}: {err}",
                self.path.display()
            );
        }
    }
}

/// keepalived's pid if its pid file names a live process.
fn running_keepalived() -> Option<u32> {
    let pid: u32 = fs::read_to_string("/run/keepalived.pid")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

fn bpffs(s: &mut Setup) -> Result<Outcome> {
    let mounts = fs::read_to_string("/proc/mounts").context("reading /proc/mounts")?;
    if bpffs_mounted(&mounts) {
        return Ok(Outcome::Present(String::new()));
    }
    let mut mount = Command::new("mount");
    mount.args(["-t", "bpf", "bpf", BPFFS]);
    if s.dry_run {
        return Ok(Outcome::WouldInstall(display(&mount)));
    }
    if !s.root {
        return Ok(Outcome::NeedsRoot(display(&mount)));
    }
    if !Path::new(BPFFS).is_dir() {
        bail!("{BPFFS} does not exist: this kernel has no bpffs");
    }
    run_capture(&mut mount)?;
    Ok(Outcome::Installed("mounted now".to_string()))
}

fn bpffs_mounted(mounts: &str) -> bool {
    mounts.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 3 && f[1] == BPFFS && f[2] == "bpf"
    })
}

fn bpf_linker(s: &mut Setup) -> Result<Outcome> {
    let bin = s.cargo_home.join("bin").join(BPF_LINKER);
    let reason = match linker_status(&bin) {
        Linker::Usable(desc) => return Ok(Outcome::Present(desc + &shadow_note(&bin))),
        Linker::Missing => String::new(),
        Linker::Unusable(why) => why,
    };
    let because = if reason.is_empty() {
        String::new()
    } else {
        format!("replaced the old one: {reason}; ")
    };
    if !s.nightly_present {
        return Ok(Outcome::WouldInstall(format!(
            "cargo +nightly install {BPF_LINKER}@{BPF_LINKER_VERSION} (after installing nightly)"
        )));
    }
    let llvm = NightlyLlvm::find()?;
    if !BPF_LINKER_LLVM.contains(&llvm.major) {
        bail!(
            "the nightly's LLVM is {} ({}), but bpf-linker {BPF_LINKER_VERSION} supports LLVM \
             {}-{} only: install an older nightly, or move to a bpf-linker that supports it",
            llvm.major,
            llvm.file,
            BPF_LINKER_LLVM.start(),
            BPF_LINKER_LLVM.end()
        );
    }
    let prefix = s.cargo_home.join("carp-llvm").join(&llvm.toolchain_id);
    let mut install = command("cargo")?;
    install
        .env("LLVM_PREFIX", &prefix)
        // Outside the workspace, so that no project config applies to the install.
        .current_dir(&s.cargo_home)
        .args(["+nightly", "install"])
        .arg(format!("{BPF_LINKER}@{BPF_LINKER_VERSION}"))
        .args(["--no-default-features", "--features"])
        .arg(format!("llvm-{}", llvm.major))
        .arg("--locked")
        .arg("--root")
        .arg(&s.cargo_home);
    if bin.exists() {
        install.arg("--force");
    }
    if s.dry_run {
        let mut shown = display(&install);
        if !reason.is_empty() {
            shown = format!("{shown} (the one there is unusable: {reason})");
        }
        return Ok(Outcome::WouldInstall(shown));
    }
    make_llvm_prefix(&prefix, &llvm)?;
    run_capture(&mut install)?;
    match linker_status(&bin) {
        Linker::Usable(desc) => Ok(Outcome::Installed(format!(
            "{because}{desc}{}",
            shadow_note(&bin)
        ))),
        Linker::Missing => bail!(
            "`{}` succeeded but {} is missing",
            display(&install),
            bin.display()
        ),
        Linker::Unusable(why) => bail!(
            "`{}` succeeded but {} is unusable: {why}",
            display(&install),
            bin.display()
        ),
    }
}

enum Linker {
    Usable(String),
    Missing,
    Unusable(String),
}

/// Usable means: `bpf-linker --version` runs (so its libLLVM resolves) and says 0.13.
fn linker_status(bin: &Path) -> Linker {
    let out = match Command::new(bin).arg("--version").output() {
        Ok(out) => out,
        Err(err) if err.kind() == ErrorKind::NotFound => return Linker::Missing,
        Err(err) => return Linker::Unusable(format!("cannot run it: {err}")),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().next().unwrap_or("").trim();
        return Linker::Unusable(format!("`--version` failed: {first}"));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(version) = linker_version(&stdout) else {
        return Linker::Unusable(format!("unexpected `--version` output {:?}", stdout.trim()));
    };
    let want = BPF_LINKER_VERSION.rsplit_once('.').map_or("", |(mm, _)| mm);
    if !version.starts_with(&format!("{want}.")) {
        return Linker::Unusable(format!("version {version}, want {want}"));
    }
    let llvm = Command::new("ldd")
        .arg(bin)
        .output()
        .ok()
        .and_then(|o| libllvm_from_ldd(&String::from_utf8_lossy(&o.stdout)));
    match llvm {
        Some(Err(name)) => Linker::Unusable(format!("{name} not found")),
        Some(Ok(path)) => {
            let file = Path::new(&path)
                .file_name()
                .map_or(path.clone(), |f| f.to_string_lossy().into_owned());
            Linker::Usable(format!("{version} with {file}"))
        }
        None => Linker::Usable(version.to_string()),
    }
}

/// `bpf-linker 0.13.0` → `0.13.0`.
fn linker_version(out: &str) -> Option<&str> {
    let mut words = out.split_whitespace();
    (words.next()? == BPF_LINKER).then_some(())?;
    let v = words.next()?;
    v.chars().next()?.is_ascii_digit().then_some(v)
}

/// From `ldd` output: Ok(resolved path) of the libLLVM line, Err(its name) if not found, None
/// if the binary does not link a shared libLLVM.
fn libllvm_from_ldd(out: &str) -> Option<Result<String, String>> {
    let line = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("libLLVM"))?;
    let (name, rest) = line.split_once("=>").unwrap_or((line, ""));
    let path = rest.trim().split(" (").next().unwrap_or("").trim();
    if rest.contains("not found") || path.is_empty() {
        Some(Err(name.trim().to_string()))
    } else {
        Some(Ok(path.to_string()))
    }
}

/// A note if `bpf-linker` on PATH is not the one setup manages (the build uses PATH's).
fn shadow_note(bin: &Path) -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let first = std::env::split_paths(&path)
        .map(|d| d.join(BPF_LINKER))
        .find(|p| p.is_file());
    match first {
        Some(p) if p != bin => format!("; note: {} comes first on PATH", p.display()),
        _ => String::new(),
    }
}

/// The nightly's own libLLVM, which bpf-linker is built against.
struct NightlyLlvm {
    /// `$SYSROOT/lib`.
    lib_dir: PathBuf,
    /// `libLLVM.so.22.1-rust-1.97.0-nightly`.
    file: String,
    major: u32,
    /// `1.97.0-nightly-e50aa6fba`: names the prefix directory.
    toolchain_id: String,
}

impl NightlyLlvm {
    fn find() -> Result<Self> {
        let sysroot = run_capture(command("rustc")?.args(["+nightly", "--print", "sysroot"]))?;
        let lib_dir = Path::new(sysroot.trim()).join("lib");
        let names: Vec<String> = fs::read_dir(&lib_dir)
            .with_context(|| format!("listing {}", lib_dir.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let (file, major) = pick_libllvm(&names)
            .with_context(|| format!("in the nightly's {}", lib_dir.display()))?;
        let toolchain_id = toolchain_id(&nightly_version()?);
        Ok(Self {
            lib_dir,
            file,
            major,
            toolchain_id,
        })
    }
}

/// The one `libLLVM.so.<version>-rust-<rust version>` file name and its LLVM major version.
fn pick_libllvm(names: &[String]) -> Result<(String, u32)> {
    let found: Vec<(&String, u32)> = names
        .iter()
        .filter_map(|n| {
            let version = n.strip_prefix("libLLVM.so.")?.split_once("-rust-")?.0;
            let major = version.split('.').next()?.parse().ok()?;
            Some((n, major))
        })
        .collect();
    match found.as_slice() {
        [(name, major)] => Ok(((*name).clone(), *major)),
        [] => bail!("no libLLVM.so.<version>-rust-<version> file"),
        more => bail!(
            "several libLLVM files, cannot tell which: {}",
            more.iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `rustc 1.97.0-nightly (e50aa6fba 2026-05-19)` → `1.97.0-nightly-e50aa6fba`.
fn toolchain_id(rustc_version: &str) -> String {
    let mut words = rustc_version.split_whitespace().skip(1);
    let version = words.next().unwrap_or("unknown");
    let id = match words.next() {
        Some(hash) => format!("{version}-{}", hash.trim_matches(|c| c == '(' || c == ')')),
        None => version.to_string(),
    };
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `PREFIX/lib/{libLLVM.so, <versioned name>}` → the nightly's libLLVM. bpf-linker's build
/// links `-lLLVM` from there and records `PREFIX/lib` as its RUNPATH, which is why the
/// prefix lives under `$CARGO_HOME` and not in /tmp.
fn make_llvm_prefix(prefix: &Path, llvm: &NightlyLlvm) -> Result<()> {
    let lib = prefix.join("lib");
    fs::create_dir_all(&lib).with_context(|| format!("creating {}", lib.display()))?;
    let target = llvm.lib_dir.join(&llvm.file);
    for name in ["libLLVM.so", llvm.file.as_str()] {
        let link = lib.join(name);
        if fs::read_link(&link).is_ok_and(|t| t == target) {
            continue;
        }
        if link.symlink_metadata().is_ok() {
            fs::remove_file(&link).with_context(|| format!("removing {}", link.display()))?;
        }
        symlink(&target, &link).with_context(|| format!("linking {}", link.display()))?;
    }
    Ok(())
}

fn cargo_fuzz(s: &mut Setup) -> Result<Outcome> {
    let bin = s.cargo_home.join("bin").join("cargo-fuzz");
    if let Ok(out) = Command::new(&bin).arg("--version").output()
        && out.status.success()
    {
        let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
        return Ok(Outcome::Present(v));
    }
    let mut install = command("cargo")?;
    install
        .current_dir(&s.cargo_home)
        .args(["install", "cargo-fuzz", "--locked", "--root"])
        .arg(&s.cargo_home);
    if bin.exists() {
        install.arg("--force");
    }
    if s.dry_run {
        return Ok(Outcome::WouldInstall(display(&install)));
    }
    run_capture(&mut install)?;
    let out = run_capture(Command::new(&bin).arg("--version"))?;
    Ok(Outcome::Installed(out.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nightly_channel_is_found_but_not_a_dated_nightly() {
        let list = "stable-x86_64-unknown-linux-gnu (active, default)\n\
                    nightly-x86_64-unknown-linux-gnu\n1.95.0-x86_64-unknown-linux-gnu\n";
        assert!(has_nightly(list));
        assert!(!has_nightly("stable-x86_64-unknown-linux-gnu (default)\n"));
        assert!(!has_nightly(
            "nightly-2025-01-01-x86_64-unknown-linux-gnu\n"
        ));
        assert!(has_nightly("nightly-aarch64-unknown-linux-gnu (default)\n"));
    }

    #[test]
    fn components_detected_with_and_without_host_triple() {
        let installed = "cargo-x86_64-unknown-linux-gnu\nclippy-x86_64-unknown-linux-gnu\n\
                         rust-src\nrust-std-x86_64-unknown-linux-gnu\n\
                         rustc-x86_64-unknown-linux-gnu\n";
        assert!(missing_components(installed, &["rust-src", "clippy"]).is_empty());
        assert_eq!(
            missing_components(installed, &["rustfmt", "clippy"]),
            vec!["rustfmt"]
        );
        // rust-src missing: rust-std must not count for it.
        let no_src = "rust-std-x86_64-unknown-linux-gnu\nrustc-x86_64-unknown-linux-gnu\n";
        assert_eq!(missing_components(no_src, &["rust-src"]), vec!["rust-src"]);
        // rustc-dev must not count as rustc.
        assert_eq!(
            missing_components("rustc-dev-x86_64-unknown-linux-gnu\n", &["rustc"]),
            vec!["rustc"]
        );
    }

    #[test]
    fn dpkg_status_must_be_fully_installed() {
        let out = "bpftool\tinstall ok installed\nucarp\tdeinstall ok config-files\n\
                   tcpdump\tinstall ok unpacked\n";
        assert_eq!(installed_packages(out), vec!["bpftool"]);
        assert!(installed_packages("").is_empty());
    }

    #[test]
    fn bpffs_mount_line() {
        let yes = "sysfs /sys sysfs rw 0 0\nbpf /sys/fs/bpf bpf rw,relatime,mode=700 0 0\n";
        let other_fs = "none /sys/fs/bpf tmpfs rw 0 0\n";
        let elsewhere = "bpf /run/bpf bpf rw 0 0\n";
        assert!(bpffs_mounted(yes));
        assert!(!bpffs_mounted(other_fs));
        assert!(!bpffs_mounted(elsewhere));
    }

    #[test]
    fn libllvm_file_and_major_are_derived() {
        let names: Vec<String> = [
            "libLLVM-22-rust-1.97.0-nightly.so",
            "libLLVM.so.22.1-rust-1.97.0-nightly",
            "librustc_driver-b5a965480ee51f9a.so",
            "rustlib",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            pick_libllvm(&names).unwrap(),
            ("libLLVM.so.22.1-rust-1.97.0-nightly".to_string(), 22)
        );
        let old = vec!["libLLVM.so.19.1-rust-1.85.0-nightly".to_string()];
        assert_eq!(pick_libllvm(&old).unwrap().1, 19);
        assert!(pick_libllvm(&names[2..]).is_err());
        let two = vec![
            names[1].clone(),
            "libLLVM.so.21.1-rust-1.96.0-nightly".to_string(),
        ];
        assert!(pick_libllvm(&two).is_err());
    }

    #[test]
    fn toolchain_id_from_rustc_version() {
        assert_eq!(
            toolchain_id("rustc 1.97.0-nightly (e50aa6fba 2026-05-19)\n"),
            "1.97.0-nightly-e50aa6fba"
        );
        assert_eq!(toolchain_id("rustc 1.97.0-nightly"), "1.97.0-nightly");
    }

    #[test]
    fn linker_version_and_ldd() {
        assert_eq!(linker_version("bpf-linker 0.13.0\n"), Some("0.13.0"));
        assert_eq!(linker_version("something 0.13.0\n"), None);
        assert_eq!(linker_version(""), None);
        let ok = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibLLVM.so.22.1-rust-1.97.0-nightly => \
                  /root/.cargo/carp-llvm/x/lib/libLLVM.so.22.1-rust-1.97.0-nightly \
                  (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n";
        assert_eq!(
            libllvm_from_ldd(ok),
            Some(Ok(
                "/root/.cargo/carp-llvm/x/lib/libLLVM.so.22.1-rust-1.97.0-nightly".to_string()
            ))
        );
        let missing = "\tlibLLVM.so.22.1-rust-1.97.0-nightly => not found\n";
        assert_eq!(
            libllvm_from_ldd(missing),
            Some(Err("libLLVM.so.22.1-rust-1.97.0-nightly".to_string()))
        );
        assert_eq!(
            libllvm_from_ldd("\tlibc.so.6 => /lib/libc.so.6 (0x1)\n"),
            None
        );
    }

    #[test]
    fn service_starts_denied_then_policy_restored() {
        let dir = std::env::temp_dir().join(format!("xtask-policy-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("policy-rc.d");
        let denies = |p: &Path| fs::read_to_string(p).unwrap().ends_with("exit 101\n");

        // None before: ours while alive, none after.
        {
            let _g = DenyServiceStarts::new(&path).unwrap();
            assert!(denies(&path));
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o755);
        }
        assert!(!path.exists());

        // One before: moved aside, then put back unchanged.
        fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
        {
            let _g = DenyServiceStarts::new(&path).unwrap();
            assert!(denies(&path));
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), "#!/bin/sh\nexit 0\n");
        assert!(!dir.join("policy-rc.d.carp-xtask-saved").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
