//! Builds the eBPF programs (observer-ebpf) for this target's architecture and embeds them.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, anyhow};
// A build-dependency only so that cargo rebuilds this crate when the eBPF programs change.
use observer_ebpf as _;

const EBPF_PACKAGE: &str = "observer-ebpf";

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let ebpf_dir = manifest_dir
        .parent()
        .context("observer has a parent directory")?
        .join(EBPF_PACKAGE);
    let toolchain_file = ebpf_dir.join("rust-toolchain.toml");
    println!("cargo:rerun-if-changed={}", toolchain_file.display());
    let toolchain = pinned_channel(&toolchain_file)?;
    if let Err(missing) = check_toolchain(&toolchain) {
        // One line, naming the fix.
        println!("cargo::error=eBPF toolchain incomplete ({missing}): run `cargo xtask setup`");
        return Ok(());
    }
    let root_dir = ebpf_dir
        .to_str()
        .ok_or_else(|| anyhow!("non-UTF-8 path {}", ebpf_dir.display()))?;
    // aya-build relays the nested cargo's progress lines as warnings; keep only real diagnostics
    // (compiler messages still arrive through --message-format=json).
    // SAFETY: the build script is single-threaded here.
    unsafe { std::env::set_var("CARGO_TERM_QUIET", "true") };
    aya_build::build_ebpf(
        [aya_build::Package {
            name: EBPF_PACKAGE,
            root_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(&toolchain),
    )
}

/// The `channel = "..."` of a rust-toolchain.toml.
fn pinned_channel(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("channel"))
        .filter_map(|rest| rest.trim().strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .next()
        .ok_or_else(|| anyhow!("{}: no `channel = \"...\"` line", path.display()))
}

/// Checks the pieces the eBPF build needs; `Err` names the first missing one.
fn check_toolchain(toolchain: &str) -> Result<(), String> {
    let sysroot = Command::new("rustup")
        .args(["run", toolchain, "rustc", "--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .ok_or_else(|| format!("rust toolchain {toolchain} is not installed"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if !sysroot
        .join("lib/rustlib/src/rust/library/Cargo.lock")
        .is_file()
    {
        return Err(format!(
            "component rust-src of {toolchain} is not installed"
        ));
    }
    let linker_ok = Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !linker_ok {
        return Err("bpf-linker is not on PATH".into());
    }
    Ok(())
}
