//! One capture-kernel run (`run --dump-dir DIR`), as the systemd unit starts it: the daemon
//! writes into its live directory while the dump is taken, stops as soon as the dump is
//! written (kdump-tools then ends with `reboot -f`, which signals no process), moves its files
//! beside the dump and writes the report there.
use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

use super::{
    live_dir::{self, CaptureDirError, HandOff, LiveDir},
    recover::{self, Recovered},
};

/// A capture-kernel run in progress.
#[derive(Clone, Debug)]
pub struct CaptureRun {
    live: LiveDir,
}

/// Where the daemon writes during the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outputs {
    pub timeline: PathBuf,
    pub status: PathBuf,
    /// The metrics textfile goes here too (`recover` publishes it on the next boot).
    pub textfile_dir: PathBuf,
}

/// How the run ended.
#[derive(Debug)]
pub struct Finished {
    /// Where the files and the report are now.
    pub dir: PathBuf,
    /// What the hand-off did: moved beside the dump, no dump appeared (files stay in the live
    /// directory for `recover`), or the move failed (files stay; the error says why).
    pub hand_off: Result<HandOff, CaptureDirError>,
    /// The report written into `dir`.
    pub report: Recovered,
}

impl CaptureRun {
    /// Creates the live directory under `dump_dir`.
    pub fn start(dump_dir: &Path, now: SystemTime) -> Result<Self, CaptureDirError> {
        Ok(Self {
            live: LiveDir::create(dump_dir, now)?,
        })
    }

    #[must_use]
    pub fn outputs(&self) -> Outputs {
        Outputs {
            timeline: self.live.timeline(),
            status: self.live.status(),
            textfile_dir: self.live.path.clone(),
        }
    }

    /// Resolves once this capture's dump is written, with the dump's directory.
    pub async fn dump_written(&self) -> PathBuf {
        live_dir::dump_finished(self.live.clone()).await
    }

    /// After the daemon stopped: moves its files beside the dump, then writes the report
    /// (report.md, .html, .json, verdict.json) wherever they are. With `journal`, the dump
    /// tool's lines in the systemd journal join the evidence (why a dump failed).
    #[must_use]
    pub fn finish(&self, journal: bool) -> Finished {
        let hand_off = live_dir::hand_off(&self.live);
        let dir = match &hand_off {
            Ok(HandOff::Moved(dir)) => dir.clone(),
            Ok(HandOff::NoDump) | Err(_) => self.live.path.clone(),
        };
        let (report, _) = recover::report_capture(&dir, None, journal);
        Finished {
            dir,
            hand_off,
            report,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn fatal_timeline() -> String {
        [
            r#"{"ts_ns":1,"source":"observer","kind":"observer_started","version":"t","capture_kernel":true,"kernel_release":"6.12","probes":[]}"#,
            r#"{"ts_ns":1000000000,"source":"kmsg","kind":"smmu_reset","smmu":"9050000.smmuv3"}"#,
            r#"{"ts_ns":2000000000,"source":"ebpf","kind":"aer","device":"0000:02:00.0","severity":"fatal"}"#,
        ]
        .join("\n")
            + "\n"
    }

    #[test]
    fn files_and_report_land_beside_the_dump_written_during_the_run() {
        let root = tempfile::tempdir().unwrap();
        let run = CaptureRun::start(root.path(), SystemTime::now()).unwrap();
        let out = run.outputs();
        assert_eq!(out.timeline.parent(), Some(out.textfile_dir.as_path()));
        std::fs::write(&out.timeline, fatal_timeline()).unwrap();
        std::fs::write(&out.status, "{}\n").unwrap();
        // kdump-tools makes its directory once the dump starts, and renames the dump at the end.
        let dump = root.path().join("202612040952");
        std::fs::create_dir(&dump).unwrap();
        std::fs::write(dump.join("dump.202612040952"), b"KDUMP   ").unwrap();

        let done = run.finish(false);
        assert!(matches!(&done.hand_off, Ok(HandOff::Moved(d)) if *d == dump));
        assert_eq!(done.dir, dump);
        assert!(dump.join("timeline.jsonl").is_file());
        assert!(dump.join("status.json").is_file());
        assert!(!out.textfile_dir.exists(), "the live directory is gone");
        assert_eq!(done.report.verdict, "flagged");
        let verdict = std::fs::read_to_string(dump.join("verdict.json")).unwrap();
        assert!(verdict.contains("flagged"), "{verdict}");
        assert!(dump.join("report.html").is_file());
    }

    #[test]
    fn without_a_dump_the_files_and_report_stay_in_the_live_directory() {
        let root = tempfile::tempdir().unwrap();
        let run = CaptureRun::start(root.path(), SystemTime::now()).unwrap();
        std::fs::write(run.outputs().timeline, fatal_timeline()).unwrap();
        let done = run.finish(false);
        assert!(matches!(done.hand_off, Ok(HandOff::NoDump)));
        assert_eq!(done.dir, run.outputs().textfile_dir);
        assert!(done.dir.join("report.md").is_file());
    }

    #[tokio::test]
    async fn the_run_learns_when_the_dump_is_written() {
        let root = tempfile::tempdir().unwrap();
        let run = CaptureRun::start(root.path(), SystemTime::now()).unwrap();
        let dump = root.path().join("202612040952");
        std::fs::create_dir(&dump).unwrap();
        std::fs::write(dump.join("dump-incomplete"), b"x").unwrap();
        let pending = tokio::time::timeout(Duration::from_millis(200), run.dump_written()).await;
        assert!(pending.is_err(), "an incomplete dump is not written yet");
        std::fs::rename(dump.join("dump-incomplete"), dump.join("dump.202612040952")).unwrap();
        let dir = tokio::time::timeout(Duration::from_secs(5), run.dump_written())
            .await
            .expect("seen within a few polls");
        assert_eq!(dir, dump);
    }
}
