//! The binaries' own help: man pages and shell completions come from the clap definitions,
//! so they can never disagree with the options the binaries take.
use std::process::Command;

fn run(bin: &str, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).output().expect("run");
    assert!(
        out.status.success(),
        "{bin} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn man_pages_are_generated_from_the_clap_definitions() {
    let carpd = run(env!("CARGO_BIN_EXE_carpd"), &["--generate-man"]);
    assert!(
        carpd.starts_with(".ie") || carpd.contains(".TH carpd 8"),
        "{carpd}"
    );
    assert!(
        carpd.contains("boot\\-demote") && carpd.contains("pin\\-dir"),
        "{carpd}"
    );
    let carpctl = run(env!("CARGO_BIN_EXE_carpctl"), &["--generate-man"]);
    assert!(carpctl.contains(".TH carpctl 8"), "{carpctl}");
    assert!(
        carpctl.contains("carpdemote"),
        "the ifconfig words are documented: {carpctl}"
    );
}

#[test]
fn shell_completions_are_generated() {
    let bash = run(
        env!("CARGO_BIN_EXE_carpctl"),
        &["--generate-completions", "bash"],
    );
    assert!(
        bash.contains("complete") && bash.contains("--state-dir"),
        "{bash}"
    );
    let zsh = run(
        env!("CARGO_BIN_EXE_carpd"),
        &["--generate-completions", "zsh"],
    );
    assert!(zsh.contains("#compdef carpd"), "{zsh}");
}
