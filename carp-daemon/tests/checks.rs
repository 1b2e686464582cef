//! Health checks end to end: a failing check demotes its group and a healthy backup takes
//! over; exec, http and process probes as carpd runs them; carpctl checks.
mod common;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use carp_tests::{Host, wait_until};
use common::*;

const T1: Timers = Timers {
    advbase: 0,
    advskew: 60,
};
const T2: Timers = Timers {
    advbase: 0,
    advskew: 120,
};

/// A TCP listener on 127.0.0.1:`port` in a lab host's namespace, accepting (and closing)
/// connections on a thread until dropped.
struct Service {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    port: u16,
}

impl Service {
    fn start(host: &Host, port: u16) -> Self {
        let listener = host
            .in_netns(move || TcpListener::bind(("127.0.0.1", port)))
            .expect("enter the namespace")
            .expect("bind the service");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => drop(conn),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            stop,
            thread: Some(thread),
            port,
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `carpctl checks --json` of a router, by check name.
fn checks(r: &Router<'_>) -> serde_json::Value {
    let out = ok(r.carpctl(&["--json", "checks"]));
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let mut by_name = serde_json::Map::new();
    for c in list {
        by_name.insert(c["name"].as_str().unwrap().to_owned(), c);
    }
    serde_json::Value::Object(by_name)
}

fn demote_count(r: &Router<'_>) -> String {
    ok(r.carpctl(&["-g", "carp"])).trim().to_owned()
}

#[test]
fn a_failing_tcp_check_hands_over_and_its_recovery_preempts_back() {
    let Some(lab) = lab("e2e_check_tcp", 2) else {
        return;
    };
    let service = Service::start(lab.host(0), 0);
    let port = service.port;
    let (interval, rise, fall) = (0.3, 3u32, 2u32);
    let check = format!(
        "[[check]]\nname = \"svc\"\ntcp = \"127.0.0.1:{port}\"\ninterval = {interval}\ntimeout = 0.2\nrise = {rise}\nfall = {fall}\nweight = 100\n"
    );
    let r1 = Router::start_files(
        &lab,
        lab.host(0),
        &[
            ("hostname.carp0", &hostname_carp0(lab.host(0), T1)),
            ("checks.toml", &check),
        ],
        &["--preempt"],
    );
    let r2 = Router::start(
        &lab,
        lab.host(1),
        &hostname_carp0(lab.host(1), T2),
        &["--preempt"],
    );
    r1.wait_state("MASTER", Duration::from_secs(10));
    r2.wait_state("BACKUP", Duration::from_secs(10));
    wait_until(Duration::from_secs(5), || {
        checks(&r1)["svc"]["runs"].as_u64() >= Some(2)
    })
    .expect("the check runs");
    let c = checks(&r1);
    assert_eq!(c["svc"]["state"], "up", "{c}");
    assert_eq!(c["svc"]["held"], 0);

    // The service stops: after `fall` failed runs the group is demoted and the backup
    // takes over at once.
    let stopped = Instant::now();
    drop(service);
    let limit = Duration::from_secs_f64(interval * f64::from(fall)) + Duration::from_secs(1);
    r2.wait_state("MASTER", limit);
    let took = stopped.elapsed();
    assert!(took <= limit, "took {took:?}, limit {limit:?}");
    r1.wait_state("BACKUP", Duration::from_secs(2));
    let c = checks(&r1);
    assert_eq!(c["svc"]["state"], "down", "{c}");
    assert_eq!(c["svc"]["held"], 100);
    assert!(
        c["svc"]["reason"].as_str().unwrap().contains("refused"),
        "{c}"
    );
    assert_eq!(demote_count(&r1), "carp: carp demote count 100");
    assert!(r1.log().contains("health check down"), "{}", r1.log());

    // It comes back: after `rise` good runs the demotion is given back and r1 preempts.
    let _service = Service::start(lab.host(0), port);
    let started = Instant::now();
    r1.wait_state(
        "MASTER",
        Duration::from_secs_f64(interval * f64::from(rise)) + Duration::from_secs(2),
    );
    let back = started.elapsed();
    assert!(
        back >= Duration::from_secs_f64(interval * f64::from(rise - 1)),
        "back after {back:?}: before rise runs"
    );
    r2.wait_state("BACKUP", Duration::from_secs(2));
    assert_eq!(demote_count(&r1), "carp: carp demote count 0");
    let c = checks(&r1);
    assert_eq!(
        (c["svc"]["state"].as_str(), c["svc"]["held"].as_u64()),
        (Some("up"), Some(0))
    );
}

#[test]
fn exec_http_and_process_checks_each_hold_their_weight() {
    let Some(lab) = lab("e2e_check_kinds", 1) else {
        return;
    };
    let host = lab.host(0);
    let dir = lab.workdir().join("kinds");
    std::fs::create_dir_all(&dir).unwrap();
    // An exec check that hangs, with a child: both are killed at the timeout.
    let pids = dir.join("pids");
    let script = dir.join("hang.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nsleep 1000 &\necho $! >> {}\nwait\n",
            pids.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A tiny HTTP server in the host's namespace: 503 until told otherwise, then 200.
    let healthy = Arc::new(AtomicBool::new(false));
    let listener = host
        .in_netns(|| TcpListener::bind("127.0.0.1:0"))
        .unwrap()
        .unwrap();
    let http_port = listener.local_addr().unwrap().port();
    let flag = healthy.clone();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let status = if flag.load(Ordering::Relaxed) {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            let _ = conn.write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    let toml = format!(
        "[[check]]\nname = \"hang\"\nexec = [\"{}\"]\ninterval = 0.5\ntimeout = 0.3\nweight = 1\n\
         [[check]]\nname = \"web\"\nhttp = \"http://127.0.0.1:{http_port}/health\"\ninterval = 0.3\nweight = 2\n\
         [[check]]\nname = \"gone\"\nprocess = \"no-such-daemon\"\ninterval = 0.3\nweight = 4\n\
         [[check]]\nname = \"self\"\nprocess = \"carpd\"\ninterval = 0.3\nweight = 8\n",
        script.display()
    );
    let r = Router::start_files(
        &lab,
        host,
        &[
            ("hostname.carp0", &hostname_carp0(host, T1)),
            ("checks.toml", &toml),
        ],
        &[],
    );
    r.wait_state("MASTER", Duration::from_secs(10));
    // hang (1) + web (2) + gone (4); self (8) is up: carpd runs.
    wait_until(Duration::from_secs(10), || {
        demote_count(&r) == "carp: carp demote count 7"
    })
    .unwrap_or_else(|_| panic!("{} {}\n{}", demote_count(&r), checks(&r), r.log()));
    let c = checks(&r);
    assert!(
        c["hang"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("timed out"),
        "{c}"
    );
    assert_eq!(c["web"]["reason"], "HTTP 503");
    assert_eq!(c["gone"]["reason"], "no process no-such-daemon");
    assert_eq!(c["self"]["state"], "up");
    assert_eq!(c["self"]["held"], 0);
    let text = ok(r.carpctl(&["checks"]));
    assert!(
        text.contains("hang") && text.contains("timed out"),
        "{text}"
    );

    // The hung runs' children died with their process groups.
    let recorded = std::fs::read_to_string(&pids).unwrap();
    let first: i32 = recorded.lines().next().unwrap().parse().unwrap();
    wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{first}/stat"))
            .map_or(true, |s| s.rsplit_once(')').unwrap().1.starts_with(" Z"))
    })
    .expect("a hung check's child outlived its timeout");

    // The web service recovers: its demotion is given back, the others' stay.
    healthy.store(true, Ordering::Relaxed);
    wait_until(Duration::from_secs(10), || {
        demote_count(&r) == "carp: carp demote count 5"
    })
    .unwrap_or_else(|_| panic!("{} {}", demote_count(&r), checks(&r)));
    assert_eq!(checks(&r)["web"]["reason"], "HTTP 200");
}

#[test]
fn a_persisted_demotion_survives_a_restart_and_a_plain_one_does_not() {
    let Some(lab) = lab("e2e_persist", 2) else {
        return;
    };
    let lib = lab.workdir().join("lib1");
    let lib_arg = lib.display().to_string();
    let extra = ["--preempt", "--lib-dir", lib_arg.as_str()];
    let mut r1 = Router::start(&lab, lab.host(0), &hostname_carp0(lab.host(0), T1), &extra);
    let r2 = Router::start(
        &lab,
        lab.host(1),
        &hostname_carp0(lab.host(1), T2),
        &["--preempt"],
    );
    r1.wait_state("MASTER", Duration::from_secs(10));
    r2.wait_state("BACKUP", Duration::from_secs(10));

    // Maintenance: r1 hands over, and says what is persisted.
    ok(r1.carpctl(&["-g", "carp", "carpdemote", "100", "--persist"]));
    // A plain carpdemote on top changes the counter, not the file.
    ok(r1.carpctl(&["-g", "carp", "carpdemote", "30"]));
    r2.wait_state("MASTER", Duration::from_secs(2));
    r1.wait_state("BACKUP", Duration::from_secs(2));
    assert_eq!(
        ok(r1.carpctl(&["-g", "carp"])),
        "carp: carp demote count 130\ncarp: persisted demote 100\n"
    );
    let file = lib.join("demote.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "{\"version\":1,\"demote\":{\"carp\":100}}\n"
    );
    // Beyond 255 with what the counter holds (130 + 128): refused, nothing changes.
    let out = r1.carpctl(&["-g", "carp", "carpdemote", "128", "--persist"]);
    assert!(!out.success());
    assert!(std::fs::read_to_string(&file).unwrap().contains("100"));

    // carpd restarts (a crash, a reboot): it comes back demoted by the persisted 100 only,
    // so it stays backup although it is more preferred and preempts.
    r1.signal(carp_tests::Signal::SIGKILL);
    let _ = r1
        .process
        .as_ref()
        .unwrap()
        .wait_timeout(Duration::from_secs(5));
    r1.restart(&extra);
    r1.wait_state("BACKUP", Duration::from_secs(10));
    assert_eq!(
        ok(r1.carpctl(&["-g", "carp"])),
        "carp: carp demote count 100\ncarp: persisted demote 100\n"
    );
    // Still backup a while later: the persisted demotion holds.
    std::thread::sleep(T2.master_down() * 2);
    assert_eq!(r1.state().as_deref(), Some("BACKUP"));
    assert_eq!(r2.state().as_deref(), Some("MASTER"));

    // End of maintenance: the persisted part goes, the file with it, r1 preempts back.
    ok(r1.carpctl(&["-g", "carp", "-carpdemote", "100", "--persist"]));
    r1.wait_state("MASTER", Duration::from_secs(5));
    assert_eq!(
        ok(r1.carpctl(&["-g", "carp"])),
        "carp: carp demote count 0\n"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "{\"version\":1,\"demote\":{}}\n"
    );
}

#[test]
fn sighup_adds_removes_and_changes_checks_and_leaves_the_others_alone() {
    let Some(lab) = lab("e2e_check_hup", 1) else {
        return;
    };
    let host = lab.host(0);
    let dir = lab.workdir().join("hup");
    std::fs::create_dir_all(&dir).unwrap();
    let maint = dir.join("maint");
    std::fs::write(&maint, "3\n").unwrap();
    let keep =
        "[[check]]\nname = \"keep\"\nprocess = \"no-such-daemon\"\ninterval = 0.2\nweight = 1\n";
    let file = format!(
        "[[check]]\nname = \"maint\"\nfile = \"{}\"\ninterval = 0.2\nweight = 10\n",
        maint.display()
    );
    let r = Router::start_files(
        &lab,
        host,
        &[
            ("hostname.carp0", &hostname_carp0(host, T1)),
            ("checks.toml", &format!("{keep}{file}")),
        ],
        &[],
    );
    r.wait_state("MASTER", Duration::from_secs(10));
    // keep (1) + maint (3 x 10).
    wait_until(Duration::from_secs(10), || {
        demote_count(&r) == "carp: carp demote count 31"
    })
    .unwrap_or_else(|_| panic!("{} {}", demote_count(&r), checks(&r)));
    let toml = r.dir.join("checks.toml");
    // Enough runs that a restarted check (counting from 0) could not pass for this one.
    wait_until(Duration::from_secs(10), || {
        checks(&r)["keep"]["runs"].as_u64() >= Some(5)
    })
    .expect("keep runs");
    let runs_before = checks(&r)["keep"]["runs"].as_u64().unwrap();

    // maint removed, a new one added: maint gives its 30 back, the new one holds 4.
    let added =
        "[[check]]\nname = \"added\"\nprocess = \"another-missing\"\ninterval = 0.2\nweight = 4\n";
    std::fs::write(&toml, format!("{keep}{added}")).unwrap();
    r.signal(carp_tests::Signal::SIGHUP);
    wait_until(Duration::from_secs(10), || {
        demote_count(&r) == "carp: carp demote count 5"
    })
    .unwrap_or_else(|_| panic!("{} {}", demote_count(&r), checks(&r)));
    let c = checks(&r);
    assert!(c.get("maint").is_none(), "{c}");
    // keep runs on, its state untouched by the reload: its count goes on from where it was.
    assert!(c["keep"]["runs"].as_u64().unwrap() >= runs_before, "{c}");
    assert_eq!(c["keep"]["held"], 1);
    assert_eq!(c["keep"]["transitions"], 1);

    // added changed (its weight): it gives back 4 and takes 8.
    std::fs::write(
        &toml,
        format!("{keep}{}", added.replace("weight = 4", "weight = 8")),
    )
    .unwrap();
    r.signal(carp_tests::Signal::SIGHUP);
    wait_until(Duration::from_secs(10), || {
        demote_count(&r) == "carp: carp demote count 9"
    })
    .unwrap_or_else(|_| panic!("{} {}", demote_count(&r), checks(&r)));
    let c = checks(&r);
    assert!(c["keep"]["runs"].as_u64().unwrap() >= runs_before, "{c}");
    assert_eq!(c["added"]["held"], 8);
}

#[test]
fn a_persisted_demotion_over_255_with_the_boot_demotion_is_refused_at_start() {
    let Some(lab) = lab("e2e_persist_sum", 1) else {
        return;
    };
    let host = lab.host(0);
    let lib = lab.workdir().join("lib-sum");
    std::fs::create_dir_all(&lib).unwrap();
    let file = lib.join("demote.json");
    std::fs::write(&file, "{\"version\":1,\"demote\":{\"carp\":100}}\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let lib_arg = lib.display().to_string();
    let r = Router::start(
        &lab,
        host,
        &hostname_carp0(host, T1),
        &["--boot-demote", "200", "--lib-dir", lib_arg.as_str()],
    );
    let status = r
        .process
        .as_ref()
        .unwrap()
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("carpd refuses to start");
    assert!(!status.success());
    assert!(
        r.log()
            .contains("persisted demotion: carp: carpdemote 100: result out of range"),
        "{}",
        r.log()
    );
    // Nothing left behind by the refused start.
    assert!(!links(host).iter().any(|l| l == "carp0"));
}
