//! `status.json`: the daemon's honest account of itself — what it could attach, what each
//! source delivered, what was lost. Written atomically when ready and again at stop.
use std::{collections::BTreeMap, io, path::Path};

use serde::{Deserialize, Serialize};

use crate::{event::Source, probes::ProbeReport};

/// The status file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    /// `running` (written when ready) or `stopped`.
    pub state: String,
    pub capture_kernel: bool,
    pub kernel_release: String,
    /// `present`, `mounted_by_us`, or why tracefs is unavailable.
    pub tracefs: String,
    /// How kprobe names were placed: checked in the first kernel (same build, kallsyms not
    /// read), read from this kernel's kallsyms (and why), or unavailable; empty without kprobes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kprobe_names: String,
    pub probes: Vec<ProbeReport>,
    pub boot_trace: BootTraceStatus,
    /// The kernel-log source: what it read, or why it could not.
    pub kmsg: String,
    /// Events written per source (an event seen by two sources counts for both).
    pub events_by_source: BTreeMap<Source, u64>,
    /// Timeline lines written.
    pub events_written: u64,
    /// Timeline lines lost to write failures.
    pub write_failures: u64,
    /// Ring buffer records submitted / dropped in the kernel.
    pub ring_buffer: RingStatus,
    /// Sightings merged into an earlier one by de-duplication.
    pub merged_duplicates: u64,
    /// Whether events are mirrored into the kernel log.
    pub kmsg_mirror: bool,
    /// Events mirrored / not mirrored (rate limit, length, write error).
    pub kmsg_mirrored: u64,
    pub kmsg_mirror_skipped: u64,
    /// Whether capabilities were dropped after attaching.
    pub privileges: String,
    /// The metrics textfile written at stop, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub textfile: Option<String>,
    /// The daemon's peak resident memory (`VmHWM`, KiB) when it stopped: what it really took
    /// from the crash kernel's reservation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_kib: Option<u64>,
    /// `CLOCK_MONOTONIC` minus the kernel log's printk clock (ns), measured at start
    /// ([`crate::kernel::clock_offset`]) and added to every kernel-log timestamp in the
    /// timeline; absent when it could not be measured (then the two clocks are mixed as read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ns: Option<i64>,
    /// How far off `clock_offset_ns` can be (ns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_uncertainty_ns: Option<u64>,
    /// How the offset was measured, or why it could not be.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub clock_offset_method: String,
    /// Milliseconds from the process's start (its `/proc/self/stat` start time, in clock ticks:
    /// 10 ms steps at the usual 100 Hz) to ready, when every probe is attached and the dump
    /// may start: what the daemon makes the capture wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_ms: Option<u64>,
    /// Where `startup_ms` went, phase by phase, in order (`exec`: process creation to `main`;
    /// `before_run`: `main` to the run loop; then `kernel_view` (tracefs; kallsyms unless the
    /// first kernel's check applies), `load_attach`, `boot_trace`, `clock_offset`,
    /// `kmsg_open`, `pci_scan`, `identity`, `first_write`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub startup_phases: Vec<StartupPhase>,
}

/// One phase of the start, in milliseconds (µs precision).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartupPhase {
    pub phase: String,
    pub ms: f64,
}

/// Times consecutive phases of the start.
#[derive(Debug)]
pub struct PhaseClock {
    last: std::time::Instant,
    phases: Vec<StartupPhase>,
}

/// When `main` was entered, and how old the process was then (see [`mark_main_entered`]).
static MAIN_ENTERED: std::sync::OnceLock<(std::time::Instant, Option<u64>)> =
    std::sync::OnceLock::new();

/// Records that the binary's `main` started: [`PhaseClock`] then splits the time before `run`
/// into `exec` (from the process's creation to `main`: what the parent, e.g. systemd setting up
/// the unit's sandbox, and `execve` took) and `before_run` (arguments and logging).
pub fn mark_main_entered() {
    let _ = MAIN_ENTERED.set((std::time::Instant::now(), process_age_ms()));
}

impl PhaseClock {
    /// Starts timing; the first phases are what came before (from the process's start).
    #[must_use]
    pub fn start() -> Self {
        let now = std::time::Instant::now();
        Self {
            last: now,
            phases: phases_before_run(MAIN_ENTERED.get().copied(), now, process_age_ms),
        }
    }

    /// Ends the phase `name` now.
    pub fn lap(&mut self, name: &str) {
        let now = std::time::Instant::now();
        let ms = (now - self.last).as_secs_f64() * 1000.0;
        self.phases.push(StartupPhase {
            phase: name.to_owned(),
            ms: (ms * 1000.0).round() / 1000.0,
        });
        self.last = now;
    }

    #[must_use]
    pub fn into_phases(self) -> Vec<StartupPhase> {
        self.phases
    }
}

/// Milliseconds since this process started (see [`Status::startup_ms`]).
#[must_use]
pub fn process_age_ms() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let started_ticks = start_ticks(&stat)?;
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill; CLOCK_BOOTTIME is the clock of the start time.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &raw mut now) } != 0 {
        return None;
    }
    let now_ms =
        u64::try_from(now.tv_sec).ok()? * 1000 + u64::try_from(now.tv_nsec).ok()? / 1_000_000;
    let started_ms = started_ticks.checked_mul(1000)? / hz.max(1);
    now_ms.checked_sub(started_ms)
}

/// The phases before `run`: `exec` and `before_run` when `main` was marked, else one
/// `before_run` from the process's start.
fn phases_before_run(
    main: Option<(std::time::Instant, Option<u64>)>,
    now: std::time::Instant,
    process_age: impl Fn() -> Option<u64>,
) -> Vec<StartupPhase> {
    #[expect(
        clippy::cast_precision_loss,
        reason = "milliseconds of a process's start"
    )]
    let phase = |name: &str, ms: u64| StartupPhase {
        phase: name.into(),
        ms: ms as f64,
    };
    match main {
        Some((entered, age)) => {
            let since_main = now.saturating_duration_since(entered).as_secs_f64() * 1000.0;
            age.map(|ms| phase("exec", ms))
                .into_iter()
                .chain([StartupPhase {
                    phase: "before_run".into(),
                    ms: (since_main * 1000.0).round() / 1000.0,
                }])
                .collect()
        }
        None => process_age()
            .map(|ms| phase("before_run", ms))
            .into_iter()
            .collect(),
    }
}

/// Field 22 (`starttime`) of `/proc/<pid>/stat`; the command name (field 2) may hold spaces
/// and parentheses, so fields are counted after its last `)`.
fn start_ticks(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // Fields 3.. follow; starttime is the 20th of them.
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

impl Status {
    /// Records a clock-offset measurement (or its failure).
    pub fn set_clock_offset(
        &mut self,
        measured: &Result<
            crate::kernel::clock_offset::ClockOffset,
            crate::kernel::clock_offset::ClockOffsetError,
        >,
    ) {
        match measured {
            Ok(o) => {
                self.clock_offset_ns = Some(o.offset_ns);
                self.clock_offset_uncertainty_ns = Some(o.uncertainty_ns);
                CLOCK_OFFSET_METHOD.clone_into(&mut self.clock_offset_method);
            }
            Err(e) => {
                self.clock_offset_ns = None;
                self.clock_offset_uncertainty_ns = None;
                self.clock_offset_method = format!("not measured: {e}");
            }
        }
    }
}

/// `clock_offset_method` of a successful measurement.
pub const CLOCK_OFFSET_METHOD: &str = "marker written to /dev/kmsg between two \
     clock_gettime(CLOCK_MONOTONIC) calls, read back; offset = their midpoint minus the \
     record's printk time (best of 2); applied to kmsg events";

/// `VmHWM` of this process from `/proc/self/status`, in KiB.
#[must_use]
pub fn peak_rss_kib() -> Option<u64> {
    parse_vmhwm(&std::fs::read_to_string("/proc/self/status").ok()?)
}

fn parse_vmhwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

/// What the boot-time instrumentation left behind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootTraceStatus {
    /// `kdo` kprobe events the kernel accepted from `kprobe_event=` (empty: none were passed).
    pub registered_events: Vec<String>,
    /// Records harvested from the trace buffer.
    pub records: u64,
    /// Trace records per event name (`kdo_smmu_write`, `aer_event`, ...): which boot-time
    /// probe fired, and how often.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub records_by_event: BTreeMap<String, u64>,
    /// Why the boot trace could not be read, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Kernel-side ring buffer accounting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingStatus {
    pub submitted: u64,
    pub dropped: u64,
}

impl Status {
    /// Writes the status to `path` atomically ([`crate::atomic_file::write_atomically`]).
    pub fn write_atomically(&self, path: &Path) -> io::Result<()> {
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        crate::atomic_file::write_atomically(path, &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unmeasured_offset_says_why_and_leaves_no_number() {
        let mut s = Status::default();
        s.set_clock_offset(&crate::kernel::clock_offset::measure(Path::new(
            "/nonexistent/kmsg",
        )));
        assert_eq!(s.clock_offset_ns, None);
        assert!(
            s.clock_offset_method
                .starts_with("not measured: cannot open /nonexistent/kmsg"),
            "{}",
            s.clock_offset_method
        );
        let v = serde_json::to_value(&s).unwrap();
        assert!(v.get("clock_offset_ns").is_none(), "{v}");
    }

    #[test]
    fn peak_rss_is_read_from_proc() {
        assert_eq!(
            parse_vmhwm("Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t   22336 kB\nVmRSS:\t 8 kB\n"),
            Some(22_336)
        );
        assert_eq!(parse_vmhwm("VmRSS:\t8 kB\n"), None);
        assert!(
            peak_rss_kib().is_some_and(|k| k > 0),
            "this process has a VmHWM"
        );
    }

    #[test]
    fn phases_are_timed_in_order() {
        let mut clock = PhaseClock::start();
        std::thread::sleep(std::time::Duration::from_millis(5));
        clock.lap("a");
        clock.lap("b");
        let phases = clock.into_phases();
        let names: Vec<&str> = phases.iter().map(|p| p.phase.as_str()).collect();
        assert_eq!(names, ["before_run", "a", "b"]);
        assert!(
            phases[1].ms >= 5.0 && phases[2].ms < phases[1].ms,
            "{phases:?}"
        );
    }

    #[test]
    fn a_marked_main_splits_exec_from_before_run() {
        let entered = std::time::Instant::now();
        let now = entered + std::time::Duration::from_millis(30);
        let phases = phases_before_run(Some((entered, Some(1200))), now, || Some(9999));
        let got: Vec<(&str, f64)> = phases.iter().map(|p| (p.phase.as_str(), p.ms)).collect();
        assert_eq!(got, [("exec", 1200.0), ("before_run", 30.0)]);
        // Unmarked (library use, tests): one phase from the process's start.
        let phases = phases_before_run(None, now, || Some(1230));
        assert_eq!(phases.len(), 1);
        assert_eq!(
            (phases[0].phase.as_str(), phases[0].ms),
            ("before_run", 1230.0)
        );
    }

    #[test]
    fn process_start_is_read_after_the_command_name() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 300 0 0 0 1 2 0 0 20 0 1 0 \
                    98765 1000000 200 18446744073709551615";
        assert_eq!(start_ticks(stat), Some(98_765));
        assert_eq!(start_ticks("1 (x) S 1"), None);
        let age = process_age_ms().expect("this process has a start time");
        assert!(age < 24 * 3600 * 1000, "{age} ms");
    }

    #[test]
    fn a_rewritten_status_reads_back_whole_with_its_documented_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.json");
        let mut s = Status {
            state: "running".into(),
            capture_kernel: true,
            ..Status::default()
        };
        s.events_by_source.insert(Source::Kmsg, 3);
        s.set_clock_offset(&Ok(crate::kernel::clock_offset::ClockOffset {
            offset_ns: -200_000_000,
            uncertainty_ns: 6_000,
        }));
        s.write_atomically(&path).unwrap();
        s.state = "stopped".into();
        s.write_atomically(&path).unwrap();
        let back: Status = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, s);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["capture_kernel"], true);
        assert_eq!(v["events_by_source"]["kmsg"], 3);
        assert_eq!(v["clock_offset_ns"], -200_000_000);
        assert_eq!(v["clock_offset_uncertainty_ns"], 6_000);
        assert!(
            v["clock_offset_method"]
                .as_str()
                .is_some_and(|m| m.contains("/dev/kmsg")),
            "{v}"
        );
        // Atomicity itself is the shared helper's (atomic_file tests).
    }
}
