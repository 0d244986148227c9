//! Helpers shared by the tests that run the real daemon on this machine's kernel (as root).
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use observer::event::{Detail, Event};

pub(crate) const READY_TIMEOUT: Duration = Duration::from_mins(1);

pub(crate) fn require_root() {
    // SAFETY: no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the host eBPF tests load BPF programs and need root: `sudo cargo xtask test --root`"
    );
}

/// A child process parked on a pipe until told to make its `getpgid` calls.
pub(crate) struct Trigger {
    pub pid: libc::pid_t,
    go: libc::c_int,
}

impl Trigger {
    pub(crate) fn fork(count: u64) -> Self {
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

    /// Lets the child run; returns at once.
    pub(crate) fn fire(&self) {
        // SAFETY: valid fd and buffer.
        unsafe {
            assert_eq!(libc::write(self.go, b"g".as_ptr().cast(), 1), 1);
        }
    }

    /// Waits for a fired child to finish its calls.
    pub(crate) fn wait(self) {
        // SAFETY: closing our fd; waitpid on our own child.
        unsafe {
            libc::close(self.go);
            let mut status = 0;
            assert_eq!(libc::waitpid(self.pid, &raw mut status, 0), self.pid);
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        }
    }

    /// Lets the child run and waits until it has made every call.
    pub(crate) fn fire_and_wait(self) {
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
pub(crate) struct Daemon {
    child: Option<Child>,
    pub output: PathBuf,
    stderr: PathBuf,
}

impl Daemon {
    pub(crate) fn start(dir: &Path, self_test_pid: libc::pid_t, extra: &[&str]) -> Self {
        Self::start_at(&dir.join("timeline.jsonl"), dir, self_test_pid, extra)
    }

    /// Starts the daemon writing its timeline to `output` and its stderr into `logs`.
    pub(crate) fn start_at(
        output: &Path,
        logs: &Path,
        self_test_pid: libc::pid_t,
        extra: &[&str],
    ) -> Self {
        let stderr_path = logs.join("daemon.stderr");
        let stderr = fs::File::create(&stderr_path).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kdump-dma-observer"))
            .args(["--log", "warn", "run", "--self-test-pid"])
            .arg(self_test_pid.to_string())
            .arg("--output")
            .arg(output)
            .args(extra)
            .stdin(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn kdump-dma-observer");
        let daemon = Self {
            child: Some(child),
            output: output.to_path_buf(),
            stderr: stderr_path,
        };
        daemon.wait_ready();
        daemon
    }

    /// The daemon's stderr (probe status, warnings), for failure messages.
    pub(crate) fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM (or another signal) and wait; the exit status and stderr.
    pub(crate) fn stop_with(mut self, signal: libc::c_int) -> (std::process::ExitStatus, String) {
        self.signal(signal);
        let status = self.child.take().unwrap().wait().unwrap();
        (status, self.stderr())
    }

    pub(crate) fn pid(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.child.as_ref().unwrap().id()).unwrap()
    }

    /// Ready = the `observer_started` line (written after every probe is attached) is on disk.
    pub(crate) fn wait_ready(&self) {
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
            self.stderr()
        );
    }

    pub(crate) fn signal(&self, signal: libc::c_int) {
        // SAFETY: signalling our own child.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// SIGTERM, wait for a clean exit, return the timeline.
    pub(crate) fn stop(mut self) -> Vec<Event> {
        self.signal(libc::SIGTERM);
        let status = self.child.take().unwrap().wait().unwrap();
        assert!(
            status.success(),
            "daemon exit status {status}; its stderr:\n{}",
            self.stderr()
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
