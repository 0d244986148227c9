//! Checks of the staged package tree that `cargo xtask deb` runs after building:
//! - `systemd-analyze verify` of both units, against the host's systemd units plus the
//!   package's files (the unit's binary must exist where `ExecStart=` says);
//! - Debian's dracut (`dracut-core`, unpacked, not installed: it would replace the host's
//!   initramfs-tools) builds an initramfs with the `kdump-dma-observer` module, and the image
//!   holds the binary, the unit and its `initrd.target` wants link.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context as _, ensure};

use crate::{bounded, cmd, debian};

/// The units, installed and enabled.
pub(crate) const UNITS: [&str; 2] = [
    "kdump-dma-observer.service",
    "kdump-dma-observer-recover.service",
];

const DRACUT_TIMEOUT: Duration = Duration::from_mins(5);

/// `systemd-analyze verify` of the package's units.
pub(crate) fn verify_units(staging: &Path, work: &Path) -> anyhow::Result<()> {
    let analyze = debian::ensure("systemd-analyze", "systemd", "unit checks", work)?;
    let root = work.join("verify-root");
    reset_dir(&root)?;
    // The host's units (targets the package's units order against), then the package.
    copy_tree(
        Path::new("/lib/systemd/system"),
        &root.join("lib/systemd/system"),
    )?;
    copy_tree(staging, &root)?;
    std::fs::remove_dir_all(root.join("DEBIAN")).ok();
    let out = Command::new(&analyze)
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        // The man page is in the package, not installed on this host.
        .arg("--man=no")
        .args(UNITS)
        .output()
        .context("running systemd-analyze verify")?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify {}: {said}",
        UNITS.join(" ")
    );
    eprintln!("systemd-analyze verify: {} clean", UNITS.join(", "));
    for (unit, most) in EXPOSURE {
        let out = Command::new(&analyze)
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(format!("--root={}", root.display()))
            .arg(format!("--threshold={most}"))
            .arg(unit)
            .output()
            .context("running systemd-analyze security")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let overall = text
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .unwrap_or("(no overall line)")
            .trim();
        ensure!(
            out.status.success(),
            "{unit}: sandboxing weaker than allowed (exposure above {:.1}): {overall}",
            f64::from(most) / 10.0
        );
        eprintln!("systemd-analyze security: {overall}");
    }
    Ok(())
}

/// The most exposure (`systemd-analyze security`, tenths) each unit may have. The capture
/// unit needs `CAP_BPF`, `CAP_PERFMON`, `CAP_SYS_ADMIN` (tracefs), `/dev/kmsg` and kernel
/// tunables (`kprobe_events`); the recover unit needs none of that.
const EXPOSURE: [(&str, u32); 2] = [
    ("kdump-dma-observer.service", 50),
    ("kdump-dma-observer-recover.service", 20),
];

/// Builds an initramfs with Debian's dracut and the package's module; checks its contents.
pub(crate) fn dracut_image(staging: &Path, work: &Path) -> anyhow::Result<PathBuf> {
    debian::ensure("cpio", "cpio", "dracut", work)?;
    debian::ensure("udevadm", "udev", "dracut's systemd module", work)?;
    let dracut = unpack_dracut(work)?;
    let modules = dracut.join("usr/lib/dracut/modules.d/99kdump-dma-observer");
    reset_dir(&modules)?;
    copy_tree(
        &staging.join("usr/lib/dracut/modules.d/99kdump-dma-observer"),
        &modules,
    )?;
    // The module installs /usr/sbin/kdump-dma-observer: a private mount namespace shows the
    // package's binary there without touching the host.
    let sbin = work.join("sbin");
    reset_dir(&sbin)?;
    cmd::run(
        work,
        Command::new("cp").args(["-a", "/usr/sbin/."]).arg(&sbin),
    )?;
    std::fs::copy(
        staging.join("usr/sbin/kdump-dma-observer"),
        sbin.join("kdump-dma-observer"),
    )
    .context("staging the binary for dracut")?;
    let image = work.join("initramfs-kdump-dma-observer.img");
    let kver = cmd::output(Command::new("uname").arg("-r")).context("uname -r")?;
    let script = format!(
        "mount --bind '{sbin}' /usr/sbin && exec '{bin}' --no-kernel --no-hostonly --force \
         --modules kdump-dma-observer '{image}' '{kver}'",
        sbin = sbin.display(),
        bin = dracut.join("usr/bin/dracut").display(),
        image = image.display(),
        kver = kver.trim(),
    );
    eprintln!("dracut: building an initramfs with the kdump-dma-observer module");
    let ran = bounded::run(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .env("dracutbasedir", dracut.join("usr/lib/dracut")),
        DRACUT_TIMEOUT,
        &work.join("dracut"),
        None,
    )?;
    ensure!(
        ran.status.success(),
        "dracut failed ({}); its output is in {}.stderr:\n{}",
        ran.status,
        work.join("dracut").display(),
        ran.stderr_tail(20)
    );
    let listing = cmd::output(
        Command::new(dracut.join("usr/bin/lsinitrd"))
            .arg(&image)
            .env("dracutbasedir", dracut.join("usr/lib/dracut")),
    )
    .context("lsinitrd")?;
    for want in [
        "usr/sbin/kdump-dma-observer",
        "usr/lib/systemd/system/kdump-dma-observer.service",
        "etc/systemd/system/initrd.target.wants/kdump-dma-observer.service",
    ] {
        ensure!(
            listing.lines().any(|l| l.contains(want)),
            "{} lacks {want}; lsinitrd says:\n{listing}",
            image.display()
        );
    }
    eprintln!(
        "dracut: {} holds the binary, the unit and its initrd.target wants link",
        image.display()
    );
    Ok(image)
}

/// Debian's `dracut-core`, downloaded and unpacked under `work` (once).
fn unpack_dracut(work: &Path) -> anyhow::Result<PathBuf> {
    let dir = work.join("dracut-core");
    let bin = dir.join("usr/bin/dracut");
    if bin.is_file() {
        return Ok(dir);
    }
    let download = work.join("download");
    reset_dir(&download)?;
    let ran = bounded::run(
        Command::new("apt-get")
            .args(["download", "dracut-core"])
            .current_dir(&download),
        Duration::from_mins(5),
        &work.join("apt-get-download-dracut-core"),
        None,
    )?;
    ensure!(
        ran.status.success(),
        "apt-get download dracut-core failed:\n{}",
        ran.stderr_tail(10)
    );
    let deb = std::fs::read_dir(&download)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("apt-get download left no .deb")?;
    reset_dir(&dir)?;
    cmd::run(work, Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&dir))?;
    ensure!(bin.is_file(), "{} has no usr/bin/dracut", deb.display());
    Ok(dir)
}

fn reset_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    cmd::run(
        to,
        Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", from.display()))
            .arg(to),
    )
}
