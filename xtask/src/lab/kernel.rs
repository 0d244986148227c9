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
    /// `linux-image-arm64` from another suite (`trixie`, `sid`).
    Suite(String),
    /// A `linux-image-*.deb` file.
    Deb(PathBuf),
    /// A folder holding a `linux-image-*.deb` (and, for Debian 14's split kernel, its siblings).
    Dir(PathBuf),
}

impl KernelChoice {
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(match text {
            "6.12" | "bookworm-backports" => Self::Backports612,
            "6.1" | "bookworm" => Self::Bookworm61,
            suite if packages::SUITES.contains(&suite) => Self::Suite(suite.to_owned()),
            path if Path::new(path).extension().is_some_and(|e| e == "deb") => {
                let p = PathBuf::from(path);
                ensure!(p.is_file(), "--kernel {path}: no such file");
                Self::Deb(p)
            }
            path if Path::new(path).is_dir() => Self::Dir(PathBuf::from(path)),
            other => bail!(
                "--kernel {other}: expected a suite ({}), 6.12 (bookworm-backports), 6.1 \
                 (bookworm), the path of a linux-image-*.deb, or a folder of .debs",
                packages::SUITES.join(", ")
            ),
        })
    }

    /// bookworm's 6.1, whose vmcore is broken in this lab (`VMCORE_61`).
    #[must_use]
    pub(crate) fn is_61(&self) -> bool {
        matches!(self, Self::Bookworm61)
    }
}

impl Kernel {
    /// Short name for messages and folder names: `6.12`, `6.1`, a suite, or the release of a `.deb`.
    #[must_use]
    pub(crate) fn label(&self) -> String {
        match self.choice {
            KernelChoice::Deb(_) | KernelChoice::Dir(_) => self.release.clone(),
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
            Self::Suite(s) => f.write_str(s),
            Self::Deb(p) | Self::Dir(p) => write!(f, "{}", p.display()),
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

/// The packages of Debian 14's split kernel that `linux-image-<release>` depends on.
const SPLIT_PARTS: [&str; 3] = ["linux-binary-", "linux-modules-", "linux-base-"];

/// Fetches (if needed), unpacks and depmods the kernel `choice` names.
pub(crate) fn prepare(
    cache: &Path,
    apt: &mut packages::Apt,
    choice: &KernelChoice,
) -> anyhow::Result<Kernel> {
    let (deb, debs) = match choice {
        KernelChoice::Deb(path) => (path.clone(), with_siblings(cache, path)?),
        KernelChoice::Dir(dir) => {
            let path = image_deb_in(dir)?;
            (path.clone(), with_siblings(cache, &path)?)
        }
        // The lab's default kernels come from the host's apt lists, as `cargo xtask setup
        // --lab` configured them (bookworm and its backports).
        KernelChoice::Backports612 | KernelChoice::Bookworm61 => {
            let deb = from_host_apt(cache, apt, choice)?;
            (deb.clone(), vec![deb])
        }
        KernelChoice::Suite(suite) => from_suite(cache, &packages::SuiteApt::open(cache, suite)?)?,
    };
    let stem = packages::deb_stem(&deb)?.to_owned();
    let root = if debs.len() == 1 {
        packages::extract(cache, &deb)?
    } else {
        packages::extract_all(cache, &debs, &format!("{stem}+split"))?
    };
    let (vmlinuz, release) = find_image(&root).with_context(|| {
        format!(
            "{}: expected boot/vmlinuz-<release> (Debian <= 13) or \
             usr/lib/modules/<release>/vmlinuz (Debian 14's linux-binary-<release>) in {}",
            deb.display(),
            debs.iter()
                .filter_map(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" + ")
        )
    })?;
    let modules = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|d| root.join(d).join(&release))
        .find(|d| d.join("kernel").is_dir())
        .with_context(|| {
            format!(
                "{}: no lib/modules/{release}/kernel (the modules; Debian 14 ships them in \
                 linux-modules-{release})",
                deb.display()
            )
        })?;
    let image = uncompressed_image(&vmlinuz)?;
    if !modules.join("modules.dep").exists() {
        depmod(&root, &modules, &release)?;
    }
    Ok(Kernel {
        choice: choice.clone(),
        release,
        deb: stem + ".deb",
        image,
        modules,
    })
}

/// `boot/vmlinuz-<release>` or `usr/lib/modules/<release>/vmlinuz` under an unpacked tree.
fn find_image(root: &Path) -> Option<(PathBuf, String)> {
    let boot = std::fs::read_dir(root.join("boot"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            let release = name
                .strip_prefix("vmlinuz-")
                .or_else(|| name.strip_prefix("vmlinux-"))?;
            Some((e.path(), release.to_owned()))
        });
    let split = ["usr/lib/modules", "lib/modules"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).into_iter().flatten())
        .filter_map(Result::ok)
        .filter_map(|e| {
            let image = e.path().join("vmlinuz");
            image
                .is_file()
                .then(|| (image, e.file_name().to_string_lossy().into_owned()))
        });
    boot.chain(split).next()
}

/// The one `linux-image-<release>*.deb` in `dir` (not a meta package, not `-dbg`).
fn image_deb_in(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_image_deb_name)
        })
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!(
            "--kernel {}: expected a linux-image-<release>_<version>_arm64.deb in the folder, found none",
            dir.display()
        ),
        _ => bail!(
            "--kernel {}: expected one linux-image-*.deb in the folder, found {}: name the file instead",
            dir.display(),
            found
                .iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `linux-image-7.2.13+deb14-arm64_7.2.13-1_arm64.deb`, not `linux-image-arm64_...` (meta) nor
/// `...-dbg_...`.
fn is_image_deb_name(name: &str) -> bool {
    let Some(package) = name
        .strip_suffix("_arm64.deb")
        .and_then(|n| n.split('_').next())
    else {
        return false;
    };
    package
        .strip_prefix("linux-image-")
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        && !package.ends_with("-dbg")
        && !package.ends_with("-unsigned")
}

/// `deb` and, for a Debian 14 `linux-image-<release>` (which holds no kernel), the
/// `linux-binary-`, `linux-modules-` and `linux-base-<release>` packages of the same version:
/// taken from next to `deb`, from the cache, or downloaded from the first lab suite that has them.
fn with_siblings(cache: &Path, deb: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let package = packages::control(deb)?;
    ensure!(
        package.name.starts_with("linux-image-"),
        "{}: package {} is not a linux-image-* package",
        deb.display(),
        package.name
    );
    let parts = split_parts(&package);
    if parts.is_empty() {
        return Ok(vec![deb.to_path_buf()]);
    }
    let mut out = vec![deb.to_path_buf()];
    let near = deb.parent().unwrap_or(Path::new("."));
    let mut missing = Vec::new();
    for part in parts {
        let wanted = packages::Package {
            name: part.clone(),
            version: package.version.clone(),
            arch: package.arch,
            depends: Vec::new(),
        };
        let file = wanted.file_name();
        if let Some(p) = [near.join(&file), cache.join("debs").join(&file)]
            .into_iter()
            .find(|p| p.is_file())
        {
            out.push(p);
        } else {
            missing.push(wanted);
        }
    }
    if missing.is_empty() {
        return Ok(out);
    }
    for suite in packages::SUITES.iter().rev() {
        let apt = packages::SuiteApt::open(cache, suite)?;
        let first = &missing[0];
        if apt
            .show(&format!("{}={}", first.name, first.version))?
            .is_some()
        {
            eprintln!(
                "lab: {} is split (Debian 14); fetching {} from {suite}",
                package.name,
                missing
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            out.extend(apt.download(cache, &missing)?);
            return Ok(out);
        }
    }
    bail!(
        "{}: {} {} is Debian 14's split kernel and needs {} version {}; they are not next to it \
         in {}, not in {}, and no lab suite ({}) has that version: put them next to the .deb",
        deb.display(),
        package.name,
        package.version,
        missing
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        package.version,
        near.display(),
        cache.join("debs").display(),
        packages::SUITES.join(", ")
    )
}

/// The split packages a `linux-image-<release>` depends on (empty for the /boot layout).
fn split_parts(image: &packages::Package) -> Vec<String> {
    image
        .depends
        .iter()
        .filter(|d| SPLIT_PARTS.iter().any(|p| d.starts_with(p)))
        .cloned()
        .collect()
}

/// bookworm's or bookworm-backports' `linux-image-arm64` -> its `linux-image-<release>`,
/// resolved in the host's apt lists and downloaded.
fn from_host_apt(
    cache: &Path,
    apt: &mut packages::Apt,
    choice: &KernelChoice,
) -> anyhow::Result<PathBuf> {
    let release = matches!(choice, KernelChoice::Backports612).then_some(host::BACKPORTS);
    // The meta package says which image package it means in that suite.
    let meta_name = format!("linux-image-{}", apt.arch());
    let meta = apt.require(&meta_name, release)?;
    let image = meta
        .depends
        .iter()
        .find(|d| d.starts_with("linux-image-"))
        .with_context(|| {
            format!(
                "{meta_name} {} depends on no linux-image-* package",
                meta.version
            )
        })?;
    let package = apt.require(image, release)?;
    let mut debs = packages::download(cache, std::slice::from_ref(&package))?;
    debs.pop().context("download returned nothing")
}

/// The suite's `linux-image-arm64` -> its `linux-image-<release>` (and split parts), downloaded.
fn from_suite(cache: &Path, apt: &packages::SuiteApt) -> anyhow::Result<(PathBuf, Vec<PathBuf>)> {
    let meta = apt.require("linux-image-arm64")?;
    let image = meta
        .depends
        .iter()
        .find(|d| d.starts_with("linux-image-"))
        .with_context(|| {
            format!(
                "linux-image-arm64 {} in {} depends on no linux-image-* package",
                meta.version, apt.suite
            )
        })?;
    let image = apt.require(image)?;
    let mut wanted = vec![image.clone()];
    for part in split_parts(&image) {
        wanted.push(apt.require(&format!("{part}={}", image.version))?);
    }
    let debs = apt.download(cache, &wanted)?;
    Ok((debs[0].clone(), debs))
}

/// arm64 `Image` magic `ARM\x64` at offset 0x38.
const IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";

/// x86 boot protocol magic `HdrS` at offset 0x202 of a bzImage.
const BZIMAGE_MAGIC: &[u8; 4] = b"HdrS";

/// `vmlinuz` itself when it is a plain arm64 Image or an x86 bzImage (QEMU `-kernel` and
/// `kexec -p` both take it as it is); a gzip one (`make bindeb-pkg` ships
/// `Image.gz`) is unpacked next to it once, because `kexec -p` needs the plain Image.
fn uncompressed_image(vmlinuz: &Path) -> anyhow::Result<PathBuf> {
    let head = read_head(vmlinuz, 0x206)?;
    if head.get(0x38..0x3c) == Some(IMAGE_MAGIC) || head.get(0x202..0x206) == Some(BZIMAGE_MAGIC) {
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

    #[test]
    fn parses_suites_and_rejects_other_words_naming_what_is_expected() {
        assert_eq!(
            KernelChoice::parse("sid").unwrap(),
            KernelChoice::Suite("sid".into())
        );
        assert_eq!(
            KernelChoice::parse("trixie").unwrap(),
            KernelChoice::Suite("trixie".into())
        );
        assert_eq!(
            KernelChoice::parse("bookworm-backports").unwrap(),
            KernelChoice::Backports612
        );
        assert_eq!(
            KernelChoice::parse("bookworm").unwrap(),
            KernelChoice::Bookworm61
        );
        let err = KernelChoice::parse("buster").unwrap_err().to_string();
        assert!(
            err.contains("expected a suite (bookworm, bookworm-backports, trixie, sid)"),
            "{err}"
        );
    }

    #[test]
    fn recognises_image_packages_by_file_name() {
        assert!(is_image_deb_name(
            "linux-image-7.2.13+deb14-arm64_7.2.13-1_arm64.deb"
        ));
        assert!(is_image_deb_name(
            "linux-image-6.1.0-44-arm64_6.1.164-1_arm64.deb"
        ));
        assert!(!is_image_deb_name("linux-image-arm64_7.2.13-1_arm64.deb"));
        assert!(!is_image_deb_name(
            "linux-image-6.1.0-44-arm64-dbg_6.1.164-1_arm64.deb"
        ));
        assert!(!is_image_deb_name(
            "linux-binary-7.2.13+deb14-arm64_7.2.13-1_arm64.deb"
        ));
    }

    #[test]
    fn split_image_names_its_binary_modules_and_base_packages() {
        let split = packages::Package {
            name: "linux-image-7.2.13+deb14-arm64".into(),
            version: "7.2.13-1".into(),
            arch: "arm64",
            depends: [
                "linux-base",
                "dracut",
                "linux-base-7.2.13+deb14-arm64",
                "linux-binary-7.2.13+deb14-arm64",
                "linux-modules-7.2.13+deb14-arm64",
            ]
            .map(str::to_owned)
            .to_vec(),
        };
        assert_eq!(
            split_parts(&split),
            [
                "linux-base-7.2.13+deb14-arm64",
                "linux-binary-7.2.13+deb14-arm64",
                "linux-modules-7.2.13+deb14-arm64"
            ]
        );
        let classic = packages::Package {
            depends: ["kmod", "linux-base", "initramfs-tools"]
                .map(str::to_owned)
                .to_vec(),
            ..split
        };
        let found = split_parts(&classic);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn finds_the_image_in_either_layout() {
        let tmp = std::env::temp_dir().join(format!("lab-kernel-test-{}", std::process::id()));
        let boot = tmp.join("a/boot");
        std::fs::create_dir_all(&boot).unwrap();
        std::fs::write(boot.join("vmlinuz-6.12.95+deb12-arm64"), b"x").unwrap();
        let split = tmp.join("b/usr/lib/modules/7.2.13+deb14-arm64");
        std::fs::create_dir_all(&split).unwrap();
        std::fs::write(split.join("vmlinuz"), b"x").unwrap();
        std::fs::create_dir_all(tmp.join("c/usr/share")).unwrap();
        let a = find_image(&tmp.join("a")).unwrap();
        let b = find_image(&tmp.join("b")).unwrap();
        let c = find_image(&tmp.join("c"));
        std::fs::remove_dir_all(&tmp).ok();
        assert_eq!(a.1, "6.12.95+deb12-arm64");
        assert_eq!(b, (split.join("vmlinuz"), "7.2.13+deb14-arm64".to_owned()));
        assert_eq!(c, None);
    }
}
