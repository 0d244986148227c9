//! `cargo xtask build [--arch host|aarch64|x86_64]`.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context as _;

use crate::{
    cmd, elf,
    toolchain::{AARCH64_MUSL, X86_64_MUSL},
};

#[derive(clap::Args)]
pub(crate) struct BuildArgs {
    /// Architecture to build for: `host`, `aarch64` for a static arm64 binary
    /// (aarch64-unknown-linux-musl, linked by rust-lld; its eBPF programs use arm64 `pt_regs`),
    /// or `x86_64` for a static x86-64 binary (x86_64-unknown-linux-musl; x86 `pt_regs`).
    /// aya-build compiles the eBPF object with `bpf_target_arch` set to the target's arch.
    #[arg(long, default_value = "host", value_parser = ["host", "aarch64", "x86_64"])]
    pub arch: String,
}

/// Builds the release daemon; returns the binary's path.
pub(crate) fn run(root: &Path, args: &BuildArgs) -> anyhow::Result<PathBuf> {
    let mut cargo = Command::new("cargo");
    cargo.args([
        "build",
        "--release",
        "--package",
        "observer",
        "--bin",
        "kdump-dma-observer",
    ]);
    let target = target_dir(root)?;
    // Absolute, so that cargo (run in `root`) and this function agree on it.
    cargo.env("CARGO_TARGET_DIR", &target);
    let musl = match args.arch.as_str() {
        "aarch64" => Some((AARCH64_MUSL, elf::Machine::Aarch64)),
        "x86_64" => Some((X86_64_MUSL, elf::Machine::X86_64)),
        _ => None,
    };
    let binary = if let Some((triple, _)) = musl {
        cargo.args(["--target", triple]);
        target.join(triple).join("release/kdump-dma-observer")
    } else {
        target.join("release/kdump-dma-observer")
    };
    cmd::run(root, &mut cargo)?;
    let info = elf::inspect(&binary).with_context(|| format!("inspecting {}", binary.display()))?;
    if let Some((_, machine)) = musl {
        anyhow::ensure!(
            info.machine == machine && info.is_static,
            "{} is {info}, expected a static {} executable",
            binary.display(),
            args.arch
        );
    }
    eprintln!("built {} ({info})", binary.display());
    Ok(binary)
}

/// Cargo's target folder: `CARGO_TARGET_DIR` (relative to the current folder, as cargo reads
/// it) or `<workspace>/target`.
pub(crate) fn target_dir(root: &Path) -> anyhow::Result<PathBuf> {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                Ok(dir)
            } else {
                Ok(std::env::current_dir()
                    .context("reading the current folder")?
                    .join(dir))
            }
        }
        None => Ok(root.join("target")),
    }
}

/// Builds the host observer (debug: it only reads files here); returns the binary.
pub(crate) fn build_observer(root: &Path) -> anyhow::Result<PathBuf> {
    let target = target_dir(root)?;
    cmd::run(
        root,
        Command::new("cargo")
            .args([
                "build",
                "--package",
                "observer",
                "--bin",
                "kdump-dma-observer",
            ])
            .env("CARGO_TARGET_DIR", &target),
    )?;
    let binary = target.join("debug/kdump-dma-observer");
    anyhow::ensure!(binary.is_file(), "{} was not built", binary.display());
    Ok(binary)
}
