//! What the daemon guarantees when things go wrong, on this machine's real kernel (root):
//! a SIGKILL mid-storm leaves only valid lines (a torn last line at most, which readers
//! accept); a full disk is counted, reported by metrics and the exit code, and does not stop
//! observation or the kernel-log mirror.
mod common;

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use common::{Daemon, Trigger, require_root};
use observer::event::Event;

#[test]
#[ignore = "needs root and the kernel's BPF: cargo xtask test --root"]
fn sigkill_during_an_event_storm_leaves_only_valid_lines() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let trigger = Trigger::fork(400_000);
    let daemon = Daemon::start(dir.path(), trigger.pid, &["--ring-buffer-bytes", "8388608"]);
    trigger.fire();
    // Kill it in the middle of the storm: once events are being written.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&daemon.output).map_or(0, |t| t.lines().count()) < 1000 {
        assert!(
            Instant::now() < deadline,
            "the storm never reached the timeline"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let (status, _) = daemon.stop_with(libc::SIGKILL);
    assert_eq!(status.code(), None, "killed by a signal");
    trigger.wait();

    let text = std::fs::read_to_string(dir.path().join("timeline.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() > 1,
        "the storm was being written when the daemon died"
    );
    let complete = if text.ends_with('\n') {
        lines.len()
    } else {
        lines.len() - 1
    };
    for (n, line) in lines[..complete].iter().enumerate() {
        serde_json::from_str::<Event>(line).unwrap_or_else(|e| {
            panic!(
                "line {} of {} is not a valid event: {e}",
                n + 1,
                lines.len()
            )
        });
    }
    // Every reader accepts the file as it was left.
    let out = Command::new(env!("CARGO_BIN_EXE_kdump-dma-observer"))
        .args(["report", "--format", "json"])
        .arg(dir.path().join("timeline.jsonl"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tmpfs too small for the timeline, unmounted on drop.
struct TinyDisk {
    mount: PathBuf,
}

impl TinyDisk {
    fn new(at: &Path) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tiny"])
            .arg(at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a 64 KiB tmpfs at {}", at.display());
        Self {
            mount: at.to_path_buf(),
        }
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
    }
}

fn scrape(port: u16) -> String {
    use std::io::{Read as _, Write as _};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
#[ignore = "needs root and the kernel's BPF: cargo xtask test --root"]
fn a_full_disk_is_counted_reported_and_survived() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let disk = TinyDisk::new(&dir.path().join("tiny"));
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let status_file = dir.path().join("status.json");
    let trigger = Trigger::fork(30_000);
    let listen = format!("127.0.0.1:{port}");
    let daemon = Daemon::start_at(
        &disk.mount.join("timeline.jsonl"),
        dir.path(),
        trigger.pid,
        &[
            "--ring-buffer-bytes",
            "8388608",
            "--listen",
            &listen,
            "--status",
            status_file.to_str().unwrap(),
        ],
    );
    trigger.fire_and_wait();

    // The metrics show the lost lines while the daemon keeps running.
    let deadline = Instant::now() + Duration::from_secs(30);
    let failures = loop {
        let m = scrape(port);
        if let Some(v) =
            metric(&m, "kdump_dma_observer_timeline_write_failures_total").filter(|v| *v > 0.0)
        {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "no write failures in the metrics:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(failures > 0.0);

    let (status, stderr) = daemon.stop_with(libc::SIGTERM);
    assert!(!status.success(), "a run that lost lines must not exit 0");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("kdump-dma-observer: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one clear message, got:\n{stderr}");
    assert!(
        errors[0].contains("timeline lines could not be written"),
        "{}",
        errors[0]
    );

    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&status_file).unwrap()).unwrap();
    assert_eq!(status["state"], "stopped");
    assert!(status["write_failures"].as_u64().unwrap() > 0);
    assert!(
        status["kmsg_mirrored"].as_u64().unwrap() >= 2,
        "the mirror kept going: {status}"
    );
}

#[test]
#[ignore = "needs root and the kernel's BPF: cargo xtask test --root"]
fn every_daemon_thread_keeps_only_cap_bpf_once_ready() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let trigger = Trigger::fork(10);
    let daemon = Daemon::start(dir.path(), trigger.pid, &[]);
    let tasks = std::fs::read_dir(format!("/proc/{}/task", daemon.pid())).unwrap();
    let mut threads = 0;
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap();
        let name = status.lines().next().unwrap_or_default().to_owned();
        let eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
            .unwrap();
        assert_eq!(
            eff,
            1 << 39,
            "thread {name}: CapEff {eff:#x}, expected CAP_BPF only"
        );
        threads += 1;
    }
    assert!(threads >= 2, "the main thread and the writer thread");
    trigger.fire_and_wait();
    // Still fully working without the other capabilities: events arrive, counters read.
    let events = daemon.stop();
    let seen = events
        .iter()
        .filter(|e| matches!(e.detail, observer::event::Detail::SelfTest { .. }))
        .count();
    assert_eq!(seen, 10);
}

#[test]
#[ignore = "needs root and the kernel's BPF: cargo xtask test --root"]
fn without_tracefs_the_daemon_reports_degraded_and_carries_on() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let timeline = dir.path().join("timeline.jsonl");
    let status_file = dir.path().join("status.json");
    // A private mount namespace where /sys/kernel is an empty read-only tmpfs: tracefs is
    // neither there nor mountable.
    let script = format!(
        "mount -t tmpfs -o ro,size=4k none /sys/kernel && exec {} --log warn run --output {} --status {}",
        env!("CARGO_BIN_EXE_kdump-dma-observer"),
        timeline.display(),
        status_file.display()
    );
    let mut child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_mins(1);
    while !status_file.exists() {
        assert!(
            Instant::now() < deadline,
            "no status.json: the daemon did not start"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the daemon exited instead of degrading"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling our own child (sh exec'd into the daemon).
    unsafe { libc::kill(libc::pid_t::try_from(child.id()).unwrap(), libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&status_file).unwrap()).unwrap();
    assert!(
        status["tracefs"]
            .as_str()
            .unwrap()
            .starts_with("unavailable"),
        "{status}"
    );
    for probe in status["probes"].as_array().unwrap() {
        if probe["target"].as_str().unwrap().starts_with("tracepoint:")
            && probe["state"] != "disabled"
        {
            assert_eq!(probe["state"], "unsupported", "{probe}");
        }
    }
    assert!(status["boot_trace"]["error"].is_string());
    // The kernel log was still read. Whether any of its records is evidence (an SMMU, AER,
    // panic line) depends on the host, so count records read, not events.
    let kmsg = status["kmsg"].as_str().unwrap();
    let read: u64 = kmsg
        .strip_prefix("read ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("kmsg status: {kmsg}"));
    assert!(read > 0, "no kernel log records read: {kmsg}");
    let text = std::fs::read_to_string(&timeline).unwrap();
    assert!(
        text.trim_end().ends_with('}') && text.lines().last().unwrap().contains("observer_stopped")
    );
}
