//! A switch-side XDP pass program that puts a veth peer in NAPI mode, for measurements of
//! native-mode XDP on the hosts' ports.
//!
//! A veth in native mode hands the frames its XDP program sends with XDP_TX to its peer, and
//! the peer takes them only while it receives in NAPI mode: while it has a native XDP program
//! attached (or GRO on). A plain bridge port is in neither, so native XDP_TX from a host
//! never reaches the switch, which is what users of containers and bridged labs have and
//! what carpd's `--xdp-mode auto` avoids by choosing generic there. Labs that measure native
//! mode opt in to this two-instruction program returning XDP_PASS on the switch-side ports
//! ([`crate::LabSpec::napi_peers`]); it changes nothing else about the switch. It is loaded
//! with the bpf(2) system call directly, as it is too small to justify an object file and a
//! build step.
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::libc;

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_LINK_CREATE: libc::c_int = 28;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
const XDP_PASS: i32 = 2;

/// One eBPF instruction (struct bpf_insn); the register nibbles are zero here.
#[repr(C)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

/// `r0 = XDP_PASS; exit`.
const PROGRAM: [Insn; 2] = [
    // BPF_ALU64 | BPF_MOV | BPF_K, dst r0
    Insn {
        code: 0xb7,
        regs: 0,
        off: 0,
        imm: XDP_PASS,
    },
    // BPF_JMP | BPF_EXIT
    Insn {
        code: 0x95,
        regs: 0,
        off: 0,
        imm: 0,
    },
];

/// The BPF_PROG_LOAD part of union bpf_attr, up to the fields used here; the kernel treats
/// the missing tail as zero.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// The BPF_LINK_CREATE part of union bpf_attr.
#[repr(C)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

fn bpf<T>(cmd: libc::c_int, attr: &T) -> std::io::Result<OwnedFd> {
    // SAFETY: `attr` is a properly laid out prefix of union bpf_attr, valid for the call;
    // the kernel copies `size_of::<T>()` bytes from it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new file descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Attaches the pass program to `ifindex` (in the calling thread's network
/// namespace) in native (driver) mode. The returned bpf_link fd keeps it attached: closing it,
/// or deleting the interface, detaches it.
pub(crate) fn attach_native(ifindex: u32) -> std::io::Result<OwnedFd> {
    let license = c"GPL";
    let mut name = [0u8; 16];
    name[..9].copy_from_slice(b"napi_peer");
    let load = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_XDP,
        insn_cnt: PROGRAM.len() as u32,
        insns: PROGRAM.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    let prog = bpf(BPF_PROG_LOAD, &load)?;
    let link = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: ifindex,
        attach_type: BPF_XDP,
        flags: XDP_FLAGS_DRV_MODE,
    };
    // The link holds its own reference to the program; `prog` may close.
    bpf(BPF_LINK_CREATE, &link)
}
