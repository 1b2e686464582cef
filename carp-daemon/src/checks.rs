//! Health checks: probes run as tokio tasks, and the rise/fall state machine that turns their
//! results into a demotion held on a group (keepalived's `vrrp_script` with `rise`/`fall`/
//! `weight`, `track_process`, `track_file`, `track_interface`; OpenBSD drives the same group
//! demote counters from ifstated(8)).
//!
//! - Every check runs in a task of its own, first at once and then every `interval`; one run
//!   is bounded by `timeout` and counts as a failure when it takes longer. Results reach the
//!   event loop over a channel ([`Report`]), so no probe ever delays an advert.
//! - An exec check runs without a shell, with only `PATH` in its environment, in a process
//!   group of its own that is killed (SIGKILL) at the timeout, or when the check is removed
//!   or carpd stops, so what it started goes with it (as hooks are, `crate::hooks`).
//! - A check starts up, holding nothing: `fall` failures in a row take it down, and it then
//!   holds its demotion (its weight; for a `file` check the file's number times the weight,
//!   capped at 255); `rise` successes in a row bring it up and give the demotion back.
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use nix::unistd::Pid;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::config::{Check, Probe};
use crate::hooks::{DEFAULT_PATH, ProcessGroup};

/// The result of one run of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub up: bool,
    /// The demotion this result would hold were the check down (the weight, or for a file
    /// check the file's number times the weight); 0 when up.
    pub demote: u8,
    /// Why: exit status, connect error, HTTP status, ...
    pub reason: String,
}

impl Outcome {
    fn up(reason: impl Into<String>) -> Self {
        Self {
            up: true,
            demote: 0,
            reason: reason.into(),
        }
    }

    fn down(weight: u8, reason: impl Into<String>) -> Self {
        Self {
            up: false,
            demote: weight,
            reason: reason.into(),
        }
    }
}

/// One result, sent by a check's task to the event loop.
#[derive(Debug)]
pub struct Report {
    pub name: String,
    /// Which incarnation of the check ran it: a report of one replaced by a reload is
    /// ignored.
    pub generation: u64,
    pub outcome: Outcome,
}

/// A check's state: the rise/fall state machine and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckState {
    /// Down: holding its demotion.
    pub down: bool,
    /// Consecutive successes / failures up to the last result.
    pub successes: u32,
    pub failures: u32,
    /// The demotion it holds on its group (0 while up).
    pub held: u8,
    /// The last result, if any.
    pub last: Option<Outcome>,
    /// Results since the check started.
    pub runs: u64,
    /// Up/down transitions since the check started.
    pub transitions: u64,
}

/// What one result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// `Some(true)`: went down; `Some(false)`: came up; `None`: only the demotion held
    /// changed (a file check's number, while down).
    pub went_down: Option<bool>,
    /// Held demotion before and after.
    pub from: u8,
    pub to: u8,
}

impl CheckState {
    /// Counts one result against `rise` and `fall`; the change it makes to the state, if
    /// any.
    pub fn record(&mut self, outcome: Outcome, rise: u32, fall: u32) -> Option<Change> {
        let from = self.held;
        self.runs += 1;
        let mut went_down = None;
        if outcome.up {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if self.down && self.successes >= rise {
                self.down = false;
                self.held = 0;
                went_down = Some(false);
            }
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if !self.down && self.failures >= fall {
                self.down = true;
                went_down = Some(true);
            }
            if self.down {
                self.held = outcome.demote;
            }
        }
        if went_down.is_some() {
            self.transitions += 1;
        }
        self.last = Some(outcome);
        (went_down.is_some() || self.held != from).then_some(Change {
            went_down,
            from,
            to: self.held,
        })
    }
}

/// A configured check at run time: its settings, state and task.
pub struct Running {
    pub check: Check,
    pub state: CheckState,
    generation: u64,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Dropping the task's future kills an exec probe's process group with it.
        self.task.abort();
    }
}

/// Every check of the daemon, by name, and the channel their results arrive on.
pub struct Checks {
    running: BTreeMap<String, Running>,
    tx: mpsc::Sender<Report>,
    next_generation: u64,
}

impl Checks {
    /// No checks yet; the receiver is the event loop's.
    pub fn new() -> (Self, mpsc::Receiver<Report>) {
        let (tx, rx) = mpsc::channel(64);
        let checks = Self {
            running: BTreeMap::new(),
            tx,
            next_generation: 1,
        };
        (checks, rx)
    }

    /// Starts `check` (needs a tokio runtime); one of the same name must not run.
    pub fn start(&mut self, check: Check) {
        let generation = self.next_generation;
        self.next_generation += 1;
        let task = tokio::spawn(run_task(check.clone(), generation, self.tx.clone()));
        self.running.insert(
            check.name.clone(),
            Running {
                check,
                state: CheckState::default(),
                generation,
                task,
            },
        );
    }

    /// Stops a check; what it was (its state says what it held).
    pub fn stop(&mut self, name: &str) -> Option<(Check, CheckState)> {
        let mut r = self.running.remove(name)?;
        let state = std::mem::take(&mut r.state);
        Some((r.check.clone(), state))
    }

    /// The running check a report is about, unless it has been replaced or removed since.
    pub fn current_mut(&mut self, report: &Report) -> Option<&mut Running> {
        self.running
            .get_mut(&report.name)
            .filter(|r| r.generation == report.generation)
    }

    pub fn get(&self, name: &str) -> Option<&Running> {
        self.running.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Running> {
        self.running.values()
    }

    pub fn names(&self) -> Vec<String> {
        self.running.keys().cloned().collect()
    }
}

/// A check's task: a run at once, then one every interval, each result sent to the loop.
async fn run_task(check: Check, generation: u64, tx: mpsc::Sender<Report>) {
    let mut ticks = tokio::time::interval(check.interval);
    // A slow run does not make the next ones come in a burst.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let outcome = run_probe(&check).await;
        let report = Report {
            name: check.name.clone(),
            generation,
            outcome,
        };
        if tx.send(report).await.is_err() {
            return;
        }
    }
}

/// Runs a check's probe once, bounded by its timeout.
pub async fn run_probe(check: &Check) -> Outcome {
    let w = check.weight;
    let timeout = check.timeout;
    let run = async {
        match &check.probe {
            Probe::Exec(argv) => exec(argv, w).await,
            Probe::Tcp(addr) => match tokio::net::TcpStream::connect(addr.as_str()).await {
                Ok(_) => Outcome::up(format!("connected to {addr}")),
                Err(e) => Outcome::down(w, format!("connect to {addr}: {e}")),
            },
            Probe::Http { authority, path } => http_get(authority, path, w).await,
            // A scan of /proc reads hundreds of files: off the loop's threads.
            Probe::Process(name) => {
                let name = name.clone();
                blocking(w, move || {
                    if process_runs(&name) {
                        Outcome::up(format!("process {name} runs"))
                    } else {
                        Outcome::down(w, format!("no process {name}"))
                    }
                })
                .await
            }
            // Files (on a hung network file system, even /proc) are read off the loop's
            // threads, as tokio::fs would.
            Probe::File(path) => {
                let path = path.clone();
                blocking(w, move || file_demotion(&path, w)).await
            }
            Probe::Interface(name) => {
                let name = name.clone();
                blocking(w, move || {
                    link_up(&name).map_or_else(
                        |why| Outcome::down(w, why),
                        |()| Outcome::up(format!("{name} is up")),
                    )
                })
                .await
            }
        }
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(outcome) => outcome,
        // The probe's future is dropped here; an exec probe's process group with it.
        Err(_) => Outcome::down(w, format!("timed out after {}", secs(timeout))),
    }
}

/// Runs `f` on tokio's blocking pool.
async fn blocking(w: u8, f: impl FnOnce() -> Outcome + Send + 'static) -> Outcome {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Outcome::down(w, format!("probe failed: {e}")))
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// Runs a program in its own process group; exit status 0 is up. When this future is
/// dropped (timeout, check removed) before it ended, the whole group is killed.
async fn exec(argv: &[String], w: u8) -> Outcome {
    let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .env("PATH", path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::down(w, format!("cannot run {}: {e}", argv[0])),
    };
    let group = child
        .id()
        .map(|pid| ProcessGroup(Pid::from_raw(pid as i32)));
    let outcome = match child.wait().await {
        Ok(status) if status.success() => Outcome::up("exit status 0"),
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => Outcome::down(w, format!("exit status {code}")),
            (None, Some(sig)) => Outcome::down(w, format!("killed by signal {sig}")),
            _ => Outcome::down(w, status.to_string()),
        },
        Err(e) => Outcome::down(w, format!("waiting for {}: {e}", argv[0])),
    };
    // It ended by itself: what it left running in its group was meant to outlive it.
    std::mem::forget(group);
    outcome
}

/// Longest status line read from an HTTP server.
const HTTP_HEAD_MAX: usize = 4096;

/// A minimal HTTP/1.1 GET over a plain TCP connection: 2xx and 3xx are up.
async fn http_get(authority: &str, path: &str, w: u8) -> Outcome {
    let mut stream = match tokio::net::TcpStream::connect(authority).await {
        Ok(s) => s,
        Err(e) => return Outcome::down(w, format!("connect to {authority}: {e}")),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: carpd\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return Outcome::down(w, format!("sending to {authority}: {e}"));
    }
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|p| p == b"\r\n") && head.len() < HTTP_HEAD_MAX {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Outcome::down(w, format!("reading from {authority}: {e}")),
        }
    }
    match http_status(&head) {
        Some(code) if (200..400).contains(&code) => Outcome::up(format!("HTTP {code}")),
        Some(code) => Outcome::down(w, format!("HTTP {code}")),
        None => Outcome::down(w, "not an HTTP response"),
    }
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`).
fn http_status(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    if !words.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let code = words.next()?;
    (code.len() == 3).then(|| code.parse().ok()).flatten()
}

/// Whether a process whose command name (/proc/PID/comm) is `name` runs (zombies do not).
pub fn process_runs(name: &str) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .any(|e| {
            let p = e.path();
            std::fs::read_to_string(p.join("comm")).is_ok_and(|c| c.trim_end_matches('\n') == name)
                && std::fs::read_to_string(p.join("stat")).is_ok_and(|s| {
                    s.rsplit_once(')')
                        .is_some_and(|(_, r)| !r.starts_with(" Z"))
                })
        })
}

/// A file's integer times the weight (keepalived's track_file): 0 or less, or no file, is
/// up; text that is not an integer is down with the weight.
fn file_demotion(path: &std::path::Path, w: u8) -> Outcome {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Outcome::up(format!("{} does not exist", path.display()));
        }
        Err(e) => return Outcome::down(w, format!("reading {}: {e}", path.display())),
    };
    match text.trim().parse::<i64>() {
        Ok(n) if n <= 0 => Outcome::up(format!("{} holds {n}", path.display())),
        Ok(n) => {
            let demote = n.saturating_mul(i64::from(w)).min(255) as u8;
            Outcome::down(demote, format!("{} holds {n}", path.display()))
        }
        Err(_) => Outcome::down(w, format!("{} does not hold an integer", path.display())),
    }
}

/// Link up: operstate "up", or "unknown" with carrier (links that do not report an
/// operstate, such as dummy interfaces).
fn link_up(name: &str) -> Result<(), String> {
    let base = std::path::Path::new("/sys/class/net").join(name);
    let oper =
        std::fs::read_to_string(base.join("operstate")).map_err(|e| format!("{name}: {e}"))?;
    match oper.trim() {
        "up" => Ok(()),
        "unknown"
            if std::fs::read_to_string(base.join("carrier")).is_ok_and(|c| c.trim() == "1") =>
        {
            Ok(())
        }
        other => Err(format!("{name} is {other}")),
    }
}

/// What `carpctl checks` shows of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CheckStatus {
    pub name: String,
    pub kind: String,
    pub group: String,
    /// "up", "down", or "pending" before the first result.
    pub state: String,
    pub last_result: Option<String>,
    pub reason: Option<String>,
    pub successes: u32,
    pub failures: u32,
    pub rise: u32,
    pub fall: u32,
    pub weight: u8,
    pub held: u8,
    pub runs: u64,
    pub transitions: u64,
}

impl Running {
    pub fn status(&self) -> CheckStatus {
        let s = &self.state;
        CheckStatus {
            name: self.check.name.clone(),
            kind: self.check.probe.kind().to_owned(),
            group: self.check.group.clone(),
            state: match (&s.last, s.down) {
                (None, _) => "pending",
                (_, true) => "down",
                (_, false) => "up",
            }
            .to_owned(),
            last_result: s
                .last
                .as_ref()
                .map(|o| if o.up { "success" } else { "failure" }.to_owned()),
            reason: s.last.as_ref().map(|o| o.reason.clone()),
            successes: s.successes,
            failures: s.failures,
            rise: self.check.rise,
            fall: self.check.fall,
            weight: self.check.weight,
            held: s.held,
            runs: s.runs,
            transitions: s.transitions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn up() -> Outcome {
        Outcome::up("ok")
    }

    fn down(d: u8) -> Outcome {
        Outcome::down(d, "bad")
    }

    #[test]
    fn fall_failures_in_a_row_take_it_down_and_rise_successes_bring_it_back() {
        let mut s = CheckState::default();
        let (rise, fall) = (2, 3);
        assert_eq!(s.record(down(50), rise, fall), None);
        assert_eq!(s.record(down(50), rise, fall), None);
        // A success in between starts the count again.
        assert_eq!(s.record(up(), rise, fall), None);
        assert_eq!(s.record(down(50), rise, fall), None);
        assert_eq!(s.record(down(50), rise, fall), None);
        assert_eq!(
            s.record(down(50), rise, fall),
            Some(Change {
                went_down: Some(true),
                from: 0,
                to: 50
            })
        );
        assert!(s.down);
        assert_eq!((s.held, s.failures, s.successes), (50, 3, 0));
        // Still down: no change.
        assert_eq!(s.record(down(50), rise, fall), None);
        assert_eq!(s.record(up(), rise, fall), None);
        assert_eq!(
            s.record(down(50), rise, fall),
            None,
            "the rise count restarts"
        );
        assert_eq!(s.record(up(), rise, fall), None);
        assert_eq!(
            s.record(up(), rise, fall),
            Some(Change {
                went_down: Some(false),
                from: 50,
                to: 0
            })
        );
        assert!(!s.down);
        assert_eq!((s.held, s.transitions, s.runs), (0, 2, 11));
    }

    #[test]
    fn a_down_file_check_follows_its_number() {
        let mut s = CheckState::default();
        assert!(s.record(down(20), 1, 1).is_some());
        assert_eq!(
            s.record(down(60), 1, 1),
            Some(Change {
                went_down: None,
                from: 20,
                to: 60
            })
        );
        assert_eq!(s.held, 60);
        assert_eq!(s.transitions, 1);
    }

    #[test]
    fn http_status_lines() {
        assert_eq!(http_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            http_status(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(http_status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(http_status(b"HTTP/1.1 2000 x\r\n"), None);
    }

    fn check(probe: Probe, timeout: Duration) -> Check {
        Check {
            name: "t".into(),
            probe,
            interval: Duration::from_secs(1),
            timeout,
            rise: 1,
            fall: 1,
            weight: 7,
            group: "carp".into(),
            source: crate::config::Origin {
                path: "t.toml".into(),
                line: Some(1),
            },
        }
    }

    #[tokio::test]
    async fn exec_checks_report_exit_status_and_a_hang_is_killed_with_its_group() {
        let sh = |script: &str| Probe::Exec(vec!["/bin/sh".into(), "-c".into(), script.into()]);
        let ok = run_probe(&check(sh("exit 0"), Duration::from_secs(5))).await;
        assert!(ok.up, "{ok:?}");
        let bad = run_probe(&check(sh("exit 3"), Duration::from_secs(5))).await;
        assert_eq!(bad, Outcome::down(7, "exit status 3"));
        // A hang: its child records its pid, then both sleep.
        let dir = std::env::temp_dir().join(format!("carpd-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("pid");
        let script = format!("sleep 1000 & echo $! > {}; wait", pidfile.display());
        let started = Instant::now();
        let hung = run_probe(&check(sh(&script), Duration::from_millis(500))).await;
        assert!(!hung.up && hung.reason.starts_with("timed out"), "{hung:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        let child: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The background sleep was in the group: killed too (gone or a zombie awaiting reaping).
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let alive = std::fs::read_to_string(format!("/proc/{child}/stat"))
                .is_ok_and(|s| !s.rsplit_once(')').unwrap().1.starts_with(" Z"));
            if !alive {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the hung check's child still runs"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn tcp_http_file_and_process_probes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let t = Duration::from_secs(2);
        let server = tokio::spawn(async move {
            for status in ["200 OK", "503 Service Unavailable"] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap();
                assert!(buf[..n].starts_with(b"GET /health HTTP/1.1\r\n"));
                s.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await
                    .unwrap();
            }
        });
        let http = Probe::Http {
            authority: addr.clone(),
            path: "/health".into(),
        };
        assert_eq!(
            run_probe(&check(http.clone(), t)).await,
            Outcome::up("HTTP 200")
        );
        assert_eq!(
            run_probe(&check(http, t)).await,
            Outcome::down(7, "HTTP 503")
        );
        server.await.unwrap();
        // A port bound but not listening refuses the connection; held while probed, so no
        // other test can take it (a closed listener's port could be reused in between).
        let closed = tokio::net::TcpSocket::new_v4().unwrap();
        closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let closed_addr = closed.local_addr().unwrap().to_string();
        let tcp = run_probe(&check(Probe::Tcp(closed_addr), t)).await;
        assert!(!tcp.up && tcp.reason.contains("refused"), "{tcp:?}");
        drop(closed);

        let me = std::fs::read_to_string("/proc/self/comm").unwrap();
        let mine = run_probe(&check(Probe::Process(me.trim().into()), t)).await;
        assert!(mine.up, "{mine:?}");
        let none = run_probe(&check(Probe::Process("no-such-proc".into()), t)).await;
        assert!(!none.up);

        let file = std::env::temp_dir().join(format!("carpd-check-file-{}", std::process::id()));
        let _ = std::fs::remove_file(&file);
        assert!(run_probe(&check(Probe::File(file.clone()), t)).await.up);
        std::fs::write(&file, "3\n").unwrap();
        let held = run_probe(&check(Probe::File(file.clone()), t)).await;
        assert_eq!((held.up, held.demote), (false, 21));
        std::fs::write(&file, "100").unwrap();
        assert_eq!(
            run_probe(&check(Probe::File(file.clone()), t)).await.demote,
            255
        );
        std::fs::write(&file, "0").unwrap();
        assert!(run_probe(&check(Probe::File(file.clone()), t)).await.up);
        let _ = std::fs::remove_file(&file);

        assert!(run_probe(&check(Probe::Interface("lo".into()), t)).await.up);
        assert!(
            !run_probe(&check(Probe::Interface("nosuch0".into()), t))
                .await
                .up
        );
    }
}
