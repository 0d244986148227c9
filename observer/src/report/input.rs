//! Loading whatever a user has into timeline events: a timeline (JSON Lines), a capture output
//! directory, raw `dmesg`/kmsg text, a serial console log, or a pstore directory.
use std::{
    io,
    path::{Path, PathBuf},
};

use crate::{
    dump_files,
    event::Event,
    logparse::{self, mirror::parse_mirrored},
    timeline::{fuse_boots, smmu_reset},
};

/// The input could not be read or is not what it claims to be.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {path}: {source}", path = path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}:{line}: expected a timeline event (a JSON object with ts_ns, kind, source): {reason}", path = path.display())]
    Timeline {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path}: no timeline.jsonl, kernel log or pstore record in this directory", path = path.display())]
    EmptyDirectory { path: PathBuf },
}

/// What was loaded, and from what.
#[derive(Debug, Default)]
pub struct Loaded {
    pub events: Vec<Event>,
    /// The files read, with what each was taken for.
    pub files: Vec<(PathBuf, &'static str)>,
    /// Problems that did not stop the load (e.g. a torn last line).
    pub warnings: Vec<String>,
}

/// Loads `path` (file or directory), de-duplicating what several sources saw.
pub fn load(path: &Path) -> Result<Loaded, InputError> {
    let mut loaded = Loaded::default();
    if path.is_dir() {
        load_dir(path, &mut loaded)?;
    } else {
        load_file(path, &mut loaded)?;
    }
    let mut events = std::mem::take(&mut loaded.events);
    let capture = events.iter().any(|e| {
        matches!(
            e.detail,
            crate::event::Detail::CaptureKernelMarker { .. }
                | crate::event::Detail::ObserverStarted {
                    capture_kernel: true,
                    ..
                }
        )
    });
    smmu_reset::attach_writes(&mut events, capture);
    loaded.events = fuse_boots(events);
    Ok(loaded)
}

fn read(path: &Path) -> Result<Vec<u8>, InputError> {
    std::fs::read(path).map_err(|source| InputError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn load_file(path: &Path, loaded: &mut Loaded) -> Result<(), InputError> {
    let bytes = read(path)?;
    let first = bytes
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    if first.starts_with(b"{") {
        let events = parse_timeline(path, &bytes, &mut loaded.warnings)?;
        if loaded.events.is_empty() {
            loaded.events = events;
        } else {
            loaded.events.extend(events);
        }
        loaded.files.push((path.to_path_buf(), "timeline"));
    } else if looks_like_kmsg(first) {
        loaded
            .events
            .extend(logparse::parse_kmsg_dump(path, &bytes));
        loaded.files.push((path.to_path_buf(), "kmsg records"));
    } else {
        loaded.events.extend(logparse::read_text_log(path, &bytes));
        loaded.events.extend(mirrored(&bytes));
        loaded.files.push((path.to_path_buf(), "kernel log text"));
    }
    Ok(())
}

/// `<prio>,<seq>,<usec>,<flags>;text`.
fn looks_like_kmsg(line: &[u8]) -> bool {
    let Some(head) = line.split(|&b| b == b';').next() else {
        return false;
    };
    let fields: Vec<&[u8]> = head.split(|&b| b == b',').collect();
    fields.len() >= 4
        && fields[..3]
            .iter()
            .all(|f| !f.is_empty() && f.iter().all(u8::is_ascii_digit))
}

/// Events the daemon mirrored into the kernel log, read back from a console or pstore copy.
fn mirrored(bytes: &[u8]) -> Vec<Event> {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|l| parse_mirrored(&String::from_utf8_lossy(l)))
        .filter(|e| {
            !matches!(
                e.detail,
                crate::event::Detail::ObserverStarted { .. }
                    | crate::event::Detail::ObserverStopped { .. }
            )
        })
        .collect()
}

/// Lines per parser thread below which one thread does it all.
const LINES_PER_THREAD: usize = 100_000;

/// Parses JSON Lines; a torn last line (a daemon killed mid-write) is a warning, any other bad
/// line an error. Long timelines are parsed on every CPU (lines are independent); a capture
/// kernel with one CPU parses on one.
fn parse_timeline(
    path: &Path,
    bytes: &[u8],
    warnings: &mut Vec<String>,
) -> Result<Vec<Event>, InputError> {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let last = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .unwrap_or(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(lines.len() / LINES_PER_THREAD + 1);
    let chunk = lines.len().div_ceil(threads).max(1);
    let parts: Vec<Parsed> = if threads == 1 {
        vec![parse_lines(&lines, 0)]
    } else {
        std::thread::scope(|scope| {
            let workers: Vec<_> = lines
                .chunks(chunk)
                .enumerate()
                .map(|(k, part)| scope.spawn(move || parse_lines(part, k * chunk)))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    };
    let mut events = Vec::new();
    for (part, failure) in parts {
        if events.is_empty() {
            events = part;
        } else {
            events.extend(part);
        }
        let Some((i, e)) = failure else { continue };
        if i == last && !text.ends_with('\n') {
            warnings.push(format!(
                "{}:{}: torn last line ignored ({e})",
                path.display(),
                i + 1
            ));
            break;
        }
        return Err(InputError::Timeline {
            path: path.to_path_buf(),
            line: i + 1,
            reason: e.to_string(),
        });
    }
    Ok(events)
}

/// Events of `lines` (numbered from `first`), up to the first line that is not one.
type Parsed = (Vec<Event>, Option<(usize, serde_json::Error)>);

fn parse_lines(lines: &[&str], first: usize) -> Parsed {
    let mut events = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match Event::from_json_line(line) {
            Ok(e) => events.push(e),
            Err(e) => return (events, Some((first + i, e))),
        }
    }
    (events, None)
}

fn load_dir(dir: &Path, loaded: &mut Loaded) -> Result<(), InputError> {
    let timeline = dir.join("timeline.jsonl");
    if timeline.is_file() {
        return load_file(&timeline, loaded);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| InputError::Read {
            path: dir.to_path_buf(),
            source,
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            // The dump tools' logs (pstore's dmesg-* records too), pstore's console and pmsg
            // records, console captures.
            dump_files::is_dmesg(&name)
                || ["console", "pmsg"]
                    .iter()
                    .any(|prefix| name.starts_with(prefix))
                || p.extension().is_some_and(|e| e.eq_ignore_ascii_case("log"))
        })
        .collect();
    entries.sort();
    if entries.is_empty() {
        return Err(InputError::EmptyDirectory {
            path: dir.to_path_buf(),
        });
    }
    for path in entries {
        load_file(&path, loaded)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AerSeverity, Detail};

    #[test]
    fn timeline_with_torn_last_line_loads_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        std::fs::write(
            &path,
            "{\"ts_ns\":1,\"source\":\"kmsg\",\"kind\":\"smmu_reset\",\"smmu\":\"9050000.smmuv3\"}\n{\"ts_ns\":2,\"sou",
        )
        .unwrap();
        let l = load(&path).unwrap();
        assert_eq!(l.events.len(), 1);
        assert_eq!(l.warnings.len(), 1);
        assert!(
            l.warnings[0].contains("t.jsonl:2: torn last line"),
            "{:?}",
            l.warnings
        );
    }

    #[test]
    fn a_bad_line_inside_a_timeline_is_an_error_with_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        std::fs::write(
            &path,
            "{\"ts_ns\":1,\"source\":\"kmsg\",\"kind\":\"nope\"}\n{}\n",
        )
        .unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("t.jsonl:1: expected a timeline event"), "{e}");
    }

    #[test]
    fn console_log_with_mirror_lines_and_kernel_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        let text = "\
[    0.000000] Booting Linux on physical CPU 0x0000000001 [0x000f0510]\r
[    0.000000] OF: fdt: Reserving 1 KiB of memory at 0xb97ff000 for elfcorehdr\r
[    1.637153] arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...\r
[    9.668622] pcieport 0000:00:03.0: AER: Uncorrectable (Fatal) error message received from 0000:02:00.0\r
[    9.700000] kdump-dma-observer: v1 {\"ts_ns\":9669641000,\"source\":\"ebpf\",\"cpu\":0,\"kind\":\"aer\",\"device\":\"0000:02:00.0\",\"severity\":\"fatal\",\"status\":\"0x40000\"}\r
";
        std::fs::write(&path, text).unwrap();
        let l = load(&path).unwrap();
        let aers: Vec<_> = l
            .events
            .iter()
            .filter(|e| {
                matches!(
                    e.detail,
                    Detail::Aer {
                        severity: AerSeverity::Fatal,
                        ..
                    }
                )
            })
            .collect();
        assert_eq!(
            aers.len(),
            1,
            "console and mirrored sightings merge: {:#?}",
            l.events
        );
        assert_eq!(aers[0].sources.len(), 2);
        assert!(l.events.iter().any(|e| e.detail.kind() == "smmu_reset"));
    }

    #[test]
    fn empty_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("no timeline.jsonl, kernel log or pstore record"),
            "{e}"
        );
    }

    #[test]
    fn unreadable_path_names_the_path() {
        let e = load(Path::new("/nonexistent/x.log"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot read /nonexistent/x.log"), "{e}");
    }
}
