//! `cargo xtask fuzz`: every fuzz target of `fuzz/` (cargo-fuzz, libFuzzer) for a bounded time.
//!
//! The seeds in `fuzz/seeds/<target>/` are copied into a scratch corpus under
//! `fuzz/target/xtask/`, which is where libFuzzer adds what it finds: runs never touch tracked
//! files. A crash leaves its input in `fuzz/artifacts/<target>/` (ignored by git).
use std::{
    fs,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::{cmd, toolchain};

/// Longest input libFuzzer generates (the log parsers look at 64 KiB of a line).
const MAX_LEN: u32 = 65_536;
/// Memory limit of a fuzzing process, the address sanitizer's overhead included.
const RSS_LIMIT_MB: u32 = 2048;
/// An input that takes longer than this is a finding (a `timeout-*` artifact).
const INPUT_TIMEOUT_S: u32 = 10;
/// Time allowed on top of `--seconds` (cargo-fuzz's up-to-date check, loading the corpus)
/// before a run is killed as hung.
const GRACE: Duration = Duration::from_mins(3);
/// Log lines shown for a run that failed.
const TAIL_LINES: usize = 40;

#[derive(clap::Args)]
pub(crate) struct FuzzArgs {
    /// Seconds of fuzzing per target.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Fuzz only this target (default: every file of `fuzz/fuzz_targets/`).
    #[arg(long)]
    pub target: Option<String>,
}

/// What one target's run came to.
#[derive(Debug, Default, PartialEq, Eq)]
struct Outcome {
    target: String,
    execs: Option<u64>,
    execs_per_sec: Option<u64>,
    new_units: Option<u64>,
    /// Inputs libFuzzer wrote out: crashes, timeouts, out-of-memory, leaks.
    artifacts: Vec<PathBuf>,
    /// The first panic message in the log, if any.
    panic: Option<String>,
    /// Why the run failed without an artifact (build error, killed as hung, ...).
    failure: Option<String>,
    log: PathBuf,
}

impl Outcome {
    fn failed(&self) -> bool {
        !self.artifacts.is_empty() || self.failure.is_some()
    }
}

/// `cargo xtask fuzz [--seconds N] [--target NAME]`.
pub(crate) fn run(root: &Path, args: &FuzzArgs) -> anyhow::Result<()> {
    let fuzz_dir = root.join("fuzz");
    let all = targets(&fuzz_dir)?;
    let chosen = match &args.target {
        Some(t) if all.contains(t) => vec![t.clone()],
        Some(t) => bail!("no fuzz target `{t}`; the targets are {}", all.join(", ")),
        None => all,
    };
    let nightly = toolchain::ebpf(root)?;
    ensure_cargo_fuzz(root)?;

    // Build first, so compile time does not count against the run's time limit.
    let mut build = cargo_fuzz(&nightly);
    build.arg("build");
    if let [only] = chosen.as_slice() {
        build.arg(only);
    }
    cmd::run(&fuzz_dir, &mut build)?;

    let scratch = fuzz_dir.join("target").join("xtask");
    let mut outcomes = Vec::new();
    for target in &chosen {
        let outcome = run_target(&fuzz_dir, &scratch, &nightly, target, args.seconds)?;
        eprintln!("{}", one_line(&outcome));
        outcomes.push(outcome);
    }

    println!("\nfuzz results ({} s per target):", args.seconds);
    println!(
        "{:<14} {:>12} {:>9} {:>6} {:>8}",
        "target", "execs", "exec/s", "new", "crashes"
    );
    for o in &outcomes {
        println!(
            "{:<14} {:>12} {:>9} {:>6} {:>8}",
            o.target,
            show(o.execs),
            show(o.execs_per_sec),
            show(o.new_units),
            o.artifacts.len()
        );
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.failed()).collect();
    if failed.is_empty() {
        return Ok(());
    }
    for o in &failed {
        eprintln!("\n{}: FAILED (log: {})", o.target, o.log.display());
        if let Some(why) = &o.failure {
            eprintln!("  {why}");
        }
        if let Some(panic) = &o.panic {
            eprintln!("  {panic}");
        }
        for artifact in &o.artifacts {
            eprintln!("  input:     {}", artifact.display());
            eprintln!(
                "  reproduce: cd {} && cargo +{nightly} fuzz run {} {}",
                fuzz_dir.display(),
                o.target,
                artifact.display()
            );
            eprintln!(
                "  minimize:  cd {} && cargo +{nightly} fuzz tmin {} {}",
                fuzz_dir.display(),
                o.target,
                artifact.display()
            );
        }
    }
    bail!(
        "{} of {} fuzz targets failed: {}",
        failed.len(),
        outcomes.len(),
        failed
            .iter()
            .map(|o| o.target.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The targets: the files of `fuzz/fuzz_targets/`, sorted.
fn targets(fuzz_dir: &Path) -> anyhow::Result<Vec<String>> {
    let dir = fuzz_dir.join("fuzz_targets");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".rs").map(str::to_owned)
        })
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("no fuzz targets in {}", dir.display());
    }
    Ok(names)
}

/// Installs cargo-fuzz when `cargo fuzz` is missing, saying so.
fn ensure_cargo_fuzz(root: &Path) -> anyhow::Result<()> {
    if cmd::output(Command::new("cargo").args(["fuzz", "--version"])).is_some() {
        return Ok(());
    }
    eprintln!("cargo-fuzz is not installed: installing it (cargo install cargo-fuzz --locked)");
    cmd::run(
        root,
        Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]),
    )
}

/// `cargo fuzz` on the pinned nightly (libFuzzer's instrumentation needs `-Z` flags; the
/// observer's build script needs that nightly for the eBPF object anyway). The fuzz project
/// has its own target directory, whatever `CARGO_TARGET_DIR` the caller uses.
fn cargo_fuzz(nightly: &str) -> Command {
    let mut c = Command::new("rustup");
    c.args(["run", nightly, "cargo", "fuzz"])
        .env_remove("CARGO_TARGET_DIR");
    c
}

/// Copies the target's seeds into its scratch corpus (kept between runs, so longer runs build
/// on earlier ones) and returns that directory.
fn seed_corpus(fuzz_dir: &Path, scratch: &Path, target: &str) -> anyhow::Result<PathBuf> {
    let corpus = scratch.join("corpus").join(target);
    fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
    let seeds = fuzz_dir.join("seeds").join(target);
    let Ok(entries) = fs::read_dir(&seeds) else {
        eprintln!("{target}: no seeds in {}", seeds.display());
        return Ok(corpus);
    };
    for entry in entries.flatten().filter(|e| e.path().is_file()) {
        let to = corpus.join(format!("seed-{}", entry.file_name().to_string_lossy()));
        fs::copy(entry.path(), &to)
            .with_context(|| format!("copying {} to {}", entry.path().display(), to.display()))?;
    }
    Ok(corpus)
}

/// Runs one target for `seconds`, its output going to a log file, and reads the outcome off
/// that log. Killed if it outlives its time by [`GRACE`].
fn run_target(
    fuzz_dir: &Path,
    scratch: &Path,
    nightly: &str,
    target: &str,
    seconds: u64,
) -> anyhow::Result<Outcome> {
    let corpus = seed_corpus(fuzz_dir, scratch, target)?;
    let logs = scratch.join("logs");
    // The targets that parse a file write it under TMPDIR; keep it in the scratch directory.
    let tmp = scratch.join("tmp");
    for dir in [&logs, &tmp] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let log = logs.join(format!("{target}.log"));
    let out = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut c = cargo_fuzz(nightly);
    c.args(["run", target])
        .arg(&corpus)
        .arg("--")
        .args([
            format!("-max_total_time={seconds}"),
            format!("-max_len={MAX_LEN}"),
            format!("-rss_limit_mb={RSS_LIMIT_MB}"),
            format!("-timeout={INPUT_TIMEOUT_S}"),
            "-print_final_stats=1".to_owned(),
        ])
        .env("TMPDIR", &tmp)
        .current_dir(fuzz_dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        // Its own process group, so a hung run is killed with everything it started.
        .process_group(0);
    eprintln!("{target}: fuzzing for {seconds} s (log: {})", log.display());
    let mut child = c
        .spawn()
        .with_context(|| format!("cannot start cargo fuzz run {target}"))?;
    let deadline = Instant::now() + Duration::from_secs(seconds) + GRACE;
    let status: Option<ExitStatus> = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            if let Ok(pgid) = i32::try_from(child.id()) {
                // SAFETY: kill(2) with a negative pid signals the process group we created.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
            }
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = String::from_utf8_lossy(&fs::read(&log)?).into_owned();
    let mut outcome = parse_log(target, &text);
    outcome.log = log;
    match status {
        None => {
            outcome.failure = Some(format!(
                "killed: still running {} s after its {seconds} s",
                GRACE.as_secs()
            ));
        }
        Some(s) if !s.success() && outcome.artifacts.is_empty() => {
            outcome.failure = Some(format!("cargo fuzz run exited with {s}"));
        }
        Some(_) => {}
    }
    if outcome.failed() {
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(TAIL_LINES);
        eprintln!("--- last lines of {target}'s log ---");
        for line in &lines[from..] {
            eprintln!("{line}");
        }
        eprintln!("---");
    }
    Ok(outcome)
}

/// Reads libFuzzer's final statistics (`-print_final_stats=1`), the artifacts it wrote and
/// the first panic message off a run's output.
fn parse_log(target: &str, text: &str) -> Outcome {
    let mut o = Outcome {
        target: target.to_owned(),
        ..Outcome::default()
    };
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let stat = |name: &str| {
            line.strip_prefix(name)
                .and_then(|rest| rest.trim().parse::<u64>().ok())
        };
        if let Some(n) = stat("stat::number_of_executed_units:") {
            o.execs = Some(n);
        } else if let Some(n) = stat("stat::average_exec_per_sec:") {
            o.execs_per_sec = Some(n);
        } else if let Some(n) = stat("stat::new_units_added:") {
            o.new_units = Some(n);
        } else if let Some((_, path)) = line.split_once("Test unit written to ") {
            o.artifacts.push(PathBuf::from(path.trim()));
        } else if o.panic.is_none() && line.contains("panicked at") {
            // `thread '<name>' panicked at file:line:col:` then the message on the next line.
            let message = lines.next().unwrap_or_default().trim();
            o.panic = Some(format!("{line} {message}"));
        } else if o.execs.is_none()
            && let Some(rest) = line.strip_prefix("Done ")
        {
            o.execs = rest.split_whitespace().next().and_then(|n| n.parse().ok());
        }
    }
    o
}

fn one_line(o: &Outcome) -> String {
    format!(
        "{}: {} execs ({}/s), {} new units, {} crashes{}",
        o.target,
        show(o.execs),
        show(o.execs_per_sec),
        show(o.new_units),
        o.artifacts.len(),
        if o.failure.is_some() { ", FAILED" } else { "" }
    )
}

fn show(n: Option<u64>) -> String {
    n.map_or_else(|| "?".to_owned(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_final_stats_of_a_clean_run() {
        let log = "\
INFO: Seed: 1234
#2\tINITED cov: 10 ft: 10 corp: 1/1b exec/s: 0 rss: 30Mb
#65536\tpulse  cov: 900 ft: 2000 corp: 80/4Kb lim: 600 exec/s: 21845 rss: 60Mb
Done 123456 runs in 31 second(s)
stat::number_of_executed_units: 123457
stat::average_exec_per_sec:     3982
stat::new_units_added:          77
stat::slowest_unit_time_sec:    0
stat::peak_rss_mb:              61
";
        let o = parse_log("kmsg", log);
        assert_eq!(o.execs, Some(123_457));
        assert_eq!(o.execs_per_sec, Some(3982));
        assert_eq!(o.new_units, Some(77));
        assert!(o.artifacts.is_empty() && o.panic.is_none() && !o.failed());
    }

    #[test]
    fn reads_the_artifact_and_panic_of_a_crash() {
        let log = "\
thread '<unnamed>' panicked at observer/src/x.rs:10:5:
attempt to add with overflow
==1== ERROR: libFuzzer: deadly signal
MS: 1 ChangeByte-; base unit: 0000
artifact_prefix='/w/fuzz/artifacts/kmsg/'; Test unit written to /w/fuzz/artifacts/kmsg/crash-abc
stat::number_of_executed_units: 99
";
        let o = parse_log("kmsg", log);
        assert_eq!(
            o.artifacts,
            [PathBuf::from("/w/fuzz/artifacts/kmsg/crash-abc")]
        );
        assert_eq!(
            o.panic.as_deref(),
            Some(
                "thread '<unnamed>' panicked at observer/src/x.rs:10:5: attempt to add with overflow"
            )
        );
        assert_eq!(o.execs, Some(99));
        assert!(o.failed());
    }

    #[test]
    fn done_line_counts_runs_when_stats_are_missing() {
        assert_eq!(
            parse_log("t", "Done 42 runs in 1 second(s)\n").execs,
            Some(42)
        );
    }

    #[test]
    fn lists_every_target_that_fuzz_cargo_toml_declares() {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
        let manifest = fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
        // The [[bin]] names cargo-fuzz builds: `name = "..."` lines after a `[[bin]]` header.
        let mut declared: Vec<String> = manifest
            .split("[[bin]]")
            .skip(1)
            .filter_map(|bin| {
                let line = bin.lines().find(|l| l.trim_start().starts_with("name"))?;
                Some(line.split('"').nth(1)?.to_owned())
            })
            .collect();
        declared.sort();
        assert!(declared.len() >= 8, "{declared:?}");
        assert_eq!(targets(&fuzz).unwrap(), declared);
    }
}
