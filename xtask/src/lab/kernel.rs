//! The guest kernel: which Debian package `--kernel` means, its unpacked tree in the cache,
//! `depmod` over it, and module dependencies from `modules.dep`.
use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail, ensure};

use super::{host, packages};

/// What `--kernel` asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KernelChoice {
    /// `linux-image-arm64` from bookworm-backports (6.12).
    Backports612,
    /// `linux-image-arm64` from bookworm (6.1).
    Bookworm61,
    /// A `linux-image-*.deb` file.
    Deb(PathBuf),
}

impl KernelChoice {
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(match text {
            "6.12" => Self::Backports612,
            "6.1" => Self::Bookworm61,
            path if Path::new(path).extension().is_some_and(|e| e == "deb") => {
                let p = PathBuf::from(path);
                ensure!(p.is_file(), "--kernel {path}: no such file");
                Self::Deb(p)
            }
            other => bail!(
                "--kernel {other}: expected 6.12 (bookworm-backports), 6.1 (bookworm) or the path of a linux-image-*.deb"
            ),
        })
    }

    /// The 6.1 kernel's vmcore is unusable in this lab (see `refuses_kdump`).
    #[must_use]
    pub(crate) fn is_61(&self) -> bool {
        matches!(self, Self::Bookworm61)
    }
}

impl Kernel {
    /// Short name for messages and folder names: `6.12`, `6.1`, or the release of a `.deb`.
    #[must_use]
    pub(crate) fn label(&self) -> String {
        match self.choice {
            KernelChoice::Deb(_) => self.release.clone(),
            _ => self.choice.to_string(),
        }
    }

    /// Debian 12's own 6.1 kernel (`6.1.0-<abi>-arm64`), however it was chosen: its vmcore is
    /// broken in this lab.
    #[must_use]
    pub(crate) fn is_debian_61(&self) -> bool {
        self.choice.is_61()
            || (self.release.starts_with("6.1.0-") && self.release.ends_with("-arm64"))
    }
}

impl fmt::Display for KernelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Backports612 => f.write_str("6.12"),
            Self::Bookworm61 => f.write_str("6.1"),
            Self::Deb(p) => write!(f, "{}", p.display()),
        }
    }
}

/// An unpacked kernel, ready to boot and to take modules from.
#[derive(Clone, Debug)]
pub(crate) struct Kernel {
    pub choice: KernelChoice,
    /// `uname -r`, e.g. `6.12.95+deb12-arm64`.
    pub release: String,
    /// The `.deb` it came from (file name).
    pub deb: String,
    /// An uncompressed arm64 `Image` (QEMU `-kernel`, and `kexec -p` in the guest).
    pub image: PathBuf,
    /// `lib/modules/<release>` with `modules.dep`.
    pub modules: PathBuf,
}

/// Fetches (if needed), unpacks and depmods the kernel `choice` names.
pub(crate) fn prepare(
    cache: &Path,
    apt: &mut packages::Apt,
    choice: &KernelChoice,
) -> anyhow::Result<Kernel> {
    let deb = match choice {
        KernelChoice::Deb(path) => path.clone(),
        KernelChoice::Backports612 | KernelChoice::Bookworm61 => {
            let release = matches!(choice, KernelChoice::Backports612).then_some(host::BACKPORTS);
            // The meta package says which image package it means in that suite.
            let meta = apt.require("linux-image-arm64", release)?;
            let image = meta
                .depends
                .iter()
                .find(|d| d.starts_with("linux-image-"))
                .with_context(|| {
                    format!(
                        "linux-image-arm64 {} depends on no linux-image-* package",
                        meta.version
                    )
                })?;
            let package = apt.require(image, release)?;
            let mut debs = packages::download(cache, std::slice::from_ref(&package))?;
            debs.pop().context("download returned nothing")?
        }
    };
    let root = packages::extract(cache, &deb)?;
    let boot = root.join("boot");
    let vmlinuz = std::fs::read_dir(&boot)
        .with_context(|| format!("{}: the package has no /boot", deb.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-") || n.starts_with("vmlinux-"))
        })
        .with_context(|| format!("{}: no boot/vmlinuz-* in the package", deb.display()))?;
    let release = vmlinuz
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split_once('-'))
        .map(|(_, r)| r.to_owned())
        .context("vmlinuz file name without a release")?;
    let modules = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|d| root.join(d).join(&release))
        .find(|d| d.is_dir())
        .with_context(|| format!("{}: no lib/modules/{release}", deb.display()))?;
    let image = uncompressed_image(&vmlinuz)?;
    if !modules.join("modules.dep").exists() {
        depmod(&root, &modules, &release)?;
    }
    Ok(Kernel {
        choice: choice.clone(),
        release,
        deb: deb
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        image,
        modules,
    })
}

/// arm64 `Image` magic `ARM\x64` at offset 0x38.
const IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";

/// `vmlinuz` itself when it is a plain arm64 Image; a gzip one (`make bindeb-pkg` ships
/// `Image.gz`) is unpacked next to it once, because `kexec -p` needs the plain Image.
fn uncompressed_image(vmlinuz: &Path) -> anyhow::Result<PathBuf> {
    let head = read_head(vmlinuz, 64)?;
    if head.get(0x38..0x3c) == Some(IMAGE_MAGIC) {
        return Ok(vmlinuz.to_path_buf());
    }
    ensure!(
        head.starts_with(&[0x1f, 0x8b]),
        "{} is neither an arm64 Image (no ARM\\x64 magic at 0x38) nor gzip; EFI zboot images \
         are not supported by the guest's kexec-tools 2.0.25",
        vmlinuz.display()
    );
    let image = vmlinuz.with_extension("lab-Image");
    if !image.exists() {
        eprintln!("lab: gunzip {}", vmlinuz.display());
        let out = Command::new("gzip")
            .arg("-dc")
            .arg(vmlinuz)
            .output()
            .context("cannot run gzip")?;
        ensure!(
            out.status.success(),
            "`gzip -dc {}` failed: {}",
            vmlinuz.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        ensure!(
            out.stdout.get(0x38..0x3c) == Some(IMAGE_MAGIC),
            "{} does not hold an arm64 Image",
            vmlinuz.display()
        );
        std::fs::write(&image, &out.stdout)
            .with_context(|| format!("writing {}", image.display()))?;
    }
    Ok(image)
}

fn read_head(path: &Path, n: usize) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut buf = Vec::with_capacity(n);
    std::fs::File::open(path)
        .with_context(|| format!("opening {}", path.display()))?
        .take(n as u64)
        .read_to_end(&mut buf)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(buf)
}

fn depmod(root: &Path, modules: &Path, release: &str) -> anyhow::Result<()> {
    let depmod = host::depmod().context("depmod is missing: run `cargo xtask setup --lab`")?;
    // depmod -b BASE looks in BASE/lib/modules/RELEASE.
    let base = modules
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .unwrap_or(root);
    eprintln!("lab: depmod for {release}");
    let out = Command::new(&depmod)
        .arg("-b")
        .arg(base)
        .arg(release)
        .output()
        .with_context(|| format!("cannot run {}", depmod.display()))?;
    ensure!(
        out.status.success() && modules.join("modules.dep").exists(),
        "`{} -b {} {release}` failed: {}",
        depmod.display(),
        base.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// A kernel's modules: which exist (`modules.dep`) and which are built in (`modules.builtin`).
pub(crate) struct ModuleIndex {
    /// Module name (`-` spelled `_`) -> (path relative to lib/modules/RELEASE, its dependencies).
    modules: BTreeMap<String, (String, Vec<String>)>,
    builtin: BTreeSet<String>,
}

/// What loading a list of modules takes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct LoadPlan {
    /// Module files (relative paths as in `modules.dep`), dependencies first.
    pub files: Vec<String>,
    /// Requested modules that are built into the kernel.
    pub builtin: Vec<String>,
}

impl ModuleIndex {
    pub(crate) fn read(modules: &Path) -> anyhow::Result<Self> {
        let dep_path = modules.join("modules.dep");
        let dep = std::fs::read_to_string(&dep_path)
            .with_context(|| format!("reading {}", dep_path.display()))?;
        // modules.builtin is absent on kernels with nothing built in; that is not an error.
        let builtin = std::fs::read_to_string(modules.join("modules.builtin")).unwrap_or_default();
        Ok(Self::parse(&dep, &builtin))
    }

    fn parse(dep: &str, builtin: &str) -> Self {
        let mut modules = BTreeMap::new();
        for line in dep.lines() {
            let Some((path, deps)) = line.split_once(':') else {
                continue;
            };
            let deps = deps.split_whitespace().map(module_name).collect();
            modules.insert(module_name(path), (path.trim().to_owned(), deps));
        }
        let builtin = builtin.lines().map(module_name).collect();
        Self { modules, builtin }
    }

    /// The files to `insmod`, dependencies first, for `wanted` (module names).
    pub(crate) fn plan(&self, wanted: &[&str]) -> anyhow::Result<LoadPlan> {
        let mut plan = LoadPlan::default();
        let mut done = BTreeSet::new();
        for name in wanted {
            let name = module_name(name);
            if self.builtin.contains(&name) && !self.modules.contains_key(&name) {
                plan.builtin.push(name);
                continue;
            }
            self.visit(&name, &mut done, &mut plan.files, 0)?;
        }
        Ok(plan)
    }

    fn visit(
        &self,
        name: &str,
        done: &mut BTreeSet<String>,
        out: &mut Vec<String>,
        depth: usize,
    ) -> anyhow::Result<()> {
        ensure!(depth < 64, "module dependency cycle through {name}");
        if done.contains(name) {
            return Ok(());
        }
        let Some((path, deps)) = self.modules.get(name) else {
            bail!("module {name} is neither in modules.dep nor in modules.builtin");
        };
        for dep in deps {
            self.visit(dep, done, out, depth + 1)?;
        }
        done.insert(name.to_owned());
        out.push(path.clone());
        Ok(())
    }
}

/// `kernel/net/9p/9pnet_virtio.ko.xz` -> `9pnet_virtio`; `virtio-net` -> `virtio_net`.
fn module_name(path: &str) -> String {
    let base = path.trim().rsplit('/').next().unwrap_or_default();
    let base = base.split(".ko").next().unwrap_or(base);
    base.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "kernel/fs/9p/9p.ko.xz: kernel/fs/netfs/netfs.ko.xz kernel/net/9p/9pnet.ko.xz\n\
kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz\n\
kernel/net/9p/9pnet.ko.xz:\n\
kernel/fs/netfs/netfs.ko.xz:\n\
kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz\n\
kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz\n\
kernel/net/core/failover.ko.xz:\n";

    #[test]
    fn plans_dependencies_first_and_skips_builtins() {
        let index = ModuleIndex::parse(DEP, "kernel/drivers/virtio/virtio_pci.ko\n");
        let plan = index
            .plan(&["virtio_pci", "9p", "9pnet_virtio", "virtio-net"])
            .unwrap();
        assert_eq!(plan.builtin, ["virtio_pci"]);
        assert_eq!(
            plan.files,
            [
                "kernel/fs/netfs/netfs.ko.xz",
                "kernel/net/9p/9pnet.ko.xz",
                "kernel/fs/9p/9p.ko.xz",
                "kernel/net/9p/9pnet_virtio.ko.xz",
                "kernel/net/core/failover.ko.xz",
                "kernel/drivers/net/net_failover.ko.xz",
                "kernel/drivers/net/virtio_net.ko.xz",
            ]
        );
        let err = index.plan(&["nosuch"]).unwrap_err().to_string();
        assert!(err.contains("nosuch is neither"), "{err}");
    }
}
