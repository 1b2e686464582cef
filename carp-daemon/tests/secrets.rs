//! Passphrases end to end. `carpd --check` on files holding one: it warns about files others
//! can read and vhids without one, and never prints a passphrase, whatever is wrong with the
//! file (`--check` needs neither root nor a network namespace; the carpdev is `lo`). And a
//! running carpd, at debug level, through a start, a reload, a carpctl `pass` and scrapes of
//! everything it shows: the passphrase appears nowhere.
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use carp_tests::{Signal, wait_until};
use common::{PASS, Router, VIP4, carpd_bin, lab};

const SECRET: &str = "Zq9xSeCrEtWv";

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(name: &str) -> Dir {
    let dir = std::env::temp_dir().join(format!("carpd-check-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Dir(dir)
}

fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// Exit success, and stdout and stderr together.
fn check(path: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_carpd"))
        .args(["--check", "--config", path.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .expect("run carpd --check");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn check_warns_about_readable_passphrases_and_missing_ones() {
    let d = dir("warn");
    let open = write(
        &d.0,
        "hostname.carp0",
        &format!("inet 192.0.2.1/24 vhid 1 carpdev lo pass {SECRET}\n"),
        0o644,
    );
    let (ok, out) = check(&open);
    assert!(ok, "a warning, not an error: {out}");
    assert!(
        out.contains("configuration OK: 1 carp interface(s)"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{}: warning: holds a passphrase and is readable by group and others (mode 0644)",
            open.display()
        )) && out.contains(&format!("chmod 600 {}", open.display())),
        "{out}"
    );
    assert!(!out.contains(SECRET), "{out}");

    let private = write(
        &d.0,
        "hostname.carp0",
        &format!("inet 192.0.2.1/24 vhid 1 carpdev lo pass {SECRET}\n"),
        0o600,
    );
    let (ok, out) = check(&private);
    assert!(ok && !out.contains("warning"), "{out}");

    let no_pass = write(
        &d.0,
        "hostname.carp1",
        "inet 192.0.2.2/24 vhid 2 carpdev lo\n",
        0o644,
    );
    let (ok, out) = check(&no_pass);
    assert!(ok, "{out}");
    assert!(out.contains("warning: no passphrase"), "{out}");
}

#[test]
fn check_never_prints_a_passphrase() {
    let d = dir("quiet");
    let head = "[[interface]]\nname = \"carp0\"\ncarpdev = \"lo\"\nvhid = 1\n\
                addresses = [\"192.0.2.1/24\"]\n";
    let key = write(&d.0, "carp0.pass", &format!("{SECRET}{SECRET}\n"), 0o600);
    for tail in [
        "pass = 987654321\n".to_owned(),
        format!("pass = {SECRET}\n"),
        format!("pass = [\"{SECRET}\"]\n"),
        format!("pass = \"{SECRET}{SECRET}\"\n"),
        format!("pass_file = \"{}\"\n", key.display()),
    ] {
        let conf = write(&d.0, "carpd.toml", &format!("{head}{tail}"), 0o600);
        let (ok, out) = check(&conf);
        assert!(!ok, "{tail}: {out}");
        assert!(out.contains("carpd.toml:6:"), "located: {tail}: {out}");
        assert!(
            !out.contains(SECRET) && !out.contains("987654321"),
            "{tail}: {out}"
        );
    }
    let conf = write(
        &d.0,
        "hostname.carp0",
        &format!("inet 192.0.2.1/24 vhid 1 carpdev lo pass my {SECRET}\n"),
        0o600,
    );
    let (ok, out) = check(&conf);
    assert!(
        !ok && out.contains("unknown word after the passphrase"),
        "{out}"
    );
    assert!(!out.contains(SECRET), "{out}");
}

#[test]
fn a_running_carpd_never_shows_its_passphrase() {
    let Some(lab) = lab("e2e_secrets", 1) else {
        return;
    };
    let host = lab.host(0);
    let dir = lab.workdir().join("secrets");
    std::fs::create_dir_all(&dir).unwrap();
    // The passphrase in a pass_file others can read: used, and warned about.
    let key = write(&dir, "carp0.pass", &format!("{PASS}\n"), 0o644);
    let toml = |advskew: u8| {
        format!(
            "[daemon]\nmetrics = \"127.0.0.1:9713\"\n\n[[interface]]\nname = \"carp0\"\n\
             carpdev = \"{}\"\nvhid = 1\nadvbase = 0\nadvskew = {advskew}\n\
             pass_file = \"{}\"\naddresses = [\"{VIP4}/24\"]\n",
            host.ifname(),
            key.display()
        )
    };
    let config = write(&dir, "carpd.toml", &toml(60), 0o600);
    let pin = lab.pin_dir("secrets");
    let process = host
        .spawn([
            carpd_bin(),
            "--config",
            config.to_str().unwrap(),
            "--state-dir",
            dir.to_str().unwrap(),
            "--pin-dir",
            pin.to_str().unwrap(),
            "--xdp-mode",
            "generic",
            "--log",
            "debug",
        ])
        .expect("spawn carpd");
    let r = Router {
        lab: &lab,
        host,
        dir: dir.clone(),
        config: config.clone(),
        process: Some(process),
    };
    r.wait_state("MASTER", Duration::from_secs(10));
    assert!(
        r.log()
            .contains("holds a passphrase and is readable by group and others"),
        "{}",
        r.log()
    );

    // A reload that changes the interface, and a carpctl pass (the same passphrase, so
    // nothing else changes).
    write(&dir, "carpd.toml", &toml(61), 0o600);
    r.signal(Signal::SIGHUP);
    wait_until(Duration::from_secs(10), || r.log().contains("SIGHUP"))
        .unwrap_or_else(|_| panic!("no reload in:\n{}", r.log()));
    let set = r.carpctl(&["carp0", "pass", PASS]);
    assert!(set.success(), "{}", set.stderr);
    r.wait_state("MASTER", Duration::from_secs(10));

    let metrics = host
        .in_netns(|| -> std::io::Result<String> {
            let addr: SocketAddr = "127.0.0.1:9713".parse().unwrap();
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        })
        .unwrap()
        .unwrap();
    assert!(metrics.contains("carp"), "{metrics}");
    let shown = [
        ("show", r.carpctl(&[]).stdout),
        ("show --json", r.carpctl(&["--json"]).stdout),
        ("carp0", r.carpctl(&["carp0"]).stdout),
        ("stats", r.carpctl(&["stats"]).stdout),
        ("stats --json", r.carpctl(&["--json", "stats"]).stdout),
        ("metrics", metrics),
        ("log", r.log()),
    ];
    for (what, text) in &shown {
        assert!(!text.is_empty(), "{what} is empty");
        assert!(!text.contains(PASS), "{what} shows the passphrase:\n{text}");
    }
    // (The log is a debug-level one that did record the changes.)
    assert!(r.log().contains("carpctl change applied"), "{}", r.log());
    r.signal(Signal::SIGTERM);
    assert!(r.wait_exit(Duration::from_secs(10)), "{}", r.log());
    assert!(!r.log().contains(PASS));
}
