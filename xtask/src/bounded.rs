//! Running a helper program (the host observer's `report`, promtool, Chromium) with a
//! deadline. It gets its own process group, which is killed whole when the deadline passes, and
//! its output goes to files (no pipe a stray grandchild could hold open). If xtask itself dies,
//! the kernel kills the program (`PR_SET_PDEATHSIG`).
use std::{
    fs::File,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

/// A program that ran to its end.
pub(crate) struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// Where stdout and stderr were kept.
    pub logs: (PathBuf, PathBuf),
}

impl Ran {
    /// The last `n` lines of stderr, indented, for failure messages.
    #[must_use]
    pub(crate) fn stderr_tail(&self, n: usize) -> String {
        tail(&self.stderr, n)
    }
}

/// Runs `cmd` with stdout and stderr in `<logs>.stdout` / `<logs>.stderr` (and stdin from
/// `stdin`, else nothing); kills its process group and fails when it runs past `timeout`. A
/// non-zero exit is not an error here: the caller judges the status.
pub(crate) fn run(
    cmd: &mut Command,
    timeout: Duration,
    logs: &Path,
    stdin: Option<&Path>,
) -> anyhow::Result<Ran> {
    let shown = show(cmd);
    let out_path = with_suffix(logs, "stdout");
    let err_path = with_suffix(logs, "stderr");
    let create = |p: &Path| File::create(p).with_context(|| format!("creating {}", p.display()));
    cmd.stdout(create(&out_path)?).stderr(create(&err_path)?);
    match stdin {
        Some(path) => {
            cmd.stdin(File::open(path).with_context(|| format!("opening {}", path.display()))?)
        }
        None => cmd.stdin(Stdio::null()),
    };
    cmd.process_group(0);
    // SAFETY: prctl is async-signal-safe; this runs in the child between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let group = libc::pid_t::try_from(child.id()).context("process id out of range")?;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for a helper")? {
            break status;
        }
        if started.elapsed() > timeout {
            kill_group(group);
            let _ = child.wait();
            let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
            bail!(
                "`{shown}` did not finish within {:.1} s and was killed; its last messages ({}):\n{}",
                timeout.as_secs_f64(),
                err_path.display(),
                tail(&stderr, 10)
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    // Whatever it left running in its group (Chromium's helpers) goes too.
    kill_group(group);
    let read = |p: &Path| {
        std::fs::read(p)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .with_context(|| format!("reading {}", p.display()))
    };
    Ok(Ran {
        status,
        stdout: read(&out_path)?,
        stderr: read(&err_path)?,
        elapsed: started.elapsed(),
        logs: (out_path, err_path),
    })
}

fn kill_group(group: libc::pid_t) {
    // SAFETY: signals our own child's process group (created with process_group(0)); ESRCH when
    // it is already gone is fine.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// The command line, for messages.
#[must_use]
pub(crate) fn show(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let lines = &lines[lines.len().saturating_sub(n)..];
    if lines.is_empty() {
        return "    (nothing)".to_owned();
    }
    lines
        .iter()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_output_and_status() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let input = dir.join("in.txt");
        std::fs::write(&input, "from stdin\n").unwrap();
        let ran = run(
            Command::new("sh").args(["-c", "cat; echo oops >&2; exit 3"]),
            Duration::from_secs(10),
            &dir.join("sh"),
            Some(&input),
        )
        .unwrap();
        assert_eq!(ran.status.code(), Some(3));
        assert_eq!(ran.stdout, "from stdin\n");
        assert_eq!(ran.stderr_tail(5), "    | oops");
        assert!(ran.logs.1.ends_with("sh.stderr"));
    }

    #[test]
    fn kills_the_whole_group_at_the_deadline() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let pid_file = dir.join("grandchild.pid");
        let script = format!(
            "sleep 30 & echo $! > {}; echo started >&2; wait",
            pid_file.display()
        );
        let started = Instant::now();
        let err = run(
            Command::new("sh").args(["-c", &script]),
            Duration::from_millis(800),
            &dir.join("sh"),
            None,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(err.contains("did not finish within 0.8 s"), "{err}");
        assert!(err.contains("| started"), "{err}");
        let grandchild: libc::pid_t = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The background `sleep` was in the group: gone (a zombie at most, until init reaps it).
        std::thread::sleep(Duration::from_millis(200));
        let state = std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
        assert!(
            state.is_empty() || state.contains(") Z"),
            "grandchild still running: {state}"
        );
    }
}
