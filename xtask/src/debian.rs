//! Installing one Debian package for a program xtask needs (Chromium for the HTML check),
//! saying so; `apt-get update` only when apt does not know the package yet.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context as _, ensure};

use crate::bounded;

/// apt-get may download a few hundred MB (Chromium): bounded, generously.
const APT_TIMEOUT: Duration = Duration::from_mins(15);

/// The program's path on `PATH`, if it is there.
#[must_use]
pub(crate) fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() > 0))
}

/// `program` from `PATH`, after installing Debian's `package` if it is missing (needs root).
/// `logs` is a folder for apt-get's output.
pub(crate) fn ensure(
    program: &str,
    package: &str,
    why: &str,
    logs: &Path,
) -> anyhow::Result<PathBuf> {
    if let Some(found) = which(program) {
        return Ok(found);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    ensure!(
        root,
        "{program} is missing ({why}): run `sudo apt-get install {package}`, or this as root"
    );
    eprintln!("{program} not found ({why}): installing Debian's {package} with apt-get");
    std::fs::create_dir_all(logs).with_context(|| format!("creating {}", logs.display()))?;
    let install = || {
        bounded::run(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", package])
                .env("DEBIAN_FRONTEND", "noninteractive"),
            APT_TIMEOUT,
            &logs.join(format!("apt-get-install-{package}")),
            None,
        )
    };
    let mut ran = install()?;
    if !ran.status.success() && unknown_package(&ran.stderr) {
        eprintln!("apt does not know {package} yet: apt-get update, then again");
        let update = bounded::run(
            Command::new("apt-get")
                .arg("update")
                .env("DEBIAN_FRONTEND", "noninteractive"),
            APT_TIMEOUT,
            &logs.join("apt-get-update"),
            None,
        )?;
        ensure!(
            update.status.success(),
            "apt-get update failed ({}):\n{}",
            update.status,
            update.stderr_tail(10)
        );
        ran = install()?;
    }
    ensure!(
        ran.status.success(),
        "apt-get install {package} failed ({}):\n{}",
        ran.status,
        ran.stderr_tail(10)
    );
    let found = which(program)
        .with_context(|| format!("{package} is installed but `{program}` is still not on PATH"))?;
    eprintln!(
        "installed Debian's {package} in {:.0} s: {}",
        ran.elapsed.as_secs_f64(),
        found.display()
    );
    Ok(found)
}

fn unknown_package(stderr: &str) -> bool {
    stderr.contains("Unable to locate package") || stderr.contains("has no installation candidate")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_on_path_and_knows_apts_wording() {
        assert!(which("sh").is_some());
        assert!(which("no-such-program-xtask").is_none());
        assert!(unknown_package("E: Unable to locate package chromium"));
        assert!(unknown_package(
            "E: Package 'chromium' has no installation candidate"
        ));
        assert!(!unknown_package("E: Could not get lock /var/lib/dpkg/lock"));
    }
}
