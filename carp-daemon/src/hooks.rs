//! Notify hooks: a command run on every state change, with the facts in its environment
//! (`CARP_INTERFACE`, `CARP_VHID`, `CARP_OLD_STATE`, `CARP_NEW_STATE`, `CARP_REASON`,
//! `CARP_CARPDEV`). Hooks run detached from the election: carpd spawns them and moves on; a
//! hook that outlives its time limit is killed, and a failing one is logged. Neither ever
//! delays an advert or a state change.
use std::path::PathBuf;
use std::time::Duration;

/// How long a hook may run before it is killed.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// One state change, as hooks see it.
#[derive(Debug, Clone)]
pub struct StateChange {
    pub interface: String,
    pub carpdev: String,
    pub vhid: u8,
    pub old_state: &'static str,
    pub new_state: &'static str,
    pub reason: &'static str,
}

/// Runs `hook` for `change` in the background (needs a tokio runtime).
pub fn spawn(hook: PathBuf, change: StateChange) {
    let mut cmd = tokio::process::Command::new(&hook);
    cmd.env("CARP_INTERFACE", &change.interface)
        .env("CARP_CARPDEV", &change.carpdev)
        .env("CARP_VHID", change.vhid.to_string())
        .env("CARP_OLD_STATE", change.old_state)
        .env("CARP_NEW_STATE", change.new_state)
        .env("CARP_REASON", change.reason)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(err) => {
            tracing::warn!(hook = %hook.display(), error = %err, "hook could not start");
            return;
        }
    };
    tokio::spawn(async move {
        match tokio::time::timeout(HOOK_TIMEOUT, child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => {
                tracing::warn!(hook = %hook.display(), %status, "hook failed")
            }
            Ok(Err(err)) => tracing::warn!(hook = %hook.display(), error = %err, "hook wait"),
            Err(_) => {
                tracing::warn!(hook = %hook.display(), "hook timed out; killed");
                let _ = child.kill().await;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hook_sees_the_change_in_its_environment_and_does_not_block() {
        let dir = std::env::temp_dir().join(format!("carpd-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("env.txt");
        let hook = dir.join("hook.sh");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\nsleep 1\nenv | grep ^CARP_ | sort > {}.tmp\nmv {0}.tmp {0}\n",
                out.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        let started = std::time::Instant::now();
        spawn(
            hook,
            StateChange {
                interface: "carp0".into(),
                carpdev: "eth0".into(),
                vhid: 7,
                old_state: "BACKUP",
                new_state: "MASTER",
                reason: "master_down_timer",
            },
        );
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "spawn blocked"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !out.exists() {
            assert!(std::time::Instant::now() < deadline, "hook never ran");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let env = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            env,
            "CARP_CARPDEV=eth0\nCARP_INTERFACE=carp0\nCARP_NEW_STATE=MASTER\nCARP_OLD_STATE=BACKUP\nCARP_REASON=master_down_timer\nCARP_VHID=7\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
