//! Debian's Chromium, headless, as root, for one page at a time: a screenshot, or the DOM after
//! load (`--dump-dom`), with the page's console messages from Chromium's own log. Every run
//! gets a fresh profile folder, removed afterwards, and is killed (its whole process group)
//! when it takes longer than `TIMEOUT`.
use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context as _, ensure};

use crate::{bounded, debian};

/// One page load; Chromium starts in about a second here.
const TIMEOUT: Duration = Duration::from_mins(1);
/// The window: wide enough for the report's tables, tall enough for its verdict and timeline.
pub(crate) const WINDOW: &str = "1280,1600";

/// Headless, as root, and quiet on the network: without the background-networking flags it
/// opens connections of its own (component updates, safe browsing, sync).
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    // The page's console messages go to Chromium's log on stderr.
    "--enable-logging=stderr",
    "--v=0",
];

pub(crate) struct Chromium {
    binary: PathBuf,
    /// Where each run's stdout and stderr are kept.
    logs: PathBuf,
}

/// What one page load gave.
pub(crate) struct Visit {
    /// The page's console messages (`"text", source: URL (line)`), in order.
    pub console: Vec<String>,
    pub stdout: String,
    pub stderr_log: PathBuf,
}

impl Chromium {
    /// Finds `chromium`, installing Debian's package if it is missing.
    pub(crate) fn ensure(logs: &Path) -> anyhow::Result<Self> {
        let binary = debian::ensure(
            "chromium",
            "chromium",
            "the HTML report is checked in a real browser",
            logs,
        )?;
        Ok(Self {
            binary,
            logs: logs.to_path_buf(),
        })
    }

    /// Loads `page` and writes a PNG screenshot of the window to `png`.
    pub(crate) fn screenshot(&self, page: &Path, png: &Path, name: &str) -> anyhow::Result<Visit> {
        let _ = std::fs::remove_file(png);
        let visit = self.visit(
            page,
            name,
            &[
                format!("--screenshot={}", png.display()),
                format!("--window-size={WINDOW}"),
                "--run-all-compositor-stages-before-draw".to_owned(),
            ],
        )?;
        ensure!(
            std::fs::metadata(png).is_ok_and(|m| m.len() > 0),
            "Chromium wrote no screenshot {} (its log: {})",
            png.display(),
            visit.stderr_log.display()
        );
        Ok(visit)
    }

    /// Loads `page` and returns the serialized DOM (in `Visit::stdout`).
    pub(crate) fn dump_dom(&self, page: &Path, name: &str) -> anyhow::Result<Visit> {
        let visit = self.visit(page, name, &["--dump-dom".to_owned()])?;
        ensure!(
            visit.stdout.contains("<html"),
            "Chromium's --dump-dom of {} printed no document (its log: {})",
            page.display(),
            visit.stderr_log.display()
        );
        Ok(visit)
    }

    fn visit(&self, page: &Path, name: &str, extra: &[String]) -> anyhow::Result<Visit> {
        let page = std::fs::canonicalize(page)
            .with_context(|| format!("no page to load at {}", page.display()))?;
        let profile = tempfile::Builder::new()
            .prefix("xtask-chromium-")
            .tempdir()
            .context("creating Chromium's profile folder")?;
        let mut cmd = Command::new(&self.binary);
        cmd.args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(file_url(&page));
        let ran = bounded::run(&mut cmd, TIMEOUT, &self.logs.join(name), None);
        drop(profile);
        let ran = ran?;
        ensure!(
            ran.status.success(),
            "`{}` failed ({}):\n{}",
            bounded::show(&cmd),
            ran.status,
            ran.stderr_tail(10)
        );
        Ok(Visit {
            console: console_messages(&ran.stderr),
            stdout: ran.stdout,
            stderr_log: ran.logs.1,
        })
    }
}

/// The page's console messages in Chromium's log: `[...:INFO:CONSOLE:12] "text", source: ...`
/// (older versions: `CONSOLE(12)`). Chromium logs `console.error` at INFO too, so every message
/// counts, and `Uncaught` errors are among them.
#[must_use]
pub(crate) fn console_messages(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| {
            let (prefix, message) = line.split_once("] ")?;
            let tagged = prefix.rsplit(':').any(|p| p.starts_with("CONSOLE"));
            (prefix.starts_with('[') && tagged).then(|| message.trim().to_owned())
        })
        .collect()
}

/// `file://` URL of an absolute path, percent-encoding what is not plainly safe.
#[must_use]
pub(crate) fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for &byte in path.as_os_str().as_encoded_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-_.~".contains(&byte) {
            url.push(char::from(byte));
        } else {
            let _ = write!(url, "%{byte:02X}");
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_console_messages_from_chromiums_log() {
        let log = concat!(
            "/usr/bin/chromium: 9: [: 25276514304: unexpected operator\n",
            "[19462:19491:1124/103008.356857:ERROR:dbus/bus.cc:405] Failed to connect to the bus\n",
            "[19462:19462:1124/103008.953195:INFO:CONSOLE:1] \"html-check canary\", source: file:///tmp/c.html (1)\n",
            "[19462:19462:1124/103008.960313:INFO:CONSOLE:1] \"Uncaught ReferenceError: f is not defined\", source: file:///tmp/c.html (1)\n",
            "[1:2:0101/000000.000000:INFO:CONSOLE(7)] \"old style\", source: x (7)\n",
            "9340 bytes written to file /tmp/c.png\n",
        );
        assert_eq!(
            console_messages(log),
            [
                "\"html-check canary\", source: file:///tmp/c.html (1)",
                "\"Uncaught ReferenceError: f is not defined\", source: file:///tmp/c.html (1)",
                "\"old style\", source: x (7)",
            ]
        );
        let found = console_messages("[1:2:INFO:dbus] CONSOLE mentioned in text");
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn file_urls_are_percent_encoded() {
        assert_eq!(
            file_url(Path::new("/work/target/lab/kdump-aer/report.html")),
            "file:///work/target/lab/kdump-aer/report.html"
        );
        assert_eq!(
            file_url(Path::new("/tmp/a b#c.html")),
            "file:///tmp/a%20b%23c.html"
        );
    }
}
