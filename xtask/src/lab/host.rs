//! Host side of the lab, installed idempotently: a `bookworm-backports` apt source (QEMU 10),
//! the arm64 dpkg architecture (guest packages come from `apt-get download`), QEMU >= 10 for
//! arm64 and x86-64 (`qemu-system-arm`, `qemu-system-x86`) and `depmod`. Says what it did; does nothing when everything is present.
use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail, ensure};

use crate::cmd::{self, output};

/// Debian release the lab's guest packages come from (6.1 from it, 6.12 from its backports).
pub(crate) const CODENAME: &str = "bookworm";
/// The suite with QEMU 10 and the 6.12 kernel.
pub(crate) const BACKPORTS: &str = "bookworm-backports";
/// Oldest QEMU the lab accepts: bookworm's own 7.2 is too old for it.
pub(crate) const MIN_QEMU_MAJOR: u32 = 10;
pub(crate) const QEMU: &str = "qemu-system-aarch64";
/// The x86 lab's emulator (`--arch x86_64`), and its package in bookworm-backports.
pub(crate) const QEMU_X86: &str = "qemu-system-x86_64";
const QEMU_X86_PACKAGE: &str = "qemu-system-x86";

const SOURCES_DIR: &str = "/etc/apt/sources.list.d";
const OUR_SOURCE: &str = "/etc/apt/sources.list.d/kdump-dma-observer-backports.sources";
const LISTS_DIR: &str = "/var/lib/apt/lists";

/// Installs what the lab needs on this host and is missing.
pub(crate) fn setup() -> anyhow::Result<()> {
    check_release()?;
    let mut actions: Vec<String> = Vec::new();
    let mut lists_stale = false;

    let sources = read_sources();
    if sources
        .iter()
        .any(|s| s.suites.iter().any(|x| x == BACKPORTS))
    {
        eprintln!("lab setup: apt source for {BACKPORTS} present");
    } else {
        let main = sources
            .iter()
            .find(|s| s.suites.iter().any(|x| x == CODENAME))
            .with_context(|| {
                format!("no apt source for `{CODENAME}` in /etc/apt: cannot tell which Debian mirror to use for {BACKPORTS}")
            })?;
        require_root(&format!("add an apt source for {BACKPORTS}"))?;
        let text = backports_stanza(main);
        std::fs::write(OUR_SOURCE, &text).with_context(|| format!("writing {OUR_SOURCE}"))?;
        actions.push(format!("added {OUR_SOURCE} (mirror {})", main.uri));
        lists_stale = true;
    }

    let foreign = output(Command::new("dpkg").arg("--print-foreign-architectures"))
        .context("`dpkg --print-foreign-architectures` failed")?;
    if foreign.split_whitespace().any(|a| a == "arm64") {
        eprintln!("lab setup: dpkg architecture arm64 present");
    } else {
        require_root("add the arm64 dpkg architecture")?;
        cmd::run(
            Path::new("/"),
            Command::new("dpkg").args(["--add-architecture", "arm64"]),
        )?;
        actions.push("dpkg --add-architecture arm64".into());
        lists_stale = true;
    }
    if !lists_present() {
        lists_stale = true;
    }

    let mut to_install: Vec<(&str, Option<&str>)> = Vec::new();
    for (binary, package) in [(QEMU, "qemu-system-arm"), (QEMU_X86, QEMU_X86_PACKAGE)] {
        match qemu_version_of(binary) {
            Some(v) if v.0 >= MIN_QEMU_MAJOR => {
                eprintln!("lab setup: {binary} {}.{}.{} present", v.0, v.1, v.2);
            }
            found => {
                if let Some(v) = found {
                    eprintln!(
                        "lab setup: {binary} {}.{}.{} is too old (need >= {MIN_QEMU_MAJOR}); upgrading from {BACKPORTS}",
                        v.0, v.1, v.2
                    );
                }
                to_install.push((package, Some(BACKPORTS)));
            }
        }
    }
    if depmod().is_some() {
        eprintln!("lab setup: depmod present");
    } else {
        to_install.push(("kmod", None));
    }

    if !to_install.is_empty() || lists_stale {
        require_root("run apt-get")?;
        apt(&["update"])?;
        actions.push("apt-get update".into());
    }
    for (package, release) in &to_install {
        let mut args = vec!["install", "-y", "--no-install-recommends"];
        if let Some(r) = release {
            args.extend(["-t", r]);
        }
        args.push(package);
        apt(&args)?;
        actions.push(format!(
            "installed {package}{}",
            release.map_or(String::new(), |r| format!(" from {r}"))
        ));
    }
    let qemu = require_qemu()?;
    require_qemu_x86()?;
    ensure!(
        depmod().is_some(),
        "depmod is still missing after installing kmod"
    );
    if actions.is_empty() {
        eprintln!("lab setup: everything present (QEMU {qemu}, arm64 lists, depmod)");
    } else {
        eprintln!("lab setup: {}", actions.join("; "));
    }
    Ok(())
}

/// QEMU's version, or a clear error when it is missing or older than 10.
pub(crate) fn require_qemu() -> anyhow::Result<String> {
    match qemu_version() {
        None => bail!("{QEMU} is not installed: run `cargo xtask setup --lab` (as root)"),
        Some((major, minor, micro)) if major < MIN_QEMU_MAJOR => bail!(
            "{QEMU} {major}.{minor}.{micro} is too old: the lab needs QEMU >= {MIN_QEMU_MAJOR} \
             (qemu-system-arm from {BACKPORTS}; bookworm's own is 7.2). Run `cargo xtask setup --lab`."
        ),
        Some((major, minor, micro)) => Ok(format!("{major}.{minor}.{micro}")),
    }
}

/// As [`require_qemu`], for the x86 lab's `qemu-system-x86_64`.
pub(crate) fn require_qemu_x86() -> anyhow::Result<String> {
    match qemu_version_of(QEMU_X86) {
        None => bail!("{QEMU_X86} is not installed: run `cargo xtask setup --lab` (as root)"),
        Some((major, minor, micro)) if major < MIN_QEMU_MAJOR => bail!(
            "{QEMU_X86} {major}.{minor}.{micro} is too old: the lab needs QEMU >= {MIN_QEMU_MAJOR} \
             ({QEMU_X86_PACKAGE} from {BACKPORTS}). Run `cargo xtask setup --lab`."
        ),
        Some((major, minor, micro)) => Ok(format!("{major}.{minor}.{micro}")),
    }
}

/// Path of `depmod`, which is in /sbin, often not on a user's PATH.
pub(crate) fn depmod() -> Option<PathBuf> {
    ["/usr/sbin/depmod", "/sbin/depmod"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn qemu_version() -> Option<(u32, u32, u32)> {
    qemu_version_of(QEMU)
}

fn qemu_version_of(binary: &str) -> Option<(u32, u32, u32)> {
    parse_qemu_version(&output(Command::new(binary).arg("--version"))?)
}

/// `QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)` -> (10, 0, 2).
fn parse_qemu_version(text: &str) -> Option<(u32, u32, u32)> {
    let rest = text.split("version ").nth(1)?;
    let version = rest.split_whitespace().next()?;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

fn check_release() -> anyhow::Result<()> {
    let text = std::fs::read_to_string("/etc/os-release").context("reading /etc/os-release")?;
    let codename = text
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"'));
    ensure!(
        codename == Some(CODENAME),
        "the lab's host setup is for Debian 12 ({CODENAME}): /etc/os-release says VERSION_CODENAME={}",
        codename.unwrap_or("(none)")
    );
    Ok(())
}

fn require_root(what: &str) -> anyhow::Result<()> {
    // SAFETY: no preconditions.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "lab setup must {what}: run it as root"
    );
    Ok(())
}

fn apt(args: &[&str]) -> anyhow::Result<()> {
    cmd::run(
        Path::new("/"),
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Whether apt has arm64 package lists for both suites (`apt-get download` needs them).
fn lists_present() -> bool {
    let Ok(dir) = std::fs::read_dir(LISTS_DIR) else {
        return false;
    };
    let names: Vec<String> = dir
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    [CODENAME, BACKPORTS].iter().all(|suite| {
        let wanted = format!("_{suite}_main_binary-arm64_Packages");
        names.iter().any(|n| n.contains(&wanted))
    })
}

/// One `deb` source: its first URI, suites and `Signed-By`.
#[derive(Debug, PartialEq, Eq)]
struct Source {
    uri: String,
    suites: Vec<String>,
    signed_by: Option<String>,
}

fn read_sources() -> Vec<Source> {
    let mut sources = Vec::new();
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir(SOURCES_DIR) {
        let mut more: Vec<PathBuf> = dir.filter_map(Result::ok).map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let name = file.to_string_lossy();
        let deb822 = name.ends_with(".sources");
        if !deb822 && !name.ends_with(".list") {
            continue; // apt ignores other names (e.g. `*.disabled`)
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        if deb822 {
            sources.extend(parse_deb822(&text));
        } else {
            sources.extend(parse_one_line(&text));
        }
    }
    sources
}

/// `Types: deb` stanzas of a deb822 `.sources` file.
fn parse_deb822(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |key: &str| {
            stanza
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                .map(|v| v.trim().to_owned())
        };
        let enabled = field("Enabled").is_none_or(|v| v != "no");
        let is_deb = field("Types").is_some_and(|t| t.split_whitespace().any(|t| t == "deb"));
        let (Some(uris), Some(suites)) = (field("URIs"), field("Suites")) else {
            continue;
        };
        let Some(uri) = uris.split_whitespace().next() else {
            continue;
        };
        if enabled && is_deb {
            out.push(Source {
                uri: uri.to_owned(),
                suites: suites.split_whitespace().map(str::to_owned).collect(),
                signed_by: field("Signed-By"),
            });
        }
    }
    out
}

/// `deb [options] URI suite components...` lines of a `.list` file.
fn parse_one_line(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("deb ") else {
            continue;
        };
        let mut rest = rest.trim_start();
        let mut signed_by = None;
        if let Some(after) = rest.strip_prefix('[') {
            let Some((options, tail)) = after.split_once(']') else {
                continue;
            };
            signed_by = options
                .split_whitespace()
                .find_map(|o| o.strip_prefix("signed-by="))
                .map(str::to_owned);
            rest = tail.trim_start();
        }
        let mut words = rest.split_whitespace();
        if let (Some(uri), Some(suite)) = (words.next(), words.next()) {
            out.push(Source {
                uri: uri.to_owned(),
                suites: vec![suite.to_owned()],
                signed_by,
            });
        }
    }
    out
}

/// The `.sources` stanza for bookworm-backports on the mirror `main` uses.
fn backports_stanza(main: &Source) -> String {
    let mut text = format!(
        "# Added by `cargo xtask setup --lab` (kdump-dma-observer): QEMU 10 and Linux 6.12 for the\n\
         # arm64 QEMU lab. Same mirror as the {CODENAME} source.\n\
         Types: deb\nURIs: {}\nSuites: {BACKPORTS}\nComponents: main\n",
        main.uri
    );
    if let Some(key) = &main.signed_by {
        let _ = writeln!(text, "Signed-By: {key}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_deb822_and_one_line_sources() {
        let deb822 = "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb-src\nURIs: http://x\nSuites: bookworm-backports\n\nTypes: deb\nEnabled: no\nURIs: http://y\nSuites: bookworm-backports\n";
        let s = parse_deb822(deb822);
        assert_eq!(
            s.len(),
            1,
            "deb-src and disabled stanzas do not count: {s:?}"
        );
        assert_eq!(s[0].uri, "http://mirror.example/debian");
        assert_eq!(s[0].suites, ["bookworm", "bookworm-updates"]);
        let l = parse_one_line(
            "# deb http://old bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://m/debian bookworm-backports main\n",
        );
        assert_eq!(
            l,
            [Source {
                uri: "http://m/debian".into(),
                suites: vec!["bookworm-backports".into()],
                signed_by: Some("/k.gpg".into())
            }]
        );
        let stanza = backports_stanza(&s[0]);
        assert!(
            stanza.contains("URIs: http://mirror.example/debian\nSuites: bookworm-backports\n")
        );
        assert!(stanza.ends_with("Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"));
    }

    #[test]
    fn parses_qemu_versions() {
        assert_eq!(
            parse_qemu_version(
                "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright"
            ),
            Some((10, 0, 2))
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)"),
            Some((7, 2, 19))
        );
        assert_eq!(parse_qemu_version("garbage"), None);
    }
}
