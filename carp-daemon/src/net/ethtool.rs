//! Receive VLAN offload (ethtool's `rxvlan`, the `rx-vlan-hw-parse` feature), which hides
//! VLAN tags from XDP.
//!
//! A NIC that strips 802.1Q tags in hardware hands the tag to the driver out of band, and XDP
//! sees the frame as if it were untagged. carpd's program passes tagged frames to the stack
//! untouched (they belong to the VLAN interfaces above the carpdev), but it cannot see a tag
//! that was stripped: an ARP request or neighbour solicitation for a virtual address that
//! arrived on another VLAN of a trunk port would be answered as if it came from the carpdev's
//! own (untagged) network. So carpd warns at attach, naming the fix (`ethtool -K DEV rxvlan
//! off`). Reading the stripped tag in XDP takes the `bpf_xdp_metadata_rx_vlan_tag` kfunc,
//! which needs a device-bound program; the pinned aya cannot load one, so that is left for
//! an aya upgrade.
//!
//! The feature is read with the `SIOCETHTOOL` ioctl (`ETHTOOL_GSSET_INFO` and
//! `ETHTOOL_GSTRINGS` for the feature names, `ETHTOOL_GFEATURES` for their state), the same
//! kernel data ethtool's netlink `ETHTOOL_MSG_FEATURES_GET` returns, without a generic
//! netlink client. A device without ethtool support, or a failed read, is not a warning.
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// ethtool's name of the feature (`NETIF_F_HW_VLAN_CTAG_RX`).
pub const RX_VLAN_FEATURE: &str = "rx-vlan-hw-parse";

const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETHTOOL_GFEATURES: u32 = 0x3a;
const ETH_SS_FEATURES: u32 = 4;
const ETH_GSTRING_LEN: usize = 32;

/// The state of a feature on one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    /// On now.
    pub active: bool,
    /// The driver lets it be switched (`ethtool -k` shows `[fixed]` otherwise).
    pub changeable: bool,
}

/// What to tell the operator about a carpdev's receive VLAN offload; `None`: nothing.
pub fn rx_vlan_warning(dev: &str, rx_vlan: Option<Feature>) -> Option<String> {
    let feature = rx_vlan.filter(|f| f.active)?;
    let effect = "the NIC strips VLAN tags before XDP (rx-vlan-hw-parse is on), so carpd's \
                  dataplane cannot tell a tagged frame from an untagged one and may answer \
                  ARP and neighbour solicitations for the virtual addresses that arrived \
                  on another VLAN";
    Some(if feature.changeable {
        format!("{effect}; turn the offload off: ethtool -K {dev} rxvlan off")
    } else {
        format!(
            "{effect}; the driver cannot turn it off (fixed): carry no other VLAN tagged on \
             {dev}, or run carp on a VLAN interface"
        )
    })
}

/// Logs [`rx_vlan_warning`] for `dev` at warn level (the read itself at debug level).
pub fn warn_about_rx_vlan_offload(dev: &str) {
    let state = match read_feature(dev, RX_VLAN_FEATURE) {
        Ok(state) => state,
        Err(err) => {
            tracing::debug!(carpdev = dev, error = %err, "reading ethtool features");
            None
        }
    };
    tracing::debug!(carpdev = dev, ?state, "receive VLAN offload");
    if let Some(warning) = rx_vlan_warning(dev, state) {
        tracing::warn!(carpdev = dev, "{warning}");
    }
}

/// The state of the feature named `name` on `dev`, in the calling thread's network
/// namespace; `None` if the device has no such feature.
pub fn read_feature(dev: &str, name: &str) -> io::Result<Option<Feature>> {
    let sock = socket()?;
    let count = feature_count(&sock, dev)?;
    // struct ethtool_gstrings: cmd, string_set, len, then `len` names of 32 bytes.
    let mut strings = vec![0u32; 3 + count * ETH_GSTRING_LEN / 4];
    strings[..3].copy_from_slice(&[ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count as u32]);
    ethtool_ioctl(&sock, dev, strings.as_mut_ptr().cast())?;
    let names: Vec<u8> = strings[3..].iter().flat_map(|w| w.to_ne_bytes()).collect();
    let Some(bit) = feature_index(&names, name) else {
        return Ok(None);
    };
    // struct ethtool_gfeatures: cmd, size, then `size` blocks of {available, requested,
    // active, never_changed}.
    let blocks = count.div_ceil(32);
    let mut features = vec![0u32; 2 + blocks * 4];
    features[..2].copy_from_slice(&[ETHTOOL_GFEATURES, blocks as u32]);
    ethtool_ioctl(&sock, dev, features.as_mut_ptr().cast())?;
    Ok(Some(feature_state(&features[2..], bit)))
}

/// Index of `name` in a table of 32-byte, NUL-padded names.
fn feature_index(names: &[u8], name: &str) -> Option<usize> {
    names.chunks(ETH_GSTRING_LEN).position(|entry| {
        let len = entry.iter().position(|&b| b == 0).unwrap_or(entry.len());
        &entry[..len] == name.as_bytes()
    })
}

/// Feature `bit` in `ethtool_get_features_block`s (4 words each: available, requested,
/// active, never_changed).
fn feature_state(blocks: &[u32], bit: usize) -> Feature {
    let word = |field: usize| {
        blocks
            .get((bit / 32) * 4 + field)
            .is_some_and(|w| w & (1 << (bit % 32)) != 0)
    };
    Feature {
        active: word(2),
        changeable: word(0) && !word(3),
    }
}

/// How many features the kernel names (`ETHTOOL_GSSET_INFO` for `ETH_SS_FEATURES`).
fn feature_count(sock: &OwnedFd, dev: &str) -> io::Result<usize> {
    #[repr(C)]
    struct SsetInfo {
        cmd: u32,
        reserved: u32,
        sset_mask: u64,
        data: [u32; 1],
    }
    let mut info = SsetInfo {
        cmd: ETHTOOL_GSSET_INFO,
        reserved: 0,
        sset_mask: 1 << ETH_SS_FEATURES,
        data: [0],
    };
    ethtool_ioctl(sock, dev, (&raw mut info).cast())?;
    if info.sset_mask & (1 << ETH_SS_FEATURES) == 0 {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no feature names",
        ));
    }
    Ok(info.data[0] as usize)
}

fn socket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the descriptor is owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `SIOCETHTOOL` on `dev` with the command buffer at `data`.
fn ethtool_ioctl(sock: &OwnedFd, dev: &str, data: *mut libc::c_char) -> io::Result<()> {
    if dev.is_empty() || dev.len() >= libc::IFNAMSIZ || dev.contains('\0') {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: ifreq is plain data; all zeros is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(dev.bytes()) {
        *dst = src as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = data;
    // SAFETY: `data` points to a command buffer as large as its command says (the callers
    // size it from the counts they pass), valid for the duration of the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &mut ifr) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_names_the_fix_only_when_the_offload_is_on() {
        let on = |changeable| {
            Some(Feature {
                active: true,
                changeable,
            })
        };
        let w = rx_vlan_warning("eth0", on(true)).unwrap();
        assert!(
            w.ends_with("turn the offload off: ethtool -K eth0 rxvlan off"),
            "{w}"
        );
        assert!(w.contains("strips VLAN tags"), "{w}");
        let fixed = rx_vlan_warning("eth0", on(false)).unwrap();
        assert!(!fixed.contains("ethtool -K"), "{fixed}");
        assert!(fixed.contains("cannot turn it off (fixed)"), "{fixed}");
        let off = |changeable| {
            Some(Feature {
                active: false,
                changeable,
            })
        };
        assert_eq!(rx_vlan_warning("eth0", off(true)), None);
        assert_eq!(rx_vlan_warning("eth0", off(false)), None);
        assert_eq!(rx_vlan_warning("eth0", None), None, "unknown: no warning");
    }

    #[test]
    fn feature_tables_are_read_by_name_and_bit() {
        let mut names = vec![0u8; 40 * ETH_GSTRING_LEN];
        for (i, n) in [
            (0, "rx-checksum"),
            (33, RX_VLAN_FEATURE),
            (34, "rx-vlan-hw-parse2"),
        ] {
            names[i * ETH_GSTRING_LEN..][..n.len()].copy_from_slice(n.as_bytes());
        }
        assert_eq!(feature_index(&names, RX_VLAN_FEATURE), Some(33));
        assert_eq!(feature_index(&names, "rx-checksum"), Some(0));
        assert_eq!(feature_index(&names, "rx-vlan"), None);
        // Two blocks; bit 33 is bit 1 of the second: available, active, not never-changed.
        let blocks = [0, 0, 0, 0, 0b10, 0, 0b10, 0];
        let f = feature_state(&blocks, 33);
        assert_eq!(
            f,
            Feature {
                active: true,
                changeable: true
            }
        );
        let never_changed = [0, 0, 0, 0, 0b10, 0, 0b10, 0b10];
        assert!(!feature_state(&never_changed, 33).changeable);
        let unavailable = [0, 0, 0, 0, 0, 0, 0b10, 0];
        assert!(!feature_state(&unavailable, 33).changeable);
        assert_eq!(
            feature_state(&blocks, 70),
            Feature {
                active: false,
                changeable: false
            },
            "past the table"
        );
    }
}

/// Root-only: the ioctl against a real device, checked against the ethtool tool.
#[cfg(test)]
mod netns_tests {
    use super::*;
    use crate::net::testns::{in_netns, ip};

    /// `rx-vlan-offload: off [fixed]` from `ethtool -k` (its name for rx-vlan-hw-parse).
    fn ethtool_says(ns: &str, dev: &str) -> Feature {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", ns, "ethtool", "-k", dev])
            .output()
            .expect("ethtool");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with("rx-vlan-offload:"))
            .unwrap_or_else(|| panic!("no rx-vlan-offload in:\n{text}"));
        Feature {
            active: line.contains(": on"),
            changeable: !line.contains("[fixed]"),
        }
    }

    #[test]
    fn rx_vlan_offload_reads_as_ethtool_shows_it() {
        in_netns("ethtool_rx_vlan", |ns| async move {
            ip(
                &ns,
                &[
                    "link", "add", "cet0", "type", "veth", "peer", "name", "cet1",
                ],
            );
            let read = read_feature("cet0", RX_VLAN_FEATURE).unwrap();
            assert_eq!(read, Some(ethtool_says(&ns, "cet0")));
            assert_eq!(read_feature("cet0", "no-such-feature").unwrap(), None);
            assert!(read_feature("nosuchdev0", RX_VLAN_FEATURE).is_err());
            // Whatever veth reports, the warning follows the decision above.
            let w = rx_vlan_warning("cet0", read);
            assert_eq!(w.is_some(), read.is_some_and(|f| f.active));
        });
    }
}
