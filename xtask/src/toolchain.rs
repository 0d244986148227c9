//! The pinned toolchains, read from the files that pin them.
use std::path::Path;

use anyhow::{Context as _, anyhow};

/// bpf-linker release that links with LLVM 22 (the pinned nightly's, 22.1.7), through rustc's
/// own LLVM; releases from 0.11 on need a system LLVM 23.
pub(crate) const BPF_LINKER_VERSION: &str = "0.10.1";
/// Target of the arm64 server build.
pub(crate) const AARCH64_MUSL: &str = "aarch64-unknown-linux-musl";
/// Target of the x86-64 server build (static, like the arm64 one).
pub(crate) const X86_64_MUSL: &str = "x86_64-unknown-linux-musl";

/// `channel` of the userspace toolchain (`rust-toolchain.toml`).
pub(crate) fn userspace(root: &Path) -> anyhow::Result<String> {
    channel(&root.join("rust-toolchain.toml"))
}

/// `channel` of the eBPF toolchain (`observer-ebpf/rust-toolchain.toml`).
pub(crate) fn ebpf(root: &Path) -> anyhow::Result<String> {
    channel(&root.join("observer-ebpf/rust-toolchain.toml"))
}

fn channel(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("channel"))
        .filter_map(|rest| rest.trim().strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .next()
        .ok_or_else(|| anyhow!("{}: no `channel = \"...\"` line", path.display()))
}
