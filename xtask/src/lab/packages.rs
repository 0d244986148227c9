//! Guest packages: arm64 `.deb`s fetched with `apt-get download` into a cache outside the
//! repository (keyed by file name, so each version is fetched once) and unpacked with
//! `dpkg-deb -x` next to them.
use std::{
    collections::{BTreeMap, BTreeSet},
    hash::{Hash as _, Hasher as _},
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, bail, ensure};
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

/// One arm64 package version, as apt knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Package {
    pub name: String,
    pub version: String,
    /// `Depends` and `Pre-Depends`, first alternative of each, without versions.
    pub depends: Vec<String>,
}

impl Package {
    /// The file name `apt-get download` gives it (an epoch's `:` is written `%3a`).
    #[must_use]
    pub(crate) fn file_name(&self) -> String {
        format!(
            "{}_{}_arm64.deb",
            self.name,
            self.version.replace(':', "%3a")
        )
    }

    fn to_json(&self) -> Value {
        json!({ "name": self.name, "version": self.version, "depends": self.depends })
    }

    fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            name: v["name"].as_str()?.to_owned(),
            version: v["version"].as_str()?.to_owned(),
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
}

impl Apt {
    /// Loads the remembered look-ups when apt's lists are the ones they were made from.
    #[must_use]
    pub(crate) fn open(cache: &Path) -> Self {
        let path = cache.join("apt-lookups.json");
        let fingerprint = lists_fingerprint();
        let memo = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .filter(|v| v["lists"] == fingerprint.as_str())
            .and_then(|v| v["packages"].as_object().cloned())
            .map(|m| {
                m.into_iter()
                    .map(|(k, v)| (k, Package::from_json(&v)))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            memo,
            fingerprint,
            path,
            dirty: false,
        }
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
                    format!("{bare}:arm64")
                } else {
                    format!("{bare}:arm64={version}")
                });
            }
            // apt-cache exits non-zero when a name is unknown but still prints the others.
            let out = apt.output().context("cannot run apt-cache")?;
            let found: Vec<Package> = String::from_utf8_lossy(&out.stdout)
                .split("\n\n")
                .filter_map(parse_show)
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
                "apt has no arm64 package `{name}`{}: run `cargo xtask setup --lab` (adds the \
                 arm64 architecture and runs apt-get update)",
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

/// One stanza of `apt-cache show` output.
fn parse_show(stanza: &str) -> Option<Package> {
    let mut fields = BTreeMap::new();
    for line in stanza.lines() {
        if let Some((key, value)) = line.split_once(": ")
            && !key.starts_with(' ')
        {
            fields.insert(key, value.trim());
        }
    }
    if fields.get("Architecture") != Some(&"arm64") {
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
        apt.args(
            missing
                .iter()
                .map(|p| format!("{}:arm64={}", p.name, p.version)),
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
    let stem = deb
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".deb"))
        .with_context(|| format!("{} is not a .deb file name", deb.display()))?;
    let dir = cache.join("x").join(stem);
    if dir.is_dir() {
        return Ok(dir);
    }
    let tmp = cache
        .join("x")
        .join(format!(".{stem}.partial-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
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
        .arg(&tmp)
        .output()
        .context("cannot run dpkg-deb")?;
    if !out.status.success() {
        std::fs::remove_dir_all(&tmp).ok();
        bail!(
            "`dpkg-deb -x {} {}` failed: {}",
            deb.display(),
            tmp.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        std::fs::remove_dir_all(&tmp).ok();
        // Another lab run may have unpacked the same package meanwhile.
        if !dir.is_dir() {
            return Err(e)
                .with_context(|| format!("renaming {} to {}", tmp.display(), dir.display()));
        }
    }
    if size > 8 << 20 {
        eprintln!("lab: extracted in {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_apt_cache_show() {
        let text = "Package: kexec-tools\nVersion: 1:2.0.25-3+deb12u3\nArchitecture: arm64\nPre-Depends: libc6 (>= 2.34)\nDepends: libxenmisc4.17 (>= 4.17), zlib1g (>= 1:1.2.2.3), debconf (>= 0.5) | debconf-2.0\nDescription: tools\n continuation: line\n\nPackage: kexec-tools\nVersion: 1:2.0.25-3\n";
        let p = parse_show(text.split("\n\n").next().unwrap()).unwrap();
        assert_eq!(p.name, "kexec-tools");
        assert_eq!(p.version, "1:2.0.25-3+deb12u3");
        assert_eq!(p.depends, ["libc6", "libxenmisc4.17", "zlib1g", "debconf"]);
        assert_eq!(p.file_name(), "kexec-tools_1%3a2.0.25-3+deb12u3_arm64.deb");
        assert_eq!(Package::from_json(&p.to_json()), Some(p));
        assert_eq!(
            parse_show("Package: debconf\nVersion: 1.5\nArchitecture: all\n"),
            None
        );
    }
}
