//! `cargo xtask test [--root]`: the unit and integration tests a contributor runs, and with
//! `--root` the tests that load BPF programs into this machine's kernel (`#[ignore]`d in plain
//! `cargo test`, as aya keeps its integration tests apart).
use std::{path::Path, process::Command};

use anyhow::bail;

use crate::cmd::{self, TestTotals};

/// The test binaries whose tests need root and the kernel's BPF (every test in them is
/// `#[ignore = "needs root ..."]`).
pub(crate) const ROOT_TEST_BINARIES: &[&str] = &["host_ebpf", "faults"];

#[derive(clap::Args)]
pub(crate) struct TestArgs {
    /// Also run the tests that need root and the running kernel's BPF (`observer/tests/`:
    /// `host_ebpf.rs`, `faults.rs`). Refused unless run as root.
    #[arg(long)]
    pub root: bool,
}

pub(crate) fn run_cli(root: &Path, args: &TestArgs) -> anyhow::Result<()> {
    let totals = run(root, args.root)?;
    println!("tests: {} passed, {} failed", totals.passed, totals.failed);
    Ok(())
}

/// Runs the workspace's tests, then (with `with_root`) the root-only ones; the totals of both.
pub(crate) fn run(root: &Path, with_root: bool) -> anyhow::Result<TestTotals> {
    // SAFETY: no preconditions.
    if with_root && unsafe { libc::geteuid() } != 0 {
        bail!(
            "--root loads BPF programs into this kernel and needs root: run `sudo cargo xtask test --root`"
        );
    }
    let mut totals = cmd::run_tests(
        root,
        Command::new("cargo").args(["test", "--workspace", "--exclude", "observer-ebpf"]),
    )?;
    if with_root {
        let mut cargo = Command::new("cargo");
        cargo.args(["test", "--package", "observer"]);
        for binary in ROOT_TEST_BINARIES {
            cargo.args(["--test", binary]);
        }
        // Only the ignored ones: every test in these binaries is.
        cargo.args(["--", "--ignored"]);
        let more = cmd::run_tests(root, &mut cargo)?;
        if more.passed == 0 {
            bail!("the root tests ran no test: were they renamed?");
        }
        totals.passed += more.passed;
        totals.failed += more.failed;
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_root_test_binary_exists_and_ignores_all_of_its_tests() {
        let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../observer/tests");
        for binary in ROOT_TEST_BINARIES {
            let text = std::fs::read_to_string(tests.join(format!("{binary}.rs"))).unwrap();
            let tests = text.matches("#[test]").count();
            let ignored = text.matches("#[ignore = \"needs root").count();
            assert!(tests > 0, "{binary}.rs has no test");
            assert_eq!(
                tests, ignored,
                "{binary}.rs: every test needs #[ignore = \"needs root ...\"], or it runs (and fails) in plain cargo test"
            );
        }
    }
}
