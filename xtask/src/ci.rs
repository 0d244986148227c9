//! `cargo xtask ci`: everything CI checks, in the order that fails fastest.
use std::{path::Path, process::Command};

use crate::{build, cmd, setup, toolchain};

pub fn run(root: &Path) -> anyhow::Result<()> {
    step("setup");
    setup::run(root)?;

    step("rustfmt");
    cmd::run(
        root,
        Command::new("cargo").args(["fmt", "--all", "--check"]),
    )?;

    step("clippy (userspace)");
    cmd::run(
        root,
        Command::new("cargo").args([
            "clippy",
            "--workspace",
            "--exclude",
            "observer-ebpf",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;

    step("clippy (eBPF)");
    let nightly = toolchain::ebpf(root)?;
    cmd::run(
        root,
        Command::new("rustup").args([
            "run",
            &nightly,
            "cargo",
            "clippy",
            "--package",
            "observer-ebpf",
            "--release",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "--",
            "-D",
            "warnings",
        ]),
    )?;

    step("tests (unit, and eBPF on this kernel: needs root)");
    let tests = cmd::run_tests(
        root,
        Command::new("cargo").args(["test", "--workspace", "--exclude", "observer-ebpf"]),
    )?;

    step("static aarch64 build");
    build::run(
        root,
        &build::BuildArgs {
            arch: "aarch64".into(),
        },
    )?;

    step("ci passed");
    // The one closing line that totals every test binary.
    println!("tests: {} passed, {} failed", tests.passed, tests.failed);
    Ok(())
}

fn step(name: &str) {
    eprintln!("\n==> {name}");
}
