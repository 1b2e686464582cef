//! The lab topology: N router hosts and an optional client, each in its own network
//! namespace, each plugged by a veth pair into one Linux bridge that lives in a dedicated
//! "switch" namespace.
//!
//! ```text
//!   ns <id>-h1          ns <id>-h2          ns <id>-client
//!   eth0 192.0.2.11     eth0 192.0.2.12     eth0 192.0.2.100
//!    |                   |                   |
//!   sw-h1 ------------- sw-h2 ------------- sw-client     (ports of br0)
//!                    ns <id>-switch
//! ```
//!
//! Nothing is created in the root namespace: each veth pair is created inside the switch
//! namespace with its peer born directly in the host's namespace. A test cannot disturb the
//! machine's own networking, and deleting the namespaces removes every link.
//!
//! Addresses (documentation ranges, only ever inside the lab):
//! - router `hK` (K = 1, 2, ...): 192.0.2.(10+K)/24 and 2001:db8::(10+K)/64, where the IPv6
//!   group is written with the same digits (h1 = 192.0.2.11 = 2001:db8::11); MAC
//!   02:00:00:00:00:(10+K) in hex, likewise.
//! - client: 192.0.2.100/24, 2001:db8::100/64, MAC 02:00:00:00:01:00.
//! - 192.0.2.1 to .9 and 2001:db8::1 to ::9 are never assigned: use them for virtual
//!   (CARP) addresses.
//!
//! IPv6 DAD is off in the host namespaces (`accept_dad=0` before any interface exists, and
//! `nodad` on the addresses), so addresses are usable at once. The switch namespace has IPv6
//! disabled and the bridge has STP and multicast snooping off, so the switch never sends
//! anything itself and forwards multicast (CARP advertisements, neighbour solicitations)
//! to every port, like a plain hub with learning.
use std::ffi::OsStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::capture::Capture;
use crate::cleanup::{self, BPFFS_ROOT};
use crate::netns::{Netns, NetnsCommand, run_root_ok};
use crate::process::{self, CmdOutput, LabProcess, ProcTable};
use crate::wait::wait_for;
use crate::{LabError, veth_napi_peer};

/// Name of every host's LAN port inside its namespace; carpd attaches XDP to it.
pub const HOST_IFNAME: &str = "eth0";
/// Name of the bridge inside the switch namespace.
pub const BRIDGE: &str = "br0";
/// Prefix length of the IPv4 LAN.
pub const PREFIX4: u8 = 24;
/// Prefix length of the IPv6 LAN.
pub const PREFIX6: u8 = 64;
/// Default deadline for one-shot commands run with [`Host::run`].
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a link may take to show carrier change after a cut or restore.
const CARRIER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest name hint kept in namespace names.
const HINT_MAX: usize = 20;

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSpec {
    /// Number of router hosts (`h1`, `h2`, ...), at most 89.
    pub hosts: usize,
    /// Whether to add a client host.
    pub client: bool,
    /// Whether the hosts get IPv6 addresses. Without, IPv6 is disabled in the host
    /// namespaces altogether, so captures show no IPv6 chatter.
    pub ipv6: bool,
    /// Whether to put every switch-side port in NAPI mode at build, with a native XDP pass
    /// program (see [`Lab::enable_napi_peer`]), so that native-mode XDP_TX from the hosts
    /// reaches the switch. Off by default: a plain bridge port, as users have, where native
    /// XDP_TX from a veth is dropped. Only for tests and benchmarks that measure native mode.
    pub napi_peers: bool,
}

impl Default for LabSpec {
    /// Two routers, a client, IPv4 and IPv6: the smallest CARP failover setup.
    fn default() -> Self {
        LabSpec {
            hosts: 2,
            client: true,
            ipv6: true,
            napi_peers: false,
        }
    }
}

/// A built lab. Dropping it (also while a panic unwinds) kills its processes, deletes its
/// namespaces and removes its pin and work directories.
pub struct Lab {
    id: String,
    switch: Option<Netns>,
    hosts: Vec<Host>,
    client: Option<Host>,
    /// Every namespace created so far, so that a half-built lab is cleaned up too.
    namespaces: Vec<Netns>,
    procs: Arc<ProcTable>,
    workdir: PathBuf,
    pin_dirs: Mutex<Vec<PathBuf>>,
    xdp_links: Mutex<Vec<OwnedFd>>,
    /// Whether every switch-side port runs the NAPI-mode peer program ([`LabSpec::napi_peers`]).
    napi_peers: bool,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("id", &self.id)
            .field("hosts", &self.hosts)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl Lab {
    /// Builds a lab. `name_hint` (e.g. the test name) appears in the namespace names so a
    /// leftover can be traced to its test. Removes stale labs of dead processes first.
    pub fn new(name_hint: &str, spec: LabSpec) -> Result<Lab, LabError> {
        assert!(spec.hosts <= 89, "at most 89 hosts (addresses .11 to .99)");
        cleanup::sweep_stale_once();
        let id = cleanup::new_lab_id();
        let workdir = cleanup::workdir_for(&id);
        std::fs::create_dir_all(&workdir)
            .map_err(|e| LabError::io("create lab work directory", &workdir, e))?;
        let mut lab = Lab {
            id,
            switch: None,
            hosts: Vec::new(),
            client: None,
            namespaces: Vec::new(),
            procs: Arc::default(),
            workdir,
            pin_dirs: Mutex::new(Vec::new()),
            xdp_links: Mutex::new(Vec::new()),
            napi_peers: spec.napi_peers,
        };
        // On error, `lab` is dropped here and removes whatever was built.
        lab.build(&sanitize_hint(name_hint), &spec)?;
        Ok(lab)
    }

    fn build(&mut self, hint: &str, spec: &LabSpec) -> Result<(), LabError> {
        let switch = self.create_netns(hint, "switch")?;
        sysctl(
            &switch,
            &[
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
        )?;
        ip(
            &switch,
            &format!("link add {BRIDGE} type bridge stp_state 0 mcast_snooping 0"),
        )?;
        ip(&switch, &format!("link set {BRIDGE} up"))?;
        self.switch = Some(switch);

        for k in 1..=spec.hosts {
            let host = self.add_host(hint, &format!("h{k}"), 10 + k as u16, spec.ipv6)?;
            self.hosts.push(host);
        }
        if spec.client {
            self.client = Some(self.add_host(hint, "client", 100, spec.ipv6)?);
        }
        if spec.napi_peers {
            for host in self.hosts.iter().chain(&self.client) {
                self.attach_napi_peer(host)?;
            }
        }
        for host in self.hosts.iter().chain(&self.client) {
            wait_for(
                &format!("carrier on {} in {}", host.ifname, host.netns),
                CARRIER_TIMEOUT,
                || host.has_carrier(),
            )?;
        }
        Ok(())
    }

    fn create_netns(&mut self, hint: &str, role: &str) -> Result<Netns, LabError> {
        let ns = Netns::create(&format!("{}-{hint}-{role}", self.id))?;
        self.namespaces.push(ns.clone());
        Ok(ns)
    }

    /// Creates host `role` with address number `n` (192.0.2.n, 2001:db8::n with the same
    /// digits) and plugs it into the switch.
    fn add_host(&mut self, hint: &str, role: &str, n: u16, ipv6: bool) -> Result<Host, LabError> {
        let ns = self.create_netns(hint, role)?;
        let switch = self.switch.clone().expect("switch is built first");
        if ipv6 {
            sysctl(
                &ns,
                &[
                    "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.accept_dad=0",
                ],
            )?;
        } else {
            sysctl(
                &ns,
                &[
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ],
            )?;
        }
        let addr4 = Ipv4Addr::new(192, 0, 2, n as u8);
        let digits = u16::from_str_radix(&n.to_string(), 16).expect("decimal digits are hex");
        let addr6 = ipv6.then(|| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, digits));
        let mac = [0x02, 0, 0, 0, (digits >> 8) as u8, digits as u8];
        let mac_text = format_mac(&mac);
        let port = format!("sw-{role}");

        // Both ends are born in their namespaces: nothing ever appears in the root one.
        ip(
            &switch,
            &format!(
                "link add {port} type veth peer name {HOST_IFNAME} address {mac_text} netns {ns}"
            ),
        )?;
        ip(&switch, &format!("link set {port} master {BRIDGE} up"))?;
        ip(&ns, "link set lo up")?;
        ip(&ns, &format!("link set {HOST_IFNAME} up"))?;
        ip(
            &ns,
            &format!("addr add {addr4}/{PREFIX4} dev {HOST_IFNAME}"),
        )?;
        if let Some(addr6) = addr6 {
            ip(
                &ns,
                &format!("addr add {addr6}/{PREFIX6} dev {HOST_IFNAME} nodad"),
            )?;
        }
        let (ifindex, read_mac) = link_info(&ns, HOST_IFNAME)?;
        debug_assert_eq!(read_mac, mac);
        Ok(Host {
            name: role.to_owned(),
            netns: ns,
            switch,
            switch_port: port,
            ifname: HOST_IFNAME.to_owned(),
            ifindex,
            mac: read_mac,
            addr4,
            addr6,
            procs: Arc::clone(&self.procs),
            workdir: self.workdir.clone(),
            spawned: AtomicU32::new(0),
        })
    }

    /// The lab's unique id, `carplab-<pid>-<n>-<random>`: a prefix of all its namespace
    /// names, and the name of its pin and work directories.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The router hosts, in order (`h1` first).
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Router host by zero-based index: `host(0)` is `h1`. Panics if there is none.
    pub fn host(&self, index: usize) -> &Host {
        self.hosts.get(index).unwrap_or_else(|| {
            panic!(
                "lab {} has {} hosts, no index {index}",
                self.id,
                self.hosts.len()
            )
        })
    }

    /// The client host. Panics if the lab was built without one.
    pub fn client(&self) -> &Host {
        self.client
            .as_ref()
            .unwrap_or_else(|| panic!("lab {} was built without a client", self.id))
    }

    /// Every host: routers, then the client.
    pub fn all_hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter().chain(&self.client)
    }

    /// The switch namespace's name.
    pub fn switch_netns(&self) -> &str {
        self.switch.as_ref().expect("built").name()
    }

    /// Sets the bridge's MAC ageing time (`ageing_time`, kernel default 300 s): how long a
    /// learnt source MAC stays on its port without a frame from it. A short one shows
    /// whether a daemon keeps its MAC learnt by itself (adverts) rather than by clients.
    pub fn set_bridge_ageing(&self, ageing: Duration) -> Result<(), LabError> {
        let switch = self.switch.as_ref().expect("built");
        // iproute2 takes the bridge's ageing time in centiseconds.
        let centis = ageing.as_millis() / 10;
        ip(
            switch,
            &format!("link set {BRIDGE} type bridge ageing_time {centis}"),
        )
        .map(drop)
    }

    /// The switch ports whose learnt (not permanent) forwarding entry is `mac`, from
    /// `bridge fdb show br br0`; empty when the bridge has not learnt it (or it aged out).
    pub fn fdb_ports(&self, mac: &[u8; 6]) -> Result<Vec<String>, LabError> {
        let switch = self.switch.as_ref().expect("built");
        let out = bridge(switch, &format!("fdb show br {BRIDGE}"))?;
        Ok(parse_fdb_ports(&out, mac))
    }

    /// Names of all the lab's namespaces (switch and hosts).
    pub fn netns_names(&self) -> Vec<String> {
        self.namespaces
            .iter()
            .map(|ns| ns.name().to_owned())
            .collect()
    }

    /// Directory for logs and captures; removed with the lab.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// Registers a directory (normally under /sys/fs/bpf) to be removed recursively when the
    /// lab is dropped, after its processes are gone and its interfaces deleted.
    pub fn register_pin_dir(&self, path: impl Into<PathBuf>) {
        let path = path.into();
        let mut dirs = self.pin_dirs.lock().unwrap_or_else(|e| e.into_inner());
        if !dirs.contains(&path) {
            dirs.push(path);
        }
    }

    /// The lab's own bpffs directory, `/sys/fs/bpf/<lab id>`, registered for removal.
    /// Not created: loaders create what they pin into.
    pub fn pin_root(&self) -> PathBuf {
        let root = Path::new(BPFFS_ROOT).join(&self.id);
        self.register_pin_dir(&root);
        root
    }

    /// A pin directory `/sys/fs/bpf/<lab id>/<name>` for one loader or daemon; the same name
    /// gives the same path. Removed with the lab.
    pub fn pin_dir(&self, name: &str) -> PathBuf {
        self.pin_root().join(name)
    }

    /// Whether the lab was built with the NAPI-mode peer program on every switch-side port
    /// (then native XDP works on the hosts' veths; otherwise the lab is what users have).
    pub fn napi_peers(&self) -> bool {
        self.napi_peers
    }

    /// Puts the switch-side port of router `index` (zero-based) in NAPI mode, by attaching a
    /// native XDP pass program to it, so that frames the host's native-mode XDP program sends
    /// with XDP_TX are received by the switch (a veth delivers those only to a peer in NAPI
    /// mode). For measurements of native mode; stays attached for the lab's lifetime.
    pub fn enable_napi_peer(&self, index: usize) -> Result<(), LabError> {
        self.attach_napi_peer(self.host(index))
    }

    fn attach_napi_peer(&self, host: &Host) -> Result<(), LabError> {
        let switch = self.switch.as_ref().expect("built");
        let port = host.switch_port.clone();
        let (ifindex, _) = link_info(switch, &port)?;
        let link = switch
            .enter(move || veth_napi_peer::attach_native(ifindex))?
            .map_err(|e| {
                LabError::sys(
                    format!("attach the NAPI-mode XDP pass program to {port}"),
                    Some(switch.name()),
                    e,
                )
            })?;
        self.xdp_links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(link);
        Ok(())
    }

    /// On a failing test: the tail of every process log, since the files go with the lab.
    fn dump_logs(&self) {
        let Ok(entries) = std::fs::read_dir(&self.workdir) else {
            return;
        };
        for path in entries.filter_map(|e| Some(e.ok()?.path())) {
            if path.extension() != Some(OsStr::new("log")) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!(
                "--- lab {}: {} (last {} lines)",
                self.id,
                path.display(),
                tail.len()
            );
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Lab {
    /// Order matters: processes first (they hold BPF links and sockets, and a namespace with
    /// a process in it outlives its name), then the namespaces (deleting them removes the
    /// veths and so detaches XDP programs), then the pins, then the files.
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        self.procs.kill_all();
        for ns in &self.namespaces {
            // Children of spawned processes, or processes started by tests some other way.
            let strays = cleanup::kill_netns_processes(ns);
            if !strays.is_empty() {
                eprintln!("lab cleanup: killed stray processes {strays:?} in {ns}");
            }
        }
        self.xdp_links
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        // Hosts first, the switch last: the reverse of creation.
        for ns in self.namespaces.iter().rev() {
            if let Err(e) = ns.delete() {
                eprintln!("lab cleanup: {e}");
            }
        }
        let pin_dirs = std::mem::take(self.pin_dirs.get_mut().unwrap_or_else(|e| e.into_inner()));
        for dir in pin_dirs.iter().chain([&self.workdir]) {
            if let Err(e) = cleanup::remove_dir_all(dir) {
                eprintln!("lab cleanup: remove {}: {e}", dir.display());
            }
        }
    }
}

/// One host of a lab: a namespace with one LAN port (`eth0`) plugged into the switch.
pub struct Host {
    name: String,
    netns: Netns,
    switch: Netns,
    switch_port: String,
    ifname: String,
    ifindex: u32,
    mac: [u8; 6],
    addr4: Ipv4Addr,
    addr6: Option<Ipv6Addr>,
    procs: Arc<ProcTable>,
    workdir: PathBuf,
    spawned: AtomicU32,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.name)
            .field("netns", &self.netns.name())
            .field("ifindex", &self.ifindex)
            .field("mac", &format_mac(&self.mac))
            .field("addr4", &self.addr4)
            .field("addr6", &self.addr6)
            .finish()
    }
}

impl Host {
    /// `h1`, `h2`, ... or `client`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's name (for `ip -n`, `ip netns exec`).
    pub fn netns(&self) -> &str {
        self.netns.name()
    }

    /// The namespace handle.
    pub fn netns_handle(&self) -> &Netns {
        &self.netns
    }

    /// The LAN port's name inside the namespace: always `eth0`.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The LAN port's ifindex inside the namespace.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The LAN port's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The LAN port's IPv4 address (prefix [`PREFIX4`]).
    pub fn addr4(&self) -> Ipv4Addr {
        self.addr4
    }

    /// The LAN port's IPv6 address (prefix [`PREFIX6`]); `None` in an IPv4-only lab.
    pub fn addr6(&self) -> Option<Ipv6Addr> {
        self.addr6
    }

    /// The switch-side end of the host's veth pair (in the switch namespace).
    pub fn switch_port(&self) -> &str {
        &self.switch_port
    }

    /// A command that runs in this host's namespace; spawn it with
    /// [`Host::spawn_command`] or run it with [`Host::run_command`].
    pub fn command<I, S>(&self, args: I) -> NetnsCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.netns.command(args)
    }

    /// Runs `args` in the namespace and returns its output, whatever the exit status. Killed
    /// after [`COMMAND_TIMEOUT`]; use bounded commands (`ping -c 1 -W 1`).
    pub fn run<I, S>(&self, args: I) -> Result<CmdOutput, LabError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        process::run(self.command(args), COMMAND_TIMEOUT)
    }

    /// [`Host::run`], failing unless the command exits 0.
    pub fn run_ok<I, S>(&self, args: I) -> Result<CmdOutput, LabError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        process::run_ok(self.command(args), COMMAND_TIMEOUT)
    }

    /// Runs a prepared command (e.g. with environment variables) with a deadline.
    pub fn run_command(&self, cmd: NetnsCommand, timeout: Duration) -> Result<CmdOutput, LabError> {
        process::run(cmd, timeout)
    }

    /// One `ping -c 1 -W 1` to `addr`: true if answered. Bounded to about a second.
    pub fn ping(&self, addr: impl Into<IpAddr>) -> Result<bool, LabError> {
        let addr = addr.into().to_string();
        Ok(self
            .run(["ping", "-n", "-c", "1", "-W", "1", &addr])?
            .success())
    }

    /// Starts a long-running process in the namespace, its stdout and stderr going to a log
    /// file in the lab's work directory ([`LabProcess::log`]). Killed when the returned
    /// handle or the lab is dropped.
    pub fn spawn<I, S>(&self, args: I) -> Result<LabProcess, LabError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let program = args
            .first()
            .and_then(|p| Path::new(p).file_name())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let n = self.spawned.fetch_add(1, Ordering::Relaxed);
        let log = self
            .workdir
            .join(format!("{}-{n}-{program}.log", self.name));
        let file = std::fs::File::create(&log).map_err(|e| LabError::io("create log", &log, e))?;
        let file2 = file
            .try_clone()
            .map_err(|e| LabError::io("dup log", &log, e))?;
        let mut cmd = self.command(args);
        cmd.stdout(file).stderr(file2);
        self.procs
            .spawn(cmd, format!("{}/{program}", self.name), Some(log))
    }

    /// Starts a prepared command (from [`Host::command`]) with the stdio it was given.
    pub fn spawn_command(&self, cmd: NetnsCommand) -> Result<LabProcess, LabError> {
        let label = format!("{}/{}", self.name, cmd.get_program().to_string_lossy());
        self.procs.spawn(cmd, label, None)
    }

    pub(crate) fn spawn_command_labelled(
        &self,
        cmd: NetnsCommand,
        what: &str,
    ) -> Result<LabProcess, LabError> {
        self.procs.spawn(cmd, format!("{}/{what}", self.name), None)
    }

    /// Runs `f` on a thread inside the host's namespace (see [`Netns::enter`]): for loading
    /// XDP programs or opening sockets there.
    pub fn in_netns<F, T>(&self, f: F) -> Result<T, LabError>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        self.netns.enter(f)
    }

    /// Pulls the cable: sets the *switch-side* veth down, so the host's `eth0` stays
    /// administratively up but loses carrier (NO-CARRIER, operstate DOWN), which is what a
    /// daemon sees when a real cable is pulled or the switch port dies. Setting the host side
    /// down instead would be an administrator's `ip link set down`, a different event.
    /// Returns once the host sees the carrier loss.
    pub fn cut_link(&self) -> Result<(), LabError> {
        self.set_switch_port("down")?;
        wait_for(
            &format!("carrier loss on {} in {}", self.ifname, self.netns),
            CARRIER_TIMEOUT,
            || !self.has_carrier(),
        )
        .map(drop)
    }

    /// Plugs the cable back in (switch-side veth up); returns once the host has carrier.
    /// With STP off the bridge port forwards at once.
    pub fn restore_link(&self) -> Result<(), LabError> {
        self.set_switch_port("up")?;
        wait_for(
            &format!("carrier on {} in {}", self.ifname, self.netns),
            CARRIER_TIMEOUT,
            || self.has_carrier(),
        )
        .map(drop)
    }

    /// Isolates this host's switch port, or ends the isolation (`bridge link set dev PORT
    /// isolated on|off`): isolated ports cannot reach each other but still reach every port
    /// that is not isolated. Isolating two routers' ports partitions the routers from each
    /// other while both keep the client.
    pub fn set_port_isolated(&self, isolated: bool) -> Result<(), LabError> {
        let state = if isolated { "on" } else { "off" };
        bridge(
            &self.switch,
            &format!("link set dev {} isolated {state}", self.switch_port),
        )
        .map(drop)
    }

    fn set_switch_port(&self, state: &str) -> Result<(), LabError> {
        ip(
            &self.switch,
            &format!("link set {} {state}", self.switch_port),
        )
        .map(drop)
    }

    /// Whether the host's LAN port has carrier (LOWER_UP).
    pub fn has_carrier(&self) -> bool {
        ip(&self.netns, &format!("-o link show dev {}", self.ifname))
            .is_ok_and(|line| link_flags(&line).is_some_and(|f| f.contains(&"LOWER_UP")))
    }

    /// The switch namespace this host is plugged into.
    pub fn switch_netns(&self) -> &Netns {
        &self.switch
    }

    /// Starts tcpdump on the switch port of this host's cable, keeping only what the host
    /// sent (see [`Capture`]); `snaplen` 0 keeps whole frames. Returns once capturing.
    pub fn capture_sent(&self, filter: &str, snaplen: u32) -> Result<Capture, LabError> {
        let n = self.spawned.fetch_add(1, Ordering::Relaxed);
        let path = self.workdir.join(format!("{}-sent-{n}.pcap", self.name));
        Capture::start_at_switch(self, filter, snaplen, path)
    }

    /// Starts tcpdump on the host's LAN port with a pcap `filter` ("" for everything) and
    /// returns once it is capturing. The file goes to the lab's work directory.
    pub fn capture(&self, filter: &str) -> Result<Capture, LabError> {
        let n = self.spawned.fetch_add(1, Ordering::Relaxed);
        let path = self.workdir.join(format!("{}-{n}.pcap", self.name));
        Capture::start(self, filter, path)
    }
}

/// Runs `ip -n NS ARGS` (ARGS split at whitespace; lab names never contain any) and returns
/// its stdout, failing with its stderr.
fn ip(ns: &Netns, args: &str) -> Result<String, LabError> {
    let mut argv = vec!["ip", "-n", ns.name()];
    argv.extend(args.split_whitespace());
    run_root_ok(&argv)
}

/// Runs `bridge -n NS ARGS` and returns its stdout, failing with its stderr.
fn bridge(ns: &Netns, args: &str) -> Result<String, LabError> {
    let mut argv = vec!["bridge", "-n", ns.name()];
    argv.extend(args.split_whitespace());
    run_root_ok(&argv)
}

/// The ports of the learnt entries for `mac` in `bridge fdb show` output, e.g.
/// `00:00:5e:00:01:01 dev sw-h1 master br0` (permanent entries are the ports' own MACs).
fn parse_fdb_ports(fdb: &str, mac: &[u8; 6]) -> Vec<String> {
    let want = format_mac(mac);
    fdb.lines()
        .filter(|l| {
            let mut words = l.split_whitespace();
            words.next().is_some_and(|m| m.eq_ignore_ascii_case(&want))
                && !l.split_whitespace().any(|w| w == "permanent")
        })
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "dev")?;
            words.next().map(str::to_owned)
        })
        .collect()
}

/// Sets sysctls in a namespace.
fn sysctl(ns: &Netns, settings: &[&str]) -> Result<(), LabError> {
    let mut cmd = ns.command(["sysctl", "-q", "-w"]);
    cmd.args(settings).stdout(Stdio::null());
    process::run_ok(cmd, COMMAND_TIMEOUT).map(drop)
}

/// Ifindex and MAC of `ifname` in `ns`, from `ip -o link show`.
fn link_info(ns: &Netns, ifname: &str) -> Result<(u32, [u8; 6]), LabError> {
    let line = ip(ns, &format!("-o link show dev {ifname}"))?;
    parse_link_line(&line).ok_or_else(|| LabError::Parse {
        what: format!("ifindex and MAC of {ifname} in {ns}"),
        text: line,
    })
}

/// Parses `5: eth0@if4: <BROADCAST,...> mtu 1500 ... link/ether 02:00:00:00:00:11 brd ...`.
fn parse_link_line(line: &str) -> Option<(u32, [u8; 6])> {
    let ifindex = line.split(':').next()?.trim().parse().ok()?;
    let mut words = line.split_whitespace();
    words.find(|w| *w == "link/ether")?;
    let mac = parse_mac(words.next()?)?;
    Some((ifindex, mac))
}

/// The `<...>` flag list of an `ip -o link` line.
fn link_flags(line: &str) -> Option<Vec<&str>> {
    let start = line.find('<')? + 1;
    let end = start + line[start..].find('>')?;
    Some(line[start..end].split(',').collect())
}

/// `aa:bb:cc:dd:ee:ff` to bytes.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Bytes to `aa:bb:cc:dd:ee:ff`, as `ip`, arping and tcpdump print MACs.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Keeps `[a-z0-9_]`, maps the rest to `_`, and shortens: namespace names stay readable and
/// `-` stays the separator the sweep relies on.
pub(crate) fn sanitize_hint(hint: &str) -> String {
    let mut out: String = hint
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() { c } else { '_' }
        })
        .take(HINT_MAX)
        .collect();
    if out.is_empty() {
        out.push_str("lab");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_link_lines() {
        let line = "7: eth0@if6: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP \
                    mode DEFAULT group default qlen 1000\\    link/ether 02:00:00:00:00:11 brd \
                    ff:ff:ff:ff:ff:ff link-netns carplab-1-0-abcd-x-switch";
        assert_eq!(parse_link_line(line), Some((7, [2, 0, 0, 0, 0, 0x11])));
        assert_eq!(
            link_flags(line),
            Some(vec!["BROADCAST", "MULTICAST", "UP", "LOWER_UP"])
        );
        assert_eq!(parse_link_line("garbage"), None);
    }

    #[test]
    fn parses_learnt_fdb_entries() {
        let fdb = "33:33:00:00:00:01 dev br0 self permanent\n\
                   02:00:00:00:00:11 dev sw-h1 master br0 \n\
                   00:00:5e:00:01:01 dev sw-h2 master br0 \n\
                   00:00:5e:00:01:01 dev sw-h1 vlan 1 master br0 permanent\n";
        let vmac = [0, 0, 0x5e, 0, 1, 1];
        assert_eq!(parse_fdb_ports(fdb, &vmac), vec!["sw-h2".to_owned()]);
        assert!(parse_fdb_ports(fdb, &[0, 0, 0x5e, 0, 1, 2]).is_empty());
    }

    #[test]
    fn macs_round_trip() {
        let mac = [0x00, 0x00, 0x5e, 0x00, 0x01, 0xfe];
        assert_eq!(format_mac(&mac), "00:00:5e:00:01:fe");
        assert_eq!(parse_mac("00:00:5E:00:01:FE"), Some(mac));
        assert_eq!(parse_mac("00:00:5e:00:01"), None);
        assert_eq!(parse_mac("00:00:5e:00:01:fe:00"), None);
    }

    /// Tests hand labs and hosts to threads (parallel builds, closures in `in_netns`).
    #[test]
    fn lab_and_host_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Lab>();
        check::<Host>();
        check::<crate::LabProcess>();
        check::<crate::Capture>();
    }

    #[test]
    fn hints_are_sanitized() {
        assert_eq!(sanitize_hint("xdp-netns answers"), "xdp_netns_answers");
        assert_eq!(sanitize_hint(""), "lab");
        assert_eq!(sanitize_hint(&"a".repeat(50)).len(), HINT_MAX);
    }
}
