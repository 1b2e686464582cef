//! Building this crate depends on the `bpf-linker` binary, which cargo cannot express: rebuild
//! whenever the binary found on PATH changes (the approach aya-template takes).
fn main() {
    match which::which("bpf-linker") {
        Ok(path) => println!("cargo:rerun-if-changed={}", path.display()),
        Err(err) => println!("cargo:warning=bpf-linker not found ({err}); run `cargo xtask setup`"),
    }
}
