//! The real pipeline on this machine's kernel: eBPF tracepoint → ring buffer → reader →
//! JSON Lines, through the `kdump-dma-observer` binary. Needs root (`CAP_BPF`, tracefs).
//!
//! Events come from a forked child that calls `getpgid(seq)` for seq = 0..N; the daemon's
//! self-test probe records exactly that process's calls.
mod common;

use common::{Daemon, Trigger, require_root};
use observer::event::{Detail, Event};

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
#[ignore = "needs root and the kernel's BPF: cargo xtask test --root"]
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
#[ignore = "needs root and the kernel's BPF: cargo xtask test --root"]
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

/// The printk clock's offset from `CLOCK_MONOTONIC` is measured on this kernel through
/// `/dev/kmsg` (docs/timeline.md, One clock): a tight bracket, and an offset no larger than the
/// time since boot (both clocks count from it).
#[test]
#[ignore = "needs root (writes a marker record to /dev/kmsg): cargo xtask test --root"]
fn the_kernel_log_clock_offset_is_measured_on_this_kernel() {
    require_root();
    let offset = observer::kernel::clock_offset::measure(std::path::Path::new("/dev/kmsg"))
        .expect("measuring through /dev/kmsg as root");
    assert!(
        offset.uncertainty_ns < 10_000_000,
        "a marker write takes well under 10 ms: {offset:?}"
    );
    assert!(
        offset.offset_ns.unsigned_abs() < observer::clock::monotonic_ns(),
        "{offset:?}"
    );
}

#[test]
#[ignore = "needs root and the kernel's BPF: cargo xtask test --root"]
fn ras_tracepoints_attach_where_the_kernel_has_them() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let trigger = Trigger::fork(1);
    let daemon = Daemon::start(dir.path(), trigger.pid, &[]);
    trigger.fire_and_wait();
    let events = daemon.stop();
    let Some(Detail::ObserverStarted { probes, .. }) = events.first().map(|e| &e.detail) else {
        panic!("first line is not observer_started: {:?}", events.first());
    };
    let tracefs = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .into_iter()
        .map(std::path::Path::new)
        .find(|p| p.join("events").is_dir())
        .expect("tracefs is mounted (the daemon mounts it)");
    for name in ["aer_event", "arm_event", "non_standard_event", "mc_event"] {
        let report = probes
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no status for {name}: {probes:?}"));
        let expected = if tracefs.join("events/ras").join(name).is_dir() {
            observer::event::ProbeState::Attached
        } else {
            observer::event::ProbeState::Absent
        };
        assert_eq!(report.state, expected, "{report:?}");
    }
}
