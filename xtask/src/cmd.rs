//! Running commands with the command line shown and failures named.
use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

/// Runs `cmd` in `dir`, echoing it; fails with the command line if it fails.
pub(crate) fn run(dir: &Path, cmd: &mut Command) -> anyhow::Result<()> {
    cmd.current_dir(dir);
    eprintln!("+ {}", show(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{}`", show(cmd)))?;
    if !status.success() {
        bail!("`{}` failed: {status}", show(cmd));
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its stdout, or `None` if it cannot run or fails.
pub(crate) fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn show(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether this runs in CI: `CI` set to anything but empty, `0` or `false` (CI services set
/// `CI=true`, and so does `cargo xtask ci` for everything it starts). There a missing tool makes
/// a test or a lab check fail instead of passing as skipped.
pub(crate) fn in_ci() -> bool {
    is_ci(std::env::var("CI").ok().as_deref())
}

fn is_ci(value: Option<&str>) -> bool {
    value.is_some_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// Totals of `cargo test` runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TestTotals {
    pub passed: u64,
    pub failed: u64,
}

/// Runs `cargo test`, passing its output through, and adds up its `test result:` lines.
pub(crate) fn run_tests(dir: &Path, cmd: &mut Command) -> anyhow::Result<TestTotals> {
    cmd.current_dir(dir).stdout(Stdio::piped());
    eprintln!("+ {}", show(cmd));
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{}`", show(cmd)))?;
    let mut totals = TestTotals::default();
    for line in BufReader::new(child.stdout.take().expect("piped stdout")).lines() {
        let line = line?;
        println!("{line}");
        add_result_line(&mut totals, &line);
    }
    let status = child.wait()?;
    if !status.success() {
        bail!(
            "`{}` failed: {status} ({} passed, {} failed)",
            show(cmd),
            totals.passed,
            totals.failed
        );
    }
    Ok(totals)
}

/// Adds `test result: ok. 20 passed; 0 failed; ...` to the totals.
fn add_result_line(totals: &mut TestTotals, line: &str) {
    let Some(rest) = line.strip_prefix("test result: ") else {
        return;
    };
    for part in rest.split(';') {
        let mut words = part.split_whitespace().rev();
        let (Some(label), Some(count)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(count) = count.parse::<u64>() else {
            continue;
        };
        match label {
            "passed" => totals.passed += count,
            "failed" => totals.failed += count,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_is_any_value_of_ci_but_off_ones() {
        assert!(is_ci(Some("true")) && is_ci(Some("1")) && is_ci(Some("yes")));
        assert!(!is_ci(None) && !is_ci(Some("")) && !is_ci(Some("false")) && !is_ci(Some("0")));
    }

    #[test]
    fn sums_cargo_test_result_lines() {
        let mut t = TestTotals::default();
        add_result_line(
            &mut t,
            "test result: ok. 20 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s",
        );
        add_result_line(
            &mut t,
            "test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        add_result_line(&mut t, "test foo ... ok");
        assert_eq!(
            t,
            TestTotals {
                passed: 21,
                failed: 2
            }
        );
    }
}
