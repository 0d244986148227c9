//! Guest packages: arm64 (or, for `--arch x86_64`, amd64) `.deb`s fetched with `apt-get download` into a cache outside the
//! repository (keyed by file name, so each version is fetched once) and unpacked with
//! `dpkg-deb -x` next to them.
use std::{
    collections::{BTreeMap, BTreeSet},
    hash::{Hash as _, Hasher as _},
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};

use crate::cmd;

/// `$XDG_CACHE_HOME/kdump-dma-observer/lab`, else `~/.cache/kdump-dma-observer/lab`.
pub(crate) fn cache_dir() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(
            std::env::var_os("HOME").context("neither XDG_CACHE_HOME nor HOME is set")?,
        )
        .join(".cache"),
    };
    Ok(base.join("kdump-dma-observer/lab"))
}

/// One arm64 (or amd64) package version, as apt knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Package {
    pub name: String,
    pub version: String,
    /// Debian architecture: `arm64` or `amd64`.
    pub arch: &'static str,
    /// `Depends` and `Pre-Depends`, first alternative of each, without versions.
    pub depends: Vec<String>,
}

impl Package {
    /// The file name `apt-get download` gives it (an epoch's `:` is written `%3a`).
    #[must_use]
    pub(crate) fn file_name(&self) -> String {
        format!(
            "{}_{}_{}.deb",
            self.name,
            self.version.replace(':', "%3a"),
            self.arch
        )
    }

    fn to_json(&self) -> Value {
        json!({ "name": self.name, "version": self.version, "depends": self.depends })
    }

    fn from_json(v: &Value, arch: &'static str) -> Option<Self> {
        Some(Self {
            name: v["name"].as_str()?.to_owned(),
            version: v["version"].as_str()?.to_owned(),
            arch,
            depends: v["depends"]
                .as_array()?
                .iter()
                .filter_map(|d| d.as_str().map(str::to_owned))
                .collect(),
        })
    }
}

/// Package look-ups in apt's lists (`apt-cache show`, about a second per call here), batched
/// and remembered in the cache until the lists change (`apt-get update`).
pub(crate) struct Apt {
    memo: BTreeMap<String, Option<Package>>,
    fingerprint: String,
    path: PathBuf,
    dirty: bool,
    /// Debian architecture of every look-up: `arm64` or `amd64`.
    arch: &'static str,
}

impl Apt {
    /// Loads the remembered look-ups when apt's lists are the ones they were made from.
    #[must_use]
    pub(crate) fn open(cache: &Path) -> Self {
        Self::open_for(cache, "arm64")
    }

    /// As [`Apt::open`], for packages of Debian architecture `arch` (`arm64`, `amd64`).
    #[must_use]
    pub(crate) fn open_for(cache: &Path, arch: &'static str) -> Self {
        let path = if arch == "arm64" {
            cache.join("apt-lookups.json")
        } else {
            cache.join(format!("apt-lookups-{arch}.json"))
        };
        let fingerprint = lists_fingerprint();
        let memo = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .filter(|v| v["lists"] == fingerprint.as_str())
            .and_then(|v| v["packages"].as_object().cloned())
            .map(|m| {
                m.into_iter()
                    .map(|(k, v)| (k, Package::from_json(&v, arch)))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            memo,
            fingerprint,
            path,
            dirty: false,
            arch,
        }
    }

    /// The Debian architecture it looks up (`arm64`, `amd64`).
    #[must_use]
    pub(crate) fn arch(&self) -> &'static str {
        self.arch
    }

    /// Remembers the look-ups for the next run.
    pub(crate) fn save(&mut self) -> anyhow::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let packages: serde_json::Map<String, Value> = self
            .memo
            .iter()
            .map(|(k, v)| (k.clone(), v.as_ref().map_or(Value::Null, Package::to_json)))
            .collect();
        let text = json!({ "lists": self.fingerprint, "packages": packages }).to_string();
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&self.path, text)
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.dirty = false;
        Ok(())
    }

    /// The candidate arm64 version of each of `names` (`name=version` for an exact one),
    /// optionally from `release` (apt's `-t`); `None` for names apt has no arm64 package for
    /// (virtual and `Architecture: all` packages, which hold no arm64 libraries).
    pub(crate) fn show_many(
        &mut self,
        names: &[String],
        release: Option<&str>,
    ) -> anyhow::Result<Vec<Option<Package>>> {
        let key = |n: &str| format!("{n}|{}", release.unwrap_or(""));
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !self.memo.contains_key(&key(n)))
            .collect();
        if !missing.is_empty() {
            let mut apt = Command::new("apt-cache");
            if let Some(r) = release {
                apt.args(["-t", r]);
            }
            apt.args(["show", "--no-all-versions"]);
            for name in &missing {
                let (bare, version) = name.split_once('=').unwrap_or((name, ""));
                apt.arg(if version.is_empty() {
                    format!("{bare}:{}", self.arch)
                } else {
                    format!("{bare}:{}={version}", self.arch)
                });
            }
            // apt-cache exits non-zero when a name is unknown but still prints the others.
            let out = apt.output().context("cannot run apt-cache")?;
            let found: Vec<Package> = String::from_utf8_lossy(&out.stdout)
                .split("\n\n")
                .filter_map(|stanza| parse_show(stanza, self.arch))
                .collect();
            for name in missing {
                let bare = name.split_once('=').map_or(name.as_str(), |(b, _)| b);
                let hit = found.iter().find(|p| p.name == bare).cloned();
                self.memo.insert(key(name), hit);
            }
            self.dirty = true;
        }
        Ok(names
            .iter()
            .map(|n| self.memo.get(&key(n)).cloned().flatten())
            .collect())
    }

    /// Like [`Apt::show_many`] for one name; a missing package is an error that says how to fix it.
    pub(crate) fn require(&mut self, name: &str, release: Option<&str>) -> anyhow::Result<Package> {
        let mut found = self.show_many(&[name.to_owned()], release)?;
        found.pop().flatten().with_context(|| {
            format!(
                "apt has no {} package `{name}`{}: run `cargo xtask setup --lab` (adds the \
                 arm64 architecture and runs apt-get update)",
                self.arch,
                release.map_or(String::new(), |r| format!(" in {r}"))
            )
        })
    }

    /// `root` and every arm64 package it depends on, transitively (one look-up per level).
    pub(crate) fn closure(&mut self, root: Package) -> anyhow::Result<Vec<Package>> {
        let mut seen: BTreeSet<String> = BTreeSet::from([root.name.clone()]);
        let mut level: Vec<String> = root.depends.clone();
        let mut out = vec![root];
        while !level.is_empty() {
            level.retain(|n| seen.insert(n.clone()));
            let found = self.show_many(&level, None)?;
            level = Vec::new();
            for p in found.into_iter().flatten() {
                level.extend(p.depends.iter().cloned());
                out.push(p);
            }
        }
        Ok(out)
    }
}

/// Names, sizes and times of apt's package lists: look-ups are valid while this is unchanged.
fn lists_fingerprint() -> String {
    let mut parts: Vec<String> = std::fs::read_dir("/var/lib/apt/lists")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("_Packages"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            let mtime = meta
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?;
            Some(format!(
                "{} {} {}",
                e.file_name().to_string_lossy(),
                meta.len(),
                mtime.as_secs()
            ))
        })
        .collect();
    parts.sort();
    let mut hasher = std::hash::DefaultHasher::new();
    parts.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// One stanza of `apt-cache show` output, if it is a package of Debian architecture `arch`.
fn parse_show(stanza: &str, arch: &'static str) -> Option<Package> {
    let mut fields = BTreeMap::new();
    for line in stanza.lines() {
        if let Some((key, value)) = line.split_once(": ")
            && !key.starts_with(' ')
        {
            fields.insert(key, value.trim());
        }
    }
    if fields.get("Architecture") != Some(&arch) {
        return None;
    }
    let mut depends = Vec::new();
    for key in ["Pre-Depends", "Depends"] {
        if let Some(list) = fields.get(key) {
            depends.extend(parse_depends(list));
        }
    }
    Some(Package {
        name: (*fields.get("Package")?).to_owned(),
        version: (*fields.get("Version")?).to_owned(),
        arch,
        depends,
    })
}

/// `libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0` -> `["libc6", "debconf"]`.
fn parse_depends(list: &str) -> Vec<String> {
    list.split(',')
        .filter_map(|group| {
            let first = group.split('|').next()?.trim();
            let name = first.split([' ', '(', ':']).next()?.trim();
            (!name.is_empty()).then(|| name.to_owned())
        })
        .collect()
}

/// Downloads the packages not in the cache yet; returns each one's `.deb` path, in order.
pub(crate) fn download(cache: &Path, packages: &[Package]) -> anyhow::Result<Vec<PathBuf>> {
    download_with(cache, packages, None)
}

/// As [`download`], with apt reading `apt_config` (`APT_CONFIG`) instead of the host's setup.
fn download_with(
    cache: &Path,
    packages: &[Package],
    apt_config: Option<&Path>,
) -> anyhow::Result<Vec<PathBuf>> {
    let debs = cache.join("debs");
    std::fs::create_dir_all(&debs).with_context(|| format!("creating {}", debs.display()))?;
    let missing: Vec<&Package> = packages
        .iter()
        .filter(|p| !debs.join(p.file_name()).exists())
        .collect();
    if !missing.is_empty() {
        // Into a private folder first, so an interrupted download never looks cached.
        let partial = debs.join(format!(".partial-{}", std::process::id()));
        std::fs::create_dir_all(&partial)
            .with_context(|| format!("creating {}", partial.display()))?;
        eprintln!(
            "lab: downloading {} package(s) into {}: {}",
            missing.len(),
            debs.display(),
            missing
                .iter()
                .map(|p| format!("{} {}", p.name, p.version))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let started = Instant::now();
        let mut apt = Command::new("apt-get");
        // Root's downloads would otherwise warn that the `_apt` user cannot write here.
        apt.args(["download", "-o", "APT::Sandbox::User=root"]);
        if let Some(config) = apt_config {
            apt.env("APT_CONFIG", config);
        }
        apt.args(
            missing
                .iter()
                .map(|p| format!("{}:{}={}", p.name, p.arch, p.version)),
        );
        cmd::run(&partial, &mut apt)?;
        for p in &missing {
            let got = partial.join(p.file_name());
            ensure!(
                got.exists(),
                "`apt-get download` of {} {} did not produce {}",
                p.name,
                p.version,
                got.display()
            );
            std::fs::rename(&got, debs.join(p.file_name()))
                .with_context(|| format!("moving {} into {}", got.display(), debs.display()))?;
        }
        std::fs::remove_dir_all(&partial).ok();
        eprintln!(
            "lab: downloaded in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(packages.iter().map(|p| debs.join(p.file_name())).collect())
}

/// Unpacks `deb` under `<cache>/x/` once; returns the folder.
pub(crate) fn extract(cache: &Path, deb: &Path) -> anyhow::Result<PathBuf> {
    let stem = deb_stem(deb)?;
    extract_all(cache, std::slice::from_ref(&deb.to_path_buf()), stem)
}

/// `linux-image-..._arm64` of `.../linux-image-..._arm64.deb`.
pub(crate) fn deb_stem(deb: &Path) -> anyhow::Result<&str> {
    deb.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".deb"))
        .with_context(|| format!("{} is not a .deb file name", deb.display()))
}

/// Unpacks every one of `debs` into one folder `<cache>/x/<name>` once (Debian 14's kernel is
/// split over several packages that install into one tree); returns the folder.
pub(crate) fn extract_all(cache: &Path, debs: &[PathBuf], name: &str) -> anyhow::Result<PathBuf> {
    let dir = cache.join("x").join(name);
    if dir.is_dir() {
        return Ok(dir);
    }
    let tmp = cache
        .join("x")
        .join(format!(".{name}.partial-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    for deb in debs {
        if let Err(e) = unpack(deb, &tmp) {
            std::fs::remove_dir_all(&tmp).ok();
            return Err(e);
        }
    }
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        std::fs::remove_dir_all(&tmp).ok();
        // Another lab run may have unpacked the same package meanwhile.
        if !dir.is_dir() {
            return Err(e)
                .with_context(|| format!("renaming {} to {}", tmp.display(), dir.display()));
        }
    }
    Ok(dir)
}

/// `dpkg-deb -x deb into`.
fn unpack(deb: &Path, into: &Path) -> anyhow::Result<()> {
    let size = std::fs::metadata(deb)
        .with_context(|| format!("reading {}", deb.display()))?
        .len();
    let started = Instant::now();
    if size > 8 << 20 {
        eprintln!("lab: extracting {} ({} MiB) ...", deb.display(), size >> 20);
    }
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(into)
        .output()
        .context("cannot run dpkg-deb")?;
    ensure!(
        out.status.success(),
        "`dpkg-deb -x {} {}` failed: {}",
        deb.display(),
        into.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    if size > 8 << 20 {
        eprintln!("lab: extracted in {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// The control fields of a `.deb` file (`dpkg-deb -f`), as a [`Package`].
pub(crate) fn control(deb: &Path) -> anyhow::Result<Package> {
    let out = Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .output()
        .context("cannot run dpkg-deb")?;
    ensure!(
        out.status.success(),
        "{}: not a Debian package (`dpkg-deb -f` failed: {})",
        deb.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    parse_show(&String::from_utf8_lossy(&out.stdout), "arm64").with_context(|| {
        format!(
            "{}: expected an arm64 package with Package and Version fields",
            deb.display()
        )
    })
}

/// The Debian suites `--kernel` can name; the lab resolves them with its own apt configuration.
pub(crate) const SUITES: [&str; 4] = ["bookworm", "bookworm-backports", "trixie", "sid"];

/// The mirror and keyring of the lab's own apt configuration.
const MIRROR: &str = "http://deb.debian.org/debian";
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// Lists older than this are fetched again.
const LISTS_MAX_AGE: std::time::Duration = std::time::Duration::from_hours(24);

/// apt on one Debian suite, with a private configuration under `<cache>/apt/<suite>/`
/// (`APT_CONFIG`): its own sources, lists, cache and an empty dpkg status, arm64 only. The
/// host's sources and configuration are never read or changed.
pub(crate) struct SuiteApt {
    pub suite: String,
    config: PathBuf,
}

impl SuiteApt {
    /// Writes the configuration and fetches the suite's package lists when they are missing
    /// or older than a day.
    pub(crate) fn open(cache: &Path, suite: &str) -> anyhow::Result<Self> {
        ensure!(
            SUITES.contains(&suite),
            "unknown suite `{suite}`: expected one of {}",
            SUITES.join(", ")
        );
        let dir = cache.join("apt").join(suite);
        for sub in [
            "lists/partial",
            "cache/archives/partial",
            "parts",
            "sources.d",
            "preferences.d",
        ] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("creating {}", dir.join(sub).display()))?;
        }
        let write = |name: &str, text: &str| -> anyhow::Result<()> {
            let path = dir.join(name);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        };
        write("sources.list", &sources_line(suite))?;
        write("status", "")?;
        write("apt.conf", &apt_conf(&dir))?;
        let this = Self {
            suite: suite.to_owned(),
            config: dir.join("apt.conf"),
        };
        if lists_age(&dir.join("lists")).is_none_or(|age| age > LISTS_MAX_AGE) {
            eprintln!("lab: apt-get update for {suite} (the lab's own apt configuration)");
            let mut update = this.command("apt-get");
            update.arg("update");
            cmd::run(&dir, &mut update)?;
        }
        Ok(this)
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("APT_CONFIG", &self.config);
        c
    }

    /// `name` (or `name=version`) in this suite, `None` when the suite has no such package.
    pub(crate) fn show(&self, name: &str) -> anyhow::Result<Option<Package>> {
        let out = self
            .command("apt-cache")
            .args(["show", "--no-all-versions", name])
            .output()
            .context("cannot run apt-cache")?;
        let bare = name.split_once('=').map_or(name, |(b, _)| b);
        Ok(String::from_utf8_lossy(&out.stdout)
            .split("\n\n")
            .filter_map(|stanza| parse_show(stanza, "arm64"))
            .find(|p| p.name == bare))
    }

    /// Like [`SuiteApt::show`]; a missing package is an error naming the suite.
    pub(crate) fn require(&self, name: &str) -> anyhow::Result<Package> {
        self.show(name)?.with_context(|| {
            format!(
                "{} has no arm64 package `{name}` (lists in {})",
                self.suite,
                self.config.with_file_name("lists").display()
            )
        })
    }

    /// Downloads into the lab's package cache, as [`download`].
    pub(crate) fn download(
        &self,
        cache: &Path,
        packages: &[Package],
    ) -> anyhow::Result<Vec<PathBuf>> {
        download_with(cache, packages, Some(&self.config))
    }
}

/// The one source line of a suite.
fn sources_line(suite: &str) -> String {
    format!("deb [arch=arm64 signed-by={KEYRING}] {MIRROR} {suite} main\n")
}

/// A configuration that reads nothing of the host's apt setup but the keyring. Signatures are
/// checked; `Valid-Until` is not, so that a mirror serving a snapshot (or a host whose clock is
/// ahead of it) still resolves: `sid`'s Release file is valid for a week only.
fn apt_conf(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "Dir::Etc::SourceList \"{d}/sources.list\";\n\
         Dir::Etc::SourceParts \"{d}/sources.d\";\n\
         Dir::Etc::Parts \"{d}/parts\";\n\
         Dir::Etc::PreferencesParts \"{d}/preferences.d\";\n\
         Dir::Etc::Preferences \"{d}/preferences\";\n\
         Dir::State::Lists \"{d}/lists\";\n\
         Dir::State::Status \"{d}/status\";\n\
         Dir::Cache \"{d}/cache\";\n\
         APT::Architecture \"arm64\";\n\
         APT::Architectures {{ \"arm64\"; }};\n\
         Acquire::Languages \"none\";\n\
         Acquire::Check-Valid-Until \"false\";\n\
         APT::Sandbox::User \"root\";\n"
    )
}

/// How old the newest `*_Packages` list in `lists` is; `None` without one.
fn lists_age(lists: &Path) -> Option<std::time::Duration> {
    std::fs::read_dir(lists)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with("_Packages"))
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()
        .and_then(|t| t.elapsed().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_apt_cache_show() {
        let text = "Package: kexec-tools\nVersion: 1:2.0.25-3+deb12u3\nArchitecture: arm64\nPre-Depends: libc6 (>= 2.34)\nDepends: libxenmisc4.17 (>= 4.17), zlib1g (>= 1:1.2.2.3), debconf (>= 0.5) | debconf-2.0\nDescription: tools\n continuation: line\n\nPackage: kexec-tools\nVersion: 1:2.0.25-3\n";
        let p = parse_show(text.split("\n\n").next().unwrap(), "arm64").unwrap();
        assert_eq!(p.name, "kexec-tools");
        assert_eq!(p.version, "1:2.0.25-3+deb12u3");
        assert_eq!(p.depends, ["libc6", "libxenmisc4.17", "zlib1g", "debconf"]);
        assert_eq!(p.file_name(), "kexec-tools_1%3a2.0.25-3+deb12u3_arm64.deb");
        assert_eq!(Package::from_json(&p.to_json(), "arm64"), Some(p));
        assert_eq!(
            parse_show(
                "Package: debconf\nVersion: 1.5\nArchitecture: all\n",
                "arm64"
            ),
            None
        );
        let amd64 = text.replace("arm64", "amd64");
        assert_eq!(
            parse_show(&amd64, "arm64"),
            None,
            "another architecture's stanza"
        );
        let p = parse_show(amd64.split("\n\n").next().unwrap(), "amd64").unwrap();
        assert_eq!(p.file_name(), "kexec-tools_1%3a2.0.25-3+deb12u3_amd64.deb");
    }

    #[test]
    fn suite_configuration_reads_only_its_own_folder() {
        let conf = apt_conf(Path::new("/c/apt/sid"));
        for key in [
            "Dir::Etc::SourceList \"/c/apt/sid/sources.list\"",
            "Dir::Etc::SourceParts \"/c/apt/sid/sources.d\"",
            "Dir::Etc::Parts \"/c/apt/sid/parts\"",
            "Dir::State::Lists \"/c/apt/sid/lists\"",
            "Dir::State::Status \"/c/apt/sid/status\"",
            "APT::Architectures { \"arm64\"; }",
        ] {
            assert!(conf.contains(key), "{key} missing from\n{conf}");
        }
        assert!(!conf.contains("/etc/apt"), "{conf}");
        assert_eq!(
            sources_line("trixie"),
            format!("deb [arch=arm64 signed-by={KEYRING}] {MIRROR} trixie main\n")
        );
        let err = SuiteApt::open(Path::new("/nonexistent"), "buster")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unknown suite `buster`"), "{err}");
    }
}
