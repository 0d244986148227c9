//! `cargo xtask bench`: the observer against bpftrace 0.17 and rasdaemon 0.6.8 (Debian), side
//! by side in one run, on this machine's kernel (root). Writes `target/bench/results.json` and
//! prints the ratios; BENCHMARKS.md records them.
//!
//! 1. attach-to-ready: process start → first event delivered, same tracepoints for both;
//! 2. peak RSS (`VmHWM`) in a steady run, rasdaemon `--foreground --record` too;
//! 3. end-to-end throughput of `getpgid(2)` calls from two threads of one process: events per
//!    second delivered into the timeline file (observer) / stdout JSON (bpftrace), and loss
//!    = triggered − delivered, against the observer's own drop counter;
//! 4. `report` over a generated 1 M-event timeline, and kmsg-text parsing in MB/s;
//! 5. the Criterion micro-benchmarks of the per-event hot paths (`observer/benches/`: record
//!    decoder, kmsg and text log parsing, fusion, JSON Lines encoding), one line each.
//!
//! `--micro` runs step 5 alone: no root, no bpftrace or rasdaemon.
#![expect(
    clippy::cast_precision_loss,
    reason = "rates and ratios of counts far below 2^52"
)]

use std::{
    fmt::Write as _,
    io::Read as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, bail, ensure};

use crate::{build, cmd};

/// `getpgid(2)` on `x86_64` and `aarch64`.
const SYS_GETPGID: libc::c_long = libc::SYS_getpgid;
const RUNS: usize = 5;
const STORM_CALLS_PER_THREAD: u64 = 1_000_000;

#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// Repetitions of the attach-to-ready measurement (the median is reported).
    #[arg(long, default_value_t = RUNS)]
    pub runs: usize,
    /// Run only the Criterion micro-benchmarks of the decoder, parser, fusion and JSON Lines
    /// hot paths (`cargo bench -p observer --bench '*'`): needs neither root nor the other tools.
    /// Writes `target/bench/micro.json`.
    #[arg(long)]
    pub micro: bool,
}

pub(crate) fn run(root: &Path, args: &BenchArgs) -> anyhow::Result<()> {
    if args.micro {
        let micro = micro_benches(root)?;
        eprintln!("\n{}", micro_summary(&micro));
        return Ok(());
    }
    // SAFETY: no preconditions.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "the benchmarks load eBPF programs: run as root"
    );
    ensure_tools(root)?;
    let observer = build::run(
        root,
        &build::BuildArgs {
            arch: "host".into(),
        },
    )?;
    let target = build::target_dir(root)?;
    let out_dir = target.join("bench");
    std::fs::create_dir_all(&out_dir)?;
    let script = out_dir.join("same-probes.bt");
    std::fs::write(&script, BPFTRACE_SCRIPT)?;

    let mut r = serde_json::Map::new();
    eprintln!("==> attach-to-ready ({} runs each)", args.runs);
    let obs_ready = median(
        (0..args.runs)
            .map(|_| observer_ready(&observer, &out_dir))
            .collect::<anyhow::Result<_>>()?,
    );
    let bt_ready = median(
        (0..args.runs)
            .map(|_| bpftrace_ready(&script))
            .collect::<anyhow::Result<_>>()?,
    );
    r.insert("attach_to_ready_ms".into(), serde_json::json!({"observer": ms(obs_ready), "bpftrace": ms(bt_ready), "ratio": bt_ready.as_secs_f64() / obs_ready.as_secs_f64()}));

    eprintln!("==> peak RSS in a steady run");
    let obs_rss = steady_rss(&mut observer_cmd(
        &observer,
        &out_dir.join("rss.jsonl"),
        None,
    ))?;
    let bt_rss = steady_rss(
        Command::new("bpftrace")
            .args(["-f", "json"])
            .arg(&script)
            .arg("1"),
    )?;
    // rasdaemon reads its events through debugfs's tracing directory.
    if !Path::new("/sys/kernel/debug/tracing").exists() {
        let _ = Command::new("mount")
            .args(["-t", "debugfs", "debugfs", "/sys/kernel/debug"])
            .status();
    }
    let ras_rss = steady_rss(Command::new("rasdaemon").args(["--foreground", "--record"]))?;
    r.insert("peak_rss_kib".into(), serde_json::json!({"observer": obs_rss, "bpftrace": bt_rss, "rasdaemon": ras_rss, "bpftrace_over_observer": bt_rss as f64 / obs_rss as f64}));

    eprintln!("==> end-to-end throughput (2 threads × {STORM_CALLS_PER_THREAD} getpgid calls)");
    let obs = observer_throughput(&observer, &out_dir)?;
    let bt = bpftrace_throughput(&script)?;
    r.insert(
        "throughput".into(),
        serde_json::json!({"observer": obs, "bpftrace": bt}),
    );

    eprintln!("==> report of 1 M events, kmsg text parsing");
    let (report_s, parse) = report_and_parse(&observer, &out_dir)?;
    r.insert("report_1m_events_s".into(), serde_json::json!(report_s));
    r.insert("kmsg_text_parse".into(), parse);
    let size =
        std::fs::metadata(target.join("aarch64-unknown-linux-musl/release/kdump-dma-observer"))
            .map(|m| m.len())
            .ok();
    r.insert(
        "aarch64_static_binary_bytes".into(),
        serde_json::json!(size),
    );
    let micro = micro_benches(root)?;
    r.insert("micro".into(), micro.clone());

    let results = serde_json::Value::Object(r);
    let path = out_dir.join("results.json");
    std::fs::write(&path, format!("{results:#}\n"))?;
    eprintln!("\n{}", summary(&results));
    eprintln!("{}", micro_summary(&micro));
    eprintln!("results: {}", path.display());
    Ok(())
}

const BPFTRACE_SCRIPT: &str = "\
tracepoint:ras:mc_event, tracepoint:ras:arm_event, tracepoint:ras:non_standard_event { printf(\"ras\\n\"); }
tracepoint:iommu:attach_device_to_domain, tracepoint:iommu:add_device_to_group { printf(\"iommu\\n\"); }
tracepoint:syscalls:sys_enter_getpgid /pid == $1/ { printf(\"%d\\n\", args->pid); }
";

fn ensure_tools(root: &Path) -> anyhow::Result<()> {
    let missing: Vec<&str> = ["bpftrace", "rasdaemon"]
        .into_iter()
        .filter(|t| cmd::output(Command::new("which").arg(t)).is_none())
        .collect();
    if !missing.is_empty() {
        eprintln!("bench: installing {}", missing.join(" "));
        cmd::run(
            root,
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends"])
                .args(&missing),
        )?;
    }
    Ok(())
}

/// The daemon with its defaults, plus a self-test process and, for storms, a 16 MiB ring.
fn observer_cmd(observer: &Path, output: &Path, self_test: Option<u32>) -> Command {
    let mut c = Command::new(observer);
    c.args(["--log", "warn", "run", "--no-kmsg-mirror", "--output"])
        .arg(output)
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    if let Some(pid) = self_test {
        c.arg("--self-test-pid").arg(pid.to_string());
    }
    c
}

fn getpgid(seq: u64) {
    // SAFETY: getpgid has no memory arguments.
    unsafe { libc::syscall(SYS_GETPGID, libc::c_long::try_from(seq).unwrap_or(0)) };
}

/// Process start → the first self-test event in the timeline file.
fn observer_ready(observer: &Path, dir: &Path) -> anyhow::Result<Duration> {
    let out = dir.join("ready.jsonl");
    let _ = std::fs::remove_file(&out);
    let started = Instant::now();
    let mut child = Guard(observer_cmd(observer, &out, Some(std::process::id())).spawn()?);
    loop {
        getpgid(7);
        if std::fs::read(&out).is_ok_and(|t| t.windows(11).any(|w| w == b"\"self_test\"")) {
            let elapsed = started.elapsed();
            child.stop();
            return Ok(elapsed);
        }
        ensure!(
            started.elapsed() < Duration::from_mins(1),
            "observer never delivered an event"
        );
    }
}

/// Process start → bpftrace prints its first `printf` event.
fn bpftrace_ready(script: &Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut child = Guard(
        Command::new("bpftrace")
            .args(["-f", "json"])
            .arg(script)
            .arg(std::process::id().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let mut stdout = child.0.stdout.take().context("bpftrace stdout")?;
    set_nonblocking(&stdout);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        getpgid(7);
        if let Ok(n) = stdout.read(&mut buf) {
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(8).any(|w| w == b"\"printf\"") {
                let elapsed = started.elapsed();
                child.stop();
                return Ok(elapsed);
            }
        }
        ensure!(
            started.elapsed() < Duration::from_mins(1),
            "bpftrace never delivered an event"
        );
    }
}

fn set_nonblocking(f: &impl std::os::fd::AsRawFd) {
    // SAFETY: fcntl on a valid fd.
    unsafe {
        let flags = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(f.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// Starts `cmd`, lets it settle 2 s, and reads its `VmHWM` (KiB).
fn steady_rss(cmd: &mut Command) -> anyhow::Result<u64> {
    let mut child = Guard(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    std::thread::sleep(Duration::from_secs(2));
    if let Some(exit) = child.0.try_wait()? {
        bail!(
            "{} exited during the steady run ({exit})",
            cmd.get_program().display()
        );
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.0.id()))?;
    child.stop();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM")
}

/// A child process (two threads) making `calls` getpgid calls each once told to.
struct Storm {
    pid: libc::pid_t,
    go: libc::c_int,
}

impl Storm {
    fn fork(calls: u64) -> Self {
        let mut fds = [0; 2];
        // SAFETY: valid array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child only reads a pipe, spawns a thread and makes syscalls.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let mut b = 0u8;
            // SAFETY: valid fd and buffer.
            unsafe { libc::read(fds[0], (&raw mut b).cast(), 1) };
            let other = std::thread::spawn(move || (0..calls).for_each(getpgid));
            (0..calls).for_each(getpgid);
            let _ = other.join();
            // SAFETY: leaving the child without running the parent's destructors.
            unsafe { libc::_exit(0) };
        }
        // SAFETY: closing our read end.
        unsafe { libc::close(fds[0]) };
        Self { pid, go: fds[1] }
    }

    /// Runs it; returns the wall time of the storm.
    fn run(self) -> Duration {
        let started = Instant::now();
        // SAFETY: valid fd/buffer; waiting for our own child.
        unsafe {
            libc::write(self.go, b"g".as_ptr().cast(), 1);
            libc::close(self.go);
            let mut status = 0;
            libc::waitpid(self.pid, &raw mut status, 0);
        }
        started.elapsed()
    }
}

/// Waits until `ready` holds for the file at `out`, runs the storm, waits until `out` stops
/// growing; returns (storm wall time, time until everything was delivered).
fn storm_into(
    out: &Path,
    storm: Storm,
    ready: impl Fn(&[u8]) -> bool,
) -> anyhow::Result<(Duration, Duration)> {
    let deadline = Instant::now() + Duration::from_mins(1);
    while !std::fs::read(out).is_ok_and(|t| ready(&t)) {
        ensure!(
            Instant::now() < deadline,
            "{} never became ready",
            out.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    let storm_time = storm.run();
    let mut last = 0;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let len = std::fs::metadata(out)?.len();
        if len == last {
            break;
        }
        last = len;
    }
    Ok((storm_time, started.elapsed()))
}

/// The throughput record of one tool.
fn throughput(
    delivered: u64,
    lost_key: &str,
    lost: u64,
    (storm_time, drained): (Duration, Duration),
) -> serde_json::Value {
    let triggered = 2 * STORM_CALLS_PER_THREAD;
    serde_json::json!({
        "triggered": triggered,
        "delivered": delivered,
        lost_key: lost,
        "unaccounted_loss": i128::from(triggered) - i128::from(delivered) - i128::from(lost),
        "storm_s": storm_time.as_secs_f64(),
        "delivered_per_s": delivered as f64 / drained.as_secs_f64().max(storm_time.as_secs_f64()),
    })
}

fn observer_throughput(observer: &Path, dir: &Path) -> anyhow::Result<serde_json::Value> {
    let out = dir.join("storm.jsonl");
    let _ = std::fs::remove_file(&out);
    let storm = Storm::fork(STORM_CALLS_PER_THREAD);
    let pid = u32::try_from(storm.pid)?;
    let mut child = Guard(
        observer_cmd(observer, &out, Some(pid))
            .args(["--ring-buffer-bytes", "16777216"])
            .spawn()?,
    );
    let times = storm_into(&out, storm, |t| !t.is_empty())?;
    child.stop();
    let text = std::fs::read_to_string(&out)?;
    let delivered = text
        .lines()
        .filter(|l| l.contains("\"kind\":\"self_test\""))
        .count() as u64;
    let stopped: serde_json::Value = text
        .lines()
        .rev()
        .find(|l| l.contains("observer_stopped"))
        .map(serde_json::from_str)
        .transpose()?
        .unwrap_or_default();
    let dropped = stopped["dropped"].as_u64().unwrap_or(0);
    Ok(throughput(delivered, "dropped_counter", dropped, times))
}

fn bpftrace_throughput(script: &Path) -> anyhow::Result<serde_json::Value> {
    let storm = Storm::fork(STORM_CALLS_PER_THREAD);
    let out = tempfile::Builder::new()
        .prefix("bench-bpftrace-")
        .suffix(".json")
        .tempfile()?;
    let file = out.reopen()?;
    let mut child = Guard(
        Command::new("bpftrace")
            .args(["-f", "json"])
            .arg(script)
            .arg(storm.pid.to_string())
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()?,
    );
    let times = storm_into(out.path(), storm, |t| {
        t.windows(15).any(|w| w == b"attached_probes")
    })?;
    child.stop();
    let text = std::fs::read_to_string(out.path())?;
    let delivered = text.lines().filter(|l| l.contains("\"printf\"")).count() as u64;
    let reported_lost: u64 = text
        .lines()
        .filter(|l| l.contains("\"lost_events\""))
        .filter_map(|l| {
            serde_json::from_str::<serde_json::Value>(l).ok()?["data"]["events"].as_u64()
        })
        .sum();
    Ok(throughput(delivered, "reported_lost", reported_lost, times))
}

/// `report` over a generated 1 M-event timeline; `report` (text parse path) over a generated
/// kernel log.
fn report_and_parse(observer: &Path, dir: &Path) -> anyhow::Result<(f64, serde_json::Value)> {
    let timeline = dir.join("1m.jsonl");
    let mut text = String::with_capacity(120 << 20);
    text.push_str("{\"ts_ns\":1,\"source\":\"observer\",\"kind\":\"observer_started\",\"version\":\"b\",\"capture_kernel\":true,\"kernel_release\":\"6.12\",\"probes\":[]}\n");
    text.push_str(
        "{\"ts_ns\":2,\"source\":\"kmsg\",\"kind\":\"smmu_reset\",\"smmu\":\"9050000.smmuv3\"}\n",
    );
    for i in 0..1_000_000u64 {
        if i % 1000 == 0 {
            let _ = writeln!(
                text,
                "{{\"ts_ns\":{},\"source\":\"ebpf\",\"kind\":\"aer\",\"device\":\"0000:02:00.0\",\"severity\":\"correctable\",\"status\":\"0x40\"}}",
                1000 + i * 1000
            );
        } else {
            let _ = writeln!(
                text,
                "{{\"ts_ns\":{},\"source\":\"ebpf\",\"cpu\":1,\"kind\":\"self_test\",\"seq\":{i},\"tid\":42}}",
                1000 + i * 1000
            );
        }
    }
    std::fs::write(&timeline, &text)?;
    let report_s = time_report(observer, &timeline)?;

    let log = dir.join("big.log");
    let mut lines = String::with_capacity(64 << 20);
    let sample = [
        "arm-smmu-v3 9050000.smmuv3: ias 44-bit, oas 44-bit (features 0x00088705)",
        "pcieport 0000:00:03.0: AER: Correctable error message received from 0000:02:00.0",
        "virtio-pci 0000:02:00.0: PCIe Bus Error: severity=Correctable, type=Data Link Layer, (Receiver ID)",
        "virtio-pci 0000:02:00.0:   device [1af4:1041] error status/mask=00000040/0000e000",
        "virtio-pci 0000:02:00.0:    [ 6] BadTLP",
        "systemd[1]: Started some.service - Something perfectly ordinary.",
        "EXT4-fs (vda): mounted filesystem with ordered data mode. Quota mode: none.",
    ];
    let mut n = 0u64;
    while lines.len() < 50 << 20 {
        let _ = writeln!(
            lines,
            "[{:5}.{:06}] {}",
            n / 1_000_000,
            n % 1_000_000,
            sample[(n % 7) as usize]
        );
        n += 1;
    }
    std::fs::write(&log, &lines)?;
    let parse_s = time_report(observer, &log)?;
    let mb = lines.len() as f64 / 1e6;
    Ok((
        report_s,
        serde_json::json!({"bytes": lines.len(), "lines": n, "seconds": parse_s, "mb_per_s": mb / parse_s}),
    ))
}

fn time_report(observer: &Path, input: &Path) -> anyhow::Result<f64> {
    let started = Instant::now();
    let status = Command::new(observer)
        .args([
            "--log",
            "error",
            "report",
            "--format",
            "json",
            "--output",
            "/dev/null",
        ])
        .arg(input)
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("report on {} failed: {status}", input.display());
    }
    Ok(started.elapsed().as_secs_f64())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(r: &serde_json::Value) -> String {
    let a = &r["attach_to_ready_ms"];
    let m = &r["peak_rss_kib"];
    let t = &r["throughput"];
    format!(
        "attach-to-ready: observer {:.1} ms, bpftrace {:.1} ms → {:.1}× (target ≥ 20×)\n\
         peak RSS: observer {} KiB, bpftrace {} KiB ({:.2}×), rasdaemon {} KiB (target: observer ≤ 1/10 of bpftrace)\n\
         throughput: observer {:.0} events/s, unaccounted loss {} (dropped {}); bpftrace {:.0} events/s, unaccounted loss {} (target ≥ 1 M/s, 0 unaccounted)\n\
         report of 1 M events: {:.2} s (target ≤ 1 s); kmsg text parse: {:.1} MB/s\n\
         static aarch64 binary: {} bytes (target ≤ 4 MiB)",
        a["observer"].as_f64().unwrap_or(0.0),
        a["bpftrace"].as_f64().unwrap_or(0.0),
        a["ratio"].as_f64().unwrap_or(0.0),
        m["observer"],
        m["bpftrace"],
        m["bpftrace_over_observer"].as_f64().unwrap_or(0.0),
        m["rasdaemon"],
        t["observer"]["delivered_per_s"].as_f64().unwrap_or(0.0),
        t["observer"]["unaccounted_loss"],
        t["observer"]["dropped_counter"],
        t["bpftrace"]["delivered_per_s"].as_f64().unwrap_or(0.0),
        t["bpftrace"]["unaccounted_loss"],
        r["report_1m_events_s"].as_f64().unwrap_or(0.0),
        r["kmsg_text_parse"]["mb_per_s"].as_f64().unwrap_or(0.0),
        r["aarch64_static_binary_bytes"],
    )
}

/// Runs the Criterion benchmarks of `observer/benches/` and reads back what this run measured
/// (`<target>/criterion/<group>/<name>/new/{benchmark,estimates}.json`): per benchmark its
/// id, median time per iteration and the elements or bytes one iteration handles. Also
/// written to `<target>/bench/micro.json`.
fn micro_benches(root: &Path) -> anyhow::Result<serde_json::Value> {
    eprintln!("==> micro-benchmarks (Criterion)");
    let target = build::target_dir(root)?;
    let started = SystemTime::now();
    cmd::run(
        root,
        Command::new("cargo")
            // Only the bench targets: `--benches` would also build the library's unit tests
            // in the (LTO) bench profile, to run none of them.
            .args(["bench", "--package", "observer", "--bench", "*"])
            .env("CARGO_TARGET_DIR", &target),
    )?;
    let mut found = Vec::new();
    find_files(&target.join("criterion"), "estimates.json", &mut found)?;
    let mut benches = Vec::new();
    for estimates in found {
        let dir = estimates.parent().context("estimates.json has a folder")?;
        // Only this run's results: `new/` holds the latest, older benchmarks linger.
        if dir.file_name().is_none_or(|n| n != "new")
            || std::fs::metadata(&estimates)?.modified()? < started
        {
            continue;
        }
        let read = |p: &Path| -> anyhow::Result<serde_json::Value> {
            Ok(serde_json::from_str(&std::fs::read_to_string(p)?)?)
        };
        let (bench, est) = (read(&dir.join("benchmark.json"))?, read(&estimates)?);
        benches.push(serde_json::json!({
            "id": bench["full_id"],
            "median_ns": est["median"]["point_estimate"],
            "elements": bench["throughput"]["Elements"],
            "bytes": bench["throughput"]["Bytes"],
        }));
    }
    ensure!(!benches.is_empty(), "Criterion wrote no results");
    benches.sort_by_key(|b| b["id"].as_str().unwrap_or_default().to_owned());
    let micro = serde_json::Value::Array(benches);
    let out_dir = target.join("bench");
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("micro.json"), format!("{micro:#}\n"))?;
    Ok(micro)
}

fn find_files(dir: &Path, name: &str, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            find_files(&path, name, out)?;
        } else if path.file_name().is_some_and(|n| n == name) {
            out.push(path);
        }
    }
    Ok(())
}

/// One line per micro-benchmark: median time per iteration, and throughput.
fn micro_summary(micro: &serde_json::Value) -> String {
    let mut out = String::from("micro-benchmarks (median per iteration, throughput):");
    for b in micro.as_array().into_iter().flatten() {
        let ns = b["median_ns"].as_f64().unwrap_or(f64::NAN);
        let per_s = |n: f64| n * 1e9 / ns;
        let rate = if let Some(n) = b["elements"].as_u64() {
            format!(
                "{:.2} M elements/s ({:.1} ns each)",
                per_s(n as f64) / 1e6,
                ns / n as f64
            )
        } else if let Some(n) = b["bytes"].as_u64() {
            format!("{:.0} MB/s", per_s(n as f64) / 1e6)
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "\n  {:<30} {:>10}  {rate}",
            b["id"].as_str().unwrap_or("?"),
            duration_text(ns)
        );
    }
    out
}

/// `ns` as ns, µs or ms with 3–4 significant digits.
fn duration_text(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

/// Kills and reaps the child on drop.
struct Guard(Child);

impl Guard {
    /// SIGINT (what every tool here ends on: bpftrace once ignored a SIGTERM for good), then
    /// wait up to 10 s, then SIGKILL.
    fn stop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.0.id()) {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_)) | Err(_)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "bench: pid {} did not stop on SIGINT within 10 s: killed",
            self.0.id()
        );
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
