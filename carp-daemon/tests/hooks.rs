//! Hooks run by a real carpd: their whole environment, and the hook of the last state change
//! (the bow-out at SIGTERM) running to its end before carpd exits.
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use carp_tests::wait_until;

mod common;
use common::{PASS, Router, VIP4, lab};

#[test]
fn hooks_see_only_their_variables_and_the_last_one_finishes_before_exit() {
    let Some(lab) = lab("e2e_hooks", 1) else {
        return;
    };
    let host = lab.host(0);
    let dir = lab.workdir().join("hooks");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("hook.log");
    let env = dir.join("hook.env");
    let hook = dir.join("hook.sh");
    // Records each run's start and end, and (once) its initial environment as exec'd.
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\n\
             echo \"start $CARP_OLD_STATE $CARP_NEW_STATE\" >> {log}\n\
             [ -e {env} ] || tr '\\0' '\\n' < /proc/$$/environ | sort > {env}\n\
             sleep 1\n\
             echo \"end $CARP_NEW_STATE\" >> {log}\n",
            log = log.display(),
            env = env.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let toml = format!(
        "[daemon]\nhooks = [\"{}\"]\n\n[[interface]]\nname = \"carp0\"\ncarpdev = \"eth0\"\n\
         vhid = 1\nadvbase = 0\nadvskew = 60\npass = \"{PASS}\"\naddresses = [\"{VIP4}/24\"]\n",
        hook.display()
    );
    let router = Router::start_files(&lab, host, &[("carpd.toml", &toml)], &[]);
    router.wait_state("MASTER", Duration::from_secs(10));
    wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|s| s.contains("end MASTER"))
    })
    .expect("the hook for MASTER ran");

    let seen = std::fs::read_to_string(&env).unwrap();
    let names: Vec<&str> = seen
        .lines()
        .map(|l| l.split_once('=').map_or(l, |(n, _)| n))
        .collect();
    assert_eq!(
        names,
        [
            "CARP_CARPDEV",
            "CARP_INTERFACE",
            "CARP_NEW_STATE",
            "CARP_OLD_STATE",
            "CARP_REASON",
            "CARP_VHID",
            "PATH"
        ],
        "{seen}"
    );

    // SIGTERM: carp0 bows out (MASTER -> INIT); its hook takes a second and is not killed.
    router.signal(carp_tests::Signal::SIGTERM);
    assert!(
        router.wait_exit(Duration::from_secs(15)),
        "{}",
        router.log()
    );
    let runs = std::fs::read_to_string(&log).unwrap();
    assert!(
        runs.ends_with("start MASTER INIT\nend INIT\n"),
        "the bow-out hook did not finish:\n{runs}\ncarpd log:\n{}",
        router.log()
    );
}
