//! The dump tool's own lines from the systemd journal. kdump-tools (`kdump-tools-dump.service`,
//! output to the journal and the console) and kdump-utils log why a dump failed there, not in
//! the kernel log the daemon reads; `recover` and the daemon's hand-off read them back with
//! `journalctl -o short-monotonic` (the capture boot's monotonic clock, the timeline's) and
//! parse them with the text-log reader (`logparse::prefix::journal`).
//!
//! The capture boot is the current one (the daemon's hand-off, in the capture kernel) or the
//! one before (`recover`, on the next boot). A boot's lines are used only when one of them
//! names the capture directory (`/var/crash/<stamp>`), so a later boot never lends its lines
//! to an older capture.
use std::{
    io::Read,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{event::Event, logparse};

/// The identifiers the dump tools log under (`journalctl -t`).
const IDENTIFIERS: [&str; 4] = ["kdump-tools", "makedumpfile", "kdump", "kdump.sh"];
/// `journalctl` is killed after this long.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The dump tool's events for the capture in `dir`, from the current or the previous boot's
/// journal; empty when there is no journal, no `journalctl`, or no line names `dir`.
#[must_use]
pub fn read(dir: &Path) -> Vec<Event> {
    let Some(name) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    for boot in ["0", "-1"] {
        let Some(text) = journalctl(boot) else {
            continue;
        };
        if let Some(events) = events_for(&name, &text) {
            tracing::info!(
                dir = %dir.display(),
                boot,
                events = events.len(),
                "read the dump tool's journal lines"
            );
            return events;
        }
    }
    Vec::new()
}

/// Parses `text` (journal lines) when one of them names the capture directory `name`.
fn events_for(name: &str, text: &str) -> Option<Vec<Event>> {
    if name.is_empty() || !text.lines().any(|l| l.contains(name)) {
        return None;
    }
    Some(logparse::parse_text_log(
        Path::new("journalctl (dump tool)"),
        text,
    ))
}

/// `journalctl -b <boot> -o short-monotonic -t ...`, bounded by [`TIMEOUT`].
fn journalctl(boot: &str) -> Option<String> {
    let mut command = Command::new("journalctl");
    command.args(["-b", boot, "-o", "short-monotonic", "--no-pager", "-q"]);
    for ident in IDENTIFIERS {
        command.args(["-t", ident]);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| tracing::debug!(error = %e, "journalctl did not start"))
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.by_ref().take(16 << 20).read_to_end(&mut out);
        out
    });
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let out = reader.join().ok()?;
                return status
                    .success()
                    .then(|| String::from_utf8_lossy(&out).into_owned());
            }
            Ok(None) if started.elapsed() < TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                tracing::warn!(
                    boot,
                    "journalctl took too long; the dump tool's lines are not read"
                );
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Detail;

    const JOURNAL: &str = "\
[   33.411022] kdumplab kdump-tools[282]: running makedumpfile --dump-dmesg /proc/vmcore /var/crash/202611240833/dmesg.202611240833.
[   33.702515] kdumplab kdump-tools[299]: calculate_plat_config: PAGE SIZE 0x1000 and VA Bits 52 not supported
[   33.702601] kdumplab kdump-tools[299]: makedumpfile Failed.
";

    #[test]
    fn only_the_boot_naming_the_capture_is_used() {
        assert!(events_for("202611250815", JOURNAL).is_none());
        let events = events_for("202611240833", JOURNAL).unwrap();
        let failed = events
            .iter()
            .find_map(|e| match &e.detail {
                Detail::DumpTool { outcome, cause, .. } if outcome == "failed" => {
                    Some((e.ts_ns, cause.clone()))
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(
            failed,
            (
                33_702_601_000,
                Some("calculate_plat_config: PAGE SIZE 0x1000 and VA Bits 52 not supported".into())
            )
        );
    }
}
