//! The serial console: followed as QEMU writes it, and matched line by line against the phases
//! a scenario expects (the guest's `LAB: ` markers, kernel boots, panics).
use std::{
    collections::VecDeque,
    io::{Read as _, Seek as _, SeekFrom},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;

/// What a console line means to the lab.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// `LAB: <text>` from the guest's /init.
    Marker(String),
    /// `Booting Linux on physical CPU ...`: a kernel started.
    KernelBoot,
    /// `Kernel panic - not syncing: <message>`.
    KernelPanic(String),
}

/// Reads a console line. Everything counts only at the start of the message (after the
/// `[    1.234567] ` stamp, if any: the guest writes its markers to /dev/kmsg), so the same
/// words inside other text (e.g. the observer's mirrored JSON records) do not.
#[must_use]
pub(crate) fn classify(line: &str) -> Option<Signal> {
    let line = line.trim_end_matches(['\r', '\n']);
    let message = strip_timestamp(last_kernel_record(line));
    if let Some(text) = message.strip_prefix("LAB: ") {
        return Some(Signal::Marker(text.trim().to_owned()));
    }
    // arm64 (arch/arm64/kernel/setup.c) and x86 (`Command line: `, arch/x86/kernel/setup.c,
    // printed once per boot; every arch's `Kernel command line: ` is another line).
    if message.starts_with("Booting Linux on physical CPU") || message.starts_with("Command line: ")
    {
        return Some(Signal::KernelBoot);
    }
    message
        .strip_prefix("Kernel panic - not syncing:")
        .map(|m| Signal::KernelPanic(m.trim().to_owned()))
}

/// The last kernel record on a console line. Userspace text reaches the shared serial console
/// without the kernel's line discipline, so a kernel record can land in the middle of it: after
/// a getty prompt printed without a newline (seen in CI: `kdumplab login: [   32.312218] LAB:
/// RECOVERED ...`), or inside a long line journald forwards to the console, whose newline then
/// follows the kernel's record (seen in CI: `... kprobes=b4c0…:c7f6e65c'[   16.782056] LAB:
/// SETUP-APPLIED uptime=16.67`). A kernel record starts with a full printk stamp
/// (`[%5lu.%06lu] `, `print_time()` in kernel/printk/printk.c); text before the last one on the
/// line is someone else's. Shorter `[1.0]`-like brackets in text are not stamps.
fn last_kernel_record(line: &str) -> &str {
    line.match_indices('[')
        .map(|(at, _)| at)
        .rfind(|&at| at > 0 && is_printk_stamp(&line[at..]))
        .map_or(line, |at| &line[at..])
}

/// Whether `text` starts with `[<spaces><seconds>.<6 digits>] `.
fn is_printk_stamp(text: &str) -> bool {
    let Some((stamp, _)) = text
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("] "))
    else {
        return false;
    };
    let Some((secs, micros)) = stamp.trim_start().split_once('.') else {
        return false;
    };
    !secs.is_empty()
        && secs.bytes().all(|b| b.is_ascii_digit())
        && micros.len() == 6
        && micros.bytes().all(|b| b.is_ascii_digit())
}

fn strip_timestamp(line: &str) -> &str {
    line.strip_prefix('[')
        .and_then(|rest| rest.split_once("] "))
        .filter(|(stamp, _)| stamp.trim().chars().all(|c| c.is_ascii_digit() || c == '.'))
        .map_or(line, |(_, message)| message)
}

/// What a phase waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// The n-th `Booting Linux` (1 = the first kernel, 2 = the capture kernel).
    Boot(u32),
    /// A `LAB: ` marker whose text starts with this (e.g. `READY capture`).
    Marker(&'static str),
    /// A `Kernel panic - not syncing: ` line whose message starts with this. The kernel prints
    /// it synchronously, while the guest's own last words before a crash can be lost in the
    /// serial driver's buffer.
    Panic(&'static str),
}

/// One step of a scenario, as seen on the console.
#[derive(Clone, Debug)]
pub(crate) struct Phase {
    /// What it means, for progress lines: "first kernel reaches /init".
    pub name: &'static str,
    /// The failure message when it does not happen: "first kernel did not reach /init".
    pub missed: &'static str,
    pub wait: Wait,
    /// Deadline, counted from the previous phase.
    pub within: Duration,
}

impl Phase {
    /// A phase whose deadline is `secs` times `scale` (`--deadline-scale`).
    #[must_use]
    pub(crate) fn new(
        name: &'static str,
        missed: &'static str,
        wait: Wait,
        secs: f64,
        scale: f64,
    ) -> Self {
        Self {
            name,
            missed,
            wait,
            within: Duration::from_secs_f64(secs * scale),
        }
    }
}

/// Matches console lines against a scenario's phases, in order, and notices what must not
/// happen: `LAB: FAIL`, more kernel panics or boots than the scenario causes (a panic loop).
#[derive(Debug)]
pub(crate) struct Watch {
    phases: Vec<Phase>,
    next: usize,
    boots: u32,
    panics: u32,
    max_panics: u32,
    max_boots: u32,
    tail: VecDeque<String>,
}

/// Lines kept for failure messages.
const TAIL: usize = 15;

impl Watch {
    /// `max_panics`: the panics the scenario causes itself (1 for kdump: the sysrq crash).
    #[must_use]
    pub(crate) fn new(phases: Vec<Phase>, max_panics: u32) -> Self {
        let max_boots = phases
            .iter()
            .filter_map(|p| match p.wait {
                Wait::Boot(n) => Some(n),
                Wait::Marker(_) | Wait::Panic(_) => None,
            })
            .max()
            .unwrap_or(1);
        Self {
            phases,
            next: 0,
            boots: 0,
            panics: 0,
            max_panics,
            max_boots,
            tail: VecDeque::new(),
        }
    }

    /// Feeds one line; `Ok(Some(i))` when it completes phase `i`, `Err` with the reason when
    /// the run has failed.
    pub(crate) fn feed(&mut self, line: &str) -> Result<Option<usize>, String> {
        let line = line.trim_end_matches(['\r', '\n']);
        if self.tail.len() == TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_owned());
        let Some(signal) = classify(line) else {
            return Ok(None);
        };
        match &signal {
            Signal::Marker(text) if text.starts_with("FAIL") => {
                return Err(format!(
                    "the guest reported a failure: {}",
                    text.trim_start_matches("FAIL").trim()
                ));
            }
            Signal::KernelBoot => {
                self.boots += 1;
                if self.boots > self.max_boots {
                    return Err(format!(
                        "kernel boot #{} but the scenario expects {} (a reboot or panic loop)",
                        self.boots, self.max_boots
                    ));
                }
            }
            Signal::KernelPanic(message) => {
                self.panics += 1;
                if self.panics > self.max_panics {
                    return Err(format!(
                        "unexpected kernel panic #{} (the scenario expects {}): {message}",
                        self.panics, self.max_panics
                    ));
                }
            }
            Signal::Marker(_) => {}
        }
        let Some(phase) = self.phases.get(self.next) else {
            return Ok(None);
        };
        let reached = match (&phase.wait, &signal) {
            (Wait::Boot(n), Signal::KernelBoot) => self.boots >= *n,
            (Wait::Marker(prefix), Signal::Marker(text))
            | (Wait::Panic(prefix), Signal::KernelPanic(text)) => text.starts_with(prefix),
            _ => false,
        };
        if reached {
            self.next += 1;
            return Ok(Some(self.next - 1));
        }
        Ok(None)
    }

    /// The phase being waited for, if any is left.
    #[must_use]
    pub(crate) fn current(&self) -> Option<&Phase> {
        self.phases.get(self.next)
    }

    #[must_use]
    pub(crate) fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// The last console lines, for failure messages.
    #[must_use]
    pub(crate) fn tail(&self) -> String {
        if self.tail.is_empty() {
            return "    (nothing on the console)".to_owned();
        }
        self.tail
            .iter()
            .map(|l| format!("    | {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Follows a file another process appends to, handing out complete lines.
pub(crate) struct Follower {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Follower {
    #[must_use]
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// The complete lines written since the last call (none while the file does not exist).
    pub(crate) fn poll(&mut self) -> anyhow::Result<Vec<String>> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Ok(Vec::new());
        };
        file.seek(SeekFrom::Start(self.offset))
            .with_context(|| format!("seeking in {}", self.path.display()))?;
        let mut fresh = Vec::new();
        let n = file
            .read_to_end(&mut fresh)
            .with_context(|| format!("reading {}", self.path.display()))?;
        self.offset += n as u64;
        self.partial.extend_from_slice(&fresh);
        let mut lines = Vec::new();
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            lines.push(String::from_utf8_lossy(&line).trim_end().to_owned());
        }
        Ok(lines)
    }

    /// Whatever is left without a newline (QEMU died mid-line).
    pub(crate) fn rest(&mut self) -> Option<String> {
        (!self.partial.is_empty()).then(|| {
            let text = String::from_utf8_lossy(&self.partial).trim_end().to_owned();
            self.partial.clear();
            text
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn kdump_phases() -> Vec<Phase> {
        let p = |name, wait| Phase {
            name,
            missed: name,
            wait,
            within: Duration::from_mins(1),
        };
        vec![
            p("first kernel boots", Wait::Boot(1)),
            p("first /init", Wait::Marker("INIT first")),
            p("crash", Wait::Panic("sysrq triggered crash")),
            p("capture kernel boots", Wait::Boot(2)),
            p("capture ready", Wait::Marker("READY capture")),
            p("done", Wait::Marker("DONE")),
        ]
    }

    #[test]
    fn classifies_console_lines() {
        assert_eq!(
            classify("[    0.000000] Booting Linux on physical CPU 0x0000000001 [0x000f0510]\r"),
            Some(Signal::KernelBoot)
        );
        assert_eq!(
            classify("[    0.000000] Command line: console=ttyS0 intel_iommu=on lab=kdump\r"),
            Some(Signal::KernelBoot),
            "x86's once-per-boot line"
        );
        assert_eq!(
            classify("[    0.052000] Kernel command line: console=ttyS0 lab=kdump"),
            None,
            "every arch prints this one too: it must not count twice"
        );
        assert_eq!(
            classify("[    6.368629] Kernel panic - not syncing: sysrq triggered crash"),
            Some(Signal::KernelPanic("sysrq triggered crash".into()))
        );
        assert_eq!(
            classify("LAB: READY capture uptime=3.1"),
            Some(Signal::Marker("READY capture uptime=3.1".into()))
        );
        assert_eq!(
            classify("[    5.612345] LAB: READY capture uptime=5.61\r"),
            Some(Signal::Marker("READY capture uptime=5.61".into()))
        );
        assert_eq!(
            classify("[    5.6] kdump-dma-observer: v1 {\"x\":\"LAB: DONE\"}"),
            None
        );
        // The same words inside another message are not a panic.
        assert_eq!(
            classify(r#"[ 9.1] kdump-dma-observer: v1 {"raw":"Kernel panic - not syncing: x"}"#),
            None
        );
        assert_eq!(
            classify("[    1.1] arm-smmu-v3 9050000.smmuv3: ias 44-bit"),
            None
        );
    }

    #[test]
    fn walks_a_kdump_console_in_order() {
        let mut w = Watch::new(kdump_phases(), 1);
        let log = "[    0.000000] Booting Linux on physical CPU 0x0\n\
            LAB: INIT first scenario=kdump\n\
            LAB: READY first\n\
            LAB: CRASHING uptime=6.3\n\
            [    6.368629] Kernel panic - not syncing: sysrq triggered crash\n\
            [    0.000000] Booting Linux on physical CPU 0x1\n\
            LAB: INIT capture\n\
            LAB: READY capture\n\
            LAB: DONE uptime=9\n";
        let reached: Vec<usize> = log.lines().filter_map(|l| w.feed(l).unwrap()).collect();
        assert_eq!(reached, [0, 1, 2, 3, 4, 5]);
        assert!(w.current().is_none());
        // The guest's CRASHING line can be lost in the serial driver's buffer at the crash; the
        // kernel's panic line completes the phase all the same.
        let mut w = Watch::new(kdump_phases(), 1);
        let without_marker = log.replace("LAB: CRASHING uptime=6.3\n", "");
        assert!(!without_marker.contains("CRASHING"));
        let reached = without_marker
            .lines()
            .filter_map(|l| w.feed(l).unwrap())
            .count();
        assert_eq!(reached, 6);
    }

    #[test]
    fn a_login_prompt_glued_before_a_marker_does_not_hide_it() {
        assert_eq!(
            classify(
                "kdumplab login: [   32.312218] LAB: RECOVERED load=loaded result=success status=0"
            ),
            Some(Signal::Marker(
                "RECOVERED load=loaded result=success status=0".into()
            ))
        );
        // Text before something that is not a full printk stamp still hides the words.
        assert_eq!(classify("echo x login: y [ 1.0] LAB: READY"), None);
        assert_eq!(classify("kdumplab login: LAB: READY"), None);
        assert_eq!(
            classify(r#"[    5.600000] kdump-dma-observer: v1 {"x":"LAB: DONE"}"#),
            None
        );
    }

    #[test]
    fn a_kernel_record_inside_a_forwarded_userspace_line_is_read() {
        // The exact CI line: journald's forwarded line, the kernel's marker, then (on the next
        // console line) journald's newline.
        let line = "[   16.678668] kdump-lab-driver[400]: LAB| KDUMP_CMDLINE_APPEND='reset_devices \
                    printk.devkmsg=on ftrace_dump_on_oops \
                    kdump_dma_observer.kprobes=b4c0fd99162ec9911080499fc5c45a86cf7520ea:c7f6e65c'\
                    [   16.782056] LAB: SETUP-APPLIED uptime=16.67";
        assert_eq!(
            classify(line),
            Some(Signal::Marker("SETUP-APPLIED uptime=16.67".into()))
        );
        // The forwarded line alone carries no marker (`LAB|` is the driver's echo, not `LAB: `).
        assert_eq!(classify(line.split("[   16.782056]").next().unwrap()), None);
    }

    #[test]
    fn out_of_order_markers_do_not_complete_a_phase() {
        let mut w = Watch::new(kdump_phases(), 1);
        assert_eq!(w.feed("LAB: DONE").unwrap(), None);
        assert_eq!(w.current().unwrap().name, "first kernel boots");
    }

    #[test]
    fn stops_on_guest_failures_panic_loops_and_extra_panics() {
        let mut w = Watch::new(kdump_phases(), 1);
        let err = w
            .feed("LAB: FAIL the observer wrote no /lab/first/status.json within 60 s")
            .unwrap_err();
        assert!(err.contains("no /lab/first/status.json"), "{err}");

        let mut w = Watch::new(kdump_phases(), 1);
        for _ in 0..2 {
            w.feed("[    0.000000] Booting Linux on physical CPU 0x0")
                .unwrap();
        }
        let err = w
            .feed("[    0.000000] Booting Linux on physical CPU 0x0")
            .unwrap_err();
        assert!(err.contains("boot #3"), "{err}");

        let mut w = Watch::new(kdump_phases(), 1);
        w.feed("[ 6.3] Kernel panic - not syncing: sysrq triggered crash")
            .unwrap();
        let err = w
            .feed("[ 2.0] Kernel panic - not syncing: VFS: Unable to mount root fs")
            .unwrap_err();
        assert!(err.contains("Unable to mount root fs"), "{err}");
        assert!(w.tail().contains("sysrq triggered crash"));
    }

    #[test]
    fn follower_hands_out_complete_lines_only() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("console.log");
        let mut f = Follower::new(&path);
        assert!(f.poll().unwrap().is_empty(), "no file yet");
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(b"one\r\ntw").unwrap();
        assert_eq!(f.poll().unwrap(), ["one"]);
        file.write_all(b"o\nthree").unwrap();
        assert_eq!(f.poll().unwrap(), ["two"]);
        assert_eq!(f.rest().as_deref(), Some("three"));
    }
}
