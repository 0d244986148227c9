//! One run's root file system: a copy of the cached base tree, configured for the lab machine
//! (host name, fstab on /dev/vda, persistent journal, kdump-tools' defaults), with the
//! project's arm64 package installed by the guest's own dpkg (run through qemu-user) and the
//! lab driver enabled on the normal boots.
use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, ensure};

use super::tree;

/// The guest's driver and its unit (`xtask/lab/debian-kdump/`).
const DRIVER: &str = include_str!("../../../lab/debian-kdump/kdump-lab-driver");
const DRIVER_UNIT: &str = include_str!("../../../lab/debian-kdump/kdump-lab-driver.service");
pub(crate) const HOSTNAME: &str = "kdumplab";

/// kdump-tools' settings for the lab: on, dumps in /var/crash, and `kexec -p -i` (without
/// `-i` the capture kernel starts ~8 s later under TCG: purgatory checks its sha256 first).
pub(crate) const KDUMP_TOOLS: [(&str, &str); 3] = [
    ("USE_KDUMP", "1"),
    ("KDUMP_COREDIR", "\"/var/crash\""),
    ("KDUMP_KEXEC_ARGS", "\"-i\""),
];

/// What the package installation showed.
#[derive(Clone, Debug)]
pub(crate) struct Installed {
    /// The .deb's file name.
    pub deb: String,
    /// Unit files the package enabled (`WantedBy=` symlinks under /etc/systemd/system).
    pub enabled: Vec<String>,
    /// /etc/default/kdump-tools as the lab left it, before the guest runs `setup --apply`.
    pub kdump_tools_defaults: String,
}

/// Copies `base` to `root` and configures it; installs `deb` with the guest's dpkg.
pub(crate) fn prepare(
    base: &Path,
    root: &Path,
    deb: &Path,
    logs: &Path,
) -> anyhow::Result<Installed> {
    tree::remove(root)?;
    tree::copy(base, root)?;
    write(root, "etc/hostname", &format!("{HOSTNAME}\n"))?;
    write(
        root,
        "etc/hosts",
        &format!("127.0.0.1 localhost\n127.0.1.1 {HOSTNAME}\n"),
    )?;
    write(
        root,
        "etc/fstab",
        "/dev/vda / ext4 rw,errors=remount-ro 0 1\n",
    )?;
    // The capture boot's journal must outlive it: the next boot prints it (`journalctl -b -1`).
    mkdir(root, "var/log/journal")?;
    let defaults_path = root.join("etc/default/kdump-tools");
    let defaults = std::fs::read_to_string(&defaults_path)
        .with_context(|| format!("reading {}", defaults_path.display()))?;
    let defaults = set_variables(&defaults, &KDUMP_TOOLS);
    std::fs::write(&defaults_path, &defaults)
        .with_context(|| format!("writing {}", defaults_path.display()))?;

    write(root, "usr/local/sbin/kdump-lab-driver", DRIVER)?;
    let driver = root.join("usr/local/sbin/kdump-lab-driver");
    std::fs::set_permissions(&driver, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", driver.display()))?;
    write(
        root,
        "etc/systemd/system/kdump-lab-driver.service",
        DRIVER_UNIT,
    )?;
    mkdir(root, "etc/systemd/system/multi-user.target.wants")?;
    let link = root.join("etc/systemd/system/multi-user.target.wants/kdump-lab-driver.service");
    std::os::unix::fs::symlink("/etc/systemd/system/kdump-lab-driver.service", &link)
        .with_context(|| format!("creating {}", link.display()))?;

    let deb_name = install_deb(root, deb, logs)?;
    Ok(Installed {
        deb: deb_name,
        enabled: enabled_units(root),
        kdump_tools_defaults: defaults,
    })
}

/// `chroot <root> dpkg -i` of the package (its maintainer scripts run as arm64 programs);
/// dpkg's output goes to `logs/dpkg-install.log`. Returns the package's file name.
fn install_deb(root: &Path, deb: &Path, logs: &Path) -> anyhow::Result<String> {
    let name = deb
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: not a file name", deb.display()))?
        .to_owned();
    let inside = PathBuf::from("tmp").join(&name);
    std::fs::copy(deb, root.join(&inside))
        .with_context(|| format!("copying {} into {}", deb.display(), root.display()))?;
    let out = Command::new("chroot")
        .arg(root)
        .args(["dpkg", "-i"])
        .arg(Path::new("/").join(&inside))
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .context("cannot run chroot")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::create_dir_all(logs).with_context(|| format!("creating {}", logs.display()))?;
    let log = logs.join("dpkg-install.log");
    std::fs::write(&log, &text).with_context(|| format!("writing {}", log.display()))?;
    std::fs::remove_file(root.join(&inside)).ok();
    ensure!(
        out.status.success(),
        "`chroot {} dpkg -i /{}` failed ({}); its output is in {}:\n{}",
        root.display(),
        inside.display(),
        out.status,
        log.display(),
        text.trim()
    );
    Ok(name)
}

/// `<target>.wants/<unit>` symlinks under etc/systemd/system that name a kdump-dma-observer unit.
fn enabled_units(root: &Path) -> Vec<String> {
    let system = root.join("etc/systemd/system");
    let mut found = Vec::new();
    for wants in std::fs::read_dir(&system).into_iter().flatten().flatten() {
        let wants_name = wants.file_name().to_string_lossy().into_owned();
        if Path::new(&wants_name)
            .extension()
            .is_none_or(|e| e != "wants")
        {
            continue;
        }
        for unit in std::fs::read_dir(wants.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let unit_name = unit.file_name().to_string_lossy().into_owned();
            if unit_name.starts_with("kdump-dma-observer") {
                found.push(format!("{wants_name}/{unit_name}"));
            }
        }
    }
    found.sort();
    found
}

/// Sets shell variables in a defaults file: replaces the first line that sets (or, commented
/// out, shows) each one and drops later settings of it; appends those it lacks.
#[must_use]
pub(crate) fn set_variables(text: &str, vars: &[(&str, &str)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for (name, value) in vars {
        let wanted = format!("{name}={value}");
        let sets = |line: &str| {
            line.trim_start()
                .trim_start_matches('#')
                .trim_start()
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('='))
        };
        let active = |line: &str| !line.trim_start().starts_with('#') && sets(line);
        // An active setting wins over a commented example.
        let at = lines
            .iter()
            .position(|l| active(l))
            .or_else(|| lines.iter().position(|l| sets(l)));
        match at {
            Some(i) => {
                lines[i].clone_from(&wanted);
                let mut n = 0;
                lines.retain(|l| {
                    n += 1;
                    n - 1 == i || !active(l)
                });
            }
            None => lines.push(wanted),
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn write(root: &Path, path: &str, text: &str) -> anyhow::Result<()> {
    let full = root.join(path);
    if let Some(dir) = full.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&full, text).with_context(|| format!("writing {}", full.display()))
}

fn mkdir(root: &Path, path: &str) -> anyhow::Result<()> {
    let full = root.join(path);
    std::fs::create_dir_all(&full).with_context(|| format!("creating {}", full.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_kdump_tools_variables_in_place() {
        let text = "# kdump-tools configuration\n\
            # USE_KDUMP - controls kdump will be configured\n\
            USE_KDUMP=0\n\
            #KDUMP_COREDIR=\"/var/crash\"\n\
            KDUMP_CMDLINE_APPEND=\"reset_devices\"\n\
            USE_KDUMP=0\n";
        let out = set_variables(text, &KDUMP_TOOLS);
        assert_eq!(
            out,
            "# kdump-tools configuration\n\
             # USE_KDUMP - controls kdump will be configured\n\
             USE_KDUMP=1\n\
             KDUMP_COREDIR=\"/var/crash\"\n\
             KDUMP_CMDLINE_APPEND=\"reset_devices\"\n\
             KDUMP_KEXEC_ARGS=\"-i\"\n"
        );
        assert_eq!(set_variables(&out, &KDUMP_TOOLS), out, "idempotent");
        // A longer name with the same start is another variable.
        assert_eq!(
            set_variables("USE_KDUMP_X=5\n", &[("USE_KDUMP", "1")]),
            "USE_KDUMP_X=5\nUSE_KDUMP=1\n"
        );
    }

    #[test]
    fn the_driver_speaks_the_markers_the_harness_waits_for() {
        for marker in [
            "DRIVER first",
            "KDUMP-LOADED",
            "SETUP-APPLIED",
            "KDUMP-RELOADED",
            "CRASHING",
            "DRIVER second",
            "RECOVERED",
            "DONE",
        ] {
            assert!(
                DRIVER.contains(&format!("say \"{marker}")),
                "the driver never says {marker}"
            );
        }
        assert!(DRIVER_UNIT.contains("ConditionPathExists=!/proc/vmcore"));
    }
}
