//! `kdump-dma-observer setup`: audits the kdump configuration and, when asked, adds the
//! boot-time instrumentation (`cmdline`) to the capture kernel's command line.
//!
//! It must never break a working kdump: it changes one variable, keeps everything else on it
//! and in the file, writes atomically with the file's mode, keeps a backup, and does nothing
//! when the configuration already has what it would add.
pub mod audit;
pub mod cmdline_merge;
pub mod kdump_config;

use std::path::{Path, PathBuf};

use audit::Finding;
use kdump_config::{Assignment, ConfigError, Flavor};

/// Failures of `setup`.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "no kdump configuration found (neither /etc/default/kdump-tools nor /etc/sysconfig/kdump): install kdump-tools or kdump-utils, or name the file with --config"
    )]
    NotFound,
    #[error("{path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}", path = path.display())]
    Config { path: PathBuf, source: ConfigError },
}

/// What `setup` found and would do.
#[derive(Clone, Debug)]
pub struct Plan {
    pub flavor: Flavor,
    pub path: PathBuf,
    pub current: Assignment,
    /// The command-line text the capture kernel should get from the variable.
    pub wanted: String,
    /// The whole new file, when it changes.
    pub new_text: Option<String>,
    pub findings: Vec<Finding>,
}

/// Inputs read from the running system.
#[derive(Clone, Debug, Default)]
pub struct System {
    /// `/proc/cmdline` of this (production) kernel: the capture kernel inherits most of it.
    pub proc_cmdline: String,
    /// `/sys/kernel/kexec_crash_size`.
    pub crash_size: Option<u64>,
    /// The observer's peak memory in the last capture (KiB) and the status.json it came from.
    pub measured_peak: Option<(u64, String)>,
}

/// The newest capture's `peak_rss_kib` under `dump_dir` (`<dump_dir>/*/status.json`).
#[must_use]
pub fn last_measured_peak(dump_dir: &Path) -> Option<(u64, String)> {
    let mut found: Vec<(std::time::SystemTime, u64, String)> = std::fs::read_dir(dump_dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let path = e.path().join("status.json");
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
            let status: crate::status::Status =
                serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
            Some((modified, status.peak_rss_kib?, path.display().to_string()))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, kib, path)| (kib, path))
}

/// Plans the change to `path` (of `flavor`) that adds `instrumentation`.
pub fn plan(
    flavor: Flavor,
    path: &Path,
    instrumentation: &str,
    system: &System,
) -> Result<Plan, SetupError> {
    let text = std::fs::read_to_string(path).map_err(|source| SetupError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let config_err = |source| SetupError::Config {
        path: path.to_path_buf(),
        source,
    };
    let current = kdump_config::read(flavor, &text).map_err(config_err)?;
    let wanted = cmdline_merge::merge(&current.effective, instrumentation);
    let new_text = if cmdline_merge::contains(&current.effective, instrumentation) {
        None
    } else {
        Some(kdump_config::write(flavor, &text, &wanted).map_err(config_err)?)
    };
    let capture_cmdline = format!("{} {wanted}", system.proc_cmdline);
    Ok(Plan {
        flavor,
        path: path.to_path_buf(),
        current,
        wanted,
        new_text,
        findings: audit::audit(
            &capture_cmdline,
            system.crash_size,
            system
                .measured_peak
                .as_ref()
                .map(|(kib, from)| (*kib, from.as_str())),
        ),
    })
}

/// Writes the planned file (if it changes) after backing the old one up; returns the backup.
pub fn apply(plan: &Plan, stamp: &str) -> Result<Option<PathBuf>, SetupError> {
    let Some(text) = &plan.new_text else {
        return Ok(None);
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SetupError::Io { path, source }
    };
    let mut backup = plan.path.as_os_str().to_owned();
    backup.push(format!(".kdump-dma-observer-{stamp}.bak"));
    let backup = PathBuf::from(backup);
    std::fs::copy(&plan.path, &backup).map_err(io(&backup))?;
    // The new file keeps the old one's mode (and, written by root, root's ownership).
    crate::atomic_file::write_atomically(&plan.path, text.as_bytes()).map_err(io(&plan.path))?;
    Ok(Some(backup))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    const OURS: &str = "kprobe_event=p:kdo/kdo_sea,do_sea,far=$arg1:x64 trace_clock=mono";

    #[test]
    fn applies_once_with_a_backup_and_the_same_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kdump-tools");
        let original = "USE_KDUMP=1\n#KDUMP_CMDLINE_APPEND=\"reset_devices\"\n";
        std::fs::write(&path, original).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let system = System {
            proc_cmdline: "root=/dev/vda crashkernel=256M".into(),
            crash_size: Some(256 << 20),
            measured_peak: None,
        };

        let first = plan(Flavor::KdumpTools, &path, OURS, &system).unwrap();
        assert!(
            first
                .wanted
                .starts_with(Flavor::KdumpTools.default_append())
        );
        assert!(first.wanted.ends_with(OURS));
        let backup = apply(&first, "20261124120000").unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(&backup).unwrap(), original);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);

        let second = plan(Flavor::KdumpTools, &path, OURS, &system).unwrap();
        assert_eq!(second.current.effective, first.wanted);
        assert!(
            second.new_text.is_none(),
            "already configured: nothing to do"
        );
        assert_eq!(apply(&second, "20261124120001").unwrap(), None);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn the_last_captures_measured_peak_is_found() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(last_measured_peak(dir.path()), None);
        let capture = dir.path().join("202611241232");
        std::fs::create_dir_all(&capture).unwrap();
        let status = crate::status::Status {
            peak_rss_kib: Some(24_000),
            ..Default::default()
        };
        std::fs::write(
            capture.join("status.json"),
            serde_json::to_vec(&status).unwrap(),
        )
        .unwrap();
        let (kib, from) = last_measured_peak(dir.path()).unwrap();
        assert_eq!(kib, 24_000);
        assert!(from.ends_with("202611241232/status.json"), "{from}");
    }

    #[test]
    fn a_file_it_cannot_read_safely_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kdump");
        std::fs::write(&path, "KDUMP_COMMANDLINE_APPEND=\"$EXTRA\"\n").unwrap();
        let err = plan(Flavor::KdumpUtils, &path, OURS, &System::default()).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(
            plan(
                Flavor::KdumpUtils,
                &dir.path().join("missing"),
                OURS,
                &System::default()
            )
            .unwrap_err()
            .to_string()
            .contains("missing")
        );
    }
}
