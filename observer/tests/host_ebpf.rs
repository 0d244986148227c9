//! The real pipeline on this machine's kernel: eBPF tracepoint → ring buffer → reader →
//! JSON Lines, through the `kdump-dma-observer` binary. Needs root (`CAP_BPF`, tracefs).
//!
//! Events come from a forked child that calls `getpgid(seq)` for seq = 0..N; the daemon's
//! self-test probe records exactly that process's calls.
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use observer::event::{Detail, Event};

const READY_TIMEOUT: Duration = Duration::from_mins(1);

fn require_root() {
    // SAFETY: no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the host eBPF tests load BPF programs and need root: run them as root (`cargo xtask ci` does)"
    );
}

/// A child process parked on a pipe until told to make its `getpgid` calls.
struct Trigger {
    pid: libc::pid_t,
    go: libc::c_int,
}

impl Trigger {
    fn fork(count: u64) -> Self {
        let mut fds = [0; 2];
        // SAFETY: valid array of two ints.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child only calls async-signal-safe functions (read, syscall, _exit).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let mut byte = 0u8;
            // SAFETY: async-signal-safe calls on valid fds/buffers.
            unsafe {
                libc::close(fds[1]);
                libc::read(fds[0], (&raw mut byte).cast(), 1);
                for seq in 0..count {
                    libc::syscall(libc::SYS_getpgid, seq.cast_signed());
                }
                libc::_exit(0);
            }
        }
        // SAFETY: closing our copy of the read end.
        unsafe { libc::close(fds[0]) };
        Self { pid, go: fds[1] }
    }

    /// Lets the child run and waits until it has made every call.
    fn fire_and_wait(self) {
        // SAFETY: valid fd and buffer; waitpid on our own child.
        unsafe {
            assert_eq!(libc::write(self.go, b"g".as_ptr().cast(), 1), 1);
            libc::close(self.go);
            let mut status = 0;
            assert_eq!(libc::waitpid(self.pid, &raw mut status, 0), self.pid);
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        }
    }
}

/// The daemon, killed if a test fails half-way.
struct Daemon {
    child: Option<Child>,
    output: PathBuf,
}

/// The daemon's stderr (probe status, warnings), for failure messages.
fn daemon_stderr(output: &Path) -> String {
    fs::read_to_string(output.with_file_name("daemon.stderr")).unwrap_or_default()
}

impl Daemon {
    fn start(dir: &Path, self_test_pid: libc::pid_t, extra: &[&str]) -> Self {
        let output = dir.join("timeline.jsonl");
        let stderr = fs::File::create(dir.join("daemon.stderr")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kdump-dma-observer"))
            .args(["--log", "warn", "run", "--self-test-pid"])
            .arg(self_test_pid.to_string())
            .arg("--output")
            .arg(&output)
            .args(extra)
            .stdin(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn kdump-dma-observer");
        let daemon = Self {
            child: Some(child),
            output,
        };
        daemon.wait_ready();
        daemon
    }

    fn pid(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.child.as_ref().unwrap().id()).unwrap()
    }

    /// Ready = the `observer_started` line (written after every probe is attached) is on disk.
    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(text) = fs::read_to_string(&self.output)
                && text.contains("\"kind\":\"observer_started\"")
            {
                let started: Event = serde_json::from_str(text.lines().next().unwrap()).unwrap();
                let Detail::ObserverStarted { probes, .. } = started.detail else {
                    panic!("first line is not observer_started: {text}");
                };
                let self_test = probes.iter().find(|p| p.name == "self_test").unwrap();
                assert_eq!(
                    self_test.state,
                    observer::probes::ProbeState::Attached,
                    "self-test probe: {self_test}"
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "daemon not ready after {READY_TIMEOUT:?}; its stderr:\n{}",
            daemon_stderr(&self.output)
        );
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: signalling our own child.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// SIGTERM, wait for a clean exit, return the timeline.
    fn stop(mut self) -> Vec<Event> {
        self.signal(libc::SIGTERM);
        let status = self.child.take().unwrap().wait().unwrap();
        assert!(
            status.success(),
            "daemon exit status {status}; its stderr:\n{}",
            daemon_stderr(&self.output)
        );
        fs::read_to_string(&self.output)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn self_test_seqs(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e.detail {
            Detail::SelfTest { seq, .. } => Some(seq),
            _ => None,
        })
        .collect()
}

fn stopped_counters(events: &[Event]) -> (u64, u64, u64) {
    match events.last().map(|e| &e.detail) {
        Some(Detail::ObserverStopped {
            submitted,
            dropped,
            received,
            ..
        }) => (*submitted, *dropped, *received),
        other => panic!("last line is not observer_stopped: {other:?}"),
    }
}

#[test]
fn n_events_in_n_events_out_in_order() {
    const N: u64 = 50_000;
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let trigger = Trigger::fork(N);
    // 8 MiB holds the whole burst (N × 96 bytes), so any loss would be the pipeline's fault,
    // not a slow (debug-build) reader's.
    let daemon = Daemon::start(dir.path(), trigger.pid, &["--ring-buffer-bytes", "8388608"]);
    trigger.fire_and_wait();
    let events = daemon.stop();

    let seqs = self_test_seqs(&events);
    assert_eq!(
        seqs.len() as u64,
        N,
        "every triggered event arrives exactly once"
    );
    assert!(
        seqs.iter().copied().eq(0..N),
        "events arrive in the order they were triggered"
    );
    let (submitted, dropped, received) = stopped_counters(&events);
    assert_eq!(dropped, 0, "nothing dropped");
    assert_eq!(received, submitted, "everything submitted was received");
    assert!(
        !events
            .iter()
            .any(|e| e.detail.kind() == "ring_buffer_drops")
    );
    // Live events of one source keep time order (the kernel-log backlog, replayed at start,
    // is older by nature).
    let ts: Vec<u64> = events
        .iter()
        .filter(|e| matches!(e.detail, Detail::SelfTest { .. }))
        .map(|e| e.ts_ns)
        .collect();
    assert!(
        ts.windows(2).all(|w| w[0] <= w[1]),
        "timestamps never go back"
    );
}

#[test]
fn ring_buffer_overrun_is_counted_and_reported() {
    const N: u64 = 20_000;
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let trigger = Trigger::fork(N);
    // One page of ring: about 42 records fit.
    let daemon = Daemon::start(dir.path(), trigger.pid, &["--ring-buffer-bytes", "4096"]);
    // Freeze the reader, overrun the ring, thaw it.
    daemon.signal(libc::SIGSTOP);
    trigger.fire_and_wait();
    daemon.signal(libc::SIGCONT);
    let events = daemon.stop();

    let seqs = self_test_seqs(&events);
    let (submitted, dropped, received) = stopped_counters(&events);
    assert!(dropped > 0, "an overrun ring must count drops");
    assert!(
        seqs.len() < 100,
        "only about a page of records fits, got {}",
        seqs.len()
    );
    assert_eq!(
        seqs.len() as u64 + dropped,
        N,
        "delivered + dropped accounts for every triggered event"
    );
    assert_eq!(received, submitted);
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "survivors stay in order"
    );
    let reported = events.iter().rev().find_map(|e| match e.detail {
        Detail::RingBufferDrops { dropped_total, .. } => Some(dropped_total),
        _ => None,
    });
    assert_eq!(reported, Some(dropped), "the timeline reports the loss");
}
