//! The base root file system: Debian bookworm for arm64 with systemd, kdump-tools and the
//! 6.12 kernel from bookworm-backports, built once with mmdebstrap and kept in the lab's cache
//! (`<cache>/debian-kdump/rootfs-<key>`), where `<key>` is a hash of the recipe (suites,
//! packages, the kernel package's name, hooks). A new kernel in bookworm-backports or a changed
//! recipe builds a new tree; an interrupted build leaves only a `.partial` folder.
use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};
use serde_json::json;

use super::{tools::Tools, tree};
use crate::lab::{console::Follower, host, packages::Apt};

/// Debian's mirror for the guest's packages.
const MIRROR: &str = "http://deb.debian.org/debian";
const SECURITY_MIRROR: &str = "http://deb.debian.org/debian-security";

/// What the guest needs besides the kernel. `linux-base` comes from backports: the 6.12
/// kernel pre-depends on a newer one than bookworm's.
const PACKAGES: [&str; 12] = [
    "systemd-sysv",
    "udev",
    "kmod",
    "dbus",
    "kdump-tools",
    "kexec-tools",
    "makedumpfile",
    "initramfs-tools",
    "zstd",
    "busybox",
    "procps",
    "linux-base/bookworm-backports",
];

/// Modules the guest's initramfs images get (`MODULES=list`): the root disk and ext4.
const INITRAMFS_MODULES: [&str; 4] = ["virtio_blk", "virtio_net", "ext4", "crc32c_generic"];

/// Hooks run by mmdebstrap before any package is installed. initramfs-tools' default
/// `MODULES=most` makes every mkinitramfs take about 12 minutes under qemu-user (and the
/// kernel's postinst and a trigger build two), and kdump-tools' kernel hook turns `most` into
/// `MODULES=dep`, which fails in a chroot ("failed to determine device for /") and with it the
/// kernel's postinst. `MODULES=list` with the few modules the lab machine needs avoids both;
/// both files are outside dpkg's conffiles, so no prompt.
fn setup_hooks() -> Vec<String> {
    vec![
        r#"mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d""#
            .to_owned(),
        r#"echo MODULES=list > "$1/etc/initramfs-tools/conf.d/zz-kdump-lab""#.to_owned(),
        format!(
            r#"printf '{}\n' > "$1/usr/share/initramfs-tools/modules.d/zz-kdump-lab""#,
            INITRAMFS_MODULES.join("\\n")
        ),
    ]
}

/// The makedumpfile in the image, and what it leaves on the lab's 6.12 kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Makedumpfile {
    pub name: &'static str,
    /// Whether kdump-tools ends with an empty `dump.<stamp>`.
    pub empty_dump: bool,
}

/// The image keeps bookworm's makedumpfile 1.7.2, and the capture's expected outcome is an
/// empty dump, which the observer must report. Measured in this lab (QEMU `-cpu
/// max,pauth-impdef=on,lpa2=off`, Linux 6.12.95+deb12-arm64): 1.7.2 fails with
/// `calculate_plat_config: PAGE SIZE 0x1000 and VA Bits 52 not supported`, and kdump-tools
/// 1.8.1, which checks the exit status of its compressor rather than makedumpfile's, says
/// "saved vmcore" over a 0-byte `dump.<stamp>` (and no dmesg file). No Debian package does
/// better: trixie's 1.7.6 and sid's 1.7.8, installed into the image from pinned sources, fail
/// with the same message on the same run; and trixie's is not a clean install into bookworm
/// anyway (apt upgrades libc6 to 2.41, libstdc++6 and libgcc-s1 to GCC 14, base-files to 13,
/// which makes /etc/os-release say trixie, and replaces libdw1/libelf1 with their t64
/// versions). Building makedumpfile from source is out of bounds for the project.
pub(crate) const MAKEDUMPFILE: Makedumpfile = Makedumpfile {
    name: "bookworm's makedumpfile 1.7.2",
    empty_dump: true,
};

/// The inputs that decide the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Recipe {
    /// `linux-image-6.12.<n>+deb12-arm64`, as bookworm-backports' `linux-image-arm64` names it.
    pub kernel_package: String,
    pub packages: Vec<String>,
    pub sources: Vec<String>,
    pub setup_hooks: Vec<String>,
}

impl Recipe {
    #[must_use]
    pub(crate) fn new(kernel_package: &str) -> Self {
        let mut packages: Vec<String> = PACKAGES.iter().map(|&p| p.to_owned()).collect();
        packages.push(format!("{kernel_package}/{}", host::BACKPORTS));
        let suite = host::CODENAME;
        Self {
            kernel_package: kernel_package.to_owned(),
            packages,
            sources: vec![
                format!("deb {MIRROR} {suite} main"),
                format!("deb {MIRROR} {suite}-updates main"),
                format!("deb {SECURITY_MIRROR} {suite}-security main"),
                format!("deb {MIRROR} {} main", host::BACKPORTS),
            ],
            setup_hooks: setup_hooks(),
        }
    }

    /// `uname -r` of the kernel: the package name without `linux-image-`.
    #[must_use]
    pub(crate) fn kernel_release(&self) -> &str {
        self.kernel_package
            .strip_prefix("linux-image-")
            .unwrap_or(&self.kernel_package)
    }

    /// Everything that decides the tree, one item a line.
    #[must_use]
    pub(crate) fn text(&self) -> String {
        let mut text = format!(
            "mmdebstrap --arch=arm64 --variant=minbase {}\n",
            host::CODENAME
        );
        for p in &self.packages {
            let _ = writeln!(text, "include {p}");
        }
        for s in &self.sources {
            let _ = writeln!(text, "source {s}");
        }
        for h in &self.setup_hooks {
            let _ = writeln!(text, "setup-hook {h}");
        }
        let _ = writeln!(text, "preseed latest_sysctls-{}", self.kernel_release());
        text
    }

    /// The cache key: FNV-1a (64 bits) of [`Recipe::text`], stable across Rust versions.
    #[must_use]
    pub(crate) fn key(&self) -> String {
        format!("{:016x}", fnv1a(self.text().as_bytes()))
    }

    fn mmdebstrap_args(&self, target: &Path) -> Vec<String> {
        let mut args: Vec<String> = [
            "--arch=arm64",
            "--variant=minbase",
            "--mode=root",
            "--aptopt=Acquire::Retries \"3\"",
            // The cache is root's: apt's `_apt` sandbox user cannot write there.
            "--aptopt=APT::Sandbox::User \"root\"",
        ]
        .map(str::to_owned)
        .into();
        args.push(format!("--include={}", self.packages.join(",")));
        args.extend(self.setup_hooks.iter().map(|h| format!("--setup-hook={h}")));
        args.push(host::CODENAME.to_owned());
        args.push(target.display().to_string());
        args.extend(self.sources.iter().cloned());
        args
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A ready base tree.
#[derive(Clone, Debug)]
pub(crate) struct Base {
    pub dir: PathBuf,
    pub recipe: Recipe,
    /// How long mmdebstrap took, when this run built the tree.
    pub built_in: Option<Duration>,
}

/// The kernel package bookworm-backports' `linux-image-arm64` points at.
pub(crate) fn kernel_package(apt: &mut Apt) -> anyhow::Result<String> {
    let meta = apt.require("linux-image-arm64", Some(host::BACKPORTS))?;
    meta.depends
        .iter()
        .find(|d| d.starts_with("linux-image-"))
        .cloned()
        .with_context(|| {
            format!(
                "linux-image-arm64 {} in {} depends on no linux-image-* package",
                meta.version,
                host::BACKPORTS
            )
        })
}

/// The cached tree for `recipe`, built first if there is none.
pub(crate) fn base(cache: &Path, tools: &Tools, recipe: Recipe) -> anyhow::Result<Base> {
    let home = cache.join("debian-kdump");
    std::fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
    let key = recipe.key();
    let dir = home.join(format!("rootfs-{key}"));
    if dir.join("etc/os-release").is_file() {
        eprintln!(
            "lab: [debian-kdump] base image cached: {} (kernel {})",
            dir.display(),
            recipe.kernel_release()
        );
        return Ok(Base {
            dir,
            recipe,
            built_in: None,
        });
    }
    remove_stale_partials(&home)?;
    let partial = home.join(format!("rootfs-{key}.partial-{}", std::process::id()));
    let log = home.join(format!("mmdebstrap-{key}.log"));
    eprintln!(
        "lab: [debian-kdump] building the base image with mmdebstrap (about 5 min, longer on a busy machine): {}\n\
         lab: [debian-kdump]   kernel {}; log {}",
        dir.display(),
        recipe.kernel_package,
        log.display()
    );
    let started = Instant::now();
    let built = mmdebstrap(tools, &recipe, &partial, &log)
        .and_then(|()| finish(&partial, &recipe))
        .and_then(|()| {
            std::fs::rename(&partial, &dir)
                .with_context(|| format!("renaming {} to {}", partial.display(), dir.display()))
        });
    if let Err(e) = built {
        if let Err(cleanup) = tree::remove(&partial) {
            eprintln!("lab: [debian-kdump] {cleanup:#}");
        }
        return Err(e);
    }
    let took = started.elapsed();
    let about = json!({
        "recipe": recipe.text(),
        "kernel_release": recipe.kernel_release(),
        "mmdebstrap_s": (took.as_secs_f64() * 10.0).round() / 10.0,
    });
    let about_path = home.join(format!("rootfs-{key}.json"));
    std::fs::write(&about_path, format!("{about:#}\n"))
        .with_context(|| format!("writing {}", about_path.display()))?;
    eprintln!(
        "lab: [debian-kdump] base image built in {:.0} s: {}",
        took.as_secs_f64(),
        dir.display()
    );
    remove_other_trees(&home, &dir);
    Ok(Base {
        dir,
        recipe,
        built_in: Some(took),
    })
}

/// Runs mmdebstrap with its output in `log`, forwarding its `I:`/`W:`/`E:` lines and saying
/// every 30 s that it is still working.
fn mmdebstrap(tools: &Tools, recipe: &Recipe, target: &Path, log: &Path) -> anyhow::Result<()> {
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out
        .try_clone()
        .with_context(|| format!("opening {}", log.display()))?;
    let args = recipe.mmdebstrap_args(target);
    let started = Instant::now();
    let mut child = Command::new(&tools.mmdebstrap)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot start {}", tools.mmdebstrap.display()))?;
    let mut follower = Follower::new(log);
    let mut said = Instant::now();
    let status = loop {
        let exited = child.try_wait().context("waiting for mmdebstrap")?;
        for line in follower.poll()? {
            if ["I: ", "W: ", "E: "].iter().any(|p| line.starts_with(p)) {
                eprintln!(
                    "lab: [debian-kdump] +{:4.0} s mmdebstrap {line}",
                    started.elapsed().as_secs_f64()
                );
                said = Instant::now();
            }
        }
        if let Some(status) = exited {
            break status;
        }
        if said.elapsed() >= Duration::from_secs(30) {
            eprintln!(
                "lab: [debian-kdump] +{:4.0} s mmdebstrap still working (maintainer scripts under qemu-user)",
                started.elapsed().as_secs_f64()
            );
            said = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(25).collect();
        bail!(
            "mmdebstrap failed ({status}) after {:.0} s; last lines of {}:\n    | {}",
            started.elapsed().as_secs_f64(),
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n    | ")
        );
    }
    Ok(())
}

/// Checks the fresh tree and seeds kdump-tools' record of the sysctl file, so that the first
/// boot does not rebuild the kdump initramfs: `kdump-config` compares /etc/kdump/sysctl.conf
/// with `/var/lib/kdump/latest_sysctls-<release>` and deletes the initramfs when they differ or
/// the record is missing (a rebuild costs 20-40 s under TCG before multi-user.target).
fn finish(root: &Path, recipe: &Recipe) -> anyhow::Result<()> {
    let release = recipe.kernel_release();
    for wanted in [
        format!("boot/vmlinuz-{release}"),
        format!("boot/initrd.img-{release}"),
        format!("var/lib/kdump/initrd.img-{release}"),
        "usr/sbin/kdump-config".to_owned(),
        "usr/bin/makedumpfile".to_owned(),
        "etc/kdump/sysctl.conf".to_owned(),
    ] {
        ensure!(
            root.join(&wanted).exists(),
            "mmdebstrap finished but the tree has no /{wanted} ({})",
            root.display()
        );
    }
    let status_path = root.join("var/lib/dpkg/status");
    let status = std::fs::read_to_string(&status_path)
        .with_context(|| format!("reading {}", status_path.display()))?;
    let broken = not_installed(&status);
    ensure!(
        broken.is_empty(),
        "packages not fully installed in {}: {}",
        root.display(),
        broken.join(", ")
    );
    let record = root.join(format!("var/lib/kdump/latest_sysctls-{release}"));
    std::fs::copy(root.join("etc/kdump/sysctl.conf"), &record)
        .with_context(|| format!("writing {}", record.display()))?;
    Ok(())
}

/// `Package (Status)` of every package dpkg left half-way (unpacked, half-configured, triggers
/// pending...); installed, removed and purged ones are fine.
fn not_installed(status: &str) -> Vec<String> {
    status
        .split("\n\n")
        .filter_map(|stanza| {
            let field = |key: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
            };
            let package = field("Package")?;
            let state = field("Status")?;
            let settled = matches!(
                state.rsplit(' ').next(),
                Some("installed" | "config-files" | "not-installed")
            );
            (!settled).then(|| format!("{package} ({state})"))
        })
        .collect()
}

/// Partial trees of earlier runs whose mmdebstrap is no longer running.
fn remove_stale_partials(home: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(home)
        .with_context(|| format!("reading {}", home.display()))?
        .filter_map(Result::ok)
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((_, pid)) = name.split_once(".partial-") else {
            continue;
        };
        if Path::new("/proc").join(pid).exists() {
            bail!(
                "{} is being built by process {pid}; wait for it or stop it",
                entry.path().display()
            );
        }
        eprintln!(
            "lab: [debian-kdump] removing an interrupted build: {}",
            entry.path().display()
        );
        tree::remove(&entry.path())?;
    }
    Ok(())
}

/// Trees of older recipes (about 500 MB each); failures are only reported.
fn remove_other_trees(home: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(home) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path == keep || !name.starts_with("rootfs-") || !path.is_dir() {
            continue;
        }
        eprintln!(
            "lab: [debian-kdump] removing the tree of an older recipe: {}",
            path.display()
        );
        if let Err(e) = tree::remove(&path) {
            eprintln!("lab: [debian-kdump] {e:#}");
        }
        let _ = std::fs::remove_file(home.join(format!("{name}.json")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_names_the_kernel_and_changes_key_with_it() {
        let r = Recipe::new("linux-image-6.12.95+deb12-arm64");
        assert_eq!(r.kernel_release(), "6.12.95+deb12-arm64");
        assert!(
            r.packages
                .contains(&"linux-image-6.12.95+deb12-arm64/bookworm-backports".to_owned())
        );
        let args = r.mmdebstrap_args(Path::new("/c/rootfs")).join(" ");
        assert!(args.contains("--variant=minbase --mode=root"), "{args}");
        assert!(
            args.contains("kdump-tools,kexec-tools,makedumpfile"),
            "{args}"
        );
        assert!(
            args.contains(
                r#"--setup-hook=echo MODULES=list > "$1/etc/initramfs-tools/conf.d/zz-kdump-lab""#
            ),
            "{args}"
        );
        assert!(
            args.contains(r"printf 'virtio_blk\nvirtio_net\next4\ncrc32c_generic\n'"),
            "{args}"
        );
        assert!(args.contains(
            "bookworm /c/rootfs deb http://deb.debian.org/debian bookworm main deb http://deb.debian.org/debian bookworm-updates main"
        ));
        assert_eq!(r.key(), r.clone().key());
        assert_ne!(
            r.key(),
            Recipe::new("linux-image-6.12.96+deb12-arm64").key()
        );
        assert_eq!(r.key().len(), 16);
        // FNV-1a's published test vector.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn finds_packages_dpkg_did_not_finish() {
        let status = "Package: base-files\nStatus: install ok installed\nVersion: 12\n\n\
            Package: linux-image-6.12.95+deb12-arm64\nStatus: install ok half-configured\n\n\
            Package: gone\nStatus: deinstall ok config-files\n";
        assert_eq!(
            not_installed(status),
            ["linux-image-6.12.95+deb12-arm64 (install ok half-configured)"]
        );
    }
}
