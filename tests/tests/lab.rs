//! The lab harness itself: connectivity, cut and restore, processes, captures, and above all
//! that nothing of a lab survives it (namespaces, links, processes, pins, files), also when
//! the test panics, when labs are built in parallel, or when the test run was killed.
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use carp_tests::{Lab, LabSpec, Signal, require_root, wait_until};

/// What must be gone once a lab is dropped.
struct Leftovers {
    id: String,
    pids: Vec<u32>,
    paths: Vec<std::path::PathBuf>,
}

impl Leftovers {
    fn of(lab: &Lab) -> Leftovers {
        Leftovers {
            id: lab.id().to_owned(),
            pids: Vec::new(),
            paths: vec![lab.workdir().to_owned()],
        }
    }

    fn assert_gone(&self) {
        let netns = stdout(&["ip", "netns", "list"]);
        assert!(!netns.contains(&self.id), "namespaces left: {netns}");
        // Nothing is ever created in the root namespace; prove it stays that way.
        let links = stdout(&["ip", "-o", "link"]);
        assert!(
            !links.contains(&self.id),
            "root namespace links left: {links}"
        );
        for pid in &self.pids {
            assert!(!alive(*pid), "process {pid} still running");
        }
        for path in &self.paths {
            assert!(!path.exists(), "{} still exists", path.display());
        }
    }
}

/// A process that exists and is not a zombie. Strays the lab killed were reparented to init,
/// which reaps them in its own time; a zombie has exited all the same.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        !matches!(state, Some('Z' | 'X'))
    })
}

fn stdout(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run tool");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ping_cut_restore_and_nothing_left_behind() {
    if !require_root("ping_cut_restore_and_nothing_left_behind") {
        return;
    }
    let started = Instant::now();
    let lab = Lab::new(
        "lab_ping",
        LabSpec {
            hosts: 2,
            client: true,
            ipv6: true,
            // Exercised here so that plain connectivity is proven with it too.
            napi_peers: true,
        },
    )
    .unwrap();
    eprintln!("lab built in {:?}", started.elapsed());
    let mut leftovers = Leftovers::of(&lab);
    let (client, h1, h2) = (lab.client(), lab.host(0), lab.host(1));

    // The address plan and the port names are what later tests rely on.
    assert_eq!(h1.addr4().to_string(), "192.0.2.11");
    assert_eq!(h1.addr6().unwrap().to_string(), "2001:db8::11");
    assert_eq!(h2.addr4().to_string(), "192.0.2.12");
    assert_eq!(client.addr4().to_string(), "192.0.2.100");
    assert_eq!(client.addr6().unwrap().to_string(), "2001:db8::100");
    assert_eq!(h1.mac(), [0x02, 0, 0, 0, 0, 0x11]);
    assert_eq!(h1.ifname(), "eth0");
    assert_eq!(h1.switch_port(), "sw-h1");
    let addrs = h1
        .run_ok(["ip", "-o", "addr", "show", "dev", "eth0"])
        .unwrap()
        .stdout;
    assert!(
        addrs.contains("192.0.2.11/24") && addrs.contains("2001:db8::11/64"),
        "{addrs}"
    );
    assert!(!addrs.contains("tentative"), "DAD is off: {addrs}");
    let port = stdout(&[
        "ip",
        "-n",
        lab.switch_netns(),
        "-o",
        "link",
        "show",
        "sw-h1",
    ]);
    assert!(
        port.contains("xdp"),
        "NAPI-mode XDP pass program on the switch port: {port}"
    );
    // Code run with in_netns sees the host's interfaces.
    let ifindex = h1
        // SAFETY: if_nametoindex(3) reads a NUL-terminated name that outlives the call.
        .in_netns(|| unsafe { nix::libc::if_nametoindex(c"eth0".as_ptr()) })
        .unwrap();
    assert_eq!(ifindex, h1.ifindex());

    // Connectivity, both families, captured on the client.
    let capture = client.capture("icmp or icmp6").unwrap();
    assert!(client.ping(h1.addr4()).unwrap(), "IPv4 ping h1");
    assert!(client.ping(h1.addr6().unwrap()).unwrap(), "IPv6 ping h1");
    let pcap = capture.stop_and_read().unwrap();
    let echo_reply_from_h1 = pcap.packets.iter().any(|p| {
        // Ethernet source h1, IPv4, ICMP, type 0 (echo reply).
        p.data.len() > 34
            && p.data[6..12] == h1.mac()
            && p.data[12..14] == [8, 0]
            && p.data[23] == 1
            && p.data[34] == 0
    });
    assert!(
        echo_reply_from_h1,
        "no echo reply from h1 in {} packets",
        pcap.packets.len()
    );

    // Pull h1's cable: h1 sees no carrier, pings fail (bounded by -W 1).
    h1.cut_link().unwrap();
    assert!(!h1.has_carrier());
    assert!(
        !client.ping(h1.addr4()).unwrap(),
        "IPv4 ping through a cut link"
    );
    assert!(
        !client.ping(h1.addr6().unwrap()).unwrap(),
        "IPv6 ping through a cut link"
    );
    assert!(client.ping(h2.addr4()).unwrap(), "h2 is unaffected");
    h1.restore_link().unwrap();
    let took = wait_until(Duration::from_secs(10), || {
        client.ping(h1.addr4()).unwrap() && client.ping(h1.addr6().unwrap()).unwrap()
    })
    .expect("pings work again after restore");
    eprintln!("pings back {took:?} after restore");

    // Processes: one left running for the lab to kill, one stopped with a signal.
    let sleeper = h2.spawn(["sleep", "1000"]).unwrap();
    leftovers.pids.push(sleeper.pid());
    std::mem::forget(sleeper); // Not even the handle's drop: the lab alone must kill it.
    let shell = h2
        .spawn(["sh", "-c", "echo ready; exec sleep 1000"])
        .unwrap();
    leftovers.pids.push(shell.pid());
    wait_until(Duration::from_secs(5), || shell.log().contains("ready")).unwrap();
    assert!(shell.is_running());
    shell.signal(Signal::SIGTERM).unwrap();
    let status = shell
        .wait_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("exits on SIGTERM");
    assert_eq!(status.signal(), Some(Signal::SIGTERM as i32));
    assert!(
        shell.signal(Signal::SIGTERM).is_err(),
        "no signals after reaping"
    );

    // A registered pin directory with something in it.
    let pins = lab.pin_dir("lab_test");
    std::fs::create_dir_all(pins.join("links")).unwrap();
    leftovers.paths.push(pins.parent().unwrap().to_owned());

    let started = Instant::now();
    drop(lab);
    eprintln!("lab dropped in {:?}", started.elapsed());
    leftovers.assert_gone();
}

#[test]
fn a_panicking_test_still_cleans_up() {
    if !require_root("a_panicking_test_still_cleans_up") {
        return;
    }
    let seen: Mutex<Option<Leftovers>> = Mutex::new(None);
    let result = std::panic::catch_unwind(|| {
        let lab = Lab::new(
            "lab_panic",
            LabSpec {
                hosts: 1,
                client: true,
                ipv6: false,
                ..Default::default()
            },
        )
        .unwrap();
        let mut leftovers = Leftovers::of(&lab);
        let sleeper = lab.host(0).spawn(["sleep", "1000"]).unwrap();
        leftovers.pids.push(sleeper.pid());
        // A grandchild the lab never saw: found by namespace and killed too.
        let shell = lab
            .client()
            .spawn(["sh", "-c", "sleep 1000 & echo $!; wait"])
            .unwrap();
        wait_until(Duration::from_secs(5), || !shell.log().trim().is_empty()).unwrap();
        leftovers.pids.push(shell.log().trim().parse().unwrap());
        std::fs::create_dir_all(lab.pin_dir("x")).unwrap();
        leftovers.paths.push(lab.pin_dir("x"));
        *seen.lock().unwrap() = Some(leftovers);
        panic!("test failure inside a lab");
    });
    assert!(result.is_err(), "the closure panicked");
    let leftovers = seen.lock().unwrap().take().expect("lab was built");
    leftovers.assert_gone();
}

#[test]
fn parallel_labs_do_not_collide() {
    if !require_root("parallel_labs_do_not_collide") {
        return;
    }
    let started = Instant::now();
    let results: Vec<Leftovers> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..3)
            .map(|i| {
                scope.spawn(move || {
                    let lab = Lab::new(&format!("lab_parallel_{i}"), LabSpec::default()).unwrap();
                    // Same addresses in every lab, each on its own isolated switch.
                    let client = lab.client();
                    for host in lab.hosts() {
                        assert!(
                            client.ping(host.addr4()).unwrap(),
                            "lab {i} {}",
                            host.name()
                        );
                    }
                    let capture = client.capture("arp").unwrap();
                    client
                        .run_ok(["ip", "neigh", "flush", "dev", "eth0"])
                        .unwrap();
                    assert!(client.ping(lab.host(1).addr4()).unwrap());
                    let arp = capture.stop_and_read().unwrap();
                    // Only this lab's own hosts appear on its wire.
                    for packet in &arp.packets {
                        let source: [u8; 6] = packet.data[6..12].try_into().unwrap();
                        assert!(
                            lab.all_hosts().any(|h| h.mac() == source),
                            "stranger {source:02x?}"
                        );
                    }
                    assert!(!arp.packets.is_empty());
                    let names = lab.netns_names();
                    assert_eq!(names.len(), 4, "{names:?}");
                    assert!(names.iter().all(|n| n.starts_with(lab.id())));
                    Leftovers::of(&lab)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    eprintln!(
        "3 labs built, used and dropped in parallel in {:?}",
        started.elapsed()
    );
    let mut ids: Vec<&str> = results.iter().map(|l| l.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "distinct lab ids");
    for leftovers in &results {
        leftovers.assert_gone();
    }
}

/// Namespaces and a directory made by hand for the sweep test, removed even if it fails.
struct StaleFixture {
    namespaces: Vec<String>,
    dir: std::path::PathBuf,
    orphan: Option<std::process::Child>,
}

impl Drop for StaleFixture {
    fn drop(&mut self) {
        if let Some(mut orphan) = self.orphan.take() {
            let _ = orphan.kill();
            let _ = orphan.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(std::process::Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn stale_labs_of_dead_processes_are_swept() {
    if !require_root("stale_labs_of_dead_processes_are_swept") {
        return;
    }
    // A PID that surely belongs to no process any more: a child we have reaped.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = format!("carplab-{dead}-0-0000-stale-h1");
    let live = format!("carplab-{}-999-0000-live-h1", std::process::id());
    let mut fixture = StaleFixture {
        namespaces: vec![stale.clone(), live.clone()],
        dir: std::env::temp_dir().join(format!("carplab-{dead}-0-0000")),
        orphan: None,
    };
    for ns in [&stale, &live] {
        assert!(
            Command::new("ip")
                .args(["netns", "add", ns])
                .status()
                .unwrap()
                .success()
        );
    }
    std::fs::create_dir_all(&fixture.dir).unwrap();
    // A process the "dead" run left behind in its namespace.
    let orphan = Command::new("ip")
        .args(["netns", "exec", &stale, "sleep", "1000"])
        .spawn()
        .unwrap();
    let orphan_pid = orphan.id().to_string();
    fixture.orphan = Some(orphan);
    wait_until(Duration::from_secs(5), || {
        stdout(&["ip", "netns", "pids", &stale]).contains(&orphan_pid)
    })
    .unwrap();

    carp_tests::cleanup::sweep_stale();

    let status = fixture.orphan.take().unwrap().wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(Signal::SIGKILL as i32),
        "orphan killed"
    );
    let netns = stdout(&["ip", "netns", "list"]);
    assert!(!netns.contains(&stale), "stale namespace swept: {netns}");
    assert!(
        netns.contains(&live),
        "a live process's lab is kept: {netns}"
    );
    assert!(!fixture.dir.exists(), "stale work directory swept");
}

#[test]
fn an_owned_namespace_is_entered_and_removed_with_its_processes_also_on_panic() {
    if !require_root("an_owned_namespace_is_entered_and_removed") {
        return;
    }
    let ns = carp_tests::OwnedNetns::create("owned ns").unwrap();
    let name = ns.name().to_owned();
    assert!(name.starts_with("carplab-"), "{name}");
    assert!(name.ends_with("-owned_ns"), "{name}");
    assert!(stdout(&["ip", "netns", "list"]).contains(&name));
    // A thread that entered it sees only the namespace's own loopback.
    let links = ns.enter(|| stdout(&["ip", "-o", "link", "show"])).unwrap();
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains(": lo:"), "{links}");
    // A process left running in it is killed when the handle goes, during a panic too.
    let mut child = ns.command(["sleep", "60"]).spawn().unwrap();
    let pid = child.id();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _ns = ns;
        panic!("test body failed");
    }));
    assert!(result.is_err());
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGKILL as i32), "{pid}");
    assert!(
        !stdout(&["ip", "netns", "list"]).contains(&name),
        "namespace {name} left"
    );
}
