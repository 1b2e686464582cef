//! Whether this process may build labs, and the skip message when it may not.
//!
//! Lab tests run in ordinary `cargo test` runs; on a developer machine without root they must
//! skip loudly instead of failing on the first `ip netns add` with an obscure EPERM.

/// CAP_NET_ADMIN: create veths and bridges, attach XDP.
const CAP_NET_ADMIN: u32 = 12;
/// CAP_SYS_ADMIN: `ip netns add` mounts the namespace file, setns(2).
const CAP_SYS_ADMIN: u32 = 21;

/// True when this process can build labs: effective uid 0 with CAP_NET_ADMIN and
/// CAP_SYS_ADMIN effective. The capability check matters in containers, where uid 0 may
/// lack them.
pub fn is_privileged() -> bool {
    nix::unistd::geteuid().is_root()
        && effective_caps().is_some_and(|caps| {
            caps & (1 << CAP_NET_ADMIN) != 0 && caps & (1 << CAP_SYS_ADMIN) != 0
        })
}

/// Guard for tests that need root: returns true when the test may go on; otherwise prints
/// `skipping: needs root (CAP_NET_ADMIN) ...` naming the test, and returns false so the test
/// can `return` (and pass as a skip).
///
/// ```no_run
/// #[test]
/// fn pings() {
///     if !carp_tests::require_root("pings") {
///         return;
///     }
///     // ...
/// }
/// ```
pub fn require_root(test: &str) -> bool {
    if is_privileged() {
        return true;
    }
    eprintln!(
        "skipping: needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to build network namespaces: {test}"
    );
    false
}

/// The effective capability set from /proc/self/status (`CapEff:` in hex).
fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_cap_eff(&status)
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cap_eff() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_cap_eff("Name:\tx\n"), None);
    }
}
