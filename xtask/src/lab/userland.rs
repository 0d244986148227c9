//! The guest's userland besides the observer: busybox-static, and kexec-tools with the shared
//! libraries its `kexec` binary needs (found by walking `DT_NEEDED` in the unpacked packages).
use std::path::{Path, PathBuf};

use anyhow::{Context as _, ensure};

use super::{needed, packages};

/// Where Debian's packages keep libraries: the multiarch folder of `arch` (`arm64`, `amd64`),
/// then the plain ones.
fn lib_dirs(arch: &str) -> [&'static str; 4] {
    if arch == "amd64" {
        [
            "lib/x86_64-linux-gnu",
            "usr/lib/x86_64-linux-gnu",
            "lib",
            "usr/lib",
        ]
    } else {
        [
            "lib/aarch64-linux-gnu",
            "usr/lib/aarch64-linux-gnu",
            "lib",
            "usr/lib",
        ]
    }
}

#[derive(Debug)]
pub(crate) struct Userland {
    /// `bin/busybox` from busybox-static (version in the name of its folder).
    pub busybox: PathBuf,
    /// `sbin/kexec` from kexec-tools.
    pub kexec: PathBuf,
    pub libraries: needed::Closure,
    /// The multiarch folder the libraries go to in the guest (`lib/aarch64-linux-gnu`, ...).
    pub lib_dir: &'static str,
    /// `name version` of every package used, for the record.
    pub packages: Vec<String>,
}

/// Downloads (once), unpacks and resolves busybox-static and kexec-tools.
pub(crate) fn prepare(cache: &Path, apt: &mut packages::Apt) -> anyhow::Result<Userland> {
    let busybox_pkg = apt.require("busybox-static", None)?;
    let kexec_pkg = apt.require("kexec-tools", None)?;
    // kexec's libraries come from kexec-tools' dependencies (libc6, zlib1g, the Xen libraries).
    let mut wanted = vec![busybox_pkg];
    wanted.extend(apt.closure(kexec_pkg)?);
    let debs = packages::download(cache, &wanted)?;
    let roots = debs
        .iter()
        .map(|d| packages::extract(cache, d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let [busybox_root, kexec_root, ..] = roots.as_slice() else {
        anyhow::bail!("expected busybox-static and kexec-tools among {roots:?}");
    };
    let busybox = busybox_root.join("bin/busybox");
    let kexec = kexec_root.join("sbin/kexec");
    for (file, package) in [(&busybox, "busybox-static"), (&kexec, "kexec-tools")] {
        ensure!(
            file.is_file(),
            "{} is missing from the unpacked {package}",
            file.display()
        );
    }
    let dirs = lib_dirs(apt.arch());
    let libraries = needed::closure(&kexec, &roots[1..], &dirs)
        .with_context(|| format!("resolving the libraries of {}", kexec.display()))?;
    Ok(Userland {
        busybox,
        kexec,
        libraries,
        lib_dir: dirs[0],
        packages: wanted
            .iter()
            .map(|p| format!("{} {}", p.name, p.version))
            .collect(),
    })
}
