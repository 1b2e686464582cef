//! carpd: the CARP daemon. Parses the command line, sets up logging, and hands over to
//! `carp_daemon::daemon`.
use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

/// CARP (OpenBSD's Common Address Redundancy Protocol) for Linux, with an XDP dataplane.
///
/// carpd runs the CARP elections for the carp interfaces described by its configuration
/// files: OpenBSD hostname.carpN files, unchanged (the interface name is the file's suffix),
/// and/or a TOML file for what those cannot say. While this host is MASTER for a vhid, the
/// XDP program on the carpdev answers ARP and neighbour solicitations for its addresses with
/// the virtual MAC 00:00:5e:00:01:xx (xx: the vhid); as BACKUP it keeps silent. If carpd dies, the
/// dataplane falls silent by itself within two advertisement intervals.
///
/// Signals: SIGTERM/SIGINT hand over (a master sends a bow-out advertisement so a backup takes
/// over at once), then remove everything carpd created. SIGHUP reloads the configuration and
/// applies only what changed.
#[derive(Debug, Parser)]
#[command(name = "carpd", version, verbatim_doc_comment)]
struct Args {
    /// A configuration file: hostname.carpN (OpenBSD syntax) or *.toml. Repeatable.
    #[arg(
        short = 'c',
        long = "config",
        value_name = "PATH",
        required_unless_present_any = ["generate_man", "generate_completions"]
    )]
    config: Vec<PathBuf>,
    /// Validate the configuration, and check that the pin directory is on a bpf filesystem,
    /// then exit: 0 if carpd could start with it, 1 with every error listed if not.
    #[arg(long)]
    check: bool,
    /// Directory for the control socket and runtime files [default: /run/carpd, or the TOML
    /// file's daemon.state_dir].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Directory for state kept across reboots (the persisted maintenance demotion of
    /// `carpctl -g GROUP carpdemote N --persist`) [default: /var/lib/carpd, or the TOML file's
    /// daemon.lib_dir].
    #[arg(long, value_name = "DIR")]
    lib_dir: Option<PathBuf>,
    /// bpffs directory for the pinned maps and XDP links [default: /sys/fs/bpf/carp, or the
    /// TOML file's daemon.pin_dir]. Give each daemon on one host its own: carpd locks it, and
    /// a second carpd on the same directory refuses to start.
    #[arg(long, value_name = "DIR")]
    pin_dir: Option<PathBuf>,
    /// Take over from a less preferred master, as OpenBSD's net.inet.carp.preempt=1.
    #[arg(long)]
    preempt: bool,
    /// Start with group carp demoted by N (OpenBSD demotes by 128 at boot), so this host
    /// cannot become master before it is ready; lift it with `carpctl -g carp -carpdemote N`.
    #[arg(long, value_name = "N")]
    boot_demote: Option<u8>,
    /// Serve Prometheus metrics on ADDR (e.g. 127.0.0.1:9712) at /metrics.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Run the event loop under SCHED_FIFO at priority N (1-99; below 50, the kernel's
    /// interrupt threads, is sensible) with all of carpd's memory locked (mlockall), and
    /// the advert pacer while it paces an interval under 100 ms, and the pacer's standby;
    /// hooks and health checks run under the normal policy (SCHED_RESET_ON_FORK). Needs
    /// CAP_SYS_NICE and CAP_IPC_LOCK [default: the TOML file's daemon.realtime_priority, or
    /// the normal scheduler].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=99))]
    realtime_priority: Option<u8>,
    /// XDP attach mode on the carpdevs. auto chooses per carpdev and logs its choice and why:
    /// on a veth, native only if its peer is in this namespace and has a native XDP program
    /// (without one, native XDP_TX never reaches the peer), generic otherwise; on other
    /// drivers native, or generic if the driver refuses native.
    #[arg(long, value_enum, default_value_t = XdpModeArg::Auto)]
    xdp_mode: XdpModeArg,
    /// Size in bytes of the ring buffer that hands received adverts to carpd (a power of two,
    /// a multiple of the page size) [default: 262144]. For tests that need a small one.
    #[arg(long, value_name = "BYTES", hide = true, value_parser = parse_ring_bytes)]
    advert_ring_bytes: Option<u32>,
    /// Print a shell completion script for SHELL (bash, zsh, fish, elvish, powershell) and exit.
    #[arg(long, value_name = "SHELL", exclusive = true)]
    generate_completions: Option<clap_complete::Shell>,
    /// Print carpd(8), the man page generated from these definitions, and exit.
    #[arg(long, exclusive = true)]
    generate_man: bool,
    /// Log filter (tracing-subscriber EnvFilter syntax); RUST_LOG overrides it.
    #[arg(long, default_value = "info")]
    log: String,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum XdpModeArg {
    /// Per carpdev: generic on a veth whose peer would drop native XDP_TX, native elsewhere.
    Auto,
    /// In the driver. On a veth, answers arrive only if its peer has a native XDP program.
    Native,
    /// In the network stack: slower, works on every interface.
    Generic,
}

fn parse_ring_bytes(text: &str) -> Result<u32, String> {
    let bytes: u32 = text.parse().map_err(|e| format!("{e}"))?;
    carp_daemon::dataplane::check_ring_bytes(bytes).map_err(|e| e.to_string())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(shell) = args.generate_completions {
        use clap::CommandFactory;
        clap_complete::generate(shell, &mut Args::command(), "carpd", &mut std::io::stdout());
        return Ok(());
    }
    if args.generate_man {
        use clap::CommandFactory;
        clap_mangen::Man::new(Args::command())
            .section("8")
            .render(&mut std::io::stdout())?;
        return Ok(());
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&args.log))
        .context("invalid --log filter")?;
    // Colours only on a terminal: escape codes in a log file or the journal are noise, and
    // they break `grep to=MASTER`.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();

    if args.check {
        return match carp_daemon::daemon::load_config(&args.config) {
            Ok(config) => {
                println!(
                    "configuration OK: {} carp interface(s)",
                    config.interfaces.len()
                );
                // The same pin directory carpd would use, and the same check it makes first.
                let pin_dir = args.pin_dir.unwrap_or(config.daemon.pin_dir);
                if let Err(err) = carp_daemon::dataplane::check_pin_dir(&pin_dir) {
                    eprintln!("{err}");
                    std::process::exit(1);
                }
                Ok(())
            }
            Err(err) => {
                eprintln!("{err}");
                std::process::exit(1);
            }
        };
    }
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!("carpd must run as root (it loads XDP programs and manages interfaces)");
    }
    let opts = carp_daemon::daemon::DaemonOptions {
        config_paths: args.config,
        state_dir: args.state_dir,
        lib_dir: args.lib_dir,
        pin_dir: args.pin_dir,
        preempt: args.preempt,
        boot_demote: args.boot_demote,
        metrics: args.metrics,
        xdp_mode: match args.xdp_mode {
            XdpModeArg::Auto => carp_daemon::dataplane::AttachMode::Auto,
            XdpModeArg::Native => carp_daemon::dataplane::AttachMode::Native,
            XdpModeArg::Generic => carp_daemon::dataplane::AttachMode::Generic,
        },
        advert_ring_bytes: args.advert_ring_bytes,
        realtime_priority: args.realtime_priority,
    };
    carp_daemon::daemon::run(opts)?;
    Ok(())
}
