//! `carpd --check` on files holding a passphrase: it warns about files others can read and
//! vhids without one, and never prints a passphrase, whatever is wrong with the file.
//! (`--check` needs neither root nor a network namespace; the carpdev is `lo`.)
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

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
