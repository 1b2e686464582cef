//! The XDP dataplane as carpd sees it: the embedded BPF object and its loader.

/// The XDP object built from `carp-ebpf` by build.rs (bpfel-unknown-none, BTF included).
pub static XDP_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/carp"));
