//! `run --dump-dir`: where a capture-kernel daemon writes, and how its files reach the dump.
//!
//! The dump tool creates its directory (kdump-tools: `<dump-dir>/<YYYYmmddHHMM>/`, kdump-utils:
//! `<dump-dir>/<ip>-<date>/`) only when it starts saving, long after the daemon must be
//! recording. So the daemon writes into a *live directory* of its own,
//! `<dump-dir>/kdump-dma-observer.<UTC YYYYmmddHHMMSS>/` (kdump-tools' purge of old dumps only
//! counts names starting with `2`), and [`hand_off`] moves its files into the dump's directory:
//! the daemon calls it when it stops (once the dump is written, see [`dump_finished`]: kdump-tools
//! ends with `reboot -f`, which signals no process; or on SIGTERM), and `recover` calls it for
//! live directories a killed daemon left behind.
use crate::dump_files;
use crate::utc::{parse_utc_stamp, utc_stamp};
use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Name prefix of a live directory.
pub const LIVE_PREFIX: &str = "kdump-dma-observer.";
/// The daemon's files, moved as they are.
pub const FILES: &[&str] = &["timeline.jsonl", "status.json", "kdump-dma-observer.prom"];
/// How much earlier than the live directory a dump directory may look (the dump tool's
/// minute-granular names, clock steps): it still belongs to this capture.
const CLOCK_SLACK: Duration = Duration::from_mins(2);

/// Errors of the live directory.
#[derive(Debug, thiserror::Error)]
pub enum CaptureDirError {
    #[error("cannot create the live directory {path}: {source}", path = path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot move {from} to {to}: {source}", from = from.display(), to = to.display())]
    Move {
        from: PathBuf,
        to: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the dump directory {path}: {source}", path = path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A daemon's own directory under the dump directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveDir {
    pub path: PathBuf,
    /// When the daemon started (from the name: second resolution).
    pub started: SystemTime,
}

impl LiveDir {
    /// Creates `<dump_dir>/kdump-dma-observer.<stamp>` (with a `.N` suffix if it exists).
    pub fn create(dump_dir: &Path, now: SystemTime) -> Result<Self, CaptureDirError> {
        let stamp = utc_stamp(now);
        let create = |path: &Path| {
            std::fs::create_dir_all(dump_dir)
                .and_then(|()| std::fs::create_dir(path))
                .map_err(|source| CaptureDirError::Create {
                    path: path.to_path_buf(),
                    source,
                })
        };
        for n in 0..100 {
            let name = if n == 0 {
                format!("{LIVE_PREFIX}{stamp}")
            } else {
                format!("{LIVE_PREFIX}{stamp}.{n}")
            };
            let path = dump_dir.join(name);
            match create(&path) {
                Ok(()) => {
                    return Ok(Self {
                        path,
                        started: parse_utc_stamp(&stamp).unwrap_or(now),
                    });
                }
                Err(CaptureDirError::Create { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Err(CaptureDirError::Create {
            path: dump_dir.join(format!("{LIVE_PREFIX}{stamp}")),
            source: std::io::ErrorKind::AlreadyExists.into(),
        })
    }

    /// A live directory from its path, if its name is one.
    #[must_use]
    pub fn parse(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?;
        let stamp = name.strip_prefix(LIVE_PREFIX)?.get(..14)?;
        Some(Self {
            path: path.to_path_buf(),
            started: parse_utc_stamp(stamp)?,
        })
    }

    #[must_use]
    pub fn timeline(&self) -> PathBuf {
        self.path.join(FILES[0])
    }

    #[must_use]
    pub fn status(&self) -> PathBuf {
        self.path.join(FILES[1])
    }
}

/// What [`hand_off`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandOff {
    /// The files now live in this dump directory; the live directory is gone.
    Moved(PathBuf),
    /// No dump directory appeared after the daemon started: the files stay where they are.
    NoDump,
}

/// Moves the daemon's files from `live` into the dump directory of the same capture: the
/// first directory under `live`'s parent that holds dump-tool output
/// ([`dump_files::outcome`]), has no timeline yet, and was modified after the daemon
/// started (less two minutes of clock slack). The live directory is removed once empty.
pub fn hand_off(live: &LiveDir) -> Result<HandOff, CaptureDirError> {
    let parent = live.path.parent().unwrap_or(Path::new("."));
    let Some(target) = dump_dir_for(parent, live.started)? else {
        return Ok(HandOff::NoDump);
    };
    for name in FILES {
        let from = live.path.join(name);
        if !from.exists() {
            continue;
        }
        let to = target.join(name);
        move_file(&from, &to)?;
    }
    sync_dir(&target);
    // Only succeeds when nothing else was left there; anything unexpected stays visible.
    let _ = std::fs::remove_dir(&live.path);
    sync_dir(parent);
    Ok(HandOff::Moved(target))
}

/// How often [`dump_finished`] looks (a `readdir` of the dump directory).
const POLL: Duration = Duration::from_millis(50);

/// The dump directory of this capture once the dump tool has finished writing the dump in it
/// (the final name is there: kdump-tools renames `dump-incomplete` to `dump.<stamp>`,
/// kdump-utils `vmcore-incomplete` to `vmcore`), else `None`.
#[must_use]
pub fn finished_dump(live: &LiveDir) -> Option<PathBuf> {
    let parent = live.path.parent()?;
    let dir = dump_dir_for(parent, live.started).ok()??;
    dump_files::dump_written(&dir).then_some(dir)
}

/// Resolves once the dump of this capture is written ([`finished_dump`]). kdump-tools ends
/// with `reboot -f`, which signals no process: this is the daemon's cue to stop and hand its
/// files over while it still can (about half a second under QEMU TCG).
pub async fn dump_finished(live: LiveDir) -> PathBuf {
    let mut tick = tokio::time::interval(POLL);
    loop {
        tick.tick().await;
        if let Some(dir) = finished_dump(&live) {
            return dir;
        }
    }
}

/// The dump directory a daemon started at `started` belongs with.
fn dump_dir_for(parent: &Path, started: SystemTime) -> Result<Option<PathBuf>, CaptureDirError> {
    let entries = std::fs::read_dir(parent).map_err(|source| CaptureDirError::Read {
        path: parent.to_path_buf(),
        source,
    })?;
    let not_before = started.checked_sub(CLOCK_SLACK).unwrap_or(UNIX_EPOCH);
    let mut candidates: Vec<(SystemTime, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .and_then(OsStr::to_str)
                    .is_some_and(|n| n.starts_with(LIVE_PREFIX))
                && !p.join(FILES[0]).exists()
                && dump_files::outcome(p).is_some()
        })
        .filter_map(|p| {
            let modified = std::fs::metadata(&p).and_then(|m| m.modified()).ok()?;
            (modified >= not_before).then_some((modified, p))
        })
        .collect();
    candidates.sort();
    Ok(candidates.into_iter().next().map(|(_, p)| p))
}

fn move_file(from: &Path, to: &Path) -> Result<(), CaptureDirError> {
    let err = |source| CaptureDirError::Move {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    };
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        // Another file system (a dump target mounted over the dump directory): copy, sync,
        // then remove.
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            std::fs::copy(from, to).map_err(err)?;
            std::fs::File::open(to)
                .and_then(|f| f.sync_all())
                .map_err(err)?;
            std::fs::remove_file(from).map_err(err)
        }
        Err(e) => Err(err(e)),
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn live_dirs_do_not_collide_and_parse_back() {
        let root = tempfile::tempdir().unwrap();
        let now = at(1_795_510_327);
        let a = LiveDir::create(root.path(), now).unwrap();
        let b = LiveDir::create(root.path(), now).unwrap();
        assert_ne!(a.path, b.path);
        assert_eq!(a.started, now);
        assert_eq!(LiveDir::parse(&b.path).unwrap().started, now);
        assert!(
            b.path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .ends_with(".1")
        );
        assert_eq!(LiveDir::parse(Path::new("/var/crash/202611240852")), None);
    }

    fn dump(root: &Path, name: &str, file: &str) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(file), b"x").unwrap();
        dir
    }

    #[test]
    fn files_move_into_the_dump_made_after_the_daemon_started() {
        let root = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        // A dump of an earlier crash (older than the slack) must not receive these files.
        let old = dump(root.path(), "202611230101", "dump.202611230101");
        let long_ago = std::fs::FileTimes::new().set_modified(now - Duration::from_hours(24));
        std::fs::File::open(&old)
            .unwrap()
            .set_times(long_ago)
            .unwrap();
        let live = LiveDir::create(root.path(), now).unwrap();
        std::fs::write(live.timeline(), b"{}\n").unwrap();
        std::fs::write(live.status(), b"{}").unwrap();
        assert_eq!(hand_off(&live).unwrap(), HandOff::NoDump);
        assert!(live.timeline().exists(), "nothing moved without a dump");

        let new = dump(root.path(), "202611240852", "dump-incomplete");
        assert_eq!(hand_off(&live).unwrap(), HandOff::Moved(new.clone()));
        assert!(new.join("timeline.jsonl").is_file());
        assert!(new.join("status.json").is_file());
        assert!(!live.path.exists(), "the emptied live directory is removed");
        assert!(!old.join("timeline.jsonl").exists());
    }

    #[test]
    fn the_dump_counts_as_finished_only_under_its_final_name() {
        let root = tempfile::tempdir().unwrap();
        let live = LiveDir::create(root.path(), SystemTime::now()).unwrap();
        assert_eq!(finished_dump(&live), None);
        let dir = dump(root.path(), "202611240852", "dmesg.202611240852");
        assert_eq!(finished_dump(&live), None, "dmesg saved, dump not started");
        std::fs::write(dir.join("dump-incomplete"), b"partial").unwrap();
        assert_eq!(finished_dump(&live), None, "dump being written");
        std::fs::rename(dir.join("dump-incomplete"), dir.join("dump.202611240852")).unwrap();
        assert_eq!(finished_dump(&live), Some(dir.clone()));
        // kdump-utils, and an empty dump (the dump tool failed, the script carried on).
        let utils = dump(root.path(), "192.168.0.2-2026-11-24-08:52:07", "vmcore");
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::write(utils.join("vmcore"), b"").unwrap();
        assert_eq!(finished_dump(&live), Some(utils));
    }

    #[tokio::test]
    async fn waiting_for_the_dump_ends_when_it_is_written() {
        let root = tempfile::tempdir().unwrap();
        let live = LiveDir::create(root.path(), SystemTime::now()).unwrap();
        let waiting = tokio::spawn(dump_finished(live));
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(!waiting.is_finished());
        let dir = dump(root.path(), "202611240852", "dump.202611240852");
        let found = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert_eq!(found.unwrap().unwrap(), dir);
    }

    #[test]
    fn a_dump_that_already_has_a_timeline_is_not_a_target() {
        let root = tempfile::tempdir().unwrap();
        let taken = dump(root.path(), "202611240852", "dump.202611240852");
        std::fs::write(taken.join("timeline.jsonl"), b"{}\n").unwrap();
        let live = LiveDir::create(root.path(), SystemTime::now()).unwrap();
        std::fs::write(live.timeline(), b"{}\n").unwrap();
        assert_eq!(hand_off(&live).unwrap(), HandOff::NoDump);
    }
}
