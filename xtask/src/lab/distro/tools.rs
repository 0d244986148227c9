//! Host tools the Debian image needs: mmdebstrap, qemu-user through `binfmt_misc` (the image's
//! maintainer scripts are arm64 programs), `arch-test`, and e2fsprogs (`mke2fs -d`,
//! `debugfs`). Installed with apt-get when missing; `binfmt_misc` is mounted and the
//! `qemu-aarch64` entry enabled when needed; `arch-test arm64` must then say `ok`.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail, ensure};

use crate::{cmd, debian};

const BINFMT: &str = "/proc/sys/fs/binfmt_misc";
const BINFMT_ENTRY: &str = "/proc/sys/fs/binfmt_misc/qemu-aarch64";

/// Paths of the tools, once present.
#[derive(Clone, Debug)]
pub(crate) struct Tools {
    pub mmdebstrap: PathBuf,
    pub mke2fs: PathBuf,
    pub debugfs: PathBuf,
}

/// `(program, Debian package, why)`.
const NEEDED: [(&str, &str, &str); 5] = [
    (
        "mmdebstrap",
        "mmdebstrap",
        "builds the arm64 root file system",
    ),
    (
        "qemu-aarch64-static",
        "qemu-user-static",
        "runs the image's arm64 maintainer scripts",
    ),
    (
        "update-binfmts",
        "binfmt-support",
        "registers qemu-aarch64 with binfmt_misc",
    ),
    (
        "arch-test",
        "arch-test",
        "checks that arm64 programs run here",
    ),
    (
        "debugfs",
        "e2fsprogs",
        "writes the ext4 image and reads it back",
    ),
];

/// Installs and enables what is missing; fails with what to do when arm64 programs cannot run.
pub(crate) fn ensure(logs: &Path) -> anyhow::Result<Tools> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "`lab debian-kdump` needs root: mmdebstrap (root mode), chroot, mount and apt-get"
    );
    for (program, package, why) in NEEDED {
        debian::ensure(program, package, why, logs)?;
    }
    binfmt()?;
    let said = Command::new("arch-test")
        .arg("arm64")
        .output()
        .context("cannot run arch-test")?;
    let text = String::from_utf8_lossy(&said.stdout).trim().to_owned();
    ensure!(
        text == "arm64: ok",
        "`arch-test arm64` says {text:?}: this host cannot run arm64 programs through qemu-user \
         ({BINFMT_ENTRY}: {})",
        std::fs::read_to_string(BINFMT_ENTRY)
            .map_or_else(|e| e.to_string(), |t| t.replace('\n', "; "))
    );
    eprintln!("lab: [debian-kdump] host tools present; {text}");
    let found = |p: &str| debian::which(p).with_context(|| format!("{p} is not on PATH"));
    Ok(Tools {
        mmdebstrap: found("mmdebstrap")?,
        mke2fs: found("mke2fs")?,
        debugfs: found("debugfs")?,
    })
}

/// Mounts `binfmt_misc` if needed and enables the qemu-aarch64 entry.
fn binfmt() -> anyhow::Result<()> {
    if !Path::new(BINFMT).join("status").exists() {
        eprintln!("lab: [debian-kdump] mounting binfmt_misc on {BINFMT}");
        cmd::run(
            Path::new("/"),
            Command::new("mount").args(["-t", "binfmt_misc", "binfmt_misc", BINFMT]),
        )
        .context("mounting binfmt_misc (needs root)")?;
    }
    if Path::new(BINFMT_ENTRY).exists() {
        let state = std::fs::read_to_string(BINFMT_ENTRY).unwrap_or_default();
        if state.starts_with("enabled") {
            return Ok(());
        }
    }
    eprintln!("lab: [debian-kdump] enabling binfmt_misc's qemu-aarch64 entry");
    cmd::run(
        Path::new("/"),
        Command::new("update-binfmts").args(["--enable", "qemu-aarch64"]),
    )?;
    if !Path::new(BINFMT_ENTRY).exists() {
        bail!(
            "`update-binfmts --enable qemu-aarch64` left no {BINFMT_ENTRY}; see `update-binfmts --display qemu-aarch64`"
        );
    }
    Ok(())
}
