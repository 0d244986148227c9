//! `cargo xtask demo`: the main job until the QEMU lab lands — run the daemon on this kernel,
//! feed its self-test probe, stop it, and summarise the timeline it wrote.
use std::{
    collections::BTreeMap,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};

use crate::{build, setup};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// How long the daemon observes before it is stopped with SIGTERM.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Self-test events to trigger while it runs.
    #[arg(long, default_value_t = 1000)]
    pub events: u32,
}

pub fn run(root: &Path, args: &DemoArgs) -> anyhow::Result<()> {
    setup::run(root)?;
    let binary = build::run(
        root,
        &build::BuildArgs {
            arch: "host".into(),
        },
    )?;
    // SAFETY: no preconditions.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "the daemon loads eBPF programs: run the demo as root"
    );
    let dir = root.join("target/demo");
    std::fs::create_dir_all(&dir)?;
    let timeline = dir.join("timeline.jsonl");
    let _ = std::fs::remove_file(&timeline);

    eprintln!(
        "\n==> kdump-dma-observer run on this kernel for {} s",
        args.seconds
    );
    let mut daemon = Command::new(&binary)
        .args(["run", "--output"])
        .arg(&timeline)
        .arg("--self-test-pid")
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let deadline = Instant::now() + Duration::from_mins(1);
    while !std::fs::read_to_string(&timeline).is_ok_and(|t| t.contains("observer_started")) {
        if Instant::now() > deadline || daemon.try_wait()?.is_some() {
            let _ = daemon.kill();
            bail!("the daemon did not become ready (see its messages above)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for seq in 0..args.events {
        // SAFETY: getpgid has no memory arguments; the argument is the self-test sequence number.
        unsafe { libc::getpgid(libc::pid_t::try_from(seq)?) };
    }
    std::thread::sleep(Duration::from_secs(args.seconds));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(libc::pid_t::try_from(daemon.id())?, libc::SIGTERM) };
    let status = daemon.wait()?;
    ensure!(status.success(), "the daemon exited with {status}");

    let text = std::fs::read_to_string(&timeline)?;
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", timeline.display(), n + 1))?;
        *kinds
            .entry(v["kind"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    eprintln!(
        "\n==> timeline {} ({} lines)",
        timeline.display(),
        text.lines().count()
    );
    for (kind, count) in &kinds {
        eprintln!("  {kind:<24} {count}");
    }
    let self_tests = kinds.get("self_test").copied().unwrap_or(0);
    ensure!(
        self_tests == u64::from(args.events),
        "triggered {} self-test events, the timeline has {self_tests}",
        args.events
    );
    Ok(())
}
