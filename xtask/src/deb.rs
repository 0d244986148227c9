//! `cargo xtask deb`: the Debian package, built with `dpkg-deb` from a staged tree.
//!
//! | path in the package | from |
//! |---|---|
//! | `/usr/sbin/kdump-dma-observer` | `cargo xtask build` (static musl, arm64 or x86-64) |
//! | `/lib/systemd/system/*.service` | `packaging/systemd/` |
//! | `/usr/lib/dracut/modules.d/99kdump-dma-observer/` | `packaging/dracut/` |
//! | `/usr/share/kdump-dma-observer/dashboards/` | `dashboards/` (Grafana JSON, alert rules) |
//! | `/usr/share/man/man8/kdump-dma-observer*.8.gz` | the host build's hidden `man` subcommand (`clap_mangen`) |
//! | `/var/lib/prometheus/node-exporter/` | node_exporter's textfile directory, for `recover` |
//!
//! The maintainer scripts (`packaging/debian/`) enable both units on install.
//!
//! Kept by hand rather than `cargo-deb`: the packaging itself is one `dpkg-deb --build` call;
//! what this file adds is staging plus the checks on the staged tree (`systemd-analyze verify`,
//! a dracut initramfs built with the module: `packaging_checks`), which cargo-deb does not do.
//! cargo-deb would also have to be installed by `cargo install` in CI, and its assets cannot
//! ship the empty node_exporter textfile folder.
use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, ensure};

use crate::{build, build::build_observer, cmd, packaging_checks};

#[derive(clap::Args)]
pub(crate) struct DebArgs {
    /// Package architecture: `arm64` (static aarch64 binary, the lab's) or `amd64` (static
    /// x86-64 binary, `cargo xtask build --arch x86_64`).
    #[arg(long, value_enum, default_value = "arm64")]
    pub arch: Arch,
}

/// Package architectures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Arch {
    /// arm64: the static aarch64 build (the QEMU labs' guests).
    #[value(name = "arm64")]
    Aarch64,
    /// amd64: the static x86-64 build.
    #[value(name = "amd64")]
    X86_64,
}

impl Arch {
    /// Debian's name.
    #[must_use]
    pub(crate) fn debian(self) -> &'static str {
        match self {
            Self::Aarch64 => "arm64",
            Self::X86_64 => "amd64",
        }
    }
}

/// Builds the package for `arch`; returns its path.
pub(crate) fn build(root: &Path, arch: Arch) -> anyhow::Result<PathBuf> {
    run(root, &DebArgs { arch })
}

/// Builds the package; returns its path (`target/debian/kdump-dma-observer_<v>-1_<arch>.deb`).
pub(crate) fn run(root: &Path, args: &DebArgs) -> anyhow::Result<PathBuf> {
    let arch = args.arch.debian();
    let binary = build::run(
        root,
        &build::BuildArgs {
            arch: match args.arch {
                Arch::Aarch64 => "aarch64",
                Arch::X86_64 => "x86_64",
            }
            .into(),
        },
    )?;
    let host = build_observer(root)?;
    let out = build::target_dir(root)?.join("debian");
    let staging = out.join(format!("root-{arch}"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("removing {}", staging.display()))?;
    }
    stage(root, &staging, &binary)?;
    man_pages(&host, &staging)?;
    control(root, &staging, arch)?;
    let checks = out.join(format!("checks-{arch}"));
    packaging_checks::verify_units(&staging, &checks)?;
    packaging_checks::dracut_image(&staging, &checks)?;
    let deb = out.join(format!("kdump-dma-observer_{}-1_{arch}.deb", version()));
    cmd::run(
        root,
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&staging)
            .arg(&deb),
    )?;
    check(&deb)?;
    eprintln!("built {}", deb.display());
    Ok(deb)
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

fn stage(root: &Path, staging: &Path, binary: &Path) -> anyhow::Result<()> {
    install(binary, &staging.join("usr/sbin/kdump-dma-observer"), 0o755)?;
    for unit in packaging_checks::UNITS {
        install(
            &root.join("packaging/systemd").join(unit),
            &staging.join("lib/systemd/system").join(unit),
            0o644,
        )?;
    }
    let dracut = root.join("packaging/dracut/99kdump-dma-observer");
    for entry in read_dir(&dracut)? {
        let name = entry.file_name().context("dracut module file name")?;
        let mode = if name.to_string_lossy().ends_with(".sh") {
            0o755
        } else {
            0o644
        };
        install(
            &entry,
            &staging
                .join("usr/lib/dracut/modules.d/99kdump-dma-observer")
                .join(name),
            mode,
        )?;
    }
    let dashboards = staging.join("usr/share/kdump-dma-observer/dashboards");
    for entry in read_dir(&root.join("dashboards"))? {
        if entry.is_file() {
            install(
                &entry,
                &dashboards.join(entry.file_name().context("dashboard file name")?),
                0o644,
            )?;
        }
    }
    let doc = staging.join("usr/share/doc/kdump-dma-observer");
    install(
        &root.join("packaging/debian/copyright"),
        &doc.join("copyright"),
        0o644,
    )?;
    for file in [
        "README.md",
        "RELIABILITY.md",
        "docs/verdict.md",
        "docs/timeline.md",
    ] {
        let name = Path::new(file).file_name().context("doc name")?;
        install(&root.join(file), &doc.join(name), 0o644)?;
    }
    let textfile = staging.join("var/lib/prometheus/node-exporter");
    std::fs::create_dir_all(&textfile).with_context(|| format!("creating {}", textfile.display()))
}

fn read_dir(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    entries.sort();
    Ok(entries)
}

fn install(from: &Path, to: &Path, mode: u32) -> anyhow::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", to.display()))
}

/// The manual pages, written by the host build's hidden `man` subcommand (`clap_mangen` over
/// the same clap definitions as `--help`, identical for every architecture), gzipped.
fn man_pages(host: &Path, staging: &Path) -> anyhow::Result<()> {
    let dir = staging.join("usr/share/man/man8");
    let out = Command::new(host)
        .arg("man")
        .arg("--dir")
        .arg(&dir)
        .output()
        .with_context(|| format!("running {} man", host.display()))?;
    ensure!(
        out.status.success(),
        "{} man failed: {}",
        host.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let pages: Vec<&str> = std::str::from_utf8(&out.stdout)
        .context("man printed non-UTF-8 paths")?
        .lines()
        .collect();
    ensure!(
        pages.iter().any(|p| p.ends_with("/kdump-dma-observer.8")),
        "no kdump-dma-observer.8 among {pages:?}"
    );
    for page in pages {
        cmd::run(staging, Command::new("gzip").arg("-9nf").arg(page))?;
    }
    Ok(())
}

fn control(root: &Path, staging: &Path, arch: &str) -> anyhow::Result<()> {
    let debian = staging.join("DEBIAN");
    std::fs::create_dir_all(&debian).with_context(|| format!("creating {}", debian.display()))?;
    let size_kib = du_kib(staging)?;
    let control = format!(
        "Package: kdump-dma-observer\n\
         Version: {}-1\n\
         Architecture: {arch}\n\
         Maintainer: kdump-dma-observer developers <kdump-dma-observer@users.noreply.github.com>\n\
         Installed-Size: {size_kib}\n\
         Depends: init-system-helpers (>= 1.52)\n\
         Recommends: kdump-tools | kdump-utils\n\
         Suggests: prometheus-node-exporter, dracut\n\
         Section: admin\n\
         Priority: optional\n\
         Description: record what a kdump capture kernel's IOMMU reset does to in-flight DMA\n \
         When a Linux server crashes, kdump boots a capture kernel whose SMMUv3 (arm64) driver\n \
         resets the IOMMU. Devices still doing DMA for the crashed kernel are then aborted,\n \
         which can raise fatal PCIe AER, DPC, firmware (GHES) errors or SErrors that kill the\n \
         capture. This package runs an eBPF observer in the capture environment (pulled in by\n \
         kdump-tools-dump.service), judges each capture, and reports it on the next boot\n \
         (Markdown, HTML, JSON, node_exporter metrics).\n",
        version()
    );
    std::fs::write(debian.join("control"), control).context("writing DEBIAN/control")?;
    for script in ["postinst", "postrm"] {
        install(
            &root.join("packaging/debian").join(script),
            &debian.join(script),
            0o755,
        )?;
    }
    Ok(())
}

fn du_kib(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in read_dir(dir)? {
        let meta = std::fs::symlink_metadata(&entry)
            .with_context(|| format!("stat {}", entry.display()))?;
        total += if meta.is_dir() {
            du_kib(&entry)? * 1024
        } else {
            meta.len()
        };
    }
    Ok(total.div_ceil(1024))
}

/// The package lists what the lab and users rely on.
fn check(deb: &Path) -> anyhow::Result<()> {
    let listing = cmd::output(Command::new("dpkg-deb").arg("--contents").arg(deb))
        .with_context(|| format!("dpkg-deb --contents {}", deb.display()))?;
    for path in [
        "./usr/sbin/kdump-dma-observer",
        "./lib/systemd/system/kdump-dma-observer.service",
        "./lib/systemd/system/kdump-dma-observer-recover.service",
        "./usr/lib/dracut/modules.d/99kdump-dma-observer/module-setup.sh",
        "./usr/share/kdump-dma-observer/dashboards/",
        "./usr/share/man/man8/kdump-dma-observer.8.gz",
        "./usr/share/man/man8/kdump-dma-observer-run.8.gz",
        "./var/lib/prometheus/node-exporter/",
    ] {
        ensure!(
            listing.lines().any(|l| l.ends_with(path)),
            "{} lacks {path}:\n{listing}",
            deb.display()
        );
    }
    Ok(())
}
